#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the console log of the demo scenario into a timeline, a plot and
a test result.

  demo-report.py CONSOLE_LOG [--timeline] [--plot DIR] [--check COUNTS]

The scenario is scripts/vm/guest-demo.sh.  Its console carries:

  MB-DEMO-ACT <t> <id> <title>     an act begins (guest monotonic seconds)
  MB-SVC <t> <kind> key=value ...  mb-service: start, notify, decision,
                                   sample, stop (tools/mb-service.c)
  sqlite: ...                      the SQLite example (--monotonic times)
  oom-race: ...                    mb-demo's measurement of act 1
  membrokerd: MBD <t> signal level=<L> ...   membrokerd sent a warning
  MBD-PRESSURE <t> <level>         its memory pressure client got one
  MB-DEMO-EXIT <program> <status>

--timeline prints what happened, one row per state change, broker step,
act, or meaningful change of a cache's size.  --plot writes
DIR/membroker-demo.png and .svg with gnuplot.  --check asserts the order
of events and what the caches did, prints TAP, writes "PASSED FAILED
SKIPPED" to COUNTS and exits 1 if anything failed; the kernel log is
checked by parse-log.sh (its conventions), with the call trace that every
OOM report carries excused, since act 1 provokes one on purpose.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

MIB = 1024 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))
ACTS = ["setup", "act1", "act1-end", "act2", "act2-end", "act3",
        "act3-deflate", "act4", "restore", "history"]
CACHES = ["thumbnails", "sessions"]
# tools/mb-service.c: a thumbnail's value and what mb_cache adds at most,
# and the 6144 sessions of 4 KiB
THUMB_ENTRY = 32 * 1024 + 256
SESSIONS_FULL = 6144 * 4096


def kv(words):
    out = {}
    for w in words:
        if "=" in w:
            k, v = w.split("=", 1)
            out[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
    return out


class Run:
    """Everything the scenario printed, parsed."""

    def __init__(self, path):
        self.path = path
        self.lines = []
        self.begin = self.end = False
        self.acts = []          # (t, id, title)
        self.start = None       # mb-service's start line
        self.stop = None
        self.notes = []         # MB-SVC-NOTE lines
        self.notify = []        # dicts with t
        self.decisions = []
        self.samples = []
        self.sq_shrinks = []    # (t, released MiB, before, after)
        self.sq_status = []     # (t, state, cache MiB)
        self.sq_result = {}
        self.sq_summary = None
        self.oom_kill = None    # guest time of the kill
        self.oom_warning = None  # the "LOW arrived ..." line
        self.oom_nolow = False
        self.oom_kernel = None  # the kill's time in the kernel log
        self.exits = {}
        self.mbd = []           # membrokerd's warnings: dicts with t
        self.mbd_got = []       # (t, level) as its socket client got them
        self.parse()

    def parse(self):
        num = r"(\d+(?:\.\d+)?)"
        with open(self.path, errors="replace") as f:
            for raw in f:
                line = raw.rstrip("\r\n")
                self.lines.append(line)
                if "MB-DEMO-BEGIN" in line:
                    self.begin = True
                    continue
                if line == "MB-DEMO-END":
                    self.end = True
                    continue
                m = re.match(r"\[\s*" + num + r"\] Out of memory: Killed "
                             r"process \d+ \(mb-hog\)", line)
                if m and self.oom_kernel is None:
                    self.oom_kernel = float(m.group(1))
                w = line.split()
                if not w:
                    continue
                if w[0] == "MB-DEMO-ACT" and len(w) >= 3:
                    self.acts.append((float(w[1]), w[2], " ".join(w[3:])))
                elif w[0] == "MB-SVC" and len(w) >= 3:
                    self.svc(float(w[1]), w[2], kv(w[3:]))
                elif w[0] == "MB-SVC-NOTE":
                    self.notes.append(line)
                elif (w[0] == "membrokerd:" and len(w) >= 4 and
                      w[1] == "MBD" and w[3] == "signal"):
                    d = kv(w[4:])
                    d["t"] = float(w[2])
                    self.mbd.append(d)
                elif w[0] == "MBD-PRESSURE" and len(w) == 3:
                    self.mbd_got.append((float(w[1]), int(w[2])))
                elif w[0] == "MB-DEMO-EXIT" and len(w) == 3:
                    self.exits[w[1]] = int(w[2])
                elif w[0] == "oom-race:":
                    m = re.search(r"\(OOM killer\) at " + num + " s", line)
                    if m:
                        self.oom_kill = float(m.group(1))
                    if "LOW arrived" in line:
                        self.oom_warning = line[len("oom-race: "):]
                    if "NO LOW" in line:
                        self.oom_nolow = True
                elif w[0] == "sqlite:":
                    self.sqlite(line[len("sqlite: "):], num)

    def svc(self, t, kind, d):
        d["t"] = t
        if kind == "start":
            self.start = d
        elif kind == "stop":
            self.stop = d
        elif kind == "notify":
            self.notify.append(d)
        elif kind == "decision":
            self.decisions.append(d)
        elif kind == "sample":
            self.samples.append(d)

    def sqlite(self, s, num):
        m = re.match(r"\s*" + num + r"\s+shrink: asked \S+ MiB, released "
                     + num + r" MiB, cache " + num + " -> " + num, s)
        if m:
            self.sq_shrinks.append(tuple(float(x) for x in m.groups()))
            return
        m = re.match(r"\s*" + num + r"\s+(?:\S+\s+)?state (\w+)\s+cache\s+"
                     + num + " MiB", s)
        if m:
            self.sq_status.append((float(m.group(1)), m.group(2),
                                   float(m.group(3))))
            return
        m = re.match(r"result ([a-z_]+)=(-?\d+)$", s)
        if m:
            self.sq_result[m.group(1)] = int(m.group(2))
            return
        if s.startswith("summary: "):
            self.sq_summary = s[len("summary: "):]

    def act_time(self, ident):
        for t, i, _ in self.acts:
            if i == ident:
                return t
        return None

    def window(self, first, last):
        """[start of act first, start of act last), open ends as None"""
        a = self.act_time(first)
        b = self.act_time(last) if last else None
        return (a if a is not None else float("inf"),
                b if b is not None else float("inf"))


def mib(b):
    return b / MIB


# ---- the timeline ----------------------------------------------------

class Timeline:
    HEAD = ("   time  state    avail  total    low   high | thumbs "
            "sessions sqlite | what happened")

    def __init__(self, run):
        self.r = run
        self.rows = []
        self.cur = {"state": "?", "avail": 0, "total": 0, "low": 0,
                    "high": 0, "thumbnails": 0, "sessions": 0,
                    "sqlite": None}
        self.last_total = None
        self.shrunk = {}

    def row(self, t, text, kind):
        self.rows.append((t, dict(self.cur), text, kind,
                          dict(self.shrunk) if kind == "repeat" else {}))
        self.shrunk = {}

    def events(self):
        r = self.r
        ev = []
        for t, i, title in r.acts:
            if i != "history":
                ev.append((t, 0, "act", (i, title)))
        # a decision carries the time of the notification it acted on
        by_time = {}
        for d in r.decisions:
            by_time.setdefault(d["t"], []).append(d)
        for n in r.notify:
            ev.append((n["t"], 1, "notify", (n, by_time.pop(n["t"], []))))
        for i, d in enumerate(r.mbd):
            got = r.mbd_got[i] if i < len(r.mbd_got) else None
            ev.append((d["t"], 2, "mbd", (d, got)))
        # the kernel log's time (printk's clock, the same as the
        # monotonic one in this VM) is when it happened; mb-demo learns
        # of it when the hog has exited
        kill = r.oom_kernel if r.oom_kernel is not None else r.oom_kill
        if kill is not None:
            ev.append((kill, 1, "oom", None))
        for s in r.sq_shrinks:
            ev.append((s[0], 3, "sq_shrink", s))
        for s in r.sq_status:
            ev.append((s[0], 4, "sq_status", s))
        for s in r.samples:
            ev.append((s["t"], 5, "sample", s))
        if r.start:
            first = min([r.start["t"]] + [n["t"] for n in r.notify])
            ev.append((first, -1, "start", r.start))
        if r.stop:
            ev.append((r.stop["t"], 6, "stop", r.stop))
        ev.sort(key=lambda e: (e[0], e[1]))
        return ev

    def build(self):
        r = self.r
        cur = self.cur
        shown = {c: 0 for c in CACHES}
        prev_sample = None
        for t, _, kind, x in self.events():
            if kind == "act":
                self.row(t, x[1], "act")
            elif kind == "start":
                self.row(t, "mb-service starts on the %s source; its "
                         "caches are empty" % x["source"], "start")
            elif kind == "notify":
                n, ds = x
                self.notify_row(t, n, ds)
                for c in CACHES:
                    shown[c] = cur[c]
            elif kind == "oom":
                self.row(t, "the OOM killer kills mb-hog", "oom")
            elif kind == "mbd":
                d, got = x
                names = {50: "low", 100: "medium", 255: "critical"}
                self.row(t, "membrokerd: LowMemoryWarning %d (%s), %s" % (
                    d["level"], names.get(d["level"], "?"),
                    "its socket client had it %.1f ms later" %
                    ((got[0] - t) * 1000) if got else
                    "its socket client never got it"), "mbd")
            elif kind == "sq_shrink":
                cur["sqlite"] = x[3]
                self.row(t, "sqlite: page cache %.1f -> %.1f MiB (released "
                         "%.1f MiB)" % (x[2], x[3], x[1]), "sqlite")
            elif kind == "sq_status":
                cur["sqlite"] = x[2]
            elif kind == "sample":
                cur["avail"] = x["avail"]
                cur["total"] = x["total"]
                for c in CACHES:
                    cur[c] = x[c]
                moved = max(abs(cur[c] - shown[c]) for c in CACHES)
                # a growth that has just stopped: print where it ended
                settled = (prev_sample is not None and moved > MIB / 2 and
                           all(prev_sample[c] == x[c] for c in CACHES))
                if moved >= 16 * MIB or settled:
                    up = sum(cur[c] - shown[c] for c in CACHES) > 0
                    self.row(t, "caches settled" if settled else
                             "caches growing" if up else "caches shrinking",
                             "size")
                    for c in CACHES:
                        shown[c] = cur[c]
                prev_sample = x
            elif kind == "stop":
                self.row(t, "mb-service stops (SIGTERM), status %d"
                         % x["status"], "stop")
        self.collapse()

    def notify_row(self, t, n, ds):
        cur = self.cur
        before = cur["state"]
        for k in ("state", "avail", "total", "low", "high"):
            cur[k] = n[k]
        shrink = [d for d in ds if d["decision"] == "shrink"]
        grow = [d for d in ds if d["decision"] == "grow"]
        for d in ds:
            cur[d["clerk"]] = d["allocated"] - d["freed"]
        what = []
        if n["repeat"]:
            what.append("still LOW (repeated)")
        elif n["state"] != before:
            what.append({"low": "LOW: available below the low threshold",
                         "steady": "STEADY: between the thresholds",
                         "high": "HIGH: plenty of memory"}[n["state"]]
                        + " (%s)" % n["reason"])
        kind = "repeat" if n["repeat"] else "state"
        if not what and n["total"] == self.last_total:
            # only the virtual-memory flag or the reading changed
            kind = "quiet"
        elif not what:
            kind = "total"
            what.append("total %.0f MiB (%s)" % (mib(n["total"]),
                                                  n["reason"]))
        self.last_total = n["total"]
        if shrink:
            what.append("broker: SHRINK " + ", ".join(
                "%s -%.1f MiB" % (d["clerk"], mib(d["freed"]))
                for d in shrink))
            if kind in ("quiet", "total"):
                kind = "state"
        elif grow and n["state"] != before:
            what.append("broker: caches may grow")
        self.shrunk = {d["clerk"]: d["freed"] for d in shrink}
        if kind != "quiet":
            self.row(t, "; ".join(what), kind)

    def collapse(self):
        """Runs of rows that say the same thing become one: a balloon's
        many small changes of the total, and LOW repeated with its broker
        steps and SQLite's releases."""
        out = []
        for t, vals, text, kind, shrunk in self.rows:
            last = out[-1] if out else None
            if kind == "sqlite":
                got = float(re.search(r"released (\S+)", text).group(1))
            if last and kind == "total" and last["kind"] == "total":
                last.update(t=t, vals=vals, text="total %.0f -> %.0f MiB "
                            "(%s" % (last["from"], mib(vals["total"]),
                                     text.split("(")[-1]))
                continue
            if (last and kind in ("repeat", "sqlite") and
                    last["kind"] in ("repeat", "sqlite", "agg")):
                if last["kind"] != "agg":
                    out.pop()
                    agg = {"kind": "agg", "steps": 0, "freed": {},
                           "sq": 0.0, "sqn": 0}
                    self.absorb(agg, last)
                    out.append(agg)
                    last = agg
                self.absorb(last, {"t": t, "vals": vals, "kind": kind,
                                   "shrunk": shrunk,
                                   "got": got if kind == "sqlite" else 0})
                continue
            row = {"t": t, "vals": vals, "text": text, "kind": kind,
                   "shrunk": shrunk}
            if kind == "total":
                row["from"] = mib(last["vals"]["total"]) if last else \
                    mib(vals["total"])
            if kind == "sqlite":
                row["got"] = got
            out.append(row)
        self.rows = [(r["t"], r["vals"], r["text"], r["kind"]) for r in out]

    @staticmethod
    def absorb(agg, row):
        agg["t"] = row["t"]
        agg["vals"] = row["vals"]
        if row["kind"] == "repeat":
            agg["steps"] += 1
            for c, b in row["shrunk"].items():
                agg["freed"][c] = agg["freed"].get(c, 0) + b
        else:
            agg["sq"] += row["got"]
            agg["sqn"] += 1
        parts = []
        if agg["steps"]:
            took = ", ".join("%s -%.1f" % (c, mib(b))
                             for c, b in agg["freed"].items() if b)
            parts.append("still LOW: %d more broker step%s (%s MiB)" % (
                agg["steps"], "s" if agg["steps"] > 1 else "",
                took or "nothing left to take"))
        if agg["sqn"]:
            parts.append("sqlite released %.1f MiB (%d time%s)" % (
                agg["sq"], agg["sqn"], "s" if agg["sqn"] > 1 else ""))
        agg["text"] = "; ".join(parts)

    def print(self, out=sys.stdout):
        r = self.r
        print("Timeline (guest seconds since boot; memory in MiB; "
              "thumbs/sessions: mb-service's caches, sqlite: SQLite's page "
              "cache)", file=out)
        print(self.HEAD, file=out)
        for t, v, text, kind in self.rows:
            if kind == "act":
                print("%7.2f  ---- %s" % (t, text), file=out)
                continue
            if kind == "start":
                print("%7.2f  %-6s %6s %6s %6s %6s | %6s %8s %6s | %s"
                      % ((t,) + ("",) * 8 + (text,)), file=out)
                continue
            sq = "%6.1f" % v["sqlite"] if v["sqlite"] is not None else \
                "     -"
            print("%7.2f  %-6s %6.1f %6.1f %6.1f %6.1f | %6.1f %8.1f %s | %s"
                  % (t, v["state"], mib(v["avail"]), mib(v["total"]),
                     mib(v["low"]), mib(v["high"]), mib(v["thumbnails"]),
                     mib(v["sessions"]), sq, text), file=out)
        flags = sum(1 for i, n in enumerate(r.notify) if i and
                    n["state"] == r.notify[i - 1]["state"] and
                    n["total"] == r.notify[i - 1]["total"] and
                    not n["repeat"])
        print(file=out)
        print("%d notifications reached mb-service (%d of them only "
              "changed the virtual-memory flag or the reading), %d broker "
              "decisions (%d shrink, %d grow)." % (
                  len(r.notify), flags, len(r.decisions),
                  sum(d["decision"] == "shrink" for d in r.decisions),
                  sum(d["decision"] == "grow" for d in r.decisions)),
              file=out)
        if r.oom_warning:
            a = r.act_time("act1")
            b = r.oom_kill if r.oom_kill is not None else float("inf")
            gave = sum(d["freed"] for d in r.decisions if a <= d["t"] <= b)
            gave += MIB * sum(x[1] for x in r.sq_shrinks if a <= x[0] <= b)
            print("Act 1 (mb-demo): %s;" % r.oom_warning, file=out)
            lows = [n["t"] for n in r.notify
                    if n["state"] == "low" and a <= n["t"] <= b]
            if r.oom_kernel is not None and lows:
                print("  the kernel log dates the kill %.0f ms after LOW "
                      "was evaluated (mb-demo sees it once the hog has "
                      "exited);" % ((r.oom_kernel - lows[0]) * 1000),
                      file=out)
            print("  meanwhile the caches gave back %.1f MiB, which the "
                  "hog ate too." % mib(gave), file=out)
        if r.sq_summary:
            print("SQLite: " + r.sq_summary, file=out)
        if r.mbd:
            lat = sorted((g - d["t"]) * 1000
                         for (g, _), d in zip(r.mbd_got, r.mbd))
            print("membrokerd sent %d warnings (%s); its memory pressure "
                  "socket client had %d of them%s." % (
                      len(r.mbd), ", ".join(
                          "%d x %d" % ([d["level"] for d in r.mbd].count(v),
                                       v) for v in (50, 100, 255)
                          if any(d["level"] == v for d in r.mbd)),
                      len(r.mbd_got), ", a median %.1f ms and at most %.1f "
                      "ms after they went out" % (lat[len(lat) // 2],
                                                  lat[-1]) if lat else ""),
                  file=out)


# ---- the plot --------------------------------------------------------

def plot(run, outdir):
    gp = shutil.which("gnuplot")
    if not gp:
        print("demo-report: gnuplot not found: no plot "
              "(apt-get install gnuplot-nox)", file=sys.stderr)
        return None
    os.makedirs(outdir, exist_ok=True)
    data = os.path.join(outdir, "samples.dat")
    with open(data, "w") as f:
        f.write("# t avail total thumbnails sessions (MiB)\n")
        for s in run.samples:
            f.write("%.3f %.2f %.2f %.2f %.2f\n" % (
                s["t"], mib(s["avail"]), mib(s["total"]),
                mib(s["thumbnails"]), mib(s["sessions"])))
    thr = os.path.join(outdir, "thresholds.dat")
    end = run.samples[-1]["t"] if run.samples else 0
    with open(thr, "w") as f:
        f.write("# t low high (MiB), from the notifications\n")
        last = None
        for n in run.notify:
            if last and (n["low"], n["high"]) == (last["low"], last["high"]):
                continue
            last = n
            f.write("%.3f %.2f %.2f\n" % (n["t"], mib(n["low"]),
                                          mib(n["high"])))
        if last:
            f.write("%.3f %.2f %.2f\n" % (max(end, last["t"]),
                                          mib(last["low"]),
                                          mib(last["high"])))
    sq = os.path.join(outdir, "sqlite.dat")
    with open(sq, "w") as f:
        f.write("# t sqlite page cache (MiB)\n")
        pts = [(s[0], s[2]) for s in run.sq_status]
        pts += [(s[0], s[2]) for s in run.sq_shrinks]
        pts += [(s[0] + 0.001, s[3]) for s in run.sq_shrinks]
        for t, v in sorted(pts):
            f.write("%.3f %.2f\n" % (t, v))

    start = run.acts[0][0] - 0.5 if run.acts else 0
    cmds = []
    # the states as background bands
    colours = {"low": "#f8d0d0", "steady": "#f8f0c8", "high": "#e0f0e0"}
    bands = []
    for n in run.notify:
        if not bands or bands[-1][1] != n["state"]:
            bands.append((n["t"], n["state"]))
    for i, (t0, state) in enumerate(bands):
        t1 = bands[i + 1][0] if i + 1 < len(bands) else end
        if t1 > t0:
            cmds.append('set object rect from %.3f, graph 0 to %.3f, '
                        'graph 1 fc rgb "%s" fs solid 1.0 noborder behind'
                        % (t0, t1, colours.get(state, "#ffffff")))
    labels = {"act1": "1: hog", "act2": "2: job", "act2-end": "job ends",
              "act3": "3: balloon", "act3-deflate": "deflate",
              "act4": "4: +256 MiB"}
    shown = [(t, i) for t, i, _ in run.acts
             if i not in ("setup", "history", "act1-end", "restore")]
    for k, (t, i) in enumerate(shown):
        cmds.append("set arrow from %.3f, graph 0 to %.3f, graph 1 nohead "
                    'lc rgb "#606060" dt 2' % (t, t))
        # alternate heights so that close acts do not overprint
        cmds.append('set label "%s" at %.3f, graph %.2f left offset 0.3,0 '
                    'font ",10"' % (labels.get(i, i), t,
                                    0.97 - 0.04 * (k % 2)))
    if run.oom_kill is not None:
        cmds.append('set label "OOM kill" at %.3f, graph 0.90 left '
                    'offset 0.3,0 font ",9" tc rgb "#a00000"' % run.oom_kill)
        cmds.append("set arrow from %.3f, graph 0 to %.3f, graph 0.88 "
                    'nohead lc rgb "#a00000" dt 3' % (run.oom_kill,
                                                      run.oom_kill))

    pngs = []
    for term, ext in (("pngcairo size 1400,800 font ',11'", "png"),
                      ("svg size 1400,800 dynamic font 'sans,11'", "svg")):
        out = os.path.join(outdir, "membroker-demo." + ext)
        script = "\n".join([
            "set terminal " + term,
            "set output '%s'" % out,
            "set title 'membroker demo: available memory, thresholds and "
            "cache sizes (background: red LOW, yellow STEADY, green HIGH)'",
            "set xlabel 'guest time since boot (s)'",
            "set ylabel 'MiB'",
            "set key below horizontal",
            "set grid ytics",
            "set yrange [0:*]",
            "set xrange [%.1f:%.1f]" % (start, end + 0.5),
        ] + cmds + [
            "plot '%s' using 1:3 with lines lw 1.5 lc rgb '#808080' "
            "title 'total', \\" % data,
            "  '%s' using 1:2 with lines lw 2.5 lc rgb 'black' "
            "title 'available', \\" % data,
            "  '%s' using 1:3 with steps lw 1.5 dt 2 lc rgb '#008000' "
            "title 'high threshold', \\" % thr,
            "  '%s' using 1:2 with steps lw 1.5 dt 2 lc rgb '#d00000' "
            "title 'low threshold', \\" % thr,
            "  '%s' using 1:4 with lines lw 2 lc rgb '#1f5fbf' "
            "title 'thumbnails (priority 20)', \\" % data,
            "  '%s' using 1:5 with lines lw 2 lc rgb '#8a2be2' "
            "title 'sessions (priority 80)', \\" % data,
            "  '%s' using 1:2 with steps lw 2 lc rgb '#e07000' "
            "title 'sqlite page cache'" % sq,
        ]) + "\n"
        gpfile = os.path.join(outdir, "membroker-demo.%s.gp" % ext)
        with open(gpfile, "w") as f:
            f.write(script)
        res = subprocess.run([gp, gpfile], capture_output=True, text=True)
        if res.returncode != 0:
            print("demo-report: gnuplot failed:\n" + res.stderr,
                  file=sys.stderr)
            return None
        pngs.append(out)
    return pngs


# ---- the checks ------------------------------------------------------

class Checks:
    def __init__(self, run):
        self.r = run
        self.n = self.passed = self.failed = 0

    def ok(self, cond, desc, why=""):
        self.n += 1
        if cond:
            self.passed += 1
            print("ok %d - %s" % (self.n, desc))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc))
            for line in why.splitlines():
                print("#   " + line)

    def notes_in(self, a, b, pred=lambda n: True):
        return [n for n in self.r.notify if a <= n["t"] < b and pred(n)]

    def cache_cycle(self, cache):
        """A LOW after which @cache got smaller, and a HIGH after which it
        grew again.  Returns (ok, explanation)."""
        r = self.r
        samples = [(s["t"], s[cache]) for s in r.samples]
        lows = [n["t"] for n in r.notify if n["state"] == "low"]
        highs = [n["t"] for n in r.notify if n["state"] == "high"]
        tried = []
        for a in lows:
            before = [v for t, v in samples if t <= a]
            if not before or before[-1] == 0:
                continue
            h = next((t for t in highs if t > a), None)
            if h is None:
                continue
            during = [v for t, v in samples if a < t <= h]
            if not during:
                continue
            low_v = min(during)
            nxt = next((t for t in lows if t > h), float("inf"))
            after = [v for t, v in samples if h < t < nxt]
            tried.append("LOW at %.2f: %.1f MiB before, %.1f MiB at least "
                         "until HIGH at %.2f, %.1f MiB at most after" % (
                             a, mib(before[-1]), mib(low_v), h,
                             mib(max(after) if after else 0)))
            if low_v < before[-1] and after and max(after) > low_v:
                return True, tried[-1]
        return False, "\n".join(tried) or "no LOW with %s non-empty" % cache

    def full_before(self, act):
        """The last sample before @act: thumbnails within one entry of its
        bound, every session cached (tools/mb-service.c's sizes)."""
        t = self.r.act_time(act)
        before = [s for s in self.r.samples if t is not None and s["t"] < t]
        if not before:
            return False, "no sample before %s (at %s)" % (act, t)
        s = before[-1]
        good = (s["thumbnails"] + THUMB_ENTRY > s["thumbnails_bound"] and
                s["sessions"] >= SESSIONS_FULL)
        return good, "at %.2f: thumbnails %.1f of %.1f MiB, sessions %.1f " \
            "of %.1f MiB" % (s["t"], mib(s["thumbnails"]),
                             mib(s["thumbnails_bound"]), mib(s["sessions"]),
                             mib(SESSIONS_FULL))

    def run(self):
        r = self.r
        print("TAP version 13")
        ids = [i for _, i, _ in r.acts]
        self.ok(r.begin and r.end and ids == ACTS,
                "the scenario ran to its end, every act in order",
                "acts seen: %s; begin %s, end %s" % (ids, r.begin, r.end))
        self.ok(r.start is not None and r.start.get("source") == "kmod",
                "mb-service followed membroker.ko (source kmod)",
                "start line: %s" % r.start)

        a1, a1e = r.window("act1", "act1-end")
        lows1 = self.notes_in(a1, a1e, lambda n: n["state"] == "low")
        self.ok(bool(lows1), "act 1: LOW was published after the hog "
                "started", "no LOW between %.2f and %.2f" % (a1, a1e))
        kill = r.oom_kill
        self.ok(kill is not None and bool(lows1) and lows1[0]["t"] < kill
                and r.oom_warning is not None and not r.oom_nolow,
                "act 1: the OOM killer ended the hog, after LOW arrived",
                "kill at %s, first LOW at %s, report %r" % (
                    kill, lows1[0]["t"] if lows1 else None, r.oom_warning))
        a2, a2e = r.window("act2", "act2-end")
        # While the hog lives the caches' steps can bring STEADY at most;
        # HIGH means its memory came back.  (mb-demo sees the kill a
        # little after the kernel did it, and after the module noticed.)
        first_low = lows1[0]["t"] if lows1 else float("inf")
        rec1 = self.notes_in(first_low, a2, lambda n: n["state"] == "high")
        self.ok(bool(rec1), "act 1: memory recovered (HIGH) once the hog "
                "was killed", "no HIGH notification between the first LOW "
                "(%s) and act 2 (%.2f)" % (first_low, a2))

        a3, a3d = r.window("act3", "act3-deflate")
        job = self.notes_in(a2, a2e)
        self.ok(any(n["state"] == "low" for n in job),
                "act 2: LOW was published after the job took its memory",
                "states during act 2: %s" % [n["state"] for n in job])
        after = self.notes_in(a2e, a3)
        self.ok(any(n["state"] == "high" for n in after),
                "act 2: HIGH again after the job ended",
                "states after it: %s" % [n["state"] for n in after])
        kills = [ln for ln in r.lines if "Out of memory: Killed process" in ln]
        self.ok(len(kills) == 1 and "(mb-hog)" in kills[0] and
                r.exits.get("mb-hog") == 0,
                "the OOM killer struck once, at act 1's hog; act 2's job "
                "ended by itself", "kills: %s; job's exit status %s" % (
                    kills, r.exits.get("mb-hog")))

        pre = [n for n in r.notify if n["t"] < a3]
        total0 = pre[-1]["total"] if pre else 0
        hold = self.notes_in(a3, a3d)
        self.ok(bool(hold) and min(n["total"] for n in hold) < total0,
                "act 3: the balloon took memory (total went down, notified)",
                "total before %d, during: %s" % (
                    total0, [n["total"] for n in hold][:5]))
        self.ok(any(n["state"] == "low" for n in hold),
                "act 3: LOW was published after the balloon inflated",
                "states during act 3: %s" % [n["state"] for n in hold])
        a4, rs = r.window("act4", "restore")
        back = self.notes_in(a3d, a4)
        low_total = min([n["total"] for n in hold] or [0])
        self.ok(any(n["state"] != "low" and n["total"] > low_total
                    for n in back),
                "act 3: recovery (STEADY or HIGH, total back up) after the "
                "balloon deflated",
                "after deflate: %s" % [(n["state"], n["total"])
                                       for n in back][:5])
        before4 = [n for n in r.notify if n["t"] < a4]
        grown = self.notes_in(a4, rs)
        max_total = max([n["total"] for n in before4] or [0])
        self.ok(any(n["total"] > max_total for n in grown),
                "act 4: TOTAL grew with virtio-mem, with a notification",
                "largest total before %d, in act 4: %s" % (
                    max_total, [n["total"] for n in grown]))
        high4 = before4[-1]["high"] if before4 else 0
        self.ok(any(n["high"] > high4 for n in grown),
                "act 4: the thresholds followed the new total",
                "high before %d, in act 4: %s" % (
                    high4, [n["high"] for n in grown]))
        thumbs_before = max([s["thumbnails"] for s in r.samples
                             if s["t"] < a4] or [0])
        thumbs_after = max([s["thumbnails"] for s in r.samples
                            if a4 <= s["t"] < rs] or [0])
        self.ok(thumbs_after > thumbs_before,
                "act 4: thumbnails grew into the added memory",
                "largest before act 4 %.1f MiB, in act 4 %.1f MiB" % (
                    mib(thumbs_before), mib(thumbs_after)))

        for c in CACHES:
            good, why = self.cache_cycle(c)
            self.ok(good, "%s shrank after LOW and grew again after "
                    "recovery" % c, why)
        shrinks = [d for d in r.decisions if d["decision"] == "shrink"]
        grows = [d for d in r.decisions if d["decision"] == "grow"]
        self.ok(bool(shrinks) and all(d["state"] == "low" for d in shrinks),
                "the broker logged SHRINK decisions, all in LOW",
                "%d shrinks, states %s" % (
                    len(shrinks), sorted({d["state"] for d in shrinks})))
        # STEADY grants a growth allowance too (a quarter of the headroom
        # above low), so it may record GROW; LOW never does
        self.ok(any(d["state"] == "high" for d in grows) and
                all(d["state"] in ("high", "steady") for d in grows),
                "the broker logged GROW decisions in HIGH, none in LOW",
                "%d grows, states %s" % (
                    len(grows), sorted({d["state"] for d in grows})))
        at = {n["t"] for n in r.notify}
        prodded = [d["t"] for d in r.decisions if d["t"] not in at]
        self.ok(bool(r.decisions) and not prodded,
                "every broker decision acted on a notification (nothing "
                "else asked the broker)", "decisions at %s match no "
                "notification" % sorted(set(prodded))[:5])
        for act in ("act2", "act3", "act4", "restore"):
            good, why = self.full_before(act)
            self.ok(good, "the caches had grown back to their bounds before "
                    "%s" % act, why)
        # the cheap cache goes first: sessions is only cut in a step that
        # also leaves thumbnails empty
        rounds = {}
        for d in r.decisions:
            rounds.setdefault(d["t"], {})[d["clerk"]] = d
        bad = [t for t, ds in rounds.items()
               if ds.get("sessions", {}).get("decision") == "shrink" and
               ds.get("thumbnails", {}).get("target", 0) != 0]
        cut = [t for t, ds in rounds.items()
               if ds.get("sessions", {}).get("decision") == "shrink"]
        self.ok(bool(cut) and not bad,
                "priorities: sessions (80) was only cut once thumbnails (20) "
                "was empty", "sessions cut at %s; with thumbnails left at %s"
                % (cut[:5], bad[:5]))

        res = r.sq_result
        self.ok(res.get("released_on_low", 0) > 0 and bool(r.sq_shrinks),
                "sqlite gave pages back on LOW",
                "released_on_low=%s, %d shrink lines" % (
                    res.get("released_on_low"), len(r.sq_shrinks)))
        self.ok(r.sq_summary is not None and res.get("queries", 0) > 0 and
                res.get("errors", 1) == 0,
                "sqlite completed its workload (queries answered, none "
                "failed)", "summary %r, queries=%s errors=%s" % (
                    r.sq_summary, res.get("queries"), res.get("errors")))
        self.ok(res.get("regrew") == 1,
                "sqlite's page cache regrew once memory was plentiful",
                "regrew=%s" % res.get("regrew"))
        self.ok(r.exits.get("mb-service") == 0 and r.stop is not None and
                r.stop.get("status") == 0,
                "mb-service stopped cleanly on SIGTERM",
                "exit %s, stop line %s" % (r.exits.get("mb-service"),
                                           r.stop))
        self.ok(not r.notes, "mb-service printed every notification and "
                "decision", "\n".join(r.notes))
        self.daemon()
        kernel_ok, why = self.kernel()
        self.ok(kernel_ok, "the guest finished and the kernel log is clean "
                "(parse-log.sh)", why)
        print("1..%d" % self.n)
        return self.failed == 0

    def daemon(self):
        """membrokerd: a warning in each act with LOW, before act 1's
        kill, none in act 4 (memory added, never LOW), every one at its
        socket client."""
        r = self.r

        def sent(first, last):
            a, b = r.window(first, last)
            return [d for d in r.mbd if a <= d["t"] < b]

        a1 = sent("act1", "act1-end")
        kill = r.oom_kill if r.oom_kill is not None else float("-inf")
        self.ok(bool(a1) and a1[0]["t"] < kill,
                "membrokerd: act 1's first warning went out before the OOM "
                "kill", "warnings %s, kill at %s" % (
                    [(d["t"], d["level"]) for d in a1], r.oom_kill))
        for first, last, what in (("act2", "act2-end", "act 2's job"),
                                  ("act3", "act3-deflate",
                                   "act 3's balloon")):
            self.ok(bool(sent(first, last)),
                    "membrokerd: a warning during %s" % what,
                    "none between %s and %s" % r.window(first, last))
        quiet = sent("act4", "restore")
        self.ok(not quiet, "membrokerd: no warning while act 4 adds memory",
                "%s" % [(d["t"], d["level"]) for d in quiet])
        self.ok(all(d.get("state") == "low" for d in r.mbd),
                "membrokerd: every warning was for a LOW reading",
                "%s" % [d for d in r.mbd if d.get("state") != "low"])
        levels = [d["level"] for d in r.mbd]
        self.ok(bool(levels) and [g for _, g in r.mbd_got] == levels and
                all(g >= d["t"] for (g, _), d in zip(r.mbd_got, r.mbd)),
                "membrokerd: its socket client got every warning, level "
                "for level, after it was sent",
                "sent %s, got %s" % (levels, [g for _, g in r.mbd_got]))
        self.ok(r.exits.get("membrokerd") == 0 and
                r.exits.get("mbd-listen") == 0,
                "membrokerd stopped cleanly on SIGTERM, its client saw the "
                "end", "exits %s" % r.exits)

    def kernel(self):
        """parse-log.sh's verdict, with OOM reports' call traces excused"""
        tmp = tempfile.mkdtemp()
        try:
            log = os.path.join(tmp, "console.log")
            in_oom = False
            with open(log, "w") as f:
                for line in self.r.lines:
                    if "invoked oom-killer:" in line:
                        in_oom = True
                    if in_oom and "Call Trace" in line:
                        continue
                    if "Out of memory: Killed process" in line:
                        in_oom = False
                    f.write(line + "\n")
            res = subprocess.run(
                [os.path.join(HERE, "parse-log.sh"), log,
                 os.path.join(tmp, "counts")],
                capture_output=True, text=True)
            return res.returncode == 0, res.stderr.strip()
        finally:
            shutil.rmtree(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--timeline", action="store_true")
    ap.add_argument("--plot", metavar="DIR")
    ap.add_argument("--check", metavar="COUNTS")
    a = ap.parse_args()
    run = Run(a.log)
    rc = 0
    if a.timeline:
        tl = Timeline(run)
        tl.build()
        tl.print()
    if a.plot:
        out = plot(run, a.plot)
        if out:
            print("\nPlot: " + " and ".join(out))
        else:
            rc = 1
    if a.check:
        c = Checks(run)
        good = c.run()
        os.makedirs(os.path.dirname(os.path.abspath(a.check)), exist_ok=True)
        with open(a.check, "w") as f:
            f.write("%d %d 0\n" % (c.passed, c.failed))
        if not good:
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
