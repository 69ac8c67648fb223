#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Answer the guest's requests for dynamic-memory changes.

  director.py CTL_SOCKET QMP_SOCKET

The guest has a second serial port (/dev/ttyS1) whose other end is the
unix socket CTL_SOCKET that run.sh asks QEMU to create.  A test in the
guest writes one request per line and reads one reply line back:

  ping                  ok pong
  balloon BYTES         ok             (balloon target: the guest's size)
  query-balloon         ok BYTES       (what the balloon reports now)
  mem-size BYTES        ok             (virtio-mem vm0's requested-size)
  query-mem             ok BYTES       (vm0's plugged size)

Anything that fails is answered "err MESSAGE".  BYTES take K, M, G.
The director runs for as long as QEMU keeps the socket open; run.sh
starts it next to QEMU and it exits when the VM powers off.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import QMP, size  # noqa: E402


def connect(path, timeout=30.0):
    """QEMU creates the socket a moment after it starts: retry."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def answer(qmp, line):
    words = line.split()
    if not words:
        return "err empty request"
    cmd, args = words[0], words[1:]
    want = {"ping": 0, "balloon": 1, "query-balloon": 0, "mem-size": 1,
            "query-mem": 0}
    if cmd not in want:
        return "err unknown request %r" % cmd
    if len(args) != want[cmd]:
        return "err %s takes %d argument(s)" % (cmd, want[cmd])
    if cmd == "ping":
        return "ok pong"
    if cmd == "balloon":
        qmp.execute("balloon", value=size(args[0]))
        return "ok"
    if cmd == "query-balloon":
        return "ok %d" % qmp.execute("query-balloon")["actual"]
    if cmd == "mem-size":
        qmp.execute("qom-set", path="vm0", property="requested-size",
                    value=size(args[0]))
        return "ok"
    return "ok %d" % qmp.execute("qom-get", path="vm0", property="size")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    ctl = connect(sys.argv[1])
    qmp = None
    buf = b""
    while True:
        try:
            data = ctl.recv(4096)
        except ConnectionResetError:
            data = b""
        if not data:
            return 0
        buf += data
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.decode("utf-8", "replace").strip("\r\0 ")
            if not line:
                continue
            try:
                if qmp is None:
                    qmp = QMP(sys.argv[2])
                reply = answer(qmp, line)
            except (OSError, RuntimeError, ValueError, KeyError) as e:
                reply = "err %s" % e
            print("director: %s -> %s" % (line, reply), file=sys.stderr)
            ctl.sendall(reply.encode() + b"\n")


if __name__ == "__main__":
    sys.exit(main())
