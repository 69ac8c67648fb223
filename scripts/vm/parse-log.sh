#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Turn the console log of a check run into results.
#
#   scripts/vm/parse-log.sh CONSOLE_LOG COUNTS_FILE
#
# Counts every TAP 13 test case of every selftest binary ("ok N" passed,
# "ok N # SKIP" skipped, "not ok N" failed) and adds one failure for each
# of: a binary that timed out, crashed or printed fewer results than its
# plan; a missing end marker (the guest died); an MB-ERROR from init; a
# kernel log showing BUG/WARNING/Oops/a call trace/KASAN/KFENCE/UBSAN/
# lockdep/a sleep in atomic context, a kmemleak report (make stress), a
# use of a workqueue the kernel deprecates, or the module failing to read
# the /proc files it follows.  Under each failing test case it prints
# that test's last diagnostic ("# ...") lines, which say why.
# Writes "PASSED FAILED SKIPPED" to COUNTS_FILE, explains each failure on
# stderr and exits 1 if anything failed.
set -euo pipefail
. "$(dirname "$0")/common.sh"

log=${1:?console log}
counts=${2:?counts file}
[ -f "$log" ] || die "$log missing"
mkdir -p "$(dirname "$counts")"

awk -v verbose="$V" -v counts="$counts" '
function fail(msg) {
	failed++
	print "FAIL: " msg > "/dev/stderr"
}
function end_test(rc) {
	if (rc != 0 && rc != 1 && rc != 4)
		fail(cur ": exited with " rc " (timeout or crash)")
	else if (plan >= 0 && nres < plan)
		fail(cur ": " nres " results for a plan of " plan)
	else if (rc == 1 && nfail == 0)
		fail(cur ": failed without a failing test case")
	else if (rc == 4 && nres == 0)
		skipped++
	cur = ""
}
# The last diagnostics of the running test, printed when a case fails
function why(i, n) {
	n = ndiag < 12 ? ndiag : 12
	for (i = ndiag - n; i < ndiag; i++)
		print "    " diag[i % 12] > "/dev/stderr"
	ndiag = 0
}
{ sub(/\r$/, "") }
# The debug kernel announces lockdep at boot: a banner, not a report.
/RCU lockdep checking is enabled/ { next }
/Kernel panic|BUG:|WARNING:|Oops|Call Trace|KASAN|KFENCE|UBSAN|lockdep|possible circular locking|sleeping function called|unreferenced object|deprecated workqueue|membroker: cannot read/ {
	kbad++
	print "KERNEL: " $0 > "/dev/stderr"
}
/MB-ERROR/ { fail("guest: " $0) }
/MB-HOST-TIMEOUT/ { fail("the VM was killed by the host timeout") }
/MB-END/ { seen_end = 1 }
/MB-TEST-BEGIN / {
	if (cur != "")
		fail(cur ": no end marker")
	cur = $NF; plan = -1; nres = 0; nfail = 0; ndiag = 0
	next
}
/MB-TEST-END / {
	rc = $NF; sub(/^rc=/, "", rc)
	end_test(rc + 0)
	next
}
cur == "" { next }
/^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; next }
/^#/ { diag[ndiag++ % 12] = $0; next }
/^ok [0-9]+ # SKIP/ {
	nres++; skipped++; ndiag = 0
	if (verbose == 1) print cur ": " $0
	next
}
/^ok [0-9]+/ {
	nres++; passed++; ndiag = 0
	if (verbose == 1) print cur ": " $0
	next
}
/^not ok [0-9]+/ {
	nres++; nfail++
	fail(cur ": " $0)
	why()
	next
}
END {
	if (cur != "")
		fail(cur ": no end marker (the guest died)")
	if (!seen_end)
		fail("no MB-END marker: the guest did not finish")
	if (kbad)
		fail("the kernel log shows " kbad " bad line(s)")
	printf "%d %d %d\n", passed, failed, skipped > counts
	exit failed ? 1 : 0
}' "$log"
