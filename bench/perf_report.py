#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Summary tables of the performance benches (issue 12).

    bench/perf_report.py [--check] FILE.json...

Each FILE is JSON lines: host rows written by the host benches with
$BENCH_JSON (harness.c), or "MB-JSON" objects of the guest benches (tails,
outcome) that bench/perf_vm.sh collected, plus one {"kind": "meta"} line
(command, date, machine, load).  Prints markdown tables, each figure next
to its alternative with the ratio.  --check only asserts that every file
is well-formed and holds figures (the smoke run of make check): it judges
no value.
"""
import json
import math
import sys


def load(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise SystemExit("%s:%d: not JSON: %s" % (path, n, e))
    return rows


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def fmt(x, f="%.1f"):
    return "-" if x is None else f % x


def ratio(a, b):
    # a ratio to a value at or below zero means nothing
    if a is None or b is None or b <= 0:
        return "-"
    return "%.2fx" % (a / b)


def meta_line(rows):
    for r in rows:
        if r.get("kind") == "meta":
            return ("%s; %s; load %s -> %s; `%s`" %
                    (r.get("date", "?"), r.get("machine", "?"),
                     r.get("load_start", "?"), r.get("load_end", "?"),
                     r.get("command", "?")))
    return None


def host_tables(rows):
    out = []
    cc = [r for r in rows if r.get("bench") == "clerk_charge" and
          "shared counter" in r.get("table", "")]
    if cc:
        out.append("clerk charge+uncharge, ns/op (ratio: clerk / "
                   "alternative)\n")
        out.append("| threads | mb_clerk | one atomic | mutex | "
                   "clerk/atomic | clerk/mutex |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        for t in sorted({r["threads"] for r in cc}):
            v = {}
            for r in cc:
                if r["threads"] == t:
                    key = r["variant"].split()[0]
                    v[key] = r["ns_per_op"]
            c = v.get("mb_clerk_charge+uncharge")
            a = v.get("atomic_fetch_add+sub")
            m = v.get("mutex")
            out.append("| %d | %s | %s | %s | %s | %s |" %
                       (t, fmt(c, "%.2f"), fmt(a, "%.2f"), fmt(m, "%.2f"),
                        ratio(c, a), ratio(c, m)))
        out.append("")
    bs = [r for r in rows if r.get("bench") == "broker_scale"]
    if bs:
        out.append("broker decision, us per notification (ratio: per "
                   "clerk against 10 clerks)\n")
        out.append("| clerks | LOW (a step) | STEADY | LOW per clerk, "
                   "vs 10 | STEADY per clerk, vs 10 |")
        out.append("|---:|---:|---:|---:|---:|")
        per = {}
        for r in bs:
            n = int(r["variant"].rsplit(",", 1)[1].split()[0])
            kind = "low" if r["variant"].startswith("LOW") else "steady"
            per[(n, kind)] = r["ns_per_op"]
        sizes = sorted({n for n, _ in per})
        base = sizes[0]
        for n in sizes:
            lo, st = per.get((n, "low")), per.get((n, "steady"))
            out.append("| %d | %s | %s | %s | %s |" % (
                n, fmt(lo and lo / 1e3, "%.2f"), fmt(st and st / 1e3, "%.2f"),
                ratio(lo and lo / n, per.get((base, "low")) and
                      per[(base, "low")] / base),
                ratio(st and st / n, per.get((base, "steady")) and
                      per[(base, "steady")] / base)))
        out.append("")
    return out


DETS = ["kmod", "psi500", "psi2000", "poll100", "poll5000"]


def tails_tables(rows):
    out = []
    setup = next((r for r in rows if r.get("kind") == "tails-setup"), {})
    tr = [r for r in rows if r.get("kind") == "tails"]
    if not tr:
        return out
    out.append("detection latency after the crossing, ms (%s MiB guest, "
               "%s vCPU, low %s MiB); missed = no detection before the "
               "hold ended; ratio: p50 against kmod's (none where kmod's p50 is not above 0)\n" %
               (setup.get("total_mib"), setup.get("cpus"),
                setup.get("low_mib")))
    out.append("| rate MiB/s | detector | crossings | p50 | p90 | p99 | max "
               "| missed | missed if it lasted 1 s | p50 / kmod p50 | p50 - kmod p50 |")
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rate in sorted({r["rate_mibs"] for r in tr}, key=lambda x: (x != 0, -x)):
        rs = [r for r in tr if r["rate_mibs"] == rate and r["crossed"]]
        kp50 = pct([r["latency_ms"]["kmod"] for r in rs
                    if r["latency_ms"]["kmod"] is not None], 50)
        got = [r["alloc_mib"] / (r["alloc_ms"] / 1e3) for r in rs
               if r["alloc_ms"] > 0]
        label = ("%d" % rate if rate else
                 "max (%.0f)" % (pct(got, 50) or 0))
        for d in DETS:
            xs = [r["latency_ms"][d] for r in rs
                  if r["latency_ms"].get(d) is not None]
            p50 = pct(xs, 50)
            out.append("| %s | %s | %d | %s | %s | %s | %s | %d | %d | %s | %s |"
                       % (label, d, len(rs), fmt(p50), fmt(pct(xs, 90)),
                          fmt(pct(xs, 99)), fmt(max(xs) if xs else None),
                          len(rs) - len(xs),
                          len(rs) - len([x for x in xs if x <= 1000]),
                          ratio(p50, kp50) if d != "kmod" else "1.00x",
                          fmt(p50 - kp50 if p50 is not None and
                              kp50 is not None else None)))
    out.append("")
    return out


REACTIONS = ["none", "psi", "poll", "kmod"]


def outcome_tables(rows):
    """One table per run of outcome: a setup line and the rows after it
    (the smoke run has two, mb_cache's and SQLite's, in one file)."""
    out, setup, seg = [], {}, []
    for r in rows:
        if r.get("kind") == "outcome-setup":
            out += outcome_table(setup, seg)
            setup, seg = r, []
        elif r.get("kind") == "outcome":
            seg.append(r)
    return out + outcome_table(setup, seg)


def outcome_table(setup, rows):
    out = []
    orr = [r for r in rows if "error" not in r]
    if not orr:
        return out
    app = {"sqlite": "SQLite's page cache (the example's clerk)"}.get(
        setup.get("app"), "an mb_cache")
    adj = setup.get("app_oom_score_adj", -1000)
    out.append("outcome: %s of %s of RAM (%s MiB guest), a job taking "
               "as much at %s MiB/s; the application's oom_score_adj %s%s; "
               "median [min..max] over runs\n" %
               (app, setup.get("cache_frac"), setup.get("total_mib"),
                setup.get("job_rate_mibs"), adj,
                " (the OOM killer spares it)" if adj == -1000 else ""))

    def cell(rs, key, f="%.0f"):
        xs = [r[key] for r in rs if r.get(key) is not None and r[key] >= 0]
        if not xs:
            return "-"
        return "%s [%s..%s]" % (f % pct(xs, 50), f % min(xs), f % max(xs))

    out.append("| | " + " | ".join(REACTIONS) + " |")
    out.append("|---|" + "---|" * len(REACTIONS))
    by = {x: [r for r in orr if r["reaction"] == x] for x in REACTIONS}
    lines = [
        ("runs", lambda rs: "%d" % len(rs)),
        ("OOM kills (all runs)", lambda rs: "%d" % sum(r["oom_kills"]
                                                       for r in rs)),
        ("killed: job / app", lambda rs: "%d / %d" % (
            sum("job" in r["killed"] for r in rs),
            sum("app" in r["killed"] for r in rs))),
        ("job completed", lambda rs: "%d" % sum(r["job_done"] for r in rs)),
        ("job time, ms", lambda rs: cell([r for r in rs if r["job_done"]],
                                         "job_ms")),
        ("PSI some, total ms", lambda rs: cell(rs, "psi_some_ms")),
        ("PSI full, total ms", lambda rs: cell(rs, "psi_full_ms")),
        ("PSI some, peak % of 1 s", lambda rs: cell(rs, "psi_some_peak_pct",
                                                   "%.1f")),
        ("PSI full, peak % of 1 s", lambda rs: cell(rs, "psi_full_peak_pct",
                                                   "%.1f")),
        ("first warning, ms after the job began",
         lambda rs: cell(rs, "warn_ms")),
        ("caches gave back, MiB", lambda rs: cell(rs, "released_mib",
                                                  "%.1f")),
        ("last release, ms after the first warning",
         lambda rs: cell(rs, "released_after_warn_ms")),
    ]
    # older files lack these; the SQLite application alone answers queries
    if any("released_max_mib" in r for r in orr):
        lines.insert(-1, ("caches gave back at most, MiB",
                          lambda rs: cell(rs, "released_max_mib", "%.1f")))
    if any("queries" in r for r in orr):
        lines += [
            ("queries answered from the job's start",
             lambda rs: cell(rs, "queries")),
            ("wrong or failed answers (all runs)",
             lambda rs: "%d" % sum(r["query_errors"] for r in rs)),
        ]
    for name, fn in lines:
        out.append("| %s | %s |" % (name, " | ".join(
            fn(by[x]) if by[x] else "-" for x in REACTIONS)))
    out.append("")
    return out


def cost_tables(rows):
    out = []
    ph = [r for r in rows if r.get("kind") == "cost-phase"]
    if ph:
        setup = next((r for r in rows if r.get("kind") == "cost-setup"), {})
        out.append("cost per phase (%s MiB guest, %s vCPU); ratio: library "
                   "thread CPU / 100 ms poller CPU\n" %
                   (setup.get("total_mib"), setup.get("cpus")))
        out.append("| phase | s | module evaluations | per s | mb_eval_run "
                   "us (ftrace, upper bound) | library thread CPU ms | "
                   "100 ms poller CPU ms | ratio |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in ph:
            out.append("| %s | %.1f | %d | %.1f | %s | %.2f | %.2f | %s |" % (
                r["phase"], r["seconds"], r["evaluations"],
                r["evals_per_s"],
                "%.1f (%d hits)" % (r["ftrace_us"], r["ftrace_hits"])
                if r["ftrace"] else "not available",
                r["lib_thread_cpu_ms"], r["poll100_cpu_ms"],
                ratio(r["lib_thread_cpu_ms"], r["poll100_cpu_ms"])))
        out.append("")
    fa = [r for r in rows if r.get("kind") == "cost-faults"]
    if fa:
        out.append("page-fault throughput of a hog, MiB/s, rounds "
                   "alternating; ratio: loaded / not loaded\n")
        out.append("| memory | module loaded | not loaded | ratio | "
                   "faults per run |")
        out.append("|---|---|---|---:|---:|")
        for kind in ("spare", "reclaim"):
            on = [r["mib_per_s"] for r in fa if r["memory"] == kind and
                  r["module"]]
            off = [r["mib_per_s"] for r in fa if r["memory"] == kind and
                   not r["module"]]
            if not on and not off:
                continue
            nf = [r["faults"] for r in fa if r["memory"] == kind]
            out.append("| %s | %s | %s | %s | %d |" % (
                kind, " ".join("%.0f" % x for x in on),
                " ".join("%.0f" % x for x in off),
                ratio(pct(on, 50), pct(off, 50)), pct(nf, 50) or 0))
        out.append("")
    return out


def check(path, rows):
    """The smoke run's assertion: figures of the right shape, no value
    judged."""
    if not rows:
        raise SystemExit("%s: empty" % path)
    n = 0
    for r in rows:
        if "bench" in r:
            if not (r["ns_per_op"] > 0 and r["ops"] > 0):
                raise SystemExit("%s: bad row %r" % (path, r))
            n += 1
        elif r.get("kind") == "tails":
            assert isinstance(r["latency_ms"], dict), r
            for d in DETS:
                x = r["latency_ms"].get(d, "absent")
                if x != "absent" and x is not None and not \
                        isinstance(x, (int, float)):
                    raise SystemExit("%s: bad latency %r" % (path, r))
            n += 1
        elif r.get("kind") in ("cost-phase", "cost-faults"):
            n += 1
        elif r.get("kind") == "outcome":
            if "error" in r:
                raise SystemExit("%s: %s" % (path, r["error"]))
            # the SQLite application checks every answer it gets
            if r.get("query_errors"):
                raise SystemExit("%s: %d wrong answers from SQLite: %r" %
                                 (path, r["query_errors"], r))
            n += 1
    if not n:
        raise SystemExit("%s: no figures" % path)
    return n


def main(argv):
    do_check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    if not paths:
        raise SystemExit(__doc__)
    for p in paths:
        rows = load(p)
        if do_check:
            print("%s: %d figures, well-formed" % (p, check(p, rows)))
            continue
        print("### %s\n" % p.rsplit("/", 1)[-1])
        m = meta_line(rows)
        if m:
            print(m + "\n")
        for line in host_tables(rows) + tails_tables(rows) + \
                outcome_tables(rows) + cost_tables(rows):
            print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
