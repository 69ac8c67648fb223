#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The VM half of `make bench`: pack build/bench/notify_latency into the
# guest, boot it with MB_MODE=bench (guest-init.sh loads membroker.ko and
# runs the bench) and print the tables it framed with MB-BENCH-BEGIN/END.
# Fails when the module did not load or a bench did not exit 0.
#
# Environment: BENCH_RUNS (hog runs stopping at low/4, default 3),
# BENCH_OOM_RUNS (runs into the OOM killer, default 3; 0 skips either),
# BENCH_TIMEOUT (seconds per notify_latency in the guest, default 150),
# VM_TIMEOUT (the whole boot, default 330).  The console is kept in
# build/vm/bench-console.log.
set -euo pipefail
. "$(dirname "$0")/../scripts/vm/common.sh"

BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_OOM_RUNS=${BENCH_OOM_RUNS:-3}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-150}
export VM_TIMEOUT=${VM_TIMEOUT:-330}
log=$VMDIR/bench-console.log

[ -x "$BUILD/bench/notify_latency" ] ||
	die "build/bench/notify_latency not built: make -C bench notify_latency"
[ -f "$ROOT/kmod/membroker.ko" ] ||
	die "kmod/membroker.ko not built: make module"

quiet "$ROOT/scripts/vm/kernel.sh"
quiet "$ROOT/scripts/vm/initramfs.sh"

load() {
	cut -d' ' -f1-3 /proc/loadavg
}

echo
echo "membroker VM bench, $(date -u +%F): notify_latency in a TCG guest," \
	"host load average $(load) at boot"
start=$(date +%s)
# The log, not run.sh's exit status, says how the run went: run.sh can
# fail after a good run when its director has already exited, and a
# timeout or a dead guest leaves no MB-END.
rm -f "$log"
CONSOLE=$log "$ROOT/scripts/vm/run.sh" bench MB_TIMEOUT="$BENCH_TIMEOUT" \
	MB_BENCH_RUNS="$BENCH_RUNS" MB_BENCH_OOM_RUNS="$BENCH_OOM_RUNS" || true
[ -f "$log" ] || die "no console log: the VM did not start"

# Print every framed bench; a bench that did not end, or ended with an
# exit status other than 0, or a guest that did not reach its end, fails
# the run.  The first marker can follow the firmware's escape sequences on
# the same line.
rc=0
awk '
/MB-END$/ { guest_end = 1 }
/MB-HOST-TIMEOUT/ { print "bench: the VM timed out (VM_TIMEOUT)"; bad = 1 }
/MB-ERROR/ { sub(/.*MB-ERROR/, "MB-ERROR"); print; bad = 1 }
/MB-BENCH-BEGIN / { sub(/.*MB-BENCH-BEGIN /, ""); print "\n== " $0
	inside = 1; begun++; next }
/MB-BENCH-END / { inside = 0; ended++
	if ($NF != "rc=0") { print "bench: " $0; bad = 1 }
	next }
inside { print }
END {
	if (begun == 0 || ended != begun) {
		print "bench: no complete bench output in the console log"
		bad = 1
	}
	if (!guest_end) {
		print "bench: the guest did not reach its end"
		bad = 1
	}
	exit bad
}' "$log" || rc=1

echo
echo "VM bench took $(($(date +%s) - start)) s; host load average $(load) at" \
	"the end"
[ "$rc" = 0 ] || die "the VM bench failed, see $log"
