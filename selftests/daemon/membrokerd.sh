#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# membrokerd with the real module, in the test VM (no D-Bus there, so
# --no-bus): it follows a hog's LOW and the recovery, its metrics file
# shows the transitions, a memory pressure socket client (mbd-listen) gets
# the warnings and nothing once memory is back, and the daemon survives
# the module being unloaded and loaded again.  TAP output; every wait is
# bounded, and no check depends on how long anything took.

MIB=1048576
T=/tmp/mbd-test
SYS=/sys/kernel/membroker
MODULE=${MB_MODULE:-/lib/modules/membroker.ko}
n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for f in "$@"; do
		[ -f "$f" ] && sed 's/^/#   /' "$f" | tail -n 20
	done
}

# check DESC COMMAND...: ok when COMMAND succeeds
check() {
	desc=$1
	shift
	if "$@"; then
		ok "$desc"
	else
		not_ok "$desc" "$T/daemon.log" "$T/metrics/membroker.prom"
	fi
}

# wait_for SECONDS COMMAND...: poll 10 times a second (a guard, not a
# measurement)
wait_for() {
	w=$(($1 * 10))
	shift
	while [ "$w" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		w=$((w - 1))
	done
	return 1
}

# metric NAME{LABELS}: its value in the metrics file
metric() {
	awk -v k="$1" '$1 == k { print $2 }' "$T/metrics/membroker.prom" \
		2>/dev/null
}

is() {
	[ "$(metric "$1")" = "$2" ]
}

at_least() {
	v=$(metric "$1")
	[ -n "$v" ] && [ "$v" -ge "$2" ]
}

warnings() {
	grep -c '^MBD-PRESSURE' "$T/listen.out"
}

# more_warnings N: the client has seen more than N warnings
more_warnings() {
	[ "$(warnings)" -gt "$1" ]
}

meminfo() {
	awk -v k="$1:" '$1 == k { printf "%d\n", $2 * 1024 }' /proc/meminfo
}

# hog_low: hold enough memory to end 8 MiB below the low threshold,
# gently (TCG is slow, and a hog that makes the guest thrash makes every
# step crawl), never allocating below half of it: no OOM kill here
hog_low() {
	low=$(cat $SYS/low_bytes)
	avail=$(meminfo MemAvailable)
	echo "# $(cut -d' ' -f1 /proc/uptime)s: available $((avail / MIB))" \
		"MiB, low $((low / MIB)) MiB: hogging $(((avail - low) / MIB + 8))" \
		"MiB"
	mb-hog --bytes $((avail - low + 8 * MIB)) --rate 32 \
		--floor $((low / 2)) --hold <&- >/dev/null &
	hog=$!
}

hog_free() {
	kill -USR1 "$hog"
	wait "$hog"
}

# killed by the runner's timeout: say where we were
trap 'echo "# killed after test $n"; sed "s/^/#   /" "$T/daemon.log" "$T/listen.out" | tail -n 40; exit 1' TERM

echo "TAP version 13"
echo "1..14"
rm -rf "$T"
mkdir -p "$T/metrics"

membrokerd --no-bus --pressure-socket=$T/pressure.sock \
	--control-socket=$T/control.sock --metrics-dir=$T/metrics \
	--repeat=1 -v 2>"$T/daemon.log" &
daemon=$!
check "membrokerd starts without a bus" \
	wait_for 30 grep -q "ready: source kmod" "$T/daemon.log"
check "its metrics name the module as the source" \
	wait_for 30 is 'membroker_source{source="kmod"}' 1

mbd-listen -w "some 200000 2000000" $T/pressure.sock >"$T/listen.out" &
listener=$!
check "a memory pressure client connects" \
	wait_for 30 is membrokerd_pressure_clients 1
check "no warning while memory is plentiful" [ "$(warnings)" = 0 ]

hog_low
check "a hog: the metrics file shows LOW" \
	wait_for 60 is 'membroker_state{state="low"}' 1
check "the pressure client gets a warning" wait_for 30 more_warnings 0
hog_free
check "the hog ends: the metrics file leaves LOW" \
	wait_for 60 is 'membroker_state{state="low"}' 0
check "the metrics file shows LOW entered once, and left" \
	is 'membroker_state_entered_total{state="low"}' 1
before=$(warnings)
# three repeat intervals: a warning now would be one too many
sleep 3
check "no warning once memory is back" [ "$(warnings)" = "$before" ]

rmmod membroker
check "module unloaded: the daemon reads /proc/meminfo instead" \
	wait_for 30 is 'membroker_source{source="meminfo"}' 1
insmod "$MODULE"
check "module loaded again: the daemon follows it again" \
	wait_for 30 is 'membroker_source{source="kmod"}' 1
before=$(warnings)
hog_low
check "after the reload a hog's LOW still reaches the client" \
	wait_for 60 more_warnings "$before"
hog_free
check "and the state recovers" \
	wait_for 60 is 'membroker_state{state="low"}' 0

kill -TERM "$daemon"
wait "$daemon"
rc=$?
wait "$listener"
check "SIGTERM: the daemon exits 0, the client sees the end" [ "$rc" = 0 ]
grep '^membrokerd: MBD' "$T/daemon.log" | sed 's/^/# /'
[ "$failed" = 0 ]
