#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# mb-sysload MODE RUN: the system broker's scenario, once, in the test VM
# (busybox sh, the module loaded).  MODE "daemon": membrokerd runs and the
# processes register with it; "local": no daemon, every process shrinks by
# itself (today's behaviour, MEMBROKER_SYSTEM_BROKER=0).
#
# Four processes (mb-caches), each with a cheap and an expensive cache of
# different sizes and priorities (below), fill them; a ballast takes
# available memory down to just above where LOW ends (low + hysteresis);
# then a job takes memory worth a third of the caches.  Whatever the job
# takes below that line must come from the caches: that is what is
# needed.  The run ends when the state has left LOW for good (two
# seconds without it) or after a guard.
#
# Printed: "MB-SYS <seconds> ..." as it goes, and last one line
#   MB-SYS-RUN mode= run= caches= needed= released= overshoot=
#              expensive= cheap_left= misordered= low_ms= lows= oom=
#              registered= decisions=
# (bytes; overshoot = released / needed; misordered = expensive bytes
# released while cheap caches still hold memory at the end, i.e.
# min(expensive, cheap_left); low_ms from the first LOW after the job
# started to leaving LOW for good, "never" if it did not; lows = times
# LOW was entered; oom = OOM kills during the run).  The processes' and
# the daemon's logs stay in /tmp/sysload/MODE-RUN/.

MODE=$1
RUN=${2:-1}
T=/tmp/sysload/$MODE-$RUN
SYS=/sys/kernel/membroker
MIB=1048576
MARGIN=$((4 * MIB))
JOB_RATE=${SYSLOAD_JOB_RATE:-32}	# MiB/s
# tag:cheap MiB:cheap priority:dear MiB:dear priority.  Sizes differ, so
# that one process's whole pool can be mostly expensive while another's
# is mostly cheap: the machine's cheapest memory is not each process's.
SPECS="p0:4:10:36:60 p1:10:20:30:70 p2:16:30:24:80 p3:24:40:16:90"

rm -rf "$T"
mkdir -p "$T"

now() {
	cut -d' ' -f1 /proc/uptime
}

say() {
	echo "MB-SYS $(now) $MODE-$RUN $*"
}

meminfo() {
	awk -v k="$1:" '$1 == k { printf "%d\n", $2 * 1024 }' /proc/meminfo
}

oom_kills() {
	awk '$1 == "oom_kill" { print $2 }' /proc/vmstat
}

# wait_for TENTHS COMMAND...: a guard, not a measurement
wait_for() {
	w=$1
	shift
	while [ "$w" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		w=$((w - 1))
	done
	return 1
}

all_warm() {
	for s in $SPECS; do
		tag=${s%%:*}
		grep -q "warm=1" "$T/$tag.state" 2>/dev/null || return 1
		if [ "$MODE" = daemon ]; then
			grep -q "sys=registered" "$T/$tag.state" || return 1
		fi
	done
}

started() {
	grep -q "$2" "$1" 2>/dev/null
}

daemon=
if [ "$MODE" = daemon ]; then
	membrokerd --no-bus --pressure-socket= \
		--control-socket="$T/control.sock" -v 2>"$T/daemon.log" &
	daemon=$!
	export MEMBROKERD_SOCKET="$T/control.sock"
	unset MEMBROKER_SYSTEM_BROKER
	wait_for 300 started "$T/daemon.log" "ready:" ||
		say "ERROR the daemon did not start"
else
	export MEMBROKER_SYSTEM_BROKER=0
fi

pids=
caches=0
for s in $SPECS; do
	IFS=: read -r tag cm cp dm dp <<EOF
$s
EOF
	mb-caches --tag "$tag" --cache "cheap-$tag:$cp:$cm" \
		--cache "dear-$tag:$dp:$dm" --fill-rate 32 \
		--state-file "$T/$tag.state" >"$T/$tag.out" 2>&1 &
	pids="$pids $!"
	caches=$((caches + (cm + dm) * MIB))
done
wait_for 900 all_warm || say "ERROR the caches did not fill"
registered=0
if [ "$MODE" = daemon ]; then
	membrokerctl clerks -S "$T/control.sock" >"$T/clerks.txt" 2>&1
	registered=$(grep -c 'mb-caches' "$T/clerks.txt")
fi

low=$(cat $SYS/low_bytes)
high=$(cat $SYS/high_bytes)
h=$((low / 8))
[ $h -gt $(((high - low) / 2)) ] && h=$(((high - low) / 2))
end=$((low + h))
avail=$(meminfo MemAvailable)
ballast=$((avail - end - MARGIN))
say "caches $((caches / MIB)) MiB full; available $((avail / MIB)) MiB," \
	"low $((low / MIB)) MiB, LOW ends at $((end / MIB)) MiB:" \
	"ballast $((ballast / MIB)) MiB"
bpid=
if [ $ballast -gt 0 ]; then
	mb-hog --bytes $ballast --hold -v <&- >/dev/null 2>"$T/ballast.err" &
	bpid=$!
	wait_for 600 started "$T/ballast.err" "allocated" ||
		say "ERROR the ballast did not finish"
fi
sleep 1

job=$((caches / 3))
oom0=$(oom_kills)
a0=$(meminfo MemAvailable)
say "job: $((job / MIB)) MiB at $JOB_RATE MiB/s from $((a0 / MIB)) MiB" \
	"available"
: >"$T/job.err"
mb-hog --bytes $job --rate "$JOB_RATE" --hold -v <&- >/dev/null \
	2>"$T/job.err" &
jpid=$!
# the processes' clock starts here: a line they all print from now on
for p in $pids; do
	kill -USR1 "$p"
done
wait_for 1200 started "$T/job.err" "allocated" ||
	say "ERROR the job did not finish allocating"

# LOW left for good: two seconds of anything else
calm=0
w=600
while [ $w -gt 0 ] && [ $calm -lt 20 ]; do
	if [ "$(cat $SYS/state)" = low ]; then
		calm=0
	else
		calm=$((calm + 1))
	fi
	sleep 0.1
	w=$((w - 1))
done
oom1=$(oom_kills)
if [ "$MODE" = daemon ]; then
	membrokerctl decisions -S "$T/control.sock" >"$T/decisions.txt" 2>&1
fi
for p in $pids; do
	kill -USR1 "$p"
done
sleep 1

kill -USR1 $jpid 2>/dev/null
wait $jpid
[ -n "$bpid" ] && kill -USR1 "$bpid" 2>/dev/null && wait "$bpid"
for p in $pids; do
	kill -TERM "$p"
done
for p in $pids; do
	wait "$p"
done
[ -n "$daemon" ] && kill -TERM "$daemon" && wait "$daemon"

decisions=0
[ -f "$T/decisions.txt" ] &&
	decisions=$(grep -c ' shrink ' "$T/decisions.txt")
needed=$((end - (a0 - job)))
# The processes' lines: the job's start is the first sample round (the
# USR1 sent right after it started); from there on every shrink counts.
cat "$T"/p*.out | awk -v needed=$needed -v mode="$MODE" -v run="$RUN" \
	-v caches=$caches -v oom=$((oom1 - oom0)) -v reg="$registered" \
	-v dec="$decisions" '
$1 != "MB-CACHES" { next }
{
	for (i = 4; i <= NF; i++) {
		split($i, kv, "=")
		f[kv[1]] = kv[2]
	}
}
$3 == "sample" {
	n = ++samples[f["clerk"]]
	if (n == 1 && (start == "" || $2 < start))
		start = $2
	last[f["clerk"]] = f["bytes"]
	next
}
{ ev[++nev] = $0; t[nev] = $2; kind[nev] = $3 }
END {
	for (i = 1; i <= nev; i++) {
		if (t[i] < start)
			continue
		nf = split(ev[i], w, " ")
		for (k = 4; k <= nf; k++) {
			split(w[k], kv, "=")
			f[kv[1]] = kv[2]
		}
		if (kind[i] == "rec" && (f["decision"] == "shrink" ||
		    f["decision"] == "system-shrink")) {
			released += f["freed"]
			if (f["clerk"] ~ /^dear/)
				expensive += f["freed"]
		}
		# one process speaks for the state: the module is the same
		if (kind[i] == "notify" && f["tag"] == "p0") {
			if (f["state"] == "low") {
				if (first == "")
					first = t[i]
				if (prev != "low")
					lows++
				left = ""
			} else if (first != "" && prev == "low") {
				left = t[i]
			}
			prev = f["state"]
		}
	}
	for (c in last)
		if (c ~ /^cheap/)
			cheap_left += last[c]
	mis = cheap_left
	if (expensive < cheap_left)
		mis = expensive
	if (first == "")
		low_ms = "none"
	else if (left == "")
		low_ms = "never"
	else
		low_ms = sprintf("%d", (left - first) * 1000)
	printf "MB-SYS-RUN mode=%s run=%s", mode, run
	printf " caches=%d needed=%d released=%d", caches, needed, released
	# no comparison in a print statement: busybox awk takes ">" there
	# for a redirection
	ov = 0
	if (needed > 0)
		ov = released / needed
	printf " overshoot=%.3f", ov
	printf " expensive=%d cheap_left=%d", expensive, cheap_left
	printf " misordered=%d low_ms=%s lows=%d", mis, low_ms, lows
	printf " oom=%d registered=%d decisions=%d\n", oom, reg, dec
}'
