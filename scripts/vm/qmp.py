#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Drive the test VM's dynamic-memory devices from the host over QMP.

  qmp.py balloon BYTES          set the balloon target (guest size)
  qmp.py query-balloon          print the guest size the balloon reports
  qmp.py mem-size BYTES         set virtio-mem vm0's requested-size
  qmp.py query-mem              print vm0's plugged size
  qmp.py raw '{"execute": ...}' send any command

BYTES take K, M, G suffixes.  The socket is build/vm/qmp.sock (run.sh
creates it), or --socket PATH.  Prints the command's "return" value as JSON; exits 1 on a QMP error.
Events that arrive meanwhile are skipped: time dynamic-memory effects
from inside the guest (QEMU rate-limits BALLOON_CHANGE to one a second).
"""
import argparse
import json
import os
import socket
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_SOCKET = os.path.join(ROOT, "build", "vm", "qmp.sock")


class QMP:
    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.rfile = self.sock.makefile("r", encoding="utf-8")
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError("not a QMP greeting: %r" % greeting)
        self.execute("qmp_capabilities")

    def _read(self):
        line = self.rfile.readline()
        if not line:
            raise RuntimeError("QMP connection closed")
        return json.loads(line)

    def execute(self, cmd, **arguments):
        msg = {"execute": cmd}
        if arguments:
            msg["arguments"] = arguments
        return self.send(msg)

    def send(self, msg):
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError("%s: %s" % (reply["error"].get("class"),
                                              reply["error"].get("desc")))
            return reply.get("return")

    def close(self):
        self.rfile.close()
        self.sock.close()


def size(text):
    """Bytes from "268435456", "0x10000000", "256M", "1G" (powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    mult = units.get(text[-1:].upper())
    return int(text[:-1], 0) * mult if mult else int(text, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default=DEFAULT_SOCKET)
    ap.add_argument("command", choices=["balloon", "query-balloon",
                                        "mem-size", "query-mem", "raw"])
    ap.add_argument("arg", nargs="?")
    args = ap.parse_args()

    needs_arg = args.command in ("balloon", "mem-size", "raw")
    if needs_arg != (args.arg is not None):
        ap.error("%s %s an argument" % (args.command,
                                        "needs" if needs_arg else "takes no"))
    try:
        q = QMP(args.socket)
        if args.command == "balloon":
            ret = q.execute("balloon", value=size(args.arg))
        elif args.command == "query-balloon":
            ret = q.execute("query-balloon")
        elif args.command == "mem-size":
            ret = q.execute("qom-set", path="vm0", property="requested-size",
                            value=size(args.arg))
        elif args.command == "query-mem":
            ret = q.execute("qom-get", path="vm0", property="size")
        else:
            ret = q.send(json.loads(args.arg))
        q.close()
    except (OSError, RuntimeError, ValueError) as e:
        print("qmp.py: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(ret))
    return 0


if __name__ == "__main__":
    sys.exit(main())
