#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# membrokerd's delivery latency, host, in one run: from a reading entering
# the daemon's monitor to (a) GLib's GMemoryMonitor emitting
# low-memory-warning in a real GLib program (daemon -> dbus-daemon ->
# GDBus -> the program's main loop) and (b) sd-event running the handler
# of sd_event_add_memory_pressure() in a real sd-event program (daemon ->
# AF_UNIX socket -> sd-event).  Both clients listen at once to the same
# warnings.
#
# The readings come from the library's fake source (--source=fake, pushed
# over the control socket with the push time as their timestamp): the
# host cannot load the module.  So this measures membrokerd and the two
# transports, not the module's own detection (bench/notify_latency.c does
# that in the VM: about 1-5 ms from MemAvailable crossing the threshold).
#
#   bench/daemon_latency.py [RUNS]      (default 200; needs make -C daemon
#                                        check's programs built)
#
# No threshold is asserted: the figures depend on the machine and its
# load.

import os
import statistics
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(TOP, "build"))
os.environ.setdefault("MEMBROKERD", os.path.join(BUILD, "daemon",
                                                 "membrokerd"))
os.environ.setdefault("TESTBIN", os.path.join(BUILD, "daemon"))
# no __pycache__ in the source tree
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(TOP, "daemon", "tests"))
import harness as h  # noqa: E402

REPEAT = 0.2    # s: a LOW after this long without one is signalled at once


def first(client, prefix, guard=10):
    """CLOCK_MONOTONIC ns of the next line starting with prefix."""
    while True:
        line = client.next_line(guard)
        if line is None:
            return None
        if line.startswith(prefix):
            return int(line.split()[-1])


def row(name, xs):
    xs = sorted(xs)
    return "%-38s %8.3f %8.3f %8.3f %8.3f" % (
        name, xs[0], statistics.median(xs), xs[int(len(xs) * 0.99) - 1],
        xs[-1])


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory(prefix="mbd-bench-") as tmp:
        os.chmod(tmp, 0o755)
        bus = h.Bus(tmp)
        psock = os.path.join(tmp, "pressure.sock")
        csock = os.path.join(tmp, "control.sock")
        d = h.Daemon(tmp, ["--source=fake", "--repeat=%g" % REPEAT,
                           "--pressure-socket=" + psock,
                           "--control-socket=" + csock], bus.env())
        if not d.start():
            sys.exit("membrokerd did not start: " + d.stderr())
        g = h.glib_client(bus)
        m = h.sdevent_client(psock)
        if g.wait_line("READY") is None or m.wait_line("READY") is None:
            sys.exit("a client did not start: %s %s" % (g.seen, m.seen))
        c = h.Control(csock)
        h.wait_for(lambda: h.metric(h.parse_metrics(c.metrics()),
                                    "membrokerd_pressure_clients") == 1)
        glib, sdev, lost = [], [], 0
        for i in range(runs):
            t0 = h.mono_ns()
            c.push(h.STATE_LOW, 90 * h.MIB, time_ns=t0)
            tg = first(g, "WARNING")
            ts = first(m, "PRESSURE")
            c.push(h.STATE_HIGH, 500 * h.MIB)
            if tg is None or ts is None:
                lost += 1
                continue
            glib.append((tg - t0) / 1e6)
            sdev.append((ts - t0) / 1e6)
            time.sleep(REPEAT * 1.25)   # the 50 is no longer in force
        g.quit()
        m.quit()
        c.close()
        d.stop()
        bus.stop()
    print("membrokerd delivery latency, host, fake source, %d runs "
          "(%d lost), ms" % (len(glib), lost))
    print("%-38s %8s %8s %8s %8s" % ("from the reading to", "min",
                                     "median", "p99", "max"))
    print(row("GLib low-memory-warning (D-Bus)", glib))
    print(row("sd-event memory pressure handler", sdev))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
