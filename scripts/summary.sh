#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Sum every build/results/*.counts ("PASSED FAILED SKIPPED", one line, one
# file per test phase) and print the line CI looks for, last:
#   N passed, N failed
# preceded by "N skipped" when tests were skipped (CI wants the last line
# plain).
# Exits 1 if anything failed or no phase reported at all.
#
#   scripts/summary.sh [PREFIX]   only the phases whose name starts with
#                                 PREFIX (make check-packages: pkg-)
set -euo pipefail

results=${RESULTS:-$(cd "$(dirname "$0")/.." && pwd)/build/results}
passed=0 failed=0 skipped=0 phases=0

for f in "$results/${1:-}"*.counts; do
	[ -f "$f" ] || continue
	read -r p fl s _ <"$f" || true
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${fl:-0}))
	skipped=$((skipped + ${s:-0}))
	phases=$((phases + 1))
done

[ "$skipped" = 0 ] || echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$phases" -gt 0 ] || { echo "summary: no results in $results" >&2; exit 1; }
[ "$failed" = 0 ]
