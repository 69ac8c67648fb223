#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# PID 1 of the test VM.  Brings up a minimal system, loads the virtio
# drivers and membroker.ko, then does what MB_MODE (from the kernel command
# line) asks: "check" runs every selftest, "demo" runs the demo, "shell"
# drops to a shell.  Everything the host parses is framed by MB-* marker
# lines; the kernel log is printed last so the host can scan it.

/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
# The kernel booted and init runs: run.sh tells boot failures by its absence.
echo "MB-INIT"

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
# Keep kernel messages off the console so they cannot split TAP lines;
# the whole log is printed at the end (a panic still reaches the console).
dmesg -n 1

MB_MODE=${MB_MODE:-check}
MB_TIMEOUT=${MB_TIMEOUT:-120}
export MB_MODULE=/lib/modules/membroker.ko

for m in $(cat /lib/modules/virtio/order); do
	insmod "/lib/modules/virtio/$m.ko" || echo "MB-ERROR insmod $m failed"
done

if [ -e "$MB_MODULE" ]; then
	insmod "$MB_MODULE" || echo "MB-ERROR insmod membroker failed"
else
	echo "MB-NOTICE no membroker.ko in the initramfs"
	unset MB_MODULE
fi

# MB_TESTS=a,b runs only those tests (commas: the kernel command line
# splits words at spaces).
MB_TESTS=$(echo "${MB_TESTS:-}" | tr ',' ' ')

run_tests() {
	local t rc

	for t in $(cat /tests/order); do
		case " $MB_TESTS " in
		"  ") ;;
		*" $t "* | *" ${t##*/} "*) ;;
		*) continue ;;
		esac
		echo "MB-TEST-BEGIN $t"
		timeout "$MB_TIMEOUT" "/tests/$t"
		rc=$?
		echo "MB-TEST-END $t rc=$rc"
	done
}

# MB_MODE=bench (make bench): notify_latency, MB_BENCH_RUNS hog runs that
# stop at low/4, then MB_BENCH_OOM_RUNS that end in the OOM killer (0
# skips either part).
run_bench() {
	local runs oom=

	# bench/sys_vm.sh: the system broker against every process alone
	if [ "${MB_BENCH:-}" = sysbroker ]; then
		echo "MB-BENCH-BEGIN sysbroker --runs ${MB_BENCH_RUNS:-3}"
		for i in $(seq "${MB_BENCH_RUNS:-3}"); do
			timeout "$MB_TIMEOUT" mb-sysload local "$i"
			timeout "$MB_TIMEOUT" mb-sysload daemon "$i"
		done
		echo "MB-BENCH-END sysbroker rc=$?"
		return
	fi

	# bench/perf_vm.sh: tails or outcome; commas in MB_PERF_ARGS
	# stand for spaces, colons for commas
	if [ "${MB_BENCH:-}" = perf ] && [ "$MB_PERF" = smoke ]; then
		for p in "tails --crossings 2 --rates 0,64 --hold-ms 800" \
			 "outcome --runs 1 --reactions none,kmod" \
			 "outcome --app sqlite --runs 1 --cache-frac 0.05" \
			 "cost --seconds 1 --rounds 1 --fault-reps 1"; do
			echo "MB-BENCH-BEGIN $p"
			# shellcheck disable=SC2086
			timeout "$MB_TIMEOUT" /bin/$p
			echo "MB-BENCH-END ${p%% *} rc=$?"
		done
		return
	fi
	if [ "${MB_BENCH:-}" = perf ]; then
		echo "MB-BENCH-BEGIN $MB_PERF"
		# shellcheck disable=SC2046
		timeout "$MB_TIMEOUT" "/bin/$MB_PERF" \
			$(echo "${MB_PERF_ARGS:-}" | tr ',:' ' ,')
		echo "MB-BENCH-END $MB_PERF rc=$?"
		return
	fi

	# bench/daemon_vm.sh: membrokerd's delivery to GLib and sd-event
	if [ "${MB_BENCH:-}" = daemon ]; then
		echo "MB-BENCH-BEGIN membrokerd --runs ${MB_BENCH_RUNS:-10}"
		timeout "$MB_TIMEOUT" /bin/mbd-bench.sh
		echo "MB-BENCH-END membrokerd rc=$?"
		return
	fi

	for runs in "${MB_BENCH_RUNS:-3}" "${MB_BENCH_OOM_RUNS:-3}"; do
		if [ "$runs" -gt 0 ]; then
			echo "MB-BENCH-BEGIN notify_latency" \
				"--runs $runs${oom:+ $oom}"
			timeout "$MB_TIMEOUT" notify_latency --runs "$runs" $oom
			echo "MB-BENCH-END notify_latency rc=$?"
		fi
		oom=--oom
	done
}

case "$MB_MODE" in
check)
	run_tests
	;;
demo)
	/bin/mb-demo.sh
	;;
bench)
	run_bench
	;;
shell)
	setsid cttyhack sh
	;;
*)
	echo "MB-ERROR unknown MB_MODE=$MB_MODE"
	;;
esac

# MB_KMEMLEAK=1 (make stress, on the debug kernel): two kmemleak scans, an
# object's minimum age apart, so that whatever leaked during the run is
# reported ("unreferenced object", which fails the run) in the log below.
if [ "${MB_KMEMLEAK:-0}" = 1 ]; then
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	if [ -w /sys/kernel/debug/kmemleak ]; then
		echo scan >/sys/kernel/debug/kmemleak
		sleep 6
		echo scan >/sys/kernel/debug/kmemleak
		echo "MB-KMEMLEAK-BEGIN"
		cat /sys/kernel/debug/kmemleak
		echo "MB-KMEMLEAK-END"
	else
		echo "MB-ERROR MB_KMEMLEAK=1 but no /sys/kernel/debug/kmemleak"
	fi
fi

echo "MB-DMESG-BEGIN"
dmesg
echo "MB-DMESG-END"
echo "MB-END"
sync
poweroff -f
