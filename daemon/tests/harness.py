# SPDX-License-Identifier: GPL-2.0-or-later
#
# What membrokerd's host tests (run.py) and its bench
# (bench/daemon_latency.py) share: a private system bus, the daemon, its
# control socket, and the real clients (GLib's GMemoryMonitor, sd-event's
# memory pressure source) as child processes that print what they get.
#
# Every wait has a guard (GUARD seconds) that only stops a hung test: no
# test passes or fails by how long something took.

import atexit
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

GUARD = float(os.environ.get("GUARD", "60"))
MIB = 1 << 20

MEMBROKERD = os.environ.get("MEMBROKERD", "")
TESTBIN = os.environ.get("TESTBIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))
DAEMON_DIR = os.path.dirname(HERE)

# protocol.h
MBD_MAGIC = 0x3164626D
MBD_VERSION = 1
MSG_HELLO, MSG_METRICS, MSG_FAKE_PUSH = 1, 2, 3
MSG_REGISTER, MSG_REPORT, MSG_POLL, MSG_ASK = 4, 5, 6, 7
MSG_CLERKS, MSG_DECISIONS = 8, 9
MSG_REPLY = 0x8000
F_MORE = 1
HDR = struct.Struct("=IHHIIiI")
FAKE = struct.Struct("=QIIIIQQQQ")
HELLO = struct.Struct("=HHII")
# the system broker (protocol.h)
REGISTER = struct.Struct("=16sII")
REGISTERED = struct.Struct("=IIII")
REC = struct.Struct("=HHI")
REC_POOL = struct.Struct("=HHIQQ32s")
REC_CLERK = struct.Struct("=HHIIIIIQQ64s")
REC_BYTES = struct.Struct("=HHIQ")
REC_KIND_POOL, REC_KIND_CLERK, REC_KIND_BYTES = 1, 2, 3
ASK = struct.Struct("=HHIQ")
ASK_ITEM = struct.Struct("=IIQQQ")
ASK_RESULT = struct.Struct("=IiQQQ")
LIST = struct.Struct("=HHI")
ROW = struct.Struct("=IIIIII8Q16s32s64s")
ROW_FIELDS = ("pid uid client priority flags clerks bytes target cap "
              "pool_min pool_max asked freed taken comm pool name").split()
DECISION = struct.Struct("=QQQIIIIIiQQQQ16s32s64s")
DECISION_FIELDS = ("seq time_ns step kind outcome pid uid priority status "
                   "shortfall asked freed cap comm pool clerk").split()
ROW_HIDDEN, ROW_SHRINKABLE, ROW_SKIPPED = 1, 2, 4
DECISION_SHRINK, DECISION_GROW = 1, 2
OUTCOME = {0: "done", 1: "skipped", 2: "gone", 3: "failed"}
U64_MAX = (1 << 64) - 1

STATE_LOW, STATE_STEADY, STATE_HIGH = 1, 2, 3
REASON = {"poll": 2, "reclaim": 3, "oom": 6}


# Every child a test starts, so that a test that breaks off (an exception)
# leaves nothing running: run.py calls reap() after each test.
CHILDREN = []


def spawn(*args, **kw):
    p = subprocess.Popen(*args, **kw)
    CHILDREN.append(p)
    return p


def reap():
    """Kill what is still running; the number of processes killed."""
    n = 0
    while CHILDREN:
        p = CHILDREN.pop()
        if p.poll() is None:
            p.kill()
            p.wait()
            n += 1
    return n


# The tests that check what another user may do run commands as nobody.
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
_nobody_dir = None
_nobody_copies = {}
_nobody_atexit = False


def nobody_can(path):
    """Whether user nobody can use PATH and the directory it is in: read
    (and run, when it is a program) and import from there."""
    cond = ["-r", path, "-a", "-r", os.path.dirname(path),
            "-a", "-x", os.path.dirname(path)]
    if os.access(path, os.X_OK):
        cond += ["-a", "-x", path]
    return subprocess.run(NOBODY + ["test"] + cond).returncode == 0


def for_nobody(path):
    """PATH if nobody can use it, else a copy that nobody can, in a
    directory of its own under the temporary directory, removed at exit
    (or by nobody_cleanup()).  From a clone nobody cannot enter (under
    /root, mode 0700) the tests would otherwise fail for want of their own
    files, not for anything the daemon does."""
    global _nobody_dir, _nobody_atexit

    if path in _nobody_copies:
        return _nobody_copies[path]
    if not path or nobody_can(path):
        return path
    if _nobody_dir is None:
        _nobody_dir = tempfile.mkdtemp(prefix="mbd-nobody-")
        os.chmod(_nobody_dir, 0o755)
        if not _nobody_atexit:
            atexit.register(nobody_cleanup)
            _nobody_atexit = True
    # one directory per copy: two files of one name never collide
    d = tempfile.mkdtemp(dir=_nobody_dir)
    os.chmod(d, 0o755)
    copy = os.path.join(d, os.path.basename(path))
    shutil.copyfile(path, copy)
    os.chmod(copy, 0o755 if os.access(path, os.X_OK) else 0o644)
    _nobody_copies[path] = copy
    return copy


def nobody_cleanup():
    """Remove what for_nobody() copied."""
    global _nobody_dir

    if _nobody_dir is not None:
        shutil.rmtree(_nobody_dir, ignore_errors=True)
    _nobody_dir = None
    _nobody_copies.clear()


def nobody_harness():
    """A directory nobody can import this module from."""
    return os.path.dirname(for_nobody(os.path.join(HERE, "harness.py")))


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def wait_for(pred, guard=GUARD, step=0.01):
    """Poll pred() until true; False if the guard ran out."""
    end = time.monotonic() + guard
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return False


class Bus:
    """A private dbus-daemon with Debian's system-bus configuration, our
    policy file included and nothing else."""

    def __init__(self, tmp, policy=None):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "system_bus_socket")
        conf = open("/usr/share/dbus-1/system.conf").read()
        conf = re.sub(r"<listen>.*?</listen>",
                      "<listen>unix:path=%s</listen>" % self.sock, conf)
        for tag in ("user", "pidfile", "servicehelper"):
            conf = re.sub(r"<%s>.*?</%s>\s*" % (tag, tag), "", conf)
        conf = re.sub(r"<standard_system_servicedirs\s*/>", "", conf)
        conf = re.sub(r"<syslog\s*/>", "", conf)
        conf = re.sub(r"<includedir>.*?</includedir>\s*", "", conf)
        conf = re.sub(r"<include[^>]*>.*?</include>\s*", "", conf)
        policy = policy or os.path.join(DAEMON_DIR, "membrokerd.conf")
        conf = conf.replace("</busconfig>",
                            "<include>%s</include>\n</busconfig>" % policy)
        self.conf = os.path.join(tmp, "system.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = spawn(
            ["dbus-daemon", "--config-file=" + self.conf, "--nofork",
             "--print-address=1"], stdout=subprocess.PIPE,
            stderr=open(os.path.join(tmp, "dbus.log"), "w"))
        self.address = self.proc.stdout.readline().decode().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon did not start: " +
                               open(os.path.join(tmp, "dbus.log")).read())

    def env(self, extra=None):
        e = dict(os.environ)
        e["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        e.update(extra or {})
        return e

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Daemon:
    """membrokerd as a child, started the way systemd starts a
    Type=notify service: it is up when READY=1 arrives."""

    count = 0

    def __init__(self, tmp, args, env=None, binary=None):
        Daemon.count += 1
        self.tmp = tmp
        self.n = Daemon.count
        self.args = args
        self.env = dict(env or os.environ)
        self.binary = binary or MEMBROKERD
        self.log = os.path.join(tmp, "membrokerd-%d.log" % self.n)
        self.proc = None
        self.ready = False
        self.notify_lines = []

    def start(self):
        path = os.path.join(self.tmp, "notify-%d" % self.n)
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(path)
        ns.settimeout(0.1)
        self.env["NOTIFY_SOCKET"] = path
        self.proc = spawn([self.binary] + self.args, env=self.env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "w"))
        end = time.monotonic() + GUARD
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                msg = ns.recv(4096).decode()
            except socket.timeout:
                continue
            self.notify_lines += msg.split("\n")
            if "READY=1" in msg.split("\n"):
                self.ready = True
                break
        ns.close()
        os.unlink(path)
        return self.ready

    def wait(self):
        """Exit status of a daemon that is expected to exit by itself."""
        try:
            return self.proc.wait(GUARD)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def stderr(self):
        return open(self.log).read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait() if self.proc else None

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))


class Control:
    """A client of the control socket (protocol.h)."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(GUARD)
        self.s.connect(path)
        self.id = 0

    def close(self):
        self.s.close()

    def send_raw(self, data):
        self.s.send(data)

    def recv(self):
        """One reply: (header tuple, payload); None when closed."""
        data = self.s.recv(1 << 17)
        if not data:
            return None
        return HDR.unpack(data[:HDR.size]), data[HDR.size:]

    def request(self, mtype, payload=b"", version=MBD_VERSION):
        """Send, collect every reply: (status, payload, headers)."""
        self.id += 1
        self.s.send(HDR.pack(MBD_MAGIC, version, mtype, self.id, 0, 0,
                             len(payload)) + payload)
        body, heads = b"", []
        while True:
            r = self.recv()
            if r is None:
                return None, body, heads
            h, p = r
            heads.append(h)
            body += p
            if not h[4] & F_MORE:
                return h[5], body, heads

    def metrics(self):
        status, body, _ = self.request(MSG_METRICS)
        if status != 0:
            raise RuntimeError("METRICS failed: %s" % status)
        return body.decode()

    def _list(self, mtype, fmt, fields, payload=b""):
        status, body, heads = b"", b"", None
        self.id += 1
        self.s.send(HDR.pack(MBD_MAGIC, MBD_VERSION, mtype, self.id, 0, 0,
                             len(payload)) + payload)
        out = []
        while True:
            r = self.recv()
            if r is None:
                raise RuntimeError("connection closed")
            h, p = r
            if h[5] != 0:
                raise RuntimeError("list request failed: %d" % h[5])
            size, count, _ = LIST.unpack(p[:LIST.size])
            for i in range(count):
                item = p[LIST.size + i * size:LIST.size + (i + 1) * size]
                vals = fmt.unpack(item[:fmt.size])
                d = dict(zip(fields, vals))
                for k in ("comm", "pool", "name", "clerk"):
                    if k in d and isinstance(d[k], bytes):
                        d[k] = d[k].split(b"\0")[0].decode()
                out.append(d)
            if not h[4] & F_MORE:
                return out

    def clerks(self):
        """Every registered clerk, as dicts (struct mbd_clerk_row)."""
        return self._list(MSG_CLERKS, ROW, ROW_FIELDS)

    def decisions(self, from_seq=0):
        """The daemon's ring of decisions, as dicts."""
        return self._list(MSG_DECISIONS, DECISION, DECISION_FIELDS,
                          struct.pack("=Q", from_seq))

    def push(self, state, available, low=100 * MIB, high=300 * MIB,
             total=1024 * MIB, reason=0, time_ns=0, flags=0):
        status, _, _ = self.request(MSG_FAKE_PUSH, FAKE.pack(
            time_ns, state, flags, reason, 0, available, total, low, high))
        return status


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} through the Prometheus
    project's own parser: it refuses what node_exporter would refuse."""
    from prometheus_client.parser import text_string_to_metric_families
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def metric(m, name, **labels):
    return m.get((name, frozenset(labels.items())))


class Client:
    """A test client (lmm-client, mp-client, a raw socket reader) as a
    child that prints one line per event; commands on its stdin."""

    def __init__(self, argv, env):
        self.proc = spawn(argv, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.lines = queue.Queue()
        self.seen = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode().rstrip("\n"))
        self.lines.put(None)

    def next_line(self, guard=GUARD):
        try:
            line = self.lines.get(timeout=guard)
        except queue.Empty:
            return None
        if line is not None:
            self.seen.append(line)
        return line

    def wait_line(self, prefix, guard=GUARD):
        """Lines up to and including the first starting with prefix."""
        got = []
        end = time.monotonic() + guard
        while time.monotonic() < end:
            line = self.next_line(max(0.01, end - time.monotonic()))
            if line is None:
                break
            got.append(line)
            if line.startswith(prefix):
                return got
        return None

    def sync(self):
        """Every event line the client printed before answering "sync"."""
        self.proc.stdin.write(b"sync\n")
        self.proc.stdin.flush()
        got = self.wait_line("SYNC")
        if got is None:
            raise RuntimeError("client did not answer sync: %s" % self.seen)
        return got[:-1]

    def quit(self):
        try:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(GUARD)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def glib_client(bus):
    return Client([os.path.join(TESTBIN, "lmm-client")],
                  bus.env({"GIO_USE_MEMORY_MONITOR": "dbus"}))


def sdevent_client(sock, write=None):
    env = dict(os.environ)
    env["MEMORY_PRESSURE_WATCH"] = sock
    env.pop("MEMORY_PRESSURE_WRITE", None)
    if write is not None:
        import base64
        env["MEMORY_PRESSURE_WRITE"] = base64.b64encode(write).decode()
    return Client([os.path.join(TESTBIN, "mp-client")], env)


class Reader:
    """A plain pressure-socket client that reads the lines it is sent."""

    def __init__(self, path, write=b"", background=False):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        if write:
            self.s.sendall(write)
        self.buf = b""
        self.lock = threading.Lock()
        self.thread = None
        if background:
            # reads as it arrives, like a service that is keeping up
            self.thread = threading.Thread(target=self._drain, daemon=True)
            self.thread.start()

    def _drain(self):
        while True:
            try:
                d = self.s.recv(4096)
            except OSError:
                return
            if not d:
                return
            with self.lock:
                self.buf += d

    def lines(self):
        """The lines read so far by the background reader, as ints."""
        with self.lock:
            return [int(x) for x in self.buf.split(b"\n")[:-1]]

    def read_levels(self, n, guard=GUARD):
        """The next n lines, as ints; fewer if the guard runs out."""
        self.s.settimeout(0.05)
        end = time.monotonic() + guard
        while self.buf.count(b"\n") < n and time.monotonic() < end:
            try:
                d = self.s.recv(4096)
            except socket.timeout:
                continue
            if not d:
                break
            self.buf += d
        lines = self.buf.split(b"\n")
        take = lines[:min(n, len(lines) - 1)]
        self.buf = b"\n".join(lines[len(take):])
        return [int(x) for x in take]

    def pending(self):
        """Whatever arrived and was not read yet, without waiting."""
        self.s.setblocking(False)
        try:
            while True:
                d = self.s.recv(4096)
                if not d:
                    break
                self.buf += d
        except BlockingIOError:
            pass
        self.s.setblocking(True)
        return self.buf

    def close(self):
        if self.thread:
            self.s.shutdown(socket.SHUT_RDWR)
            self.thread.join()
        self.s.close()
