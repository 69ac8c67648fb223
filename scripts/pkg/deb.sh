#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make deb: the Debian packages, built the standard way
# (dpkg-buildpackage -us -uc -b) from a clean copy of the tracked files
# in build/deb/src/membroker-VERSION/, so that nothing built in the
# working tree leaks into them.  The .deb files (and .buildinfo,
# .changes) end up in build/deb/; the build's log in build/deb/build.log.
# Build dependencies come from debian/control (apt-get build-dep).
#
#   scripts/pkg/deb.sh           build them
#   scripts/pkg/deb.sh --reuse   unless those in build/deb/ are newer
#                                than every file of the tree (make lint,
#                                make check-packages)
set -euo pipefail
. "$(dirname "$0")/../vm/common.sh"

out=$BUILD/deb
version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
src=$out/src/membroker-$version

# The tracked files as they are now (uncommitted and new ones included).
tree_files() {
	(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard)
}

# True when build/deb holds the .changes and every .deb it lists, all
# newer than the newest file of the tree.
fresh() {
	local changes newest f

	changes=$out/membroker_${version}_$(dpkg --print-architecture).changes

	[ -f "$changes" ] || return 1
	newest=$(tree_files | (cd "$ROOT" && xargs -0 stat -c %Y) |
		sort -n | tail -n1)
	for f in "$(basename "$changes")" $(awk '/^Files:/ { files = 1; next }
			files && /^ / { print $5; next } { files = 0 }' \
			"$changes"); do
		[ -f "$out/$f" ] &&
			[ "$(stat -c %Y "$out/$f")" -gt "$newest" ] || return 1
	done
}

if [ "${1:-}" = --reuse ] && fresh; then
	say "deb: build/deb/ is newer than the tree, reused"
	for f in "$out"/*.deb; do
		echo "deb: ${f#"$ROOT"/} ($(stat -c %s "$f") bytes, reused)"
	done
	exit 0
fi

mkdir -p "$out"
rm -rf "$out/src" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$src"
# The tracked files as they are now (uncommitted and new ones included),
# nothing else.
tree_files | (cd "$ROOT" && xargs -0 cp --parents -t "$src")

# Missing build dependencies: install them (root) or say which.
if ! (cd "$src" && dpkg-checkbuilddeps >/dev/null 2>&1); then
	quiet apt_get update
	quiet apt_get build-dep -y --no-install-recommends "$src"
fi
# kernel-doc for the man pages comes from linux-source-6.1 (a build
# dependency); reuse the working tree's extract rather than decompress
# the tarball again when there is one.
if [ -d "$BUILD/ksrc/scripts" ]; then
	mkdir -p "$src/build"
	cp -a "$BUILD/ksrc" "$src/build/ksrc"
fi

say "deb: dpkg-buildpackage in $src"
rc=0
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
	tail -n 40 "$out/build.log" >&2
	die "dpkg-buildpackage failed, see $out/build.log"
fi
mv "$out/src"/*.deb "$out/src"/*.changes "$out/src"/*.buildinfo "$out/"
for f in "$out"/*.deb; do
	echo "deb: ${f#"$ROOT"/} ($(stat -c %s "$f") bytes)"
done
