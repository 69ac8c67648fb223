#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make deb: the Debian packages, built the standard way
# (dpkg-buildpackage -us -uc -b) from a clean copy of the tracked files
# in build/deb/src/membroker-VERSION/, so that nothing built in the
# working tree leaks into them.  The .deb files (and .buildinfo,
# .changes) end up in build/deb/; the build's log in build/deb/build.log.
# Build dependencies come from debian/control (apt-get build-dep).
set -euo pipefail
. "$(dirname "$0")/../vm/common.sh"

out=$BUILD/deb
version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
src=$out/src/membroker-$version

mkdir -p "$out"
rm -rf "$out/src" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$src"
# The tracked files as they are now (uncommitted and new ones included),
# nothing else.
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src")

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
