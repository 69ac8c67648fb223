#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract the few files we borrow from the kernel source: the kselftest
# harness for selftests/, checkpatch and kernel-doc for `make lint`, and
# kernel-doc for the library's man pages.  They are used from build/ksrc/
# and never copied into the repository.
set -euo pipefail
. "$(dirname "$0")/common.sh"

TARBALL=${KSRC_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
TOP=linux-source-6.1
FILES="tools/testing/selftests/kselftest_harness.h
tools/testing/selftests/kselftest.h
scripts/checkpatch.pl
scripts/spelling.txt
scripts/const_structs.checkpatch
scripts/kernel-doc"
out=$BUILD/ksrc

missing=0
for f in $FILES; do
	[ -s "$out/$f" ] || missing=1
done
if [ "$missing" = 0 ]; then
	say "ksrc: cached"
	exit 0
fi
[ -r "$TARBALL" ] || die "$TARBALL missing: run scripts/vm/deps.sh"

tmp=$BUILD/ksrc.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
members=
for f in $FILES; do
	members="$members $TOP/$f"
done
say "ksrc: extracting from $TARBALL"
# shellcheck disable=SC2086
tar -xJf "$TARBALL" -C "$tmp" --strip-components=1 $members
chmod +x "$tmp/scripts/checkpatch.pl" "$tmp/scripts/kernel-doc"
rm -rf "$out"
mv "$tmp" "$out"
