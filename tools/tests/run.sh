#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Host tests of membrokerctl, TAP output.  The host cannot load modules,
# so these cover what works without one: usage errors and their exit
# status, the meminfo/fake/automatic sources, JSON validity, watch ending
# on --count/--timeout/SIGTERM, top in batch mode, and config/history
# explaining that they need the module.  The module paths are exercised in
# the VM by selftests/tools.
#
# Environment: MEMBROKERCTL (the binary), RESULTS (directory for the
# counts file), COUNTS (its name, default tools.counts; it holds
# "PASSED FAILED SKIPPED").

set -u

CTL=${MEMBROKERCTL:?set MEMBROKERCTL to the membrokerctl binary}
RESULTS=${RESULTS:-$(dirname "$0")/../../build/results}
COUNTS=${COUNTS:-tools.counts}
# A guard against a hang only: every command below ends on its own.
GUARD=${GUARD:-60}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset MEMBROKER_SOURCE

n=0 passed=0 failed=0 skipped=0

ok() {
	n=$((n + 1)) passed=$((passed + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1)) failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for line in "$@"; do
		echo "#   $line"
	done
	for f in out err; do
		[ -s "$tmp/$f" ] && sed "s/^/#   $f: /" "$tmp/$f" | head -20
	done
	return 0
}

skip() {
	n=$((n + 1)) skipped=$((skipped + 1))
	echo "ok $n - $1 # SKIP $2"
}

# run ARGS...: the tool's stdout, stderr and status in $tmp/out, $tmp/err, $rc
run() {
	timeout "$GUARD" "$CTL" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
}

# expect_rc DESC STATUS ARGS...
expect_rc() {
	local desc=$1 want=$2

	shift 2
	run "$@"
	if [ "$rc" -eq "$want" ]; then
		ok "$desc"
	else
		not_ok "$desc" "exit status $rc, expected $want"
	fi
}

# usage DESC ARGS...: exit 2 and a message naming the program on stderr
usage() {
	local desc=$1

	shift
	run "$@"
	if [ "$rc" -eq 2 ] && grep -q '^membrokerctl: ' "$tmp/err" &&
	   [ ! -s "$tmp/out" ]; then
		ok "usage error: $desc"
	else
		not_ok "usage error: $desc" "exit status $rc, expected 2 and a message"
	fi
}

json_ok() {
	python3 -m json.tool "$1" >/dev/null 2>&1
}

# json_get FILE EXPR: evaluate a python expression over the object "j"
json_get() {
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

memtotal=$(awk '/^MemTotal:/ { printf "%.0f\n", $2 * 1024 }' /proc/meminfo)

echo "TAP version 13"

# --- usage errors: status 2, a message, nothing on stdout -------------------
usage "no command"
usage "unknown command" frobnicate
usage "unknown global option" -x status
usage "unknown command option" status --bogus
usage "stray argument" status extra
usage "unknown source" -s nosuch status
usage "unknown source after the command" status -s nosuch
usage "watch --count not a number" watch --count abc
usage "watch --count 0" watch --count 0
usage "watch --timeout negative" watch --timeout -1
usage "watch --timeout missing" watch --timeout
usage "history -n 0" history -n 0
usage "top --interval too small" top --interval 1
usage "top with -j" -j top
usage "config set without pairs" config set
usage "config set unknown key" config set colour 5
usage "config set missing value" config set low
usage "config set bad size" config set low 12Q
usage "config set hexadecimal size" config set low 0x10M
usage "config set size with an exponent" config set low 1e3K
usage "config set size overflow" config set high 99999999999T
usage "config set key twice" config set low 1M low 2M
usage "config set ms not a number" config set poll-min 1.5
usage "config unknown subcommand" config frob
usage "help for an unknown command" help frobnicate

MEMBROKER_SOURCE=nosuch run status
if [ "$rc" -eq 2 ] && grep -q 'MEMBROKER_SOURCE' "$tmp/err"; then
	ok "usage error: unknown source in \$MEMBROKER_SOURCE"
else
	not_ok "usage error: unknown source in \$MEMBROKER_SOURCE" "exit status $rc"
fi

# --- help: status 0, text on stdout -----------------------------------------
for args in "-h" "--help" "help" "status -h" "st -h" "watch -h" "w -h" \
	    "config -h" "c -h" "history -h" "hi -h" "top -h" "t -h" \
	    "help watch" "help -h" "config show -h" "config set -h" \
	    "config set low 1M --help"; do
	# shellcheck disable=SC2086 # split on purpose
	run $args
	if [ "$rc" -eq 0 ] && grep -q '^Usage: membrokerctl' "$tmp/out"; then
		ok "help: membrokerctl $args"
	else
		not_ok "help: membrokerctl $args" "exit status $rc"
	fi
done

# --- status from the meminfo source ------------------------------------------
run -s meminfo status
if [ "$rc" -eq 0 ] && grep -qx 'source: meminfo' "$tmp/out" &&
   grep -q '^state: \(low\|steady\|high\)$' "$tmp/out"; then
	ok "status -s meminfo names its source and a state"
else
	not_ok "status -s meminfo names its source and a state" "exit status $rc"
fi

total=$(sed -n 's/^total: .*(\([0-9]*\) bytes)$/\1/p' "$tmp/out")
if [ "$total" = "$memtotal" ]; then
	ok "status -s meminfo: total is MemTotal ($memtotal bytes)"
else
	not_ok "status -s meminfo: total is MemTotal" "total '$total', MemTotal $memtotal"
fi

run -j -s meminfo status
cp "$tmp/out" "$tmp/status.json"
if [ "$rc" -eq 0 ] && json_ok "$tmp/status.json"; then
	ok "status -j is valid JSON"
else
	not_ok "status -j is valid JSON" "exit status $rc"
fi

if [ "$rc" -eq 0 ] &&
   [ "$(json_get "$tmp/status.json" 'j["total_bytes"]')" = "$memtotal" ] &&
   [ "$(json_get "$tmp/status.json" '0 < j["available_bytes"] <= j["total_bytes"]')" = True ] &&
   [ "$(json_get "$tmp/status.json" '0 < j["low_bytes"] < j["high_bytes"] <= j["total_bytes"]')" = True ] &&
   [ "$(json_get "$tmp/status.json" 'j["state"] in ("low", "steady", "high")')" = True ] &&
   [ "$(json_get "$tmp/status.json" 'j["source_in_use"]')" = meminfo ]; then
	ok "status -j figures are plausible (total = MemTotal, 0 < low < high)"
else
	not_ok "status -j figures are plausible"
fi

# The state must agree with the figures printed next to it.
if [ "$rc" -eq 0 ] &&
   [ "$(json_get "$tmp/status.json" '{"low": j["available_bytes"] <= j["high_bytes"], "high": j["available_bytes"] >= j["low_bytes"], "steady": True}[j["state"]]')" = True ]; then
	ok "status -j state is consistent with available and the thresholds"
else
	not_ok "status -j state is consistent with available and the thresholds"
fi

run status -j -s meminfo
if [ "$rc" -eq 0 ] && json_ok "$tmp/out"; then
	ok "-j and -s are accepted after the command"
else
	not_ok "-j and -s are accepted after the command" "exit status $rc"
fi

MEMBROKER_SOURCE=meminfo run st
if [ "$rc" -eq 0 ] && grep -qx 'source: meminfo' "$tmp/out"; then
	ok "\$MEMBROKER_SOURCE picks the source; 'st' is status"
else
	not_ok "\$MEMBROKER_SOURCE picks the source; 'st' is status" "exit status $rc"
fi

MEMBROKER_SOURCE=fake run -s meminfo status
if [ "$rc" -eq 0 ] && grep -qx 'source: meminfo' "$tmp/out"; then
	ok "-s wins over \$MEMBROKER_SOURCE"
else
	not_ok "-s wins over \$MEMBROKER_SOURCE" "exit status $rc"
fi

# --- the fake source ----------------------------------------------------------
# Nothing is pushed into it from here: it must say so, not print zeros.
run -s fake status
if [ "$rc" -eq 0 ] && grep -qx 'source: fake' "$tmp/out" &&
   grep -qx 'state: unknown' "$tmp/out" &&
   grep -q '^reading: none yet' "$tmp/out" &&
   ! grep -q '^available:' "$tmp/out"; then
	ok "status -s fake works without a module"
else
	not_ok "status -s fake works without a module" "exit status $rc"
fi

run -j -s fake status
if [ "$rc" -eq 0 ] && json_ok "$tmp/out" &&
   [ "$(json_get "$tmp/out" 'j["reading"] is None and j["source_in_use"]')" = fake ]; then
	ok "status -j -s fake is valid JSON"
else
	not_ok "status -j -s fake is valid JSON" "exit status $rc"
fi

# --- automatic selection without the module -----------------------------------
if [ -e /sys/kernel/membroker ]; then
	skip "status falls back when the module is absent" "the module is loaded here"
else
	run status
	if [ "$rc" -eq 0 ] &&
	   grep -q '^source: [a-z]* (membroker module not loaded)$' "$tmp/out"; then
		ok "status falls back and says so: $(grep '^source:' "$tmp/out")"
	else
		not_ok "status falls back when the module is absent" "exit status $rc"
	fi
	run -j status
	if [ "$rc" -eq 0 ] && json_ok "$tmp/out" &&
	   [ "$(json_get "$tmp/out" 'j["module_loaded"]')" = False ]; then
		ok "status -j reports module_loaded false"
	else
		not_ok "status -j reports module_loaded false" "exit status $rc"
	fi
fi

# --- watch --------------------------------------------------------------------
run watch --count 1 -s meminfo --timeout 1
if [ "$rc" -eq 0 ]; then
	ok "watch --count 1 -s meminfo --timeout 1 terminates with status 0"
else
	not_ok "watch --count 1 -s meminfo --timeout 1 terminates" "exit status $rc (124: hung)"
fi
if grep -qx 'source: meminfo' "$tmp/err"; then
	ok "watch reports its source on stderr"
else
	not_ok "watch reports its source on stderr"
fi

# The fake source reports nothing unless a program pushes a reading.
run -s fake watch --count 1 --timeout 0.2
if [ "$rc" -eq 3 ] && [ ! -s "$tmp/out" ] && grep -qx 'source: fake' "$tmp/err"; then
	ok "watch --count 1 --timeout: nothing arrived, exit status 3"
else
	not_ok "watch --count 1 --timeout: nothing arrived, exit status 3" "exit status $rc"
fi

run -s fake watch --timeout 0.2
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/out" ]; then
	ok "watch --timeout alone: nothing arrived, exit status 0"
else
	not_ok "watch --timeout alone: nothing arrived, exit status 0" "exit status $rc"
fi

run -j w -s meminfo --timeout 0.2
bad=0
while IFS= read -r line; do
	printf '%s\n' "$line" >"$tmp/line"
	json_ok "$tmp/line" || bad=$((bad + 1))
done <"$tmp/out"
if [ "$rc" -eq 0 ] && [ "$bad" -eq 0 ]; then
	ok "watch -j: every line is a JSON object ($(wc -l <"$tmp/out") lines)"
else
	not_ok "watch -j: every line is a JSON object" "exit status $rc, $bad bad lines"
fi

# A timeout too short to count in nanoseconds is still a timeout, not none.
run -s fake watch --timeout 0.0000000001
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/out" ]; then
	ok "watch --timeout below a nanosecond still ends the watch"
else
	not_ok "watch --timeout below a nanosecond still ends the watch" "exit status $rc (124: hung)"
fi

# "watch | head -1": the reader goes away after the first line, and the
# watch must notice at once (not at the next notification), quietly, 0.
pipe_reader_gone() {
	local desc=$1 st

	shift
	timeout "$GUARD" "$CTL" "$@" 2>"$tmp/err" </dev/null |
		head -1 >"$tmp/out"
	st=${PIPESTATUS[0]}
	if [ "$st" -eq 0 ] && [ "$(wc -l <"$tmp/out")" -eq 1 ] &&
	   ! grep -v '^source: ' "$tmp/err" | grep -q .; then
		ok "$desc ends with status 0 once the reader is gone"
	else
		not_ok "$desc ends with status 0 once the reader is gone" "exit status $st (124: hung)"
	fi
}
pipe_reader_gone "watch | head -1" -s meminfo watch
pipe_reader_gone "watch -j | head -1" -j -s meminfo watch
pipe_reader_gone "top --interval 3600000 | head -1" -s meminfo top --interval 3600000

# SIGTERM once watch says it is ready (its "source:" line on stderr)
watch_signal() {
	local sig=$1 fifo=$tmp/fifo pid line status

	rm -f "$fifo"
	mkfifo "$fifo"
	"$CTL" -s meminfo watch >"$tmp/out" 2>"$fifo" </dev/null &
	pid=$!
	exec 3<"$fifo"
	line=
	read -r -t "$GUARD" line <&3
	kill -s "$sig" "$pid"
	wait "$pid"
	status=$?
	exec 3<&-
	if [ "$line" = "source: meminfo" ] && [ "$status" -eq 0 ]; then
		ok "watch exits with status 0 on $sig"
	else
		not_ok "watch exits with status 0 on $sig" "ready line '$line', exit status $status"
	fi
}
watch_signal TERM
watch_signal INT

# --- top in batch mode (stdout is not a terminal) -----------------------------
run -s meminfo top --iterations 2 --interval 10
if [ "$rc" -eq 0 ] && [ "$(grep -c '^membrokerctl top - source: meminfo' "$tmp/out")" -eq 2 ] &&
   grep -q '^available: ' "$tmp/out" && grep -q '^\[.*|.*\]$' "$tmp/out" &&
   ! grep -q $'\033' "$tmp/out"; then
	ok "top --iterations 2 prints two plain frames with a bar"
else
	not_ok "top --iterations 2 prints two plain frames with a bar" "exit status $rc"
fi

# --- commands that need the module --------------------------------------------
if [ -e /sys/kernel/membroker ]; then
	skip "config/history without the module" "the module is loaded here"
else
	for args in "config" "c show" "config set low 64M" "history" "hi -n 3"; do
		# shellcheck disable=SC2086 # split on purpose
		run $args
		if [ "$rc" -eq 1 ] && grep -q 'needs the membroker module' "$tmp/err"; then
			ok "without the module, '$args' exits 1 and says why"
		else
			not_ok "without the module, '$args' exits 1 and says why" "exit status $rc"
		fi
	done
fi

run -s meminfo config
if [ "$rc" -eq 1 ] && grep -q 'config needs the membroker module; the meminfo source' "$tmp/err"; then
	ok "config -s meminfo exits 1 and says why"
else
	not_ok "config -s meminfo exits 1 and says why" "exit status $rc"
fi

run -s kmod status
if [ -e /sys/kernel/membroker ]; then
	skip "-s kmod without the module" "the module is loaded here"
elif [ "$rc" -eq 1 ] && grep -q 'module is not loaded' "$tmp/err"; then
	ok "-s kmod without the module exits 1 and says so"
else
	not_ok "-s kmod without the module exits 1 and says so" "exit status $rc"
fi

# mb-hog, the tests' and the demo's memory eater, where it was built
HOG=${MB_HOG:-$(dirname "$CTL")/mb-hog}
if [ -x "$HOG" ]; then
	timeout "$GUARD" "$HOG" --bytes 8M --floor 1 -v >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q 'allocated 8388608 bytes' "$tmp/err"; then
		ok "mb-hog --floor below what is available allocates it all"
	else
		not_ok "mb-hog --floor below what is available allocates it all" \
			"exit status $rc"
	fi
	# a floor no machine reaches: it waits, and SIGUSR1 ends the wait
	# (not under timeout(1), which would get the signal; bounded below)
	"$HOG" --bytes 8M --floor 1048576G --hold -v \
		</dev/null >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	for _ in $(seq 1 $((GUARD * 10))); do
		grep -q 'waiting for room' "$tmp/err" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -USR1 "$pid" 2>/dev/null
	for _ in $(seq 1 $((GUARD * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q 'waiting for room' "$tmp/err" &&
	   grep -q 'allocated 0 bytes' "$tmp/err"; then
		ok "mb-hog --floor waits for room; SIGUSR1 ends the wait"
	else
		not_ok "mb-hog --floor waits for room; SIGUSR1 ends the wait" \
			"exit status $rc"
	fi
	timeout "$GUARD" "$HOG" --bytes 8M --floor 12Q >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq 2 ]; then
		ok "mb-hog --floor with a bad size is a usage error"
	else
		not_ok "mb-hog --floor with a bad size is a usage error" \
			"exit status $rc"
	fi
	# 2^34 G is 2^64 bytes: it wrapped to 0 and allocated nothing
	for size in 17179869184G " -1" "+5M"; do
		timeout "$GUARD" "$HOG" --bytes "$size" >"$tmp/out" 2>"$tmp/err"
		rc=$?
		if [ "$rc" -eq 2 ]; then
			ok "mb-hog --bytes '$size' is a usage error"
		else
			not_ok "mb-hog --bytes '$size' is a usage error" \
				"exit status $rc"
		fi
	done
else
	skip "mb-hog --floor" "$HOG not built"
fi

echo "1..$n"
mkdir -p "$RESULTS"
echo "$passed $failed $skipped" >"$RESULTS/$COUNTS"
echo "# passed $passed, failed $failed, skipped $skipped"
[ "$failed" -eq 0 ]
