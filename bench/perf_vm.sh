#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The VM half of the performance benches (issue 12): one boot per part and
# guest size, the guest program's MB-JSON lines kept as raw figures in
# build/bench/<part>-<mem>m-<smp>cpu.json (with a "meta" line: command,
# date, machine, host load at boot and at the end), then the tables of
# bench/perf_report.py.
#
#   bench/perf_vm.sh tails [ARGS]     bench/tails.c, ARGS passed on
#   bench/perf_vm.sh outcome [ARGS]   bench/outcome.c; with --app sqlite
#                                     its SQLite database as a read-only
#                                     disk, the figures in outcome-sqlite-*
#   bench/perf_vm.sh cost [ARGS]      bench/cost.c, with a disk larger
#                                     than RAM to stream (/dev/vda)
#   bench/perf_vm.sh smoke            the three with tiny counts, one boot
#
# Environment: VM_MEM and VM_SMP size the guest (scripts/vm/run.sh),
# VM_TIMEOUT bounds the boot (default 3600 s), SMOKE=1 writes to
# build/bench/smoke/ instead.  A guest program that exits non-zero, a
# timeout, or no figures fail the run; no figure is judged.
set -euo pipefail
. "$(dirname "$0")/../scripts/vm/common.sh"

part=${1:?usage: perf_vm.sh tails|outcome|cost [ARGS]}
shift
case $part in
tails | outcome | cost | smoke) ;;
*) die "unknown part $part" ;;
esac
export VM_TIMEOUT=${VM_TIMEOUT:-3600}
VM_MEM=${VM_MEM:-512}
VM_SMP=${VM_SMP:-2}
export VM_MEM VM_SMP
out=$BUILD/bench
[ "${SMOKE:-0}" = 1 ] && out=$BUILD/bench/smoke
mkdir -p "$out"
app= sqlite=0
case " $* " in *" --app sqlite "*) app=-sqlite sqlite=1 ;; esac
# an application the OOM killer may choose is another experiment
adj=$(echo " $* " | sed -n 's/.* --app-oom-score-adj \([-0-9]*\) .*/\1/p')
[ -n "$adj" ] && app=$app-oomadj$adj
name=$part$app-${VM_MEM}m-${VM_SMP}cpu
log=$VMDIR/perf-$name.console.log
json=$out/$name.json

for p in tails outcome cost; do
	[ -x "$BUILD/bench/$p" ] || die "build/bench/$p not built: make -C bench guest"
done
[ -f "$ROOT/kmod/membroker.ko" ] || die "kmod/membroker.ko not built: make module"

initrd=$VMDIR/perf.cpio.gz
quiet "$ROOT/scripts/vm/kernel.sh"
TESTDIRS=/nonexistent quiet "$ROOT/scripts/vm/initramfs.sh" "$initrd"

load() { cut -d' ' -f1-3 /proc/loadavg; }
load0=$(load)
date0=$(date -u '+%F %H:%M UTC')
start=$(date +%s)
# The kernel command line splits words at spaces: the guest turns commas
# of MB_PERF_ARGS back into spaces, so ARGS must not hold commas of their
# own except inside one value (tails --rates 0,64,16 is given as 0:64:16).
args=$(echo "$*" | tr ' ' ',')

# outcome's SQLite application reads its database from a read-only disk
# (it finds the one holding an SQLite header), made here once per guest
# size: 5/8 of its RAM, more than the half its page cache is filled to.
sqlite_db_args() {
	local mib=$((VM_MEM * 5 / 8)) db

	db=$VMDIR/outcome-sqlite-${mib}m.db
	if [ ! -f "$db" ] || [ "$db" -ot "$BUILD/bench/outcome" ]; then
		"$BUILD/bench/outcome" --make-db "$db" --db-mib "$mib" ||
			die "cannot make $db"
	fi
	echo "-drive file=$db,if=virtio,format=raw,readonly=on"
}

extra=
case $part in cost | smoke) extra=$(stream_disk_args) ;; esac
if [ "$part" = smoke ] || [ "$sqlite" = 1 ]; then
	extra="$extra $(sqlite_db_args)"
fi
rm -f "$log"
INITRD=$initrd CONSOLE=$log VM_EXTRA_ARGS=$extra "$ROOT/scripts/vm/run.sh" bench MB_BENCH=perf \
	MB_PERF="$part" MB_PERF_ARGS="$args" \
	MB_TIMEOUT=$((VM_TIMEOUT - 60)) || true
[ -f "$log" ] || die "no console log: the VM did not start"

python3 - "$log" "$json" "$part $*" "$load0" "$(load)" "$date0" \
	"$VM_MEM" "$VM_SMP" <<'PY'
import json, sys
log, out, cmd, l0, l1, date, mem, smp = sys.argv[1:]
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
import os
meta = {"kind": "meta", "command": "VM_MEM=%s VM_SMP=%s bench/perf_vm.sh %s"
        % (mem, smp, cmd), "date": date, "load_start": l0, "load_end": l1,
        "machine": "host %d CPUs %s, QEMU TCG guest %s MiB %s vCPU" %
        (os.cpu_count(), cpu, mem, smp)}
rows, rcs = [], []
for line in open(log, errors="replace"):
    if "MB-JSON " in line:
        rows.append(json.loads(line.split("MB-JSON ", 1)[1]))
    if "MB-BENCH-END" in line:
        rcs.append(line.split("rc=")[-1].strip())
rc = ",".join(rcs) if rcs else None
with open(out, "w") as f:
    for r in [meta] + rows:
        f.write(json.dumps(r) + "\n")
print("%s: %d records, guest rc=%s" % (out, len(rows), rc))
if not rcs or any(r != "0" for r in rcs) or not rows:
    sys.exit(1)
PY
echo "perf_vm: $name took $(($(date +%s) - start)) s, host load $load0 at" \
	"boot, $(load) at the end"
"$ROOT/bench/perf_report.py" "$json"
