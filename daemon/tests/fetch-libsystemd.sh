#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Unpack libsystemd 254 from bookworm-backports under DIR/root, for the
# sd-event test client only (sd_event_add_memory_pressure() is new in
# 254; Debian 12 has 252).  The packages are downloaded, not installed:
# the machine's libsystemd0, which systemd itself uses, is left alone.
# Needs the bookworm-backports suite in apt's sources (scripts/vm/deps.sh
# adds it).  Does nothing when DIR/root already holds the library.
#
#   daemon/tests/fetch-libsystemd.sh DIR
set -euo pipefail

dir=${1:?usage: fetch-libsystemd.sh DIR}
lib=$dir/root/usr/lib/x86_64-linux-gnu/libsystemd.so
[ -e "$lib" ] && exit 0

mkdir -p "$dir/debs"
# apt-get download runs as _apt where it can: give it a directory it may
# write to.
chmod 777 "$dir/debs"
(cd "$dir/debs" && apt-get download -q \
	libsystemd0/bookworm-backports libsystemd-dev/bookworm-backports) ||
	{ echo "fetch-libsystemd.sh: cannot download libsystemd from" \
		"bookworm-backports (is the suite in apt's sources?)" >&2
	  exit 1; }
rm -rf "$dir/root.tmp"
for deb in "$dir"/debs/libsystemd*.deb; do
	dpkg-deb -x "$deb" "$dir/root.tmp"
done
rm -rf "$dir/root"
mv "$dir/root.tmp" "$dir/root"
[ -e "$lib" ] || { echo "fetch-libsystemd.sh: no $lib in the packages" >&2; exit 1; }
