#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel's netlink spec schemas (Documentation/netlink/*.yaml) and its
# ynl library and command-line client (tools/net/ynl), from Debian's
# linux-source-6.12 (6.1's predates most of them), into build/ksrc-6.12/.
# Used from there by scripts/netlink/ and never copied into the
# repository.  Prints the directory.
set -euo pipefail
. "$(dirname "$0")/../vm/common.sh"

TARBALL=${KSRC612_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
TOP=linux-source-6.12
out=$BUILD/ksrc-6.12

if [ -f "$out/tools/net/ynl/cli.py" ] &&
   [ -f "$out/Documentation/netlink/genetlink-legacy.yaml" ] &&
   [ "$out/.stamp" -nt "$TARBALL" ]; then
	echo "$out"
	exit 0
fi
[ -r "$TARBALL" ] || die "$TARBALL missing: run scripts/vm/deps.sh"
tmp=$out.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
say "ksrc-6.12: extracting from $TARBALL"
tar -xJf "$TARBALL" -C "$tmp" --strip-components=1 --wildcards \
	"$TOP/Documentation/netlink/*" "$TOP/tools/net/ynl/*"
touch "$tmp/.stamp"
rm -rf "$out"
mv "$tmp" "$out"
echo "$out"
