#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The system broker's figures (issue 10), in the VM with membroker.ko:
# the scenario of selftests/daemon/sysload.sh (four processes with a cheap
# and an expensive cache each, a job needing memory worth a third of the
# caches) BENCH_RUNS times each way, alternating: "local", every process
# shrinking by itself (MEMBROKER_SYSTEM_BROKER=0, today's behaviour), and
# "daemon", membrokerd deciding for the machine.  Printed side by side:
# what the caches released against what was needed (overshoot), bytes of
# expensive caches released while cheap ones still held memory, the time
# from the first LOW to leaving LOW, OOM kills.
#
# Environment: BENCH_RUNS (default 5), VM_TIMEOUT (default 900).  The
# console is kept in build/vm/sys-bench-console.log.  No threshold is
# checked; a run that did not finish fails the bench.
set -euo pipefail
. "$(dirname "$0")/../scripts/vm/common.sh"

BENCH_RUNS=${BENCH_RUNS:-5}
export VM_TIMEOUT=${VM_TIMEOUT:-900}
log=$VMDIR/sys-bench-console.log

for f in "$BUILD/daemon/membrokerd" "$BUILD/tools/mb-caches" \
	 "$BUILD/tools/mb-hog" "$BUILD/tools/membrokerctl" \
	 "$BUILD/selftests/daemon/bin/mb-sysload"; do
	[ -x "$f" ] || die "$f not built: make all"
done
[ -f "$ROOT/kmod/membroker.ko" ] ||
	die "kmod/membroker.ko not built: make module"

initrd=$VMDIR/sys-bench.cpio.gz
quiet "$ROOT/scripts/vm/kernel.sh"
TESTDIRS=$BUILD/selftests/daemon quiet "$ROOT/scripts/vm/initramfs.sh" \
	"$initrd"

echo
echo "system broker VM bench, $(date -u +%F): $BENCH_RUNS runs each way," \
	"host load average $(cut -d' ' -f1-3 /proc/loadavg) at boot"
rm -f "$log"
INITRD=$initrd CONSOLE=$log "$ROOT/scripts/vm/run.sh" bench \
	MB_BENCH=sysbroker MB_BENCH_RUNS="$BENCH_RUNS" \
	MB_TIMEOUT=$(((VM_TIMEOUT - 60) / (2 * BENCH_RUNS))) || true
[ -f "$log" ] || die "no console log: the VM did not start"

python3 - "$log" "$BENCH_RUNS" <<'PY'
import statistics, sys
runs = {"local": [], "daemon": []}
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if line.startswith("MB-SYS-RUN"):
        d = dict(w.split("=", 1) for w in line.split()[1:])
        runs.setdefault(d["mode"], []).append(d)
want = int(sys.argv[2])
MIB = 1 << 20

def col(rs, key, f=float):
    return [f(r[key]) for r in rs if r[key] not in ("never", "none")]

def cell(xs, fmt):
    if not xs:
        return "-"
    return (fmt % statistics.median(xs)) + " [" + (fmt % min(xs)) + ".." + \
        (fmt % max(xs)) + "]"

print("median [min..max] of %d runs each; needed = what the job took "
      "below where LOW ends" % want)
print("%-46s %-26s %-26s" % ("", "each process alone", "membrokerd"))
rows = [
    ("needed (MiB)", lambda rs: cell([x / MIB for x in col(rs, "needed")],
                                     "%.1f")),
    ("released by the caches (MiB)",
     lambda rs: cell([x / MIB for x in col(rs, "released")], "%.1f")),
    ("overshoot (released / needed)",
     lambda rs: cell(col(rs, "overshoot"), "%.2f")),
    ("expensive released while cheap held (MiB)",
     lambda rs: cell([x / MIB for x in col(rs, "misordered")], "%.1f")),
    ("expensive caches released, in all (MiB)",
     lambda rs: cell([x / MIB for x in col(rs, "expensive")], "%.1f")),
    ("first LOW to leaving LOW (ms)",
     lambda rs: cell(col(rs, "low_ms"), "%.0f")),
    ("times LOW was entered", lambda rs: cell(col(rs, "lows"), "%.0f")),
    ("OOM kills (all runs)", lambda rs: "%d" % sum(col(rs, "oom", int))),
    ("LOW never left (runs)",
     lambda rs: "%d" % sum(r["low_ms"] == "never" for r in rs)),
]
for name, fn in rows:
    print("%-46s %-26s %-26s" % (name, fn(runs["local"]),
                                 fn(runs["daemon"])))
print()
for mode in ("local", "daemon"):
    for r in runs[mode]:
        print("  %-6s run %s: needed %.1f MiB, released %.1f MiB (x%s), "
              "expensive %.1f MiB, out of order %.1f MiB, LOW %s ms, "
              "oom %s" % (mode, r["run"], int(r["needed"]) / MIB,
                          int(r["released"]) / MIB, r["overshoot"],
                          int(r["expensive"]) / MIB,
                          int(r["misordered"]) / MIB, r["low_ms"], r["oom"]))
bad = len(runs["local"]) < want or len(runs["daemon"]) < want
if bad:
    print("bench: %d local and %d daemon runs of %d finished; see the "
          "console log" % (len(runs["local"]), len(runs["daemon"]), want))
sys.exit(1 if bad else 0)
PY
