#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: boot the VM in demo mode (scripts/vm/guest-demo.sh), show the
# story as it happens, then print the timeline and write the plot
# (scripts/vm/demo-report.py).  Expects everything built (the top
# Makefile's demo target does that first).
#
# Environment: VM_TIMEOUT (default 300 s), V=1 shows the whole console
# instead of the narration.  Output: build/demo/membroker-demo.png and
# .svg, the console in build/vm/console.log.
set -uo pipefail
. "$(dirname "$0")/common.sh"

out=$BUILD/demo
log=$VMDIR/console.log
export VM_TIMEOUT=${VM_TIMEOUT:-300}

"$ROOT/scripts/vm/kernel.sh" || exit 1
"$ROOT/scripts/vm/initramfs.sh" || exit 1

# The narration: what the guest script and the programs say, without the
# machine lines (mb-service's MB-SVC, SQLite's per-second status) and the
# kernel log.  Notifications printed by "membrokerctl watch" lose their
# wall-clock time: every time shown is the guest's monotonic clock.
narrate() {
	awk '
	/MB-DEMO-BEGIN/ { on = 1; next }
	/^MB-DEMO-END/ { on = 0; next }
	!on || /^MB-SVC|^MB-DEMO-EXIT/ { next }
	/^MB-DEMO-ACT/ { hist = ($3 == "history"); next }
	/^sqlite: / {
		if ($0 ~ /shrink:|target lifted|summary:|sqlite-cache:/)
			print
		fflush()
		next
	}
	/^\[[0-9.]+\] [^ ]+ seq=/ {
		t = substr($1, 2, length($1) - 2)
		delete f
		for (i = 3; i <= NF; i++) {
			split($i, kv, "=")
			f[kv[1]] = kv[2]
		}
		printf "   %s %8.3f  #%-3s %-6s available %7s of %7s " \
			"(low %s, high %s) %s%s\n",
			hist ? "history" : "notify ", t, f["seq"],
			toupper(f["state"]), f["available"], f["total"],
			f["low"], f["high"], f["reason"],
			f["flags"] == "none" ? "" : ", " f["flags"]
		fflush()
		next
	}
	{ print; fflush() }'
}

rc=0
rm -f "$log"
if [ "$V" = 1 ]; then
	"$ROOT/scripts/vm/run.sh" demo || rc=$?
else
	"$ROOT/scripts/vm/run.sh" demo &
	vm=$!
	# --pid: stop following once the VM has powered off
	tail -n +1 -F --pid="$vm" "$log" 2>/dev/null | narrate
	wait "$vm" || rc=$?
fi
[ -s "$log" ] || die "the VM left no console log"

echo
"$ROOT/scripts/vm/demo-report.py" "$log" --timeline --plot "$out" || rc=1
echo "The whole console: $log"
exit "$rc"
