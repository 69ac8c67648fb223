#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The performance benches of issue 12, all of them (make perf), or their
# smoke run (SMOKE=1, a phase of make check).
#
# Full: host clerk_charge and broker_scale (build/bench/host.json), then
# in the VM tails in a 1-vCPU 512 MiB guest and a 2-vCPU 2 GiB guest,
# outcome (mb_cache, then SQLite) and cost in the default guest (512 MiB,
# 2 vCPUs), each with bench/perf_vm.sh; the tables of every JSON file go to
# build/bench/summary.md.  About an hour under TCG.
#
# SMOKE=1: the host benches with tiny counts and one boot running tails,
# outcome and cost with tiny counts (build/bench/smoke/); asserts only
# that each produced well-formed figures and exited 0, never a time.
# Writes $RESULTS/bench.counts when RESULTS is set (scripts/check.sh).
set -uo pipefail
. "$(dirname "$0")/../scripts/vm/common.sh"

SMOKE=${SMOKE:-0}
export SMOKE
out=$BUILD/bench
[ "$SMOKE" = 1 ] && out=$BUILD/bench/smoke
mkdir -p "$out"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }

quiet make -C "$ROOT/bench" all || { bad "bench build"; echo "0 1 0" >"${RESULTS:-/tmp}/bench.counts"; exit 1; }

# host benches: raw rows, then a meta line
host=$out/host.json
rm -f "$host"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
n_cc=500000 n_bs=1
[ "$SMOKE" = 1 ] && n_cc=2000 n_bs=200
if BENCH_JSON=$host "$BUILD/bench/clerk_charge" -n "$n_cc" &&
   BENCH_JSON=$host "$BUILD/bench/broker_scale" -n "$n_bs"; then
	printf '{"kind": "meta", "command": "BENCH_JSON=%s clerk_charge -n %s; broker_scale -n %s", "date": "%s", "machine": "host %s CPUs %s", "load_start": "%s", "load_end": "%s"}\n' \
		"$host" "$n_cc" "$n_bs" "$(date -u '+%F %H:%M UTC')" "$(nproc)" \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
		"$load0" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$host"
	ok "host benches"
else
	bad "host benches"
fi

if [ "$SMOKE" = 1 ]; then
	VM_TIMEOUT=400 "$ROOT/bench/perf_vm.sh" smoke &&
		ok "tails, outcome and cost in the VM" ||
		bad "tails, outcome and cost in the VM"
else
	VM_MEM=512 VM_SMP=1 "$ROOT/bench/perf_vm.sh" tails --rates 0:64:16 &&
		ok tails-512m-1cpu || bad tails-512m-1cpu
	VM_MEM=2048 VM_SMP=2 "$ROOT/bench/perf_vm.sh" tails --rates 0:64:16 &&
		ok tails-2048m-2cpu || bad tails-2048m-2cpu
	"$ROOT/bench/perf_vm.sh" outcome --runs 10 && ok outcome || bad outcome
	"$ROOT/bench/perf_vm.sh" outcome --app sqlite --runs 10 &&
		ok outcome-sqlite || bad outcome-sqlite
	"$ROOT/bench/perf_vm.sh" cost && ok cost || bad cost
fi

for f in "$out"/*.json; do
	[ -f "$f" ] || continue
	if "$ROOT/bench/perf_report.py" --check "$f"; then
		ok "$(basename "$f") well-formed"
	else
		bad "$(basename "$f") malformed"
	fi
done
[ "$SMOKE" = 1 ] || "$ROOT/bench/perf_report.py" "$out"/*.json \
	>"$out/summary.md" && echo "tables: $out/summary.md"
[ -n "${RESULTS:-}" ] && echo "$pass $fail 0" >"$RESULTS/bench.counts"
echo "bench: $pass passed, $fail failed"
[ "$fail" = 0 ]
