#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# membrokerd's host tests, TAP output.  Real components throughout: a
# private dbus-daemon with Debian's system-bus configuration and our
# policy file, the daemon as systemd would start it (Type=notify), GLib's
# GMemoryMonitor with its D-Bus backend, sd-event's
# sd_event_add_memory_pressure() (libsystemd 254), gdbus, and the
# Prometheus project's parser for the metrics.  The daemon's memory
# source is the library's fake source, fed over the control socket
# (MBD_MSG_FAKE_PUSH, offered only with --source=fake), or the meminfo
# source reading a file the test writes (--root).
#
# Environment: MEMBROKERD, TESTBIN (the test programs), MEMBROKERCTL,
# RESULTS (directory for the counts file), COUNTS (its name).

import errno
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

# no __pycache__ in the source tree
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import MIB, STATE_LOW, STATE_STEADY, STATE_HIGH  # noqa: E402
import sysbroker  # noqa: E402

RESULTS = os.environ.get("RESULTS", "build/results")
COUNTS = os.environ.get("COUNTS", "daemon.counts")
MEMBROKERCTL = os.environ.get("MEMBROKERCTL", "")

n = passed = failed = skipped = 0


def ok(cond, desc, *diag):
    global n, passed, failed
    n += 1
    if cond:
        passed += 1
        print("ok %d - %s" % (n, desc))
    else:
        failed += 1
        print("not ok %d - %s" % (n, desc))
        for d in diag:
            for line in str(d).splitlines()[:30]:
                print("#   " + line)
    sys.stdout.flush()
    return cond


def skip(desc, why):
    global n, skipped
    n += 1
    skipped += 1
    print("ok %d - %s # SKIP %s" % (n, desc, why))


def levels(lines):
    return [int(x.split()[1]) for x in lines if x.startswith("WARNING")]


def pressures(lines):
    return [x for x in lines if x.startswith("PRESSURE")]


def sync_for(client, n, pick):
    """The client's lines until n of them pass pick, or GUARD runs out.
    One sync is not enough: the daemon counts an event when it queues
    it, and the signal or socket write can still be on its way when
    the client answers.  Fewer than n is the caller's failure to report;
    an extra line shows in the caller's check or the next one."""
    got = client.sync()
    end = time.monotonic() + h.GUARD
    while len(pick(got)) < n and time.monotonic() < end:
        time.sleep(0.01)
        got += client.sync()
    return got


class Setup:
    """A bus, a daemon on the fake source, its sockets."""

    def __init__(self, tmp, extra=(), bus=True):
        self.tmp = tmp
        self.bus = h.Bus(tmp) if bus else None
        self.psock = os.path.join(tmp, "run", "memory-pressure.sock")
        self.csock = os.path.join(tmp, "run", "control.sock")
        self.mdir = os.path.join(tmp, "metrics")
        os.makedirs(self.mdir, exist_ok=True)
        args = ["--source=fake", "--pressure-socket=" + self.psock,
                "--control-socket=" + self.csock,
                "--metrics-dir=" + self.mdir, "-v"] + list(extra)
        if not bus:
            args.append("--no-bus")
        self.d = h.Daemon(tmp, args, self.bus.env() if bus else None)
        self.ready = self.d.start()
        self.c = h.Control(self.csock) if self.ready else None
        self.seq = 0

    def push(self, state, avail, **kw):
        """Push a reading; return once the daemon has handled it."""
        self.seq += 1
        st = self.c.push(state, avail, **kw)
        if st != 0:
            raise RuntimeError("push refused: %d" % st)
        seq = self.seq
        if not h.wait_for(lambda: self.metric("membroker_last_sequence")
                          == seq):
            raise RuntimeError("the daemon did not take reading %d" % seq)

    def metrics(self):
        return h.parse_metrics(self.c.metrics())

    def metric(self, name, **labels):
        return h.metric(self.metrics(), name, **labels)

    def stop(self):
        if self.c:
            self.c.close()
        rc = self.d.stop()
        if self.bus:
            self.bus.stop()
        return rc


def test_unit():
    out = subprocess.run([os.path.join(h.TESTBIN, "test_level")],
                         capture_output=True, text=True)
    bad = [x for x in out.stdout.splitlines() if x.startswith("not ok")]
    ok(out.returncode == 0 and not bad and "ok " in out.stdout,
       "level.c unit test: mapping and pacing (%d checks)"
       % out.stdout.count("\nok "), out.stdout, out.stderr)
    out = subprocess.run([os.path.join(h.TESTBIN, "test_order")],
                         capture_output=True, text=True)
    bad = [x for x in out.stdout.splitlines() if x.startswith("not ok")]
    ok(out.returncode == 0 and not bad and "ok " in out.stdout,
       "order.c unit test: shortfall, order, growth (%d checks)"
       % out.stdout.count("\nok "), out.stdout, out.stderr, *bad)


def test_levels(tmp):
    """GLib and sd-event clients follow a scripted run of readings."""
    s = Setup(tmp, ["--repeat=3600"])
    if not ok(s.ready, "Type=notify: READY=1 sent", s.d.stderr()):
        s.stop()
        return
    # READY=1 only once every interface is up: all answer at once
    names = subprocess.run(
        ["busctl", "--address=" + s.bus.address, "list", "--acquired"],
        capture_output=True, text=True).stdout
    ok("org.freedesktop.LowMemoryMonitor" in names and
       os.path.exists(s.psock) and
       os.path.exists(os.path.join(s.mdir, "membroker.prom")),
       "at READY=1 the bus name, the sockets and the metrics are there",
       names)

    g = h.glib_client(s.bus)
    start = g.wait_line("READY")
    ok(start is not None and "BACKEND GMemoryMonitorDBus" in start,
       "GLib picked its D-Bus GMemoryMonitor (GIO_USE_MEMORY_MONITOR=dbus)",
       start, g.seen)
    m = h.sdevent_client(s.psock, b"some 200000 2000000\0")
    mstart = m.wait_line("READY")
    ok(mstart == ["READY"],
       "sd_event_add_memory_pressure() accepts the socket in "
       "$MEMORY_PRESSURE_WATCH", mstart, m.seen)
    raw = h.Reader(s.psock, b"some 70000 1000000\0")
    h.wait_for(lambda: s.metric("membrokerd_pressure_clients") == 2)

    steps = [
        ("HIGH", dict(state=STATE_HIGH, avail=500 * MIB), [], 0),
        ("LOW", dict(state=STATE_LOW, avail=90 * MIB), [50], 1),
        ("LOW, still 90 MiB (same level)",
         dict(state=STATE_LOW, avail=85 * MIB), [], 0),
        ("LOW below half the threshold", dict(state=STATE_LOW,
                                              avail=40 * MIB), [100], 1),
        ("LOW with the module's OOM reason", dict(
            state=STATE_LOW, avail=90 * MIB, reason=h.REASON["oom"]),
         [255], 1),
        ("STEADY", dict(state=STATE_STEADY, avail=200 * MIB), [], 0),
        ("HIGH again", dict(state=STATE_HIGH, avail=500 * MIB), [], 0),
    ]
    for name, kw, want, runs in steps:
        s.push(kw.pop("state"), kw.pop("avail"), **kw)
        got = sync_for(g, len(want), levels)
        ok(levels(got) == want,
           "GLib low-memory-warning after %s: %s" % (name, want or "none"),
           got)
        got = sync_for(m, runs, pressures)
        ok(len(pressures(got)) == runs,
           "sd-event handler after %s: %s" % (name, "runs" if runs else
                                               "does not run"), got)
    raw_levels = raw.read_levels(3)
    ok(raw_levels == [50, 100, 255] and raw.pending() == b"",
       "a socket client reads one line per warning: 50, 100, 255",
       raw_levels, raw.pending())

    # the metrics file shows the transitions
    text = open(os.path.join(s.mdir, "membroker.prom")).read()
    fm = h.parse_metrics(text)
    ok(h.metric(fm, "membroker_state_entered_total", state="low") == 1 and
       h.metric(fm, "membroker_state_entered_total", state="high") == 2 and
       h.metric(fm, "membroker_state_entered_total", state="steady") == 1
       and h.metric(fm, "membroker_state", state="high") == 1,
       "metrics file: LOW entered once, HIGH twice, STEADY once; now HIGH",
       text)
    ok(h.metric(fm, "membrokerd_bus_signals_total", level="50") == 1 and
       h.metric(fm, "membrokerd_bus_signals_total", level="100") == 1 and
       h.metric(fm, "membrokerd_bus_signals_total", level="255") == 1 and
       h.metric(fm, "membroker_notifications_total", state="low",
                reason="oom") == 1 and
       h.metric(fm, "membrokerd_pressure_events_total") == 3,
       "metrics file: one signal per level, the OOM notification, three "
       "pressure events", text)
    ok(not [f for f in os.listdir(s.mdir) if f != "membroker.prom"],
       "no temporary file left beside membroker.prom", os.listdir(s.mdir))

    if MEMBROKERCTL and os.access(MEMBROKERCTL, os.X_OK):
        out = subprocess.run([MEMBROKERCTL, "metrics", "--socket",
                              s.csock], capture_output=True, text=True)
        cm = h.parse_metrics(out.stdout) if out.returncode == 0 else {}
        ok(out.returncode == 0 and
           h.metric(cm, "membroker_state_entered_total", state="low") == 1
           and h.metric(cm, "membrokerd_bus_signals_total",
                        level="255") == 1,
           "membrokerctl metrics prints the daemon's metrics",
           out.stdout, out.stderr)
        out = subprocess.run([MEMBROKERCTL, "metrics", "--socket",
                              os.path.join(tmp, "nothing.sock")],
                             capture_output=True, text=True)
        ok(out.returncode == 1 and "membrokerd" in out.stderr,
           "membrokerctl metrics without a daemon: status 1, says why",
           out.returncode, out.stderr)
    else:
        skip("membrokerctl metrics", "no membrokerctl built")
        skip("membrokerctl metrics without a daemon", "no membrokerctl")

    test_introspection(s)
    test_bad_bus_calls(s, g)
    test_refusals(tmp, s)

    g.quit()
    m.quit()
    raw.close()
    ok(s.stop() == 0, "SIGTERM: the daemon exits with status 0",
       s.d.stderr())
    ok(not os.path.exists(s.psock) and not os.path.exists(s.csock) and
       not os.path.exists(os.path.join(s.mdir, "membroker.prom")),
       "the daemon removes its sockets and metrics file when it stops")


def test_introspection(s):
    out = subprocess.run(
        ["gdbus", "introspect", "--system", "--xml",
         "--dest", "org.freedesktop.LowMemoryMonitor",
         "--object-path", "/org/freedesktop/LowMemoryMonitor"],
        capture_output=True, text=True, env=s.bus.env())

    def iface(root):
        for i in root.iter("interface"):
            if i.get("name") == "org.freedesktop.LowMemoryMonitor":
                return sorted(
                    (el.tag, el.get("name"),
                     tuple((a.get("name"), a.get("type"), a.get("direction"))
                           for a in el.findall("arg")))
                    for el in i if el.tag in ("method", "signal",
                                              "property"))
        return None

    want = iface(ET.parse(os.path.join(h.DAEMON_DIR,
                          "org.freedesktop.LowMemoryMonitor.xml")).getroot())
    try:
        got = iface(ET.fromstring(out.stdout))
    except ET.ParseError:
        got = None
    ok(out.returncode == 0 and got == want and
       want == [("signal", "LowMemoryWarning", (("level", "y", None),))],
       "gdbus introspect: the interface is LowMemoryWarning(y level), as "
       "in org.freedesktop.LowMemoryMonitor.xml", out.stdout, out.stderr,
       got)


def gdbus_call(s, method, *args):
    return subprocess.run(
        ["gdbus", "call", "--system", "--dest",
         "org.freedesktop.LowMemoryMonitor", "--object-path",
         "/org/freedesktop/LowMemoryMonitor", "--method", method] +
        list(args), capture_output=True, text=True, env=s.bus.env())


def test_bad_bus_calls(s, g):
    out = gdbus_call(s, "org.freedesktop.LowMemoryMonitor.NoSuchMethod")
    ok(out.returncode != 0 and "UnknownMethod" in out.stderr,
       "a call of an unknown method gets org.freedesktop.DBus.Error."
       "UnknownMethod", out.stderr)
    out = gdbus_call(s, "org.freedesktop.DBus.Properties.Get",
                     "org.freedesktop.LowMemoryMonitor")
    ok(out.returncode != 0 and "InvalidArgs" in out.stderr,
       "Properties.Get with a missing argument gets InvalidArgs",
       out.stderr)
    out = gdbus_call(s, "org.freedesktop.DBus.Properties.Get",
                     "org.freedesktop.LowMemoryMonitor", "Level")
    ok(out.returncode != 0 and ("UnknownProperty" in out.stderr or
                                "InvalidArgs" in out.stderr),
       "Properties.Get of a property that does not exist gets an error",
       out.stderr)
    out = gdbus_call(s, "org.freedesktop.LowMemoryMonitor.LowMemoryWarning",
                     "7")
    ok(out.returncode != 0 and "UnknownMethod" in out.stderr,
       "calling the signal as a method gets UnknownMethod", out.stderr)
    # ... and the daemon is still there, on the bus and on its sockets
    out = gdbus_call(s, "org.freedesktop.DBus.Peer.Ping")
    ok(out.returncode == 0 and s.d.proc.poll() is None and
       s.metric("membrokerd_bus_errors_total") == 0,
       "after the bad calls the daemon still answers", out.stderr)


def test_refusals(tmp, s):
    d = h.Daemon(tmp, ["--source=fake", "--pressure-socket=",
                       "--control-socket="], s.bus.env())
    d.start()
    rc = d.wait()
    err = d.stderr().strip()
    ok(rc == 3 and len(err.splitlines()) == 1 and
       "owned by another process" in err,
       "a second daemon on the bus: exit status 3, one line", rc, err)

    d = h.Daemon(tmp, ["--source=fake", "--no-bus",
                       "--pressure-socket=" + s.psock,
                       "--control-socket="])
    d.start()
    rc = d.wait()
    err = d.stderr().strip()
    ok(rc == 4 and len(err.splitlines()) == 1 and
       "another process serves it" in err,
       "a live pressure socket: exit status 4, one line", rc, err)

    d = h.Daemon(tmp, ["--source=fake", "--no-bus", "--pressure-socket=",
                       "--control-socket=" + s.csock])
    d.start()
    rc = d.wait()
    ok(rc == 4, "a live control socket: exit status 4", rc, d.stderr())

    path = os.path.join(tmp, "not-a-socket")
    with open(path, "w") as f:
        f.write("keep me\n")
    d = h.Daemon(tmp, ["--source=fake", "--no-bus",
                       "--pressure-socket=" + path, "--control-socket="])
    d.start()
    rc = d.wait()
    ok(rc == 4 and open(path).read() == "keep me\n" and
       "not a socket" in d.stderr(),
       "a file in the socket's place: exit status 4, the file untouched",
       rc, d.stderr())

    stale = os.path.join(tmp, "stale.sock")
    so = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    so.bind(stale)
    so.close()
    d = h.Daemon(tmp, ["--source=fake", "--no-bus",
                       "--pressure-socket=" + stale, "--control-socket="])
    ready = d.start()
    r = None
    if ready:
        r = h.Reader(stale)
        r.close()
    ok(ready and r is not None and d.stop() == 0,
       "a stale socket left by a dead daemon is reclaimed", d.stderr())

    d = h.Daemon(tmp, ["--no-bus", "--pressure-socket=",
                       "--control-socket="],
                 dict(os.environ, MEMBROKER_SOURCE="fake"))
    d.start()
    rc = d.wait()
    ok(rc == 1 and "--source=fake" in d.stderr(),
       "MEMBROKER_SOURCE=fake alone does not give the fake source", rc,
       d.stderr())

    # the policy: only root owns the name
    d = h.Daemon(tmp, ["--source=fake", "--pressure-socket=",
                       "--control-socket="], s.bus.env())
    d.binary = "setpriv"
    d.args = h.NOBODY[1:] + [h.for_nobody(h.MEMBROKERD)] + d.args
    d.start()
    rc = d.wait()
    err = d.stderr().strip()
    ok(rc == 1 and "policy" in err and len(err.splitlines()) == 1,
       "the D-Bus policy lets only root own the name: exit 1, one line",
       rc, err)

    for args, what in ((["--repeat=0"], "--repeat=0"),
                       (["--critical-percent=60"], "critical above medium"),
                       (["--low=2G", "--high=1G"], "low above high"),
                       (["--bogus"], "an unknown option")):
        d = h.Daemon(tmp, args + ["--no-bus"])
        d.start()
        ok(d.wait() == 2, "usage error (%s): exit status 2" % what,
           d.stderr())


def test_repeat_and_slow_clients(tmp):
    """Re-sending while LOW lasts; nothing while HIGH; a client that never
    reads holds up nobody; a thousand clients come and go."""
    s = Setup(tmp, ["--repeat=0.05"])
    if not ok(s.ready, "daemon with --repeat=0.05 starts", s.d.stderr()):
        s.stop()
        return
    g = h.glib_client(s.bus)
    g.wait_line("READY")
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.connect(s.psock)          # never reads
    reader = h.Reader(s.psock, background=True)
    h.wait_for(lambda: s.metric("membrokerd_pressure_clients") == 2)

    s.push(STATE_LOW, 90 * MIB)
    # until the stuck client's buffer is full: events dropped for it
    full = h.wait_for(lambda: (s.metric("membrokerd_pressure_dropped_total")
                               or 0) >= 3)
    ok(full, "a client that never reads: its events are dropped, the "
       "daemon goes on", s.metrics())
    s.push(STATE_LOW, 20 * MIB)      # deeper, while it is stuck
    s.push(STATE_HIGH, 500 * MIB)
    events = s.metric("membrokerd_pressure_events_total")
    got = levels(sync_for(g, events, levels))
    ok(len(got) >= 3 and all(x == 50 for x in got[:3]) and
       got[-1] == 255 and set(got) == {50, 255} and len(got) == events,
       "GLib gets 50 again and again while LOW lasts, then 255 when it "
       "deepens: one signal per pressure event", got, events)
    h.wait_for(lambda: len(reader.lines()) >= events)
    lines = reader.lines()
    ok(lines == got,
       "the reading client got every event the stuck one missed", lines,
       got)

    time.sleep(20 * 0.05)            # twenty re-send intervals of HIGH
    got = g.sync()
    ok(levels(got) == [] and reader.lines() == lines and
       s.metric("membrokerd_pressure_events_total") == events,
       "nothing at all while HIGH lasts", got)

    base = s.d.fds()
    socks = []
    for _ in range(1000):
        so = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        so.connect(s.psock)
        socks.append(so)
    all_in = h.wait_for(lambda: s.metric("membrokerd_pressure_clients")
                        == 1002)
    s.push(STATE_LOW, 90 * MIB)
    s.push(STATE_HIGH, 500 * MIB)
    got = 0
    for so in socks:
        so.settimeout(h.GUARD)
        got += so.recv(16).startswith(b"50\n")
        so.close()
    gone = h.wait_for(lambda: s.metric("membrokerd_pressure_clients") == 2)
    ok(all_in and got == 1000 and gone and s.d.fds() == base,
       "a thousand clients connect, each gets the warning, they leave: "
       "no fd left behind", got, s.d.fds(), base)
    for _ in range(1000):            # and a thousand that just come and go
        so = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        so.connect(s.psock)
        so.close()
    # The daemon accepts 64 at a time and answers the control socket in
    # between: the two clients left can be all it has while the rest
    # still wait to be accepted.  All gone is all accepted, and then left
    # (one reading of the metrics for both).

    def all_gone():
        m = s.metrics()
        return (h.metric(m, "membrokerd_pressure_clients") == 2 and
                h.metric(m, "membrokerd_pressure_clients_accepted_total")
                == 2002)
    gone = h.wait_for(all_gone)
    ok(gone and s.d.fds() == base,
       "a thousand more connect and leave at once", s.d.fds(), base,
       s.metric("membrokerd_pressure_clients_accepted_total"))

    g.quit()
    stuck.close()
    reader.close()
    ok(s.stop() == 0, "the daemon stops cleanly after all that",
       s.d.stderr())


def test_max_clients(tmp):
    s = Setup(tmp, ["--max-clients=3"], bus=False)
    socks = []
    for _ in range(5):
        so = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        so.connect(s.psock)
        socks.append(so)
    h.wait_for(lambda: s.metric("membrokerd_pressure_clients_refused_total")
               == 2)
    closed = 0
    for so in socks:
        so.settimeout(0.2)
        try:
            closed += so.recv(16) == b""
        except socket.timeout:
            pass
    ok(s.metric("membrokerd_pressure_clients") == 3 and closed == 2,
       "over --max-clients: the extra connections are closed at once",
       closed)
    for so in socks:
        so.close()
    s.stop()


def test_control(tmp):
    s = Setup(tmp, bus=False)
    c = s.c
    st, body, heads = c.request(h.MSG_HELLO)
    hello = h.HELLO.unpack(body) if len(body) == h.HELLO.size else None
    ok(st == 0 and hello and hello[0] == 1 and hello[1] == 1 and
       hello[2] == s.d.proc.pid and heads[0][2] == h.MSG_HELLO | h.MSG_REPLY
       and heads[0][3] == c.id,
       "HELLO: version 1..1, the daemon's pid, the request's id", hello,
       heads)
    st, _, heads = c.request(h.MSG_HELLO, version=2)
    ok(st == -errno.EPROTONOSUPPORT and heads[0][1] == 1,
       "a request in version 2: -EPROTONOSUPPORT, and the version spoken",
       st, heads)
    st, _, _ = c.request(77)
    ok(st == -errno.EOPNOTSUPP, "an unknown type: -EOPNOTSUPP", st)
    st, _, _ = c.request(h.MSG_FAKE_PUSH, b"short")
    ok(st == -errno.EINVAL, "a short FAKE_PUSH payload: -EINVAL", st)
    st = c.push(9, 0)
    ok(st == -errno.EINVAL, "a FAKE_PUSH with no such state: -EINVAL", st)

    # a FAKE_PUSH from another user is refused
    code = ("import sys; sys.path.insert(0, %r); import harness as h; "
            "c = h.Control(%r); print(c.push(1, 0))"
            % (h.nobody_harness(), s.csock))
    out = subprocess.run(h.NOBODY + ["/usr/bin/python3", "-c", code],
                         capture_output=True, text=True)
    ok(out.stdout.strip() == str(-errno.EPERM),
       "FAKE_PUSH from another uid: -EPERM", out.stdout, out.stderr)

    bad = h.Control(s.csock)
    bad.send_raw(b"garbage")
    r1 = bad.recv()
    r2 = bad.recv()
    ok(r1 is not None and r1[0][5] == -errno.EBADMSG and r2 is None,
       "not a message: -EBADMSG, then the connection is closed", r1, r2)
    bad.close()
    bad = h.Control(s.csock)
    bad.send_raw(h.HDR.pack(h.MBD_MAGIC, 1, h.MSG_HELLO, 1, 0, 0, 100))
    r1 = bad.recv()
    ok(r1 is not None and r1[0][5] == -errno.EBADMSG,
       "a header whose length is not the packet's: -EBADMSG", r1)
    bad.close()

    # a client that sends requests and never reads its replies
    greedy = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    greedy.connect(s.csock)
    greedy.setblocking(False)
    sent = 0
    try:
        for i in range(100000):
            greedy.send(h.HDR.pack(h.MBD_MAGIC, 1, h.MSG_METRICS, i, 0, 0,
                                   0))
            sent += 1
    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
        pass
    dropped = h.wait_for(lambda: s.metric("membrokerd_control_dropped_total")
                         == 1)
    ok(dropped and c.request(h.MSG_HELLO)[0] == 0,
       "a control client that never reads is dropped; others are served",
       sent)
    greedy.close()

    d2 = h.Daemon(tmp, ["--no-bus", "--pressure-socket=",
                        "--control-socket=" + os.path.join(tmp, "c2.sock"),
                        "--source=meminfo"])
    if d2.start():
        c2 = h.Control(os.path.join(tmp, "c2.sock"))
        ok(c2.push(STATE_LOW, 0) == -errno.EOPNOTSUPP,
           "FAKE_PUSH to a daemon not on the fake source: -EOPNOTSUPP")
        c2.close()
    else:
        ok(False, "daemon on the meminfo source starts", d2.stderr())
    d2.stop()
    s.stop()


MEMINFO = """MemTotal:        1048576 kB
MemFree:          %d kB
MemAvailable:     %d kB
Buffers:               0 kB
Cached:                0 kB
SwapCached:            0 kB
Committed_AS:      10000 kB
CommitLimit:     1000000 kB
"""


def write_meminfo(root, avail_kib):
    p = os.path.join(root, "proc", "meminfo")
    with open(p + ".tmp", "w") as f:
        f.write(MEMINFO % (avail_kib, avail_kib))
    os.rename(p + ".tmp", p)


def test_meminfo(tmp):
    """The real meminfo source on a file: the sd-event handler runs on
    LOW and not otherwise."""
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "proc"))
    write_meminfo(root, 900 * 1024)
    psock = os.path.join(tmp, "mp.sock")
    csock = os.path.join(tmp, "mc.sock")
    d = h.Daemon(tmp, ["--no-bus", "--source=meminfo", "--root=" + root,
                       "--low=100M", "--high=300M", "--repeat=3600",
                       "--pressure-socket=" + psock,
                       "--control-socket=" + csock])
    if not ok(d.start(), "daemon on the meminfo source of a test file",
              d.stderr()):
        return
    c = h.Control(csock)

    def state_is(name):
        return h.metric(h.parse_metrics(c.metrics()), "membroker_state",
                        state=name) == 1

    m = h.sdevent_client(psock)
    m.wait_line("READY")
    h.wait_for(lambda: state_is("high"))
    ok(pressures(m.sync()) == [], "meminfo HIGH: the handler does not run")
    write_meminfo(root, 50 * 1024)
    low = h.wait_for(lambda: state_is("low"))
    got = sync_for(m, 1, pressures)
    ok(low and len(pressures(got)) == 1,
       "meminfo LOW: the sd-event handler runs once", got)
    write_meminfo(root, 900 * 1024)
    high = h.wait_for(lambda: state_is("high"))
    got = m.sync()
    ok(high and pressures(got) == [],
       "meminfo recovers: the handler does not run", got)
    m.quit()
    c.close()
    d.stop()


def test_nobody_copy(tmp):
    """What the tests run as nobody comes from a place nobody can use,
    even from a clone nobody cannot enter (under /root, mode 0700)."""
    hidden = os.path.join(tmp, "hidden")
    os.mkdir(hidden, 0o700)
    prog = os.path.join(hidden, "prog")
    with open(prog, "w") as f:
        f.write("#!/bin/sh\necho ran\n")
    os.chmod(prog, 0o755)
    ok(not h.nobody_can(prog),
       "nobody cannot run a program in a directory of mode 0700")
    copy = h.for_nobody(prog)
    out = subprocess.run(h.NOBODY + [copy], capture_output=True, text=True)
    ok(copy != prog and out.stdout == "ran\n",
       "for_nobody(): a copy of it that nobody runs", copy, out.stderr)
    ok(h.for_nobody(h.MEMBROKERD) and h.nobody_can(h.for_nobody(h.MEMBROKERD)),
       "for_nobody(): membrokerd, as is or copied, nobody can run",
       h.for_nobody(h.MEMBROKERD))
    h.nobody_cleanup()
    ok(not os.path.exists(copy), "nobody_cleanup() removes the copies",
       copy)


def test_install(tmp):
    dest = os.path.join(tmp, "dest")
    out = subprocess.run(["make", "-s", "-C", h.DAEMON_DIR, "install",
                          "DESTDIR=" + dest, "PREFIX=/usr"],
                         capture_output=True, text=True)
    want = ["usr/sbin/membrokerd",
            "usr/lib/systemd/system/membrokerd.service",
            "usr/share/dbus-1/system.d/membrokerd.conf",
            "usr/share/dbus-1/interfaces/org.freedesktop.LowMemoryMonitor.xml",
            "usr/share/man/man8/membrokerd.8"]
    missing = [f for f in want if not os.path.isfile(os.path.join(dest, f))]
    ok(out.returncode == 0 and not missing,
       "make install DESTDIR= PREFIX=/usr: daemon, unit, policy, "
       "interface, man page", out.stderr, missing)
    unit = os.path.join(dest, want[1])
    text = open(unit).read() if os.path.exists(unit) else ""
    ok("ExecStart=/usr/sbin/membrokerd " in text and
       "Type=notify" in text, "the unit runs /usr/sbin/membrokerd, "
       "Type=notify", text)
    # systemd checks the unit; ExecStart must name a file that exists
    test_unit = os.path.join(tmp, "membrokerd.service")
    with open(test_unit, "w") as f:
        f.write(text.replace("ExecStart=/usr/sbin/membrokerd",
                             "ExecStart=" + os.path.join(dest, want[0])))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no",
                          test_unit], capture_output=True, text=True)
    ok(out.returncode == 0 and not out.stderr.strip(),
       "systemd-analyze verify accepts the unit", out.stderr)
    out = subprocess.run(["man", "-l", "-Tutf8", os.path.join(dest, want[4])],
                         capture_output=True, text=True)
    page = re.sub(".\b", "", out.stdout)
    ok(out.returncode == 0 and "EXIT STATUS" in page and
       "MEMORY_PRESSURE_WATCH" in page and "warning" not in out.stderr,
       "the man page renders, without troff warnings", out.stderr)


def main():
    tests = [("unit", lambda tmp: test_unit()),
             ("nobody-copy", test_nobody_copy), ("install", test_install),
             ("levels", test_levels),
             ("repeat", test_repeat_and_slow_clients),
             ("max-clients", test_max_clients), ("control", test_control),
             ("meminfo", test_meminfo)]
    # the system broker's (sysbroker.py)
    tests += [(name, lambda tmp, fn=fn: fn(tmp, ok))
              for name, fn in sysbroker.TESTS]
    only = os.environ.get("TESTS")
    if only:
        tests = [t for t in tests if t[0] in only.split(",")]
    print("TAP version 13")
    for name, fn in tests:
        with tempfile.TemporaryDirectory(prefix="mbd-%s-" % name) as tmp:
            os.chmod(tmp, 0o755)
            try:
                fn(tmp)
            except Exception:
                ok(False, "%s: the test itself failed" % name,
                   traceback.format_exc())
            finally:
                h.reap()
            reports = []
            for f in os.listdir(tmp):
                if f.startswith("membrokerd-") and f.endswith(".log"):
                    t = open(os.path.join(tmp, f)).read()
                    if re.search(r"Sanitizer|runtime error:", t):
                        reports.append(t)
            ok(not reports, "%s: no sanitizer report from any daemon" % name,
               *reports)
    print("1..%d" % n)
    print("# daemon: passed %d failed %d skipped %d" %
          (passed, failed, skipped))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, COUNTS), "w") as f:
        f.write("%d %d %d\n" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
