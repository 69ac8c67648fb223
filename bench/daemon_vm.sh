#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# membrokerd's latency from the module's notification to a real GLib
# GMemoryMonitor program's low-memory-warning and to a real sd-event
# program's memory pressure handler, measured in one run, in the VM with
# membroker.ko: the guest gets a system bus (dbus-daemon, Debian's system
# configuration and membrokerd's policy), membrokerd on it, both clients
# (built by make -C daemon check; the sd-event one against libsystemd 254
# from bookworm-backports) with their libraries, and bench/daemon_guest.sh
# drives a hog into LOW and out again BENCH_RUNS times.
#
# The clock is CLOCK_MONOTONIC throughout: the module stamps its
# evaluation with it (the notification's TIMESTAMP_NS), membrokerd logs
# that stamp with each warning, the clients stamp what they receive.
#
# Environment: BENCH_RUNS (default 10), VM_TIMEOUT (default 400).  The
# console is kept in build/vm/daemon-bench-console.log.  No threshold is
# checked; a run where a client got nothing fails.
set -euo pipefail
. "$(dirname "$0")/../scripts/vm/common.sh"

BENCH_RUNS=${BENCH_RUNS:-10}
export VM_TIMEOUT=${VM_TIMEOUT:-400}
log=$VMDIR/daemon-bench-console.log
bin=$BUILD/daemon

for f in membrokerd lmm-client mp-client; do
	[ -x "$bin/$f" ] || die "$bin/$f not built: make -C daemon check"
done
[ -f "$ROOT/kmod/membroker.ko" ] ||
	die "kmod/membroker.ko not built: make module"

tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/etc" "$tree/bin"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n' \
	>"$tree/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$tree/etc/group"
cp "$ROOT/daemon/membrokerd.conf" "$tree/etc/membrokerd.conf"
# Debian's own system bus configuration, listening in /tmp, with our
# policy and nothing else included (daemon/tests/harness.py does the same)
python3 - "$tree/etc/mbd-system.conf" <<'EOF'
import re, sys
conf = open("/usr/share/dbus-1/system.conf").read()
conf = re.sub(r"<listen>.*?</listen>",
              "<listen>unix:path=/tmp/system_bus_socket</listen>", conf)
for tag in ("user", "pidfile", "servicehelper"):
    conf = re.sub(r"<%s>.*?</%s>\s*" % (tag, tag), "", conf)
conf = re.sub(r"<standard_system_servicedirs\s*/>", "", conf)
conf = re.sub(r"<syslog\s*/>", "", conf)
conf = re.sub(r"<includedir>.*?</includedir>\s*", "", conf)
conf = re.sub(r"<include[^>]*>.*?</include>\s*", "", conf)
conf = conf.replace("</busconfig>",
                    "<include>/etc/membrokerd.conf</include>\n</busconfig>")
open(sys.argv[1], "w").write(conf)
EOF
install -m 755 "$ROOT/bench/daemon_guest.sh" "$tree/bin/mbd-bench.sh"

initrd=$VMDIR/daemon-bench.cpio.gz
quiet "$ROOT/scripts/vm/kernel.sh"
EXTRA_TREE=$tree EXTRA_DYN="$(command -v dbus-daemon) $bin/lmm-client \
$bin/mp-client" quiet "$ROOT/scripts/vm/initramfs.sh" "$initrd"

echo
echo "membrokerd VM bench, $(date -u +%F): $BENCH_RUNS hog runs into LOW," \
	"host load average $(cut -d' ' -f1-3 /proc/loadavg) at boot"
rm -f "$log"
INITRD=$initrd CONSOLE=$log "$ROOT/scripts/vm/run.sh" bench MB_BENCH=daemon \
	MB_BENCH_RUNS="$BENCH_RUNS" MB_TIMEOUT=$((VM_TIMEOUT - 60)) || true
[ -f "$log" ] || die "no console log: the VM did not start"

python3 - "$log" <<'EOF'
import re, statistics, sys
sig, glib, sdev, rc, clients = [], [], [], None, ""
inside = False
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if "MB-BENCH-END membrokerd" in line:
        rc = line.split("rc=")[-1]
    if line.startswith("clients:"):
        clients = line
    if "MBD-BENCH-DATA-BEGIN" in line:
        inside = True
        continue
    if "MBD-BENCH-DATA-END" in line:
        inside = False
    if not inside:
        continue
    w = line.split()
    if "signal" in w and "MBD" in w:
        d = dict(x.split("=", 1) for x in w if "=" in x)
        sig.append((float(w[w.index("MBD") + 1]) * 1e9,
                    int(d["reading_ns"]), int(d["level"])))
    elif w and w[0] == "WARNING":
        glib.append((int(w[2]), int(w[1])))
    elif w and w[0] == "PRESSURE":
        sdev.append(int(w[1]))

def after(ts, t0):
    later = [t for t in ts if t >= t0]
    return min(later) if later else None

rows = {"membrokerd sends the signal": [], "GLib low-memory-warning": [],
        "sd-event memory pressure handler": []}
for i, (sent, reading, level) in enumerate(sig):
    nxt = sig[i + 1][0] if i + 1 < len(sig) else float("inf")
    g = after([t for t, _ in glib], sent)
    s = after(sdev, sent)
    rows["membrokerd sends the signal"].append((sent - reading) / 1e6)
    if g is not None and g < nxt:
        rows["GLib low-memory-warning"].append((g - reading) / 1e6)
    if s is not None and s < nxt:
        rows["sd-event memory pressure handler"].append((s - reading) / 1e6)
print(clients)
print("%d warnings sent (levels %s); GLib got %d, sd-event ran its handler "
      "%d times" % (len(sig), sorted(set(l for _, _, l in sig)), len(glib),
                    len(sdev)))
print("latency from the module's notification (its evaluation), ms")
print("%-36s %5s %8s %8s %8s" % ("to", "n", "min", "median", "max"))
for name, xs in rows.items():
    if xs:
        print("%-36s %5d %8.2f %8.2f %8.2f" % (name, len(xs), min(xs),
                                               statistics.median(xs),
                                               max(xs)))
bad = rc != "0" or not sig or not glib or not sdev
if bad:
    print("bench: failed (rc=%s); see the console log" % rc)
sys.exit(1 if bad else 0)
EOF
