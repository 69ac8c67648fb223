#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The demo scenario, run by the VM's init with MB_MODE=demo: by `make
# demo` (scripts/vm/demo.sh prints its timeline and plot) and by `make
# check` (phase "scenario", checked by scripts/vm/demo-report.py).
#
# Two applications follow membroker's notifications while memory comes
# and goes: mb-service (two mb_caches in one broker: cheap "thumbnails",
# expensive "sessions") and the SQLite example (its page cache as a
# clerk).  Both are exempt from the OOM killer (oom_score_adj -1000) so
# that act 1's runaway process is the one it stops, as it would be on a
# real machine with a memory leak.
#
#   setup   the state, then the service, SQLite and a notification
#           watcher start; the caches fill up to their bounds
#   act 1   mb-hog allocates 64 MiB/s until the OOM killer ends it: how
#           long before the kill LOW arrived, and what the caches gave
#   act 2   a "batch job" (mb-hog --hold) takes more than is available
#           and keeps it: the caches make room, the cheap one entirely,
#           the expensive one in part; the job waits whenever available
#           memory is below half the low threshold (--floor), so however
#           slowly the caches respond, nobody is killed; then the job ends
#   act 3   the host inflates the balloon below the low threshold, holds
#           it, and deflates it
#   act 4   the host adds 256 MiB through virtio-mem
#   restore the programs stop, the memory is unplugged, the history
#
# Act 1 is the documented OOM-warning measurement (mb-demo oom-race);
# with caches that give memory back it also shows how much time they
# buy.  Act 2 is the same pressure stopping short of the OOM killer, sized
# so that LOW lasts until the expensive cache has to give too.
#
# membrokerd runs beside them (--no-bus: the guest has no D-Bus), with
# mbd-listen as a client of its memory pressure socket, so the timeline
# shows when each LowMemoryMonitor level went out and reached a client.
#
# Machine-readable lines for the host: "MB-DEMO-ACT <seconds> <id>
# <title>" (guest monotonic time, from /proc/uptime) at each act, and
# "MB-DEMO-EXIT <program> <status>" at the end; mb-service prints
# "MB-SVC ..." lines, SQLite's output is prefixed "sqlite: ", membrokerd
# prints "membrokerd: MBD <seconds> signal level=..." for each warning it
# sends and mbd-listen "MBD-PRESSURE <seconds> <level>" for each it gets.

MIB=1048576
SVC_STATE=/tmp/mb-service.state
SQ_PID=/tmp/sqlite-cache.pid
SYS=/sys/kernel/membroker

now() {
	read -r up _ </proc/uptime
	echo "$up"
}

act() {
	id=$1
	shift
	echo
	echo "MB-DEMO-ACT $(now) $id $*"
	echo "== $*"
}

say() {
	echo "   $*"
}

mib() {
	echo $(($1 / MIB))
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds, polling 5 times a
# second; 1 if it never did (the bound only keeps a broken run short)
wait_for() {
	n=$(($1 * 5))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}

# A number from the service's state file (see mb-service.c)
svc() {
	sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$SVC_STATE" 2>/dev/null
}

caches_warm() {
	[ "$(svc warm)" = 1 ]
}

# Remember how many (LOW) notifications the service has seen so far ...
mark() {
	lows0=$(svc lows)
}

# ... to wait for the next LOW; polling the state could miss a short one
new_low() {
	[ "$(svc lows)" -gt "$lows0" ]
}

state_is_not() {
	[ "$(cat $SYS/state)" != "$1" ]
}

# MemAvailable and MemTotal now, in bytes (the module's sysfs files hold
# the values of its latest evaluation, which may be older)
meminfo() {
	awk -v k="$1:" '$1 == k { printf "%d\n", $2 * 1024 }' /proc/meminfo
}

total_below() {
	[ "$(meminfo MemTotal)" -lt "$1" ]
}

total_above() {
	[ "$(meminfo MemTotal)" -gt "$1" ]
}

# the service has been told about the total memory there is now
svc_knows_total() {
	t=$(meminfo MemTotal)
	s=$(svc total)
	[ "$s" -gt $((t - 8 * MIB)) ] && [ "$s" -lt $((t + 8 * MIB)) ]
}

# After memory came back or was added, the caches have room again: once
# the service knows the new total (their bound follows it), wait until
# they are full.
wait_regrown() {
	wait_for 10 svc_knows_total
	wait_for "$1" caches_warm ||
		say "(the caches did not fill up within $1 s; going on)"
}

# The automatic low threshold for TOTAL bytes (Documentation/membroker.rst)
# with WM, four times the zones' high watermarks.
auto_low() {
	awk -v t="$1" -v wm="$2" -v m="$MIB" 'BEGIN {
		l = t / 8
		if (l < 32 * m) l = 32 * m
		if (l > 256 * m) l = 256 * m
		if (l < wm) l = wm
		if (l > t / 4) l = t / 4
		printf "%d\n", l
	}'
}

# RssAnon of a process in bytes: SQLite's page cache and little else
anon_bytes() {
	awk '$1 == "RssAnon:" { printf "%d\n", $2 * 1024 }' "/proc/$1/status"
}

# How much the batch job takes: everything available down to 10 MiB
# below the low threshold, plus what the cheap caches (thumbnails,
# SQLite's) hold, so that LOW outlasts them and the sessions give too.
# Even with every cache empty, low + 14 MiB would remain available.
job_bytes() {
	avail=$(meminfo MemAvailable)
	low=$(cat $SYS/low_bytes)
	thumbs=$(svc thumbnails)
	sq=$(anon_bytes "$(cat "$SQ_PID")")
	echo "available $(mib "$avail") - low $(mib "$low") + thumbnails" \
		"$(mib "$thumbs") + sqlite $(mib "$sq") + 10 MiB" >&2
	echo $((avail - low + thumbs + sq + 10 * MIB))
}

# the job has all it asked for (or is gone)
job_holds() {
	[ "$(anon_bytes "$hog" 2>/dev/null || echo "$job")" -ge \
		$((job - 4 * MIB)) ]
}

# How much the balloon must take for MemAvailable to end up 12 MiB below
# the low threshold that will hold for the smaller total.
balloon_bytes() {
	avail=$(meminfo MemAvailable)
	total=$(meminfo MemTotal)
	wm=$(awk '$1 == "high" { s += $2 } END { printf "%d\n", s * 4096 * 4 }' \
		/proc/zoneinfo)
	b=$((avail - 24 * MIB))
	for _ in 1 2 3 4 5 6 7 8; do
		low=$(auto_low $((total - b)) "$wm")
		b=$((avail - low + 12 * MIB))
	done
	echo "$b"
}

echo "MB-DEMO-BEGIN"
act setup "Setup: membroker.ko is loaded; this is its view of memory"
membrokerctl status
say "LOW: below the low threshold, give memory back."
say "HIGH: above the high threshold, caches may grow.  STEADY: in between."

say "Starting, exempt from the OOM killer:"
say "  mb-service: caches 'thumbnails' (priority 20, cheap to rebuild, up to"
say "  20% of RAM) and 'sessions' (priority 80, expensive, 24 MiB) in one broker"
say "  sqlite-cache: SQLite with its page cache as a clerk"
say "and 'membrokerctl watch', which prints every notification as it arrives."
(
	echo -1000 >/proc/self/oom_score_adj
	exec mb-service --max-percent 20 --state-file "$SVC_STATE"
) &
svc_pid=$!
(
	echo -1000 >/proc/self/oom_score_adj
	read -r pid _ </proc/self/stat
	echo "$pid" >"$SQ_PID"
	exec sqlite-cache --monotonic --seconds 0 --rows 60000 \
		--cache-mib 32 --db /tmp/demo.db
) 2>&1 | sed 's/^/sqlite: /' &
sqlite_pipe=$!
membrokerctl watch &
watcher=$!
# membrokerd, exempt from the OOM killer as its unit makes it
# (OOMScoreAdjust=), and a client of its memory pressure socket
mkdir -p /tmp/mbd
(
	echo -1000 >/proc/self/oom_score_adj
	exec membrokerd --no-bus --pressure-socket=/tmp/mbd/pressure.sock \
		--control-socket=/tmp/mbd/control.sock --metrics-dir=/tmp/mbd -v
) 2>&1 &
mbd_pid=$!
wait_for 30 [ -S /tmp/mbd/pressure.sock ] || say "(membrokerd did not start)"
(
	echo -1000 >/proc/self/oom_score_adj
	exec mbd-listen /tmp/mbd/pressure.sock
) &
mbd_listener=$!
say "and membrokerd, which passes membroker's LOW on as LowMemoryMonitor"
say "levels (50, 100, 255) to the clients of its memory pressure socket."
wait_for 60 caches_warm ||
	say "(the caches did not fill up within 60 s; going on)"
say "The caches are full: thumbnails at its bound, every session cached."

act act1 "Act 1: a runaway process (mb-hog, 64 MiB/s) until the OOM killer stops it"
say "The caches give memory back at each LOW step (thumbnails first),"
say "which buys time; the OOM killer still ends the hog in the end."
mb-demo oom-race -q -- --rate 64
act act1-end "Act 1 over: memory is back, the caches grow again"
wait_regrown 60

act act2 "Act 2: a batch job takes memory and keeps it (mb-hog --hold, 64 MiB/s)"
mark
job=$(job_bytes 2>/tmp/job.how)
say "It takes $(mib "$job") MiB = $(cat /tmp/job.how):"
floor=$(($(cat $SYS/low_bytes) / 2))
say "more than is available.  The caches make room, thumbnails first,"
say "then sessions.  Unlike act 1's runaway, the job is polite: it waits"
say "whenever less than $(mib "$floor") MiB is available, so nobody is killed."
mb-hog --bytes "$job" --rate 64 --floor "$floor" --hold <&- &
hog=$!
wait_for 20 new_low || say "(no LOW within 20 s)"
wait_for 30 job_holds || say "(the job did not get its memory within 30 s)"
wait_for 20 state_is_not low || say "(still LOW after 20 s)"
sleep 2
act act2-end "Act 2 over: the job ends and frees its memory"
kill -USR1 "$hog"
wait "$hog"
echo "MB-DEMO-EXIT mb-hog $?"
wait_regrown 60

act act3 "Act 3: the host takes memory back (virtio-balloon inflates)"
total=$(meminfo MemTotal)
b=$(balloon_bytes)
say "Inflating by $(mib "$b") MiB: available memory goes below the low threshold."
mark
mb-host balloon $((512 * MIB - b)) >/dev/null
wait_for 20 total_below $((total - b + 8 * MIB)) ||
	say "(the balloon did not reach its size within 20 s)"
wait_for 10 new_low || say "(no LOW within 10 s)"
wait_for 15 state_is_not low || say "(still LOW after 15 s)"
sleep 2
act act3-deflate "Act 3: the host gives the memory back (balloon deflates)"
mb-host balloon $((512 * MIB)) >/dev/null
wait_for 20 total_above $((total - 8 * MIB)) ||
	say "(the balloon did not deflate within 20 s)"
wait_regrown 60

act act4 "Act 4: the host adds 256 MiB (virtio-mem)"
total=$(meminfo MemTotal)
mb-host mem-size 256M >/dev/null
wait_for 20 total_above $((total + 128 * MIB)) ||
	say "(no new memory within 20 s)"
say "More memory: the thresholds move up, thumbnails' bound (20% of RAM) too."
wait_regrown 60
sleep 2

act restore "Restore: the programs stop, the added memory is unplugged"
kill -TERM "$svc_pid" "$(cat "$SQ_PID")" 2>/dev/null
wait "$svc_pid"
echo "MB-DEMO-EXIT mb-service $?"
wait "$sqlite_pipe"
mb-host mem-size 0 >/dev/null
wait_for 20 total_below $((total + 8 * MIB)) ||
	say "(the memory is still plugged)"
kill -TERM "$watcher" 2>/dev/null
wait "$watcher"
echo "MB-DEMO-EXIT watcher $?"
kill -TERM "$mbd_pid" 2>/dev/null
wait "$mbd_pid"
echo "MB-DEMO-EXIT membrokerd $?"
wait "$mbd_listener"
echo "MB-DEMO-EXIT mbd-listen $?"

act history "The module's history of notifications"
membrokerctl history
echo "MB-DEMO-END"
