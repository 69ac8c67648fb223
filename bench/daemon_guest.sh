#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The guest half of bench/daemon_vm.sh (installed as /bin/mbd-bench.sh,
# run by guest-init.sh with MB_MODE=bench MB_BENCH=daemon): a system bus
# (dbus-daemon on Debian's system configuration and membrokerd's policy),
# membrokerd on the module, and at once a real GLib GMemoryMonitor program
# and a real sd-event memory pressure program.  RUNS times a hog takes
# memory until the module says LOW, then gives it back and waits for the
# recovery.  It prints what everyone saw, for the host to pair up:
#   membrokerd: MBD <t> signal level=.. reading_ns=<module's evaluation>
#   WARNING <level> <ns>     (GLib)     PRESSURE <ns>     (sd-event)
# all CLOCK_MONOTONIC.  The bounded waits only stop a run that hangs.

RUNS=${MB_BENCH_RUNS:-10}
MIB=1048576
T=/tmp/mbd-bench
SYS=/sys/kernel/membroker

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

count() {
	grep -c "^$1" "$2" 2>/dev/null
}

more() {
	[ "$(count "$1" "$2")" -gt "$3" ]
}

state_is() {
	[ "$(cat $SYS/state)" = "$1" ]
}

state_is_not() {
	[ "$(cat $SYS/state)" != "$1" ]
}

meminfo() {
	awk -v k="$1:" '$1 == k { printf "%d\n", $2 * 1024 }' /proc/meminfo
}

mkdir -p "$T" /var/run/dbus
dbus-daemon --config-file=/etc/mbd-system.conf --nofork \
	--print-address=1 >"$T/bus" 2>"$T/dbus.log" &
bus=$!
wait_for 30 [ -s "$T/bus" ] || { cat "$T/dbus.log"; exit 1; }
DBUS_SYSTEM_BUS_ADDRESS=$(head -n1 "$T/bus")
export DBUS_SYSTEM_BUS_ADDRESS

(
	echo -1000 >/proc/self/oom_score_adj
	exec membrokerd -v --pressure-socket=$T/pressure.sock \
		--control-socket=$T/control.sock
) 2>"$T/daemon.log" &
daemon=$!
wait_for 30 grep -q "ready:" "$T/daemon.log" || { cat "$T/daemon.log"; exit 1; }

# the clients end when their stdin does: keep it open with a sleeper
(
	echo -1000 >/proc/self/oom_score_adj
	sleep 100000 | GIO_USE_MEMORY_MONITOR=dbus lmm-client
) >"$T/glib.out" 2>&1 &
glib=$!
(
	echo -1000 >/proc/self/oom_score_adj
	sleep 100000 | MEMORY_PRESSURE_WATCH=$T/pressure.sock mp-client
) >"$T/sdevent.out" 2>&1 &
sdev=$!
wait_for 60 grep -q READY "$T/glib.out" || { cat "$T/glib.out"; exit 1; }
wait_for 30 grep -q READY "$T/sdevent.out" || { cat "$T/sdevent.out"; exit 1; }
echo "clients: $(head -n1 "$T/glib.out"), sd-event ready"

i=0
while [ "$i" -lt "$RUNS" ]; do
	i=$((i + 1))
	wait_for 60 state_is_not low
	sleep 1.2	# after a recovery a LOW is news once a second
	g=$(count WARNING "$T/glib.out")
	low=$(cat $SYS/low_bytes)
	avail=$(meminfo MemAvailable)
	mb-hog --bytes $((avail - low + 8 * MIB)) --rate 64 \
		--floor $((low / 2)) --hold <&- >/dev/null &
	hog=$!
	wait_for 60 more WARNING "$T/glib.out" "$g" ||
		echo "run $i: no warning within 60 s"
	wait_for 10 state_is low
	kill -USR1 "$hog"
	wait "$hog"
done
wait_for 60 state_is_not low
sleep 1

echo "MBD-BENCH-DATA-BEGIN"
grep 'MBD .* signal' "$T/daemon.log"
grep '^WARNING' "$T/glib.out"
grep '^PRESSURE' "$T/sdevent.out"
echo "MBD-BENCH-DATA-END"
kill "$glib" "$sdev" 2>/dev/null
kill -TERM "$daemon"
wait "$daemon"
rc=$?
kill "$bus"
exit "$rc"
