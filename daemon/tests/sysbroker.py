# SPDX-License-Identifier: GPL-2.0-or-later
#
# The system broker's host tests (run.py calls them): membrokerd on its
# fake source, fed over the control socket, and real processes using
# libmembroker (sys-client: a broker, caches, its own fake source) that
# find the daemon by themselves ($MEMBROKERD_SOCKET).  A few tests speak
# the protocol themselves (RawClient), to be a client that answers a POLL
# but never an ASK, or one that tries what it must not.
#
# The readings the tests push reflect what the clients gave back, as a
# kernel's would.  The daemon's LOW repeat is off (--refresh-ms=60000),
# so that a repeat of a stale figure never stands for a fresh reading;
# steps are followed through the daemon's metrics and its ring of
# decisions.  Every wait has a guard that only stops a hung test; no
# assertion is about how long anything took.

import errno
import os
import signal
import socket
import struct
import subprocess

import harness as h
from harness import MIB, STATE_LOW, STATE_STEADY, STATE_HIGH

LOW, HIGH = 100 * MIB, 300 * MIB      # the thresholds the tests push
HYST = LOW // 8                       # low / 8: the library's rule
END = LOW + HYST                      # where LOW ends
ENTRY = 100000                        # value bytes of a cache entry
MEMBROKERCTL = os.environ.get("MEMBROKERCTL", "")


class Sys:
    """The daemon on the fake source, with the system broker's clients."""

    def __init__(self, tmp, ok, extra=()):
        self.tmp = tmp
        self.ok = ok
        self.csock = os.path.join(tmp, "run", "control.sock")
        self.args = ["--source=fake", "--no-bus", "--pressure-socket=",
                     "--control-socket=" + self.csock, "--refresh-ms=60000",
                     "--answer-timeout=0.3", "--settle=0.3"] + list(extra)
        self.clients = []
        self.start()

    def start(self):
        self.d = h.Daemon(self.tmp, self.args)
        self.ready = self.d.start()
        self.c = h.Control(self.csock) if self.ready else None
        self.seq = 0

    def env(self, extra=None):
        e = dict(os.environ)
        e["MEMBROKERD_SOCKET"] = self.csock
        e.pop("MEMBROKER_SYSTEM_BROKER", None)
        e.update(extra or {})
        return e

    def client(self, caches, pool="pool", lo=0, hi=0, env=None, pre=(),
               registered=True):
        """A sys-client with caches (name, priority, entries); waits until
        it is registered (unless told not to)."""
        prog = os.path.join(h.TESTBIN, "sys-client")
        if pre:
            # another user (NOBODY): from where it can run it
            prog = h.for_nobody(prog)
        argv = list(pre) + [prog,
                            "--pool", pool, "--min", str(lo),
                            "--max", str(hi)]
        for name, prio, entries in caches:
            argv += ["--cache", "%s:%d:%d:%d" % (name, prio, entries, ENTRY)]
        cl = h.Client(argv, self.env(env))
        cl.pool = pool
        if registered and not cl.wait_line("STATE registered"):
            raise RuntimeError("client did not register: %s" % cl.seen)
        self.clients.append(cl)
        return cl

    def push(self, state, avail, time_ns=0):
        """A reading; returns once the daemon has taken it."""
        self.seq += 1
        st = self.c.push(state, avail, low=LOW, high=HIGH, time_ns=time_ns)
        if st != 0:
            raise RuntimeError("push refused: %d" % st)
        seq = self.seq
        if not h.wait_for(lambda: self.metric("membroker_last_sequence")
                          == seq):
            raise RuntimeError("the daemon did not take reading %d" % seq)

    def metric(self, name, **labels):
        return h.metric(h.parse_metrics(self.c.metrics()), name, **labels)

    def steps(self, kind="shrink"):
        return self.metric("membrokerd_sys_steps_total", kind=kind)

    def quiet(self):
        """Wait until no step is under way (settling or idle)."""
        return h.wait_for(lambda: self.metric("membrokerd_sys_phase",
                                              phase="polling") == 0 and
                          self.metric("membrokerd_sys_phase",
                                      phase="asking") == 0)

    def step_done(self, n, kind="shrink"):
        """Wait until step n (of its kind) is over."""
        return h.wait_for(lambda: (self.steps(kind) or 0) >= n and
                          self.metric("membrokerd_sys_phase",
                                      phase="polling") == 0 and
                          self.metric("membrokerd_sys_phase",
                                      phase="asking") == 0)

    def decisions(self, kind=h.DECISION_SHRINK):
        return [d for d in self.c.decisions() if d["kind"] == kind]

    def stop(self):
        """Stop clients and daemon; the clients (sanitized like the
        daemon in make check's SAN builds) must not have reported."""
        reports = []
        for cl in self.clients:
            cl.quit()
            while True:
                line = cl.next_line(0.01)
                if line is None:
                    break
            if any("Sanitizer" in x or "runtime error:" in x
                   for x in cl.seen):
                reports.append("\n".join(cl.seen[-40:]))
        self.ok(not reports, "no sanitizer report from any client",
                *reports)
        if self.c:
            self.c.close()
        return self.d.stop()


def cache_state(cl):
    """{cache: (bytes, target)} as the client sees it."""
    cl.proc.stdin.write(b"state\n")
    cl.proc.stdin.flush()
    got = cl.wait_line("STATUS")
    out = {}
    for line in got or []:
        w = line.split()
        if w[0] == "CACHE":
            d = dict(x.split("=") for x in w[2:])
            out[w[1]] = (int(d["bytes"]), int(d["target"]))
        elif w[0] == "STATUS":
            out["_status"] = dict(x.split("=") for x in w[1:])
    return out


def send(cl, cmd):
    cl.proc.stdin.write((cmd + "\n").encode())
    cl.proc.stdin.flush()


def records(lines, decision=None):
    """REC lines of a client, as dicts."""
    out = []
    for line in lines:
        if line.startswith("REC "):
            d = dict(x.split("=", 1) for x in line.split()[1:])
            if decision is None or d["decision"] == decision:
                out.append(d)
    return out


def entry_cost():
    """What a cache entry costs (value, key, overhead): at most this."""
    return ENTRY + 64 + 256


class RawClient:
    """A client speaking the protocol itself."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(h.GUARD)
        self.s.connect(path)
        self.id = 0

    def request(self, mtype, payload=b""):
        self.id += 1
        self.s.send(h.HDR.pack(h.MBD_MAGIC, h.MBD_VERSION, mtype, self.id,
                               0, 0, len(payload)) + payload)
        while True:
            data = self.s.recv(1 << 17)
            hdr = h.HDR.unpack(data[:h.HDR.size])
            if hdr[2] == mtype | h.MSG_REPLY and hdr[3] == self.id:
                return hdr[5], data[h.HDR.size:]

    def register(self, comm=b"raw"):
        return self.request(h.MSG_REGISTER, h.REGISTER.pack(comm, 0, 0))

    @staticmethod
    def pool(pid, name, lo=0, hi=0):
        return h.REC_POOL.pack(h.REC_KIND_POOL, h.REC_POOL.size, pid, lo,
                               hi, name)

    @staticmethod
    def clerk(cid, pool, prio, nbytes, name, flags=1):
        return h.REC_CLERK.pack(h.REC_KIND_CLERK, h.REC_CLERK.size, cid,
                                pool, prio, flags, 0, nbytes, h.U64_MAX,
                                name)

    def next_request(self):
        """The daemon's next request: (type, id, payload)."""
        data = self.s.recv(1 << 17)
        hdr = h.HDR.unpack(data[:h.HDR.size])
        return hdr[2], hdr[3], data[h.HDR.size:]

    def answer(self, mtype, rid, payload=b"", status=0, flags=0):
        self.s.send(h.HDR.pack(h.MBD_MAGIC, h.MBD_VERSION,
                               mtype | h.MSG_REPLY, rid, flags, status,
                               len(payload)) + payload)

    def close(self):
        self.s.close()


# Three processes, each with a cheap and an expensive cache of 100
# entries (about 10 MB each); the cheap ones 10, 20, 30, the dear 70..90.
THREE = [[("cheapA", 20, 100), ("dearA", 80, 100)],
         [("cheapB", 10, 100), ("dearB", 90, 100)],
         [("cheapC", 30, 100), ("dearC", 70, 100)]]


def three(s):
    return [s.client(c, pool="pool" + "ABC"[i]) for i, c in
            enumerate(THREE)]


def test_register(tmp, ok):
    s = Sys(tmp, ok)
    if not ok(s.ready, "sys: the daemon starts", s.d.stderr()):
        return
    cls = three(s)
    rows = s.c.clerks()
    mine = {(r["pool"], r["name"]): r for r in rows}
    pids = {r["pid"] for r in rows}
    want = {("pool" + "ABC"[i], name): prio for i, c in enumerate(THREE)
            for name, prio, _ in c}
    st = cache_state(cls[0])
    ok(len(rows) == 6 and set(mine) == set(want) and
       all(mine[k]["priority"] == v for k, v in want.items()) and
       pids == {c.proc.pid for c in cls} and
       all(r["flags"] & h.ROW_SHRINKABLE for r in rows) and
       mine[("poolA", "cheapA")]["bytes"] == st["cheapA"][0] and
       mine[("poolA", "dearA")]["comm"] == "sys-client",
       "three processes register their pools and clerks: names, "
       "priorities, pids, bytes", rows)
    ok(s.metric("membrokerd_sys_clients") == 3 and
       s.metric("membrokerd_sys_clerks") == 6,
       "the metrics count 3 clients, 6 clerks")
    # a pool's bounds
    s.client([("x", 50, 10)], pool="bounded", lo=5 * MIB, hi=50 * MIB)
    r = [r for r in s.c.clerks() if r["pool"] == "bounded"]
    ok(len(r) == 1 and r[0]["pool_min"] == 5 * MIB and
       r[0]["pool_max"] == 50 * MIB, "a pool's min and max", r)
    if MEMBROKERCTL:
        out = subprocess.run([MEMBROKERCTL, "clerks", "-S", s.csock],
                             capture_output=True, text=True)
        ok(out.returncode == 0 and all(n in out.stdout for _, n in want) and
           all(str(c.proc.pid) in out.stdout for c in cls),
           "membrokerctl clerks lists every process's clerks", out.stdout,
           out.stderr)
        out = subprocess.run([MEMBROKERCTL, "-j", "clerks", "-S", s.csock],
                             capture_output=True, text=True)
        ok(out.returncode == 0 and out.stdout.count('"name"') == 7,
           "... and as JSON", out.stdout, out.stderr)
        out = subprocess.run([MEMBROKERCTL, "-s", "meminfo", "top", "-n",
                              "1", "-S", s.csock], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL)
        ok(out.returncode == 0 and "system broker: 4 processes" in
           out.stdout and all(n in out.stdout for _, n in want),
           "membrokerctl top shows them too", out.stdout, out.stderr)
    ok(s.stop() == 0, "sys: the daemon stops cleanly", s.d.stderr())


def test_order(tmp, ok):
    """Cheapest first across processes, as much as is short and no more;
    the expensive caches only once the cheap ones are empty."""
    s = Sys(tmp, ok)
    cls = three(s)
    before = {}
    for cl in cls:
        before.update(cache_state(cl))
    cheap = before["cheapB"][0] + before["cheapA"][0]
    short = cheap + before["cheapC"][0] // 2
    s.push(STATE_LOW, END - short)
    ok(s.step_done(1), "LOW: a step is taken")
    d = s.decisions()
    asked = {x["clerk"]: x["asked"] for x in d}
    freed = sum(x["freed"] for x in d)
    ok(set(asked) == {"cheapA", "cheapB", "cheapC"} and
       asked["cheapB"] == before["cheapB"][0] and
       asked["cheapA"] == before["cheapA"][0] and
       sum(asked.values()) == short,
       "a shortfall of 2.5 cheap caches: the two cheapest emptied, the "
       "third asked the rest, nobody else; asked == shortfall", d)
    ok(short <= freed < short + entry_cost(),
       "freed: the shortfall, and less than an entry more (%d of %d)"
       % (freed, short), d)
    after = {}
    for cl in cls:
        after.update(cache_state(cl))
    ok(all(after[n][0] == before[n][0] for n in ("dearA", "dearB", "dearC")),
       "the expensive caches gave nothing", after)
    ok(after["cheapC"][1] == after["cheapC"][0] and
       after["cheapB"][1] == 0,
       "the clerks are held at what they kept (their targets)", after)
    # the memory came back; now more is short than the cheap caches hold
    s.push(STATE_STEADY, END + 10 * MIB)
    s.quiet()
    more = after["cheapC"][0] + 6 * MIB
    s.push(STATE_LOW, END - more)
    ok(s.step_done(2), "a second LOW: another step")
    d2 = s.decisions()[len(d):]
    asked2 = {x["clerk"]: x["asked"] for x in d2}
    ok(set(asked2) == {"cheapC", "dearC"} and
       asked2["cheapC"] == after["cheapC"][0] and
       asked2["dearC"] == 6 * MIB,
       "the last cheap cache emptied first, then the cheapest of the "
       "expensive ones (70) gives the rest", d2)
    s.stop()


def test_converge(tmp, ok):
    """A step, then its effect is waited for; steps that follow take only
    what is still short."""
    s = Sys(tmp, ok)
    cls = three(s)
    short = 15 * MIB
    measured = h.mono_ns()
    s.push(STATE_LOW, END - short)
    ok(s.step_done(1), "LOW: a first step")
    # a reading that comes now but was measured before the answers (the
    # module may answer with an earlier evaluation): nothing to ask
    n = s.steps()
    s.push(STATE_LOW, END - short, time_ns=measured)
    ok(s.step_done(n + 1) and
       sum(x["asked"] for x in s.decisions()) == short,
       "a reading measured before the answers came: what they gave back "
       "counts, nothing is asked twice", s.decisions())
    asked = sum(x["asked"] for x in s.decisions())
    freed = sum(x["freed"] for x in s.decisions())
    # no new reading: the settle time passes, the daemon looks again at
    # the last reading plus what was freed since: nothing is short
    ok(h.wait_for(lambda: (s.steps() or 0) >= 3) and s.quiet(),
       "no reading: the daemon looks again on its own")
    d = s.decisions()
    ok(sum(x["asked"] for x in d) == asked == short,
       "... and asks nothing more: what was freed covers it", d)
    # a reading after it: the job took more meanwhile, 6 MiB are short
    n = s.steps()
    s.push(STATE_LOW, END - 6 * MIB)
    ok(s.step_done(n + 1), "a reading showing 6 MiB short again")
    d2 = s.decisions()[len(d):]
    ok(sum(x["asked"] for x in d2) == 6 * MIB,
       "the next step asks those 6 MiB and no more", d2)
    total = sum(x["freed"] for x in s.decisions())
    ok(total < (short + 6 * MIB) * 1.5,
       "overshoot %.3f (freed %d for %d short)"
       % (total / (short + 6 * MIB), total, short + 6 * MIB))
    del cls
    s.push(STATE_STEADY, END + MIB)
    s.quiet()
    n = s.steps()
    s.push(STATE_STEADY, END + MIB)
    ok(s.steps() == n, "STEADY: no step")
    s.stop()


def test_no_double(tmp, ok):
    """The processes hear the same LOW: they leave it to the daemon."""
    s = Sys(tmp, ok)
    cls = three(s)
    for cl in cls:
        cl.sync()
    short = 12 * MIB
    for cl in cls:
        send(cl, "low %d" % (END - short))
    for cl in cls:
        cl.sync()
    s.push(STATE_LOW, END - short)
    s.step_done(1)
    local = []
    system = []
    for cl in cls:
        cl.sync()
        local += records(cl.seen, "shrink")
        system += records(cl.seen, "system-shrink")
    lows = [r for cl in cls for r in records(cl.seen)
            if r["state"] == "low" and r["decision"] == "stable"]
    freed = sum(int(r["freed"]) for r in system)
    ok(not local and lows and short <= freed < short + entry_cost(),
       "their own LOW takes no local step; only the daemon's asks free "
       "memory (%d freed for %d short)" % (freed, short), local, system)
    st = cache_state(cls[0])["_status"]
    ok(int(st["flags"]) & 1, "a client says the system broker is in charge",
       st)
    s.stop()


def test_silent(tmp, ok):
    """A daemon that stops answering: the processes shrink by themselves
    again; when it answers again, it is in charge again."""
    s = Sys(tmp, ok)
    cl = s.client([("c", 10, 100), ("d", 90, 100)])
    cl.sync()
    s.d.proc.send_signal(signal.SIGSTOP)
    try:
        got = False
        for _ in range(int(h.GUARD * 10)):
            send(cl, "low %d" % (END - 5 * MIB))
            if records(cl.sync(), "shrink"):
                got = True
                break
            h.time.sleep(0.1)
        ok(got, "the daemon silent while LOW lasts: the process shrinks "
           "by itself", cl.seen[-10:])
    finally:
        s.d.proc.send_signal(signal.SIGCONT)
    s.stop()


def test_skip(tmp, ok):
    """A client that does not answer is passed over; the next in order
    is asked what it was to give."""
    s = Sys(tmp, ok)
    a = s.client([("cheapA", 10, 100)], pool="poolA")
    b = s.client([("cheapB", 20, 100)], pool="poolB")
    c = s.client([("dearC", 90, 100)], pool="poolC")
    # a stalled process: it does not even answer the POLL
    send(a, "stall")
    a.wait_line("STALLED")
    sb = cache_state(b)["cheapB"][0]
    short = 5 * MIB
    s.push(STATE_LOW, END - short)
    ok(s.step_done(1), "a step with a stalled client")
    d = s.decisions()
    ok([x["clerk"] for x in d] == ["cheapB"] and d[0]["asked"] == short,
       "a process that does not answer: left out, the next in order "
       "(priority 20) gives the 5 MiB", d)
    ok((s.metric("membrokerd_sys_skipped_total") or 0) >= 1,
       "... and counted as skipped")
    send(a, "resume")
    a.sync()
    s.push(STATE_STEADY, END + MIB)
    s.quiet()

    # one that answers POLL but never ASK: skipped at the ask, its part
    # goes to the next in order
    raw = RawClient(s.csock)
    st, _ = raw.register()
    rec = raw.pool(1, b"rawpool") + raw.clerk(1, 1, 0, 20 * MIB, b"rawc")
    st2, _ = raw.request(h.MSG_REPORT, rec)
    ok(st == 0 and st2 == 0, "a raw client registers a clerk of priority 0")
    n = len(s.decisions())
    s.push(STATE_LOW, END - short)
    # it answers the POLL with what it has, and ignores the ASK
    t, rid, _ = raw.next_request()
    if t == h.MSG_POLL:
        raw.answer(h.MSG_POLL, rid, rec)
    t, rid, _ = raw.next_request()
    ok(t == h.MSG_ASK, "the daemon asks the cheapest, the raw client")
    ok(s.step_done(2), "the step ends without its answer")
    d = s.decisions()[n:]
    raw_d = [x for x in d if x["clerk"] == "rawc"]
    others = [x for x in d if x["clerk"] != "rawc"]
    ok(raw_d and h.OUTCOME[raw_d[0]["outcome"]] == "skipped" and
       [x["clerk"] for x in others] == ["cheapA"] and
       others[0]["asked"] == short and
       h.OUTCOME[others[0]["outcome"]] == "done",
       "no answer in time: recorded skipped, and the next in order "
       "(cheapA, 10) gives the 5 MiB instead", d)
    del sb
    raw.close()
    s.stop()


def test_only_own(tmp, ok):
    """Ids are per connection: a process is asked about its own clerks
    only, and cannot make the daemon ask another."""
    s = Sys(tmp, ok)
    real = s.client([("realc", 50, 100)], pool="realpool")
    before = cache_state(real)["realc"][0]
    raw = RawClient(s.csock)
    raw.register()
    # the same ids the library uses for its first pool and clerk (1, 2)
    rec = (raw.pool(1, b"rawpool") + raw.pool(2, b"rawpool2") +
           raw.clerk(1, 1, 0, 4 * MIB, b"rawc") +
           raw.clerk(2, 2, 0, 4 * MIB, b"rawc2"))
    st, _ = raw.request(h.MSG_REPORT, rec)
    # what a client must not do: ask, or answer what it was not asked
    st_ask, _ = raw.request(h.MSG_ASK, h.ASK.pack(h.ASK_ITEM.size, 1, 1, 1) +
                            h.ASK_ITEM.pack(1, 0, 10 * MIB, 10 * MIB, 0))
    raw.answer(h.MSG_ASK, 12345, h.ASK.pack(h.ASK_RESULT.size, 1, 1, 1) +
               h.ASK_RESULT.pack(1, 0, 10 * MIB, 0, 0))
    ok(st == 0 and st_ask == -errno.EOPNOTSUPP,
       "a client cannot send ASK (-EOPNOTSUPP); an answer to nothing is "
       "ignored", st, st_ask)
    real.sync()
    ok(cache_state(real)["realc"][0] == before and
       not records(real.seen, "system-shrink"),
       "the other process's clerks with the same ids are untouched")
    # LOW: the raw clerks are cheapest; both requests go to the raw client
    s.push(STATE_LOW, END - 2 * MIB)
    t, rid, _ = raw.next_request()
    raw.answer(t, rid, rec)
    t, rid, p = raw.next_request()
    head = h.ASK.unpack(p[:h.ASK.size])
    items = [h.ASK_ITEM.unpack(p[h.ASK.size + i * head[0]:
                                 h.ASK.size + i * head[0] + h.ASK_ITEM.size])
             for i in range(head[1])]
    ok(t == h.MSG_ASK and [i[0] for i in items] == [1] and
       items[0][2] == 2 * MIB,
       "the daemon asks the raw client about its own clerk 1", items)
    raw.answer(h.MSG_ASK, rid, h.ASK.pack(h.ASK_RESULT.size, 1, 1, 1) +
               h.ASK_RESULT.pack(1, 0, 2 * MIB, 2 * MIB, 2 * MIB))
    s.step_done(1)
    real.sync()
    ok(cache_state(real)["realc"][0] == before,
       "the real process with the same ids was never asked")
    raw.close()
    s.stop()


def test_poll_packets(tmp, ok):
    """A POLL answered in several packets is whole with the last."""
    s = Sys(tmp, ok)
    raw = RawClient(s.csock)
    raw.register()
    raw.request(h.MSG_REPORT, raw.pool(1, b"rawpool"))
    s.push(STATE_LOW, END - 2 * MIB)
    t, rid, _ = raw.next_request()
    raw.answer(t, rid, raw.pool(1, b"rawpool") +
               raw.clerk(1, 1, 50, 20 * MIB, b"first"), flags=h.F_MORE)
    raw.answer(t, rid, raw.clerk(2, 1, 0, 20 * MIB, b"second"))
    t2, rid2, p = raw.next_request()
    head = h.ASK.unpack(p[:h.ASK.size])
    items = [h.ASK_ITEM.unpack(p[h.ASK.size + i * head[0]:
                                 h.ASK.size + i * head[0] + h.ASK_ITEM.size])
             for i in range(head[1])]
    ok(t == h.MSG_POLL and t2 == h.MSG_ASK and
       [(i[0], i[2]) for i in items] == [(2, 2 * MIB)],
       "the clerk of the last packet (the cheapest) is asked: the daemon "
       "waited for the whole answer", items)
    raw.close()
    s.stop()


def test_bad_input(tmp, ok):
    s = Sys(tmp, ok)
    raw = RawClient(s.csock)
    st, _ = raw.request(h.MSG_REPORT, raw.pool(1, b"p"))
    ok(st == -errno.EPERM, "REPORT before REGISTER: -EPERM", st)
    st, body = raw.register()
    reg = h.REGISTERED.unpack(body[:h.REGISTERED.size])
    ok(st == 0 and reg[0] > 0 and reg[1] > 0 and reg[2] > 0,
       "REGISTER: a client number, a silence and a report interval", reg)
    st, _ = raw.register()
    ok(st == -errno.EALREADY, "REGISTER twice: -EALREADY", st)
    st, _ = raw.request(h.MSG_REPORT, raw.clerk(1, 99, 10, 1, b"c"))
    ok(st == -errno.EINVAL, "a clerk of an unknown pool: -EINVAL", st)
    st, _ = raw.request(h.MSG_REPORT, raw.pool(1, b"p") +
                        raw.clerk(1, 1, 101, 1, b"c"))
    ok(st == -errno.EINVAL, "priority 101: -EINVAL", st)
    st, _ = raw.request(h.MSG_REPORT, b"\x01\x00\x03\x00\x01\x00\x00\x00")
    ok(st == -errno.EINVAL, "a record of bad length: -EINVAL", st)
    st, _ = raw.request(h.MSG_REPORT, raw.pool(2, b"p", 10, 5))
    ok(st == -errno.EINVAL, "a pool whose min is above its max: -EINVAL", st)
    rec = b"".join(raw.pool(i, b"p") for i in range(1, 300))
    st, _ = raw.request(h.MSG_REPORT, rec)
    ok(st == -errno.ENOSPC, "more than 256 pools: -ENOSPC", st)
    st, _ = raw.request(h.MSG_REPORT, raw.clerk(1, 1, 50, 1, b"c1") +
                        raw.clerk(2, 999, 50, 1, b"c2"))
    names = [r["name"] for r in s.c.clerks()]
    ok(st == -errno.EINVAL and names == ["c1"],
       "what came before a bad record is taken, the rest not", names)
    st, _ = raw.request(h.MSG_REPORT, h.struct.pack("=HHI", 77, 8, 1))
    ok(st == 0, "a record of a kind the daemon does not know is skipped")
    raw.close()
    ok(h.wait_for(lambda: s.metric("membrokerd_sys_clients") == 0),
       "the connection closed: the client is gone")
    s.stop()


def test_dead(tmp, ok):
    """A process that dies is forgotten, also in the middle of a step."""
    s = Sys(tmp, ok)
    a = s.client([("cheapA", 10, 100)], pool="poolA")
    b = s.client([("cheapB", 20, 100)], pool="poolB")
    a.proc.kill()
    a.proc.wait()
    ok(h.wait_for(lambda: all(r["pool"] != "poolA"
                              for r in s.c.clerks())) and
       s.metric("membrokerd_sys_gone_total") == 1,
       "killed: its clerks are forgotten")
    s.push(STATE_LOW, END - 3 * MIB)
    s.step_done(1)
    ok([x["clerk"] for x in s.decisions()] == ["cheapB"],
       "the next LOW asks the living only", s.decisions())
    s.push(STATE_STEADY, END + MIB)
    s.quiet()
    # dies while it owes an answer to an ASK: the next in order gives
    raw = RawClient(s.csock)
    raw.register()
    rec = raw.pool(1, b"rawpool") + raw.clerk(1, 1, 0, 20 * MIB, b"rawc")
    raw.request(h.MSG_REPORT, rec)
    c = s.client([("dearC", 90, 100)], pool="poolC")
    n = len(s.decisions())
    s.push(STATE_LOW, END - 2 * MIB)
    t, rid, _ = raw.next_request()
    raw.answer(t, rid, rec)
    t, rid, _ = raw.next_request()
    raw.close()
    s.step_done(2)
    d = s.decisions()[n:]
    ok(t == h.MSG_ASK and [h.OUTCOME[x["outcome"]] for x in d
                           if x["clerk"] == "rawc"] == ["gone"] and
       [x["clerk"] for x in d if x["clerk"] != "rawc"] == ["cheapB"],
       "gone in the middle of a step: recorded gone, the next in order "
       "asked", d)
    del b, c
    s.stop()


def test_restart(tmp, ok):
    """The daemon restarts: every process registers again by itself."""
    s = Sys(tmp, ok)
    cls = [s.client([("c%d" % i, 10 * i, 20)], pool="p%d" % i)
           for i in range(3)]
    s.c.close()
    ok(s.d.stop() == 0, "the daemon stops")
    for cl in cls:
        cl.wait_line("STATE searching")
    s.start()
    got = [cl.wait_line("STATE registered") for cl in cls]
    ok(all(got) and all("registrations=2" in g[-1] for g in got),
       "a new daemon: each process registers again", got)
    ok(h.wait_for(lambda: len(s.c.clerks()) == 3),
       "and its clerks are listed again", s.c.clerks())
    s.stop()


def test_local(tmp, ok):
    """Without a daemon, or with MEMBROKER_SYSTEM_BROKER=0, the process
    decides alone, as it always did."""
    s = Sys(tmp, ok)
    s.c.close()
    s.d.stop()
    s.c = None
    alone = s.client([("c", 10, 100)], registered=False)
    alone.wait_line("STATE searching")
    send(alone, "low %d" % (END - MIB))
    got = records(alone.sync(), "shrink")
    ok(got and got[0]["clerk"] == "c",
       "no daemon: LOW shrinks locally", alone.seen)
    s.start()
    off = s.client([("c", 10, 100)], env={"MEMBROKER_SYSTEM_BROKER": "0"},
                   registered=False)
    ok(off.wait_line("STATE off") is not None, "MEMBROKER_SYSTEM_BROKER=0: "
       "the library does not look for the daemon")
    send(off, "low %d" % (END - MIB))
    got = records(off.sync(), "shrink")
    ok(got, "... and shrinks locally", off.seen)
    # the first one finds the daemon that came meanwhile
    ok(alone.wait_line("STATE registered") is not None,
       "a daemon started later is found (and registered with)")
    ok(len(s.c.clerks()) == 1, "only the process that may registered")
    s.stop()


def test_minmax(tmp, ok):
    """A pool's min_bytes holds however much is short; HIGH gives back
    within max_bytes."""
    s = Sys(tmp, ok)
    cl = s.client([("c", 10, 100), ("d", 90, 100)], lo=15 * MIB,
                  hi=25 * MIB)
    st = cache_state(cl)
    total = st["c"][0] + st["d"][0]
    s.push(STATE_LOW, END - 100 * MIB)
    s.step_done(1)
    st = cache_state(cl)
    held = st["c"][0] + st["d"][0]
    asked = sum(x["asked"] for x in s.decisions())
    ok(15 * MIB <= held < total and asked == total - 15 * MIB,
       "100 MiB short: the pool gives all above its 15 MiB minimum, no "
       "more (%d held)" % held, st)
    s.push(STATE_HIGH, HIGH + 200 * MIB)
    ok(s.step_done(1, "grow"), "HIGH: a grow step")
    st = cache_state(cl)
    ok(st["c"][1] + st["d"][1] <= 25 * MIB,
       "grown back within max_bytes: targets %d + %d" %
       (st["c"][1], st["d"][1]), st)
    s.stop()


def test_grow(tmp, ok):
    """HIGH lets what was taken grow back, the most expensive first."""
    s = Sys(tmp, ok)
    a = s.client([("cheapA", 10, 100), ("dearA", 80, 100)], pool="poolA")
    b = s.client([("cheapB", 20, 100), ("dearB", 90, 100)], pool="poolB")
    sa, sb = cache_state(a), cache_state(b)
    # both cheap caches, and 5 MiB of the cheaper of the dear ones
    short = sa["cheapA"][0] + sb["cheapB"][0] + 5 * MIB
    s.push(STATE_LOW, END - short)
    s.step_done(1)
    taken = {x["clerk"]: x["freed"] for x in s.decisions()}
    ok(set(taken) == {"cheapA", "cheapB", "dearA"},
       "LOW took the cheap caches and 5 MiB of the cheaper dear one", taken)
    s.push(STATE_STEADY, END + MIB)
    s.quiet()
    # room for the dear one's 5 MiB and part of the 20
    room = taken["dearA"] + 3 * MIB
    s.push(STATE_HIGH, HIGH + room)
    ok(s.step_done(1, "grow"), "HIGH: a grow step")
    g = {x["clerk"]: x["cap"] for x in s.decisions(h.DECISION_GROW)}
    ok(set(g) == {"dearA", "cheapB"} and g["dearA"] == h.U64_MAX and
       g["cheapB"] == 3 * MIB,
       "room for 8 MiB: the 80 gets its 5 back (cap lifted), then the 20 "
       "the 3 left (capped at 3 MiB); the 10 nothing yet", g)
    a.sync()
    b.sync()
    sa, sb = cache_state(a), cache_state(b)
    ok(sa["dearA"][1] == h.U64_MAX and sa["cheapA"][1] == 0 and
       0 < sb["cheapB"][1] < h.U64_MAX,
       "targets: the 80 lifted, the 20 raised by 3 MiB, the 10 held", sa, sb)
    # HIGH lasts: the rest comes a hysteresis band a step
    ok(h.wait_for(lambda: cache_state(a)["cheapA"][1] > 0),
       "while HIGH lasts, the cheapest gets room too, last")
    s.stop()


def visible_as(uid, csock):
    """CLERKS and DECISIONS as another user sees them."""
    code = ("import sys, json; sys.path.insert(0, %r); import harness as h;"
            " c = h.Control(%r); print(json.dumps([c.clerks(), "
            "c.decisions()]))" % (h.nobody_harness(), csock))
    out = subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
                          "--clear-groups", "/usr/bin/python3", "-c", code],
                         capture_output=True, text=True)
    import json
    return json.loads(out.stdout) if out.returncode == 0 else (None, out)


def test_visibility(tmp, ok):
    """Another user's clerk names are not for everyone."""
    s = Sys(tmp, ok)
    s.client([("rootcache", 10, 20)], pool="rootpool")
    nb = s.client([("nobodycache", 20, 20)], pool="nobodypool",
                  pre=h.NOBODY)
    s.push(STATE_LOW, END - MIB)
    s.step_done(1)
    rows = s.c.clerks()
    ok({r["name"] for r in rows} == {"rootcache", "nobodycache"} and
       {r["uid"] for r in rows} == {0, 65534},
       "root sees every clerk, with names", rows)
    got = visible_as(65534, s.csock)
    rows, dec = got
    ok(rows is not None and
       [r["name"] for r in rows if not r["flags"] & h.ROW_HIDDEN] ==
       ["nobodycache"] and
       [(r["uid"], r["name"], r["pid"], r["pool"]) for r in rows
        if r["flags"] & h.ROW_HIDDEN] == [(0, "", 0, "")],
       "nobody sees its own clerk by name, root's summed up, nameless",
       rows)
    ok(dec is not None and dec and
       all(d["clerk"] == "" and d["pid"] == 0 for d in dec
           if d["uid"] == 0),
       "... and root's decisions without names", dec)
    rows, dec = visible_as(65533, s.csock)
    ok(rows is not None and all(r["flags"] & h.ROW_HIDDEN for r in rows) and
       all(r["name"] == "" for r in rows) and len(rows) == 2,
       "a third user sees no names at all", rows)
    if MEMBROKERCTL:
        out = subprocess.run(h.NOBODY + [h.for_nobody(MEMBROKERCTL),
                                         "clerks", "-S", s.csock],
                             capture_output=True, text=True)
        ok(out.returncode == 0 and "nobodycache" in out.stdout and
           "rootcache" not in out.stdout and "rootpool" not in out.stdout,
           "membrokerctl clerks as nobody: own names only", out.stdout,
           out.stderr)
    s.stop()


TESTS = [("sys-register", test_register), ("sys-order", test_order),
         ("sys-converge", test_converge), ("sys-no-double", test_no_double),
         ("sys-silent", test_silent), ("sys-skip", test_skip),
         ("sys-only-own", test_only_own),
         ("sys-poll-packets", test_poll_packets),
         ("sys-bad-input", test_bad_input),
         ("sys-dead", test_dead), ("sys-restart", test_restart),
         ("sys-local", test_local), ("sys-minmax", test_minmax),
         ("sys-grow", test_grow), ("sys-visibility", test_visibility)]
