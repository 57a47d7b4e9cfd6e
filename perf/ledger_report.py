#!/usr/bin/env python3
"""Figures for perf/ledger.sh (issue 17, shipping the ledger to Postgres): python3 perf/ledger_report.py COMMAND ...

  sample FILE INTERVAL METRICS_URL   poll a gateway's /metrics every INTERVAL seconds until SIGTERM;
                                one line per answer, "EPOCH ROWS SHIPPED SPOOLED QUEUE" (the ledger's
                                rows written, rows shipped, rows spooled, entries queued; -1: absent)
  wait METRICS_URL drained|written|spooled --timeout S   poll every 50 ms until the shipper has
                                shipped every row the gateway wrote (drained), until the ledger's
                                queue is empty (written), or until every row written is shipped or
                                counted as spooled with a spool (spooled: Postgres is down); prints
                                "EPOCH ROWS SHIPPED SPOOLED"; exit 1 at the timeout
  ticks PID [--tree]            utime + stime of PID in clock ticks (--tree: and of its children, and
                                the children it has reaped: Postgres's backends)
  header                        runs.csv's header line
  h2load OUTPUT LOGFILE         a wrk-style RESULT line from an h2load run (--rate)
  row ...                       one runs.csv row from a run's raw figures (see run_row)
  report DIR                    DIR/runs.csv, DIR/replay.csv, DIR/check.csv: the Markdown summary

The arithmetic (the metrics, the process tree's CPU, the medians and ratios, the spool's peak and
the shipping rate) is checked by perf/ledger_report_test.py, which perf/ledger.sh runs before it
measures anything.
"""
import csv
import os
import re
import signal
import statistics
import sys
import time
import urllib.request

ROWS = "llm_gateway_ledger_rows_total"
SHIPPED = "llm_gateway_ledger_shipped_total"
SPOOLED = "llm_gateway_ledger_spooled_rows"
QUEUE = "llm_gateway_ledger_queue_depth"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\s+([0-9.eE+-]+|NaN)\s*$", re.M)

RUN_FIELDS = [
    "round", "setup", "requests", "duration_s", "rps", "p50_us", "p99_us", "errors",
    "cpu_s", "cpu_us_per_request", "alloc_bytes", "alloc_per_request", "rss_before_kib", "rss_after_kib",
    "pg_cpu_s", "pg_cpu_us_per_request", "shipped", "shipped_per_s", "max_spooled", "max_behind", "drain_s",
]


# ---------------------------------------------------------------- arithmetic (tested)

def parse_metrics(text):
    """{name: value} of a Prometheus text body's samples without labels (the ledger's are such)."""
    return {name: float(value) for name, value in SAMPLE.findall(text)}


def ledger_state(metrics):
    """(rows written, rows shipped, rows spooled, entries queued); -1 for a metric the body lacks
    (a gateway without [store] has no shipped and spooled)."""
    return tuple(int(metrics.get(name, -1)) for name in (ROWS, SHIPPED, SPOOLED, QUEUE))


def drained(state):
    """Every row written to the local file is in the shared ledger, and none waits in the queue."""
    rows, shipped, spooled, queue = state
    return queue == 0 and spooled == 0 and shipped == rows


def written(state):
    """Every entry queued has reached the local file (the ledger's writer is idle)."""
    return state[3] == 0


def spooled_all(state):
    """Postgres is down and every row written is either shipped before or counted in the spool."""
    rows, shipped, spooled, queue = state
    return queue == 0 and spooled > 0 and shipped + spooled == rows


def stat_ticks(stat):
    """(pid, ppid, utime + stime, cutime + cstime) from one /proc/PID/stat line (comm may hold
    spaces and parentheses: the fields start after its last ')')."""
    pid = int(stat.split(" ", 1)[0])
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is state (field 3); ppid is field 4, utime..cstime fields 14..17.
    return pid, int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def tree_ticks(stats, root):
    """CPU ticks of `root` and every process under it, plus what `root` reaped from children that
    ended (their cutime + cstime): a Postgres postmaster's backends that came and went count too.
    `stats`: /proc/PID/stat lines of every process."""
    procs = {}
    children = {}
    for line in stats:
        pid, ppid, own, reaped = stat_ticks(line)
        procs[pid] = (own, reaped)
        children.setdefault(ppid, []).append(pid)
    if root not in procs:
        return 0
    total = procs[root][1]
    todo = [root]
    while todo:
        pid = todo.pop()
        total += procs[pid][0]
        todo.extend(children.get(pid, []))
    return total


def max_spooled(samples, t0, t1):
    """The most rows spooled in any sample from t0 to t1 (samples: (epoch, rows, shipped, spooled, queue))."""
    values = [s[3] for s in samples if t0 <= s[0] <= t1 and s[3] >= 0]
    return max(values) if values else 0


def max_behind(samples, t0, t1):
    """The most rows written to the local file and not yet shipped in any sample from t0 to t1
    (rows - shipped: the counters, not the spool gauge, which is as of the shipper's last count)."""
    values = [s[1] - s[2] for s in samples if t0 <= s[0] <= t1 and s[2] >= 0]
    return max(values) if values else 0


def h2load_result(text, log_lines):
    """A wrk-style RESULT line from an h2load run's output and its --log-file lines
    ("start_us\tstatus\tduration_us"): requests done, the run's time, p50/p99, errors."""
    done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", text).group(1))
    failed = sum(int(x) for x in re.search(r"(\d+) failed, (\d+) errored, (\d+) timeout", text).groups())
    finished = re.search(r"finished in ([\d.]+)(m?s)", text)
    seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    rows = [line.split("\t") for line in log_lines if line.strip()]
    lat = sorted(int(r[2]) for r in rows)
    non200 = sum(1 for r in rows if r[1] != "200")

    def pct(p):
        return lat[min(len(lat) - 1, max(0, int(round(p / 100 * len(lat) + 0.5)) - 1))] if lat else 0
    mean = sum(lat) / len(lat) if lat else 0
    return (f"RESULT requests={done} duration_us={int(seconds * 1e6)} p50_us={pct(50)} p99_us={pct(99)} "
            f"mean_us={mean:.1f} errors={failed} status_errors={non200}")


def shipped_between(samples, t0, t1):
    """Rows shipped from the last sample at or before t0 to the last at or before t1."""
    before = [s for s in samples if s[0] <= t0 and s[2] >= 0]
    upto = [s for s in samples if s[0] <= t1 and s[2] >= 0]
    if not before or not upto:
        return 0
    return upto[-1][2] - before[-1][2]


def shipping_span(samples, t0):
    """(first, last) epoch after t0 between which the shipped count moved: the last sample before
    its first rise, and the first sample at its final value. None when it never moved."""
    after = [s for s in samples if s[0] >= t0 and s[2] >= 0]
    if len(after) < 2:
        return None
    final = after[-1][2]
    start = next((i for i in range(1, len(after)) if after[i][2] > after[i - 1][2]), None)
    if start is None:
        return None
    end = next(i for i in range(len(after)) if after[i][2] == final)
    return after[start - 1][0], after[end][0]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(b, a):
    return None if a in (None, 0) or b is None else b / a


def run_row(rnd, setup, wrk_result, cpu_ticks, clk_tck, alloc0, alloc1, rss0, rss1, pg_ticks, samples, t0, t1, drain_s):
    """One runs.csv row. wrk_result: the wrk script's RESULT line; cpu_ticks, pg_ticks: the
    gateway's and Postgres's utime + stime over the run; alloc0/1: the gateway's allocated bytes
    before and after; samples: the ledger sampler's lines; t0..t1 the run's span; drain_s: seconds
    from the run's end until the spool was empty ("" without a shipper)."""
    fields = dict(re.findall(r"(\w+)=([\d.]+)", wrk_result))
    requests = int(fields["requests"])
    duration = int(fields["duration_us"]) / 1e6
    cpu = cpu_ticks / clk_tck
    pg = pg_ticks / clk_tck
    alloc = alloc1 - alloc0
    shipper = any(s[2] >= 0 for s in samples)
    shipped = shipped_between(samples, t0, t1) if shipper else ""
    return {
        "round": rnd, "setup": setup, "requests": requests, "duration_s": f"{duration:.3f}",
        "rps": f"{requests / duration:.1f}", "p50_us": fields["p50_us"], "p99_us": fields["p99_us"],
        "errors": int(fields["errors"]) + int(fields["status_errors"]),
        "cpu_s": f"{cpu:.2f}", "cpu_us_per_request": f"{cpu * 1e6 / requests:.2f}" if requests else "",
        "alloc_bytes": alloc, "alloc_per_request": f"{alloc / requests:.0f}" if requests else "",
        "rss_before_kib": rss0, "rss_after_kib": rss1,
        "pg_cpu_s": f"{pg:.2f}", "pg_cpu_us_per_request": f"{pg * 1e6 / requests:.2f}" if requests else "",
        "shipped": shipped, "shipped_per_s": f"{shipped / duration:.0f}" if shipper else "",
        "max_spooled": max_spooled(samples, t0, t1) if shipper else "",
        "max_behind": max_behind(samples, t0, t1) if shipper else "", "drain_s": drain_s,
    }


def summarize(rows):
    """Per setup ("a", "b"): the medians of its runs' figures, and (b) / (a) of each."""
    figures = ("rps", "p50_us", "p99_us", "cpu_us_per_request", "alloc_per_request", "pg_cpu_us_per_request")
    out = {}
    for setup in ("a", "b"):
        runs = [r for r in rows if r["setup"] == setup]
        out[setup] = {f: median([float(r[f]) for r in runs if r[f] != ""]) for f in figures}
        out[setup]["runs"] = len(runs)
        out[setup]["errors"] = sum(int(r["errors"]) for r in runs)
        rss = [(int(r["rss_before_kib"]), int(r["rss_after_kib"])) for r in runs]
        out[setup]["rss_first_kib"] = rss[0][0] if rss else None
        out[setup]["rss_last_kib"] = rss[-1][1] if rss else None
    out["ratio"] = {f: ratio(out["b"][f], out["a"][f]) for f in figures}
    return out


# ---------------------------------------------------------------- sampling

def scrape(url):
    with urllib.request.urlopen(url, timeout=2) as response:
        return ledger_state(parse_metrics(response.read().decode()))


def sample(path, interval, url):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(path, "a") as out:
        while not stop:
            try:
                state = scrape(url)
            except OSError:
                state = None
            if state is not None:
                out.write(f"{time.time():.3f} {' '.join(map(str, state))}\n")
                out.flush()
            time.sleep(interval)
    return 0


def read_samples(path):
    samples = []
    if os.path.exists(path):
        for line in open(path):
            parts = line.split()
            if len(parts) == 5:
                samples.append((float(parts[0]), *map(int, parts[1:])))
    return samples


def wait(url, what, timeout):
    done = {"drained": drained, "written": written, "spooled": spooled_all}[what]
    deadline = time.time() + timeout
    state = None
    while time.time() < deadline:
        try:
            state = scrape(url)
        except OSError:
            state = None
        if state is not None and done(state):
            print(f"{time.time():.3f} {state[0]} {state[1]} {state[2]}")
            return 0
        time.sleep(0.05)
    print(f"ledger_report: not {what} within {timeout} s; last (rows, shipped, spooled, queue): {state}", file=sys.stderr)
    return 1


def ticks(pid, tree):
    if not tree:
        return stat_ticks(open(f"/proc/{pid}/stat").read())[2]
    stats = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats.append(open(f"/proc/{entry}/stat").read())
            except OSError:
                pass  # ended meanwhile
    return tree_ticks(stats, pid)


# ---------------------------------------------------------------- the report

def fmt(value, digits=0):
    if value is None or value == "":
        return "-"
    return f"{value:,.{digits}f}"


def report(directory):
    rows = list(csv.DictReader(open(os.path.join(directory, "runs.csv"))))
    s = summarize(rows)
    a, b, r = s["a"], s["b"], s["ratio"]
    print(f"### (a) [ledger] only and (b) [ledger] + [store] postgres_url: medians of {a['runs']} and {b['runs']} alternated runs\n")
    print("| figure | (a) ledger only | (b) + Postgres | (b) / (a) |")
    print("|---|--:|--:|--:|")
    print(f"| req/s | {fmt(a['rps'])} | {fmt(b['rps'])} | {fmt(r['rps'], 3)} |")
    print(f"| latency p50 / p99 (us) | {fmt(a['p50_us'])} / {fmt(a['p99_us'])} | {fmt(b['p50_us'])} / {fmt(b['p99_us'])} | {fmt(r['p50_us'], 2)} / {fmt(r['p99_us'], 2)} |")
    print(f"| gateway CPU per request (us, utime + stime) | {fmt(a['cpu_us_per_request'], 1)} | {fmt(b['cpu_us_per_request'], 1)} | {fmt(r['cpu_us_per_request'], 3)} |")
    print(f"| allocated bytes per request | {fmt(a['alloc_per_request'])} | {fmt(b['alloc_per_request'])} | {fmt(r['alloc_per_request'], 3)} |")
    print(f"| RSS, first run's start -> last run's end (MiB) | {fmt(a['rss_first_kib'] / 1024, 1)} -> {fmt(a['rss_last_kib'] / 1024, 1)} | {fmt(b['rss_first_kib'] / 1024, 1)} -> {fmt(b['rss_last_kib'] / 1024, 1)} | |")
    print(f"| Postgres's own CPU per request (us, apart) | {fmt(a['pg_cpu_us_per_request'], 1)} | {fmt(b['pg_cpu_us_per_request'], 1)} | |")
    print(f"| errors (all runs) | {a['errors']} | {b['errors']} | |")
    print()
    print("Per run (in the order run):\n")
    print("| round | setup | req/s | CPU us/req | B/req | RSS KiB before -> after | Postgres CPU s | shipped/s | most spooled (gauge) | most behind (rows - shipped) | drained after (s) |")
    print("|--:|---|--:|--:|--:|---|--:|--:|--:|--:|--:|")
    for row in rows:
        print(f"| {row['round']} | {row['setup']} | {fmt(float(row['rps']))} | {row['cpu_us_per_request']} | {row['alloc_per_request']} | "
              f"{row['rss_before_kib']} -> {row['rss_after_kib']} | {row['pg_cpu_s']} | {row['shipped_per_s'] or '-'} | "
              f"{row['max_spooled'] or '-'} | {row['max_behind'] or '-'} | {row['drain_s'] or '-'} |")
    bs = [row for row in rows if row["setup"] == "b"]
    if bs:
        print()
        print(f"Shipping under the load, (b): median {fmt(median([float(x['shipped_per_s']) for x in bs]))} rows/s shipped "
              f"against {fmt(b['rps'])} req/s served; at most {fmt(median([float(x['max_spooled']) for x in bs]))} rows spooled "
              f"by the gauge (median of the runs' peaks; highest {max(int(x['max_spooled']) for x in bs):,}), "
              f"{fmt(median([float(x['max_behind']) for x in bs]))} rows written and not yet shipped by the counters "
              f"(highest {max(int(x['max_behind']) for x in bs):,}); the spool empty "
              f"{fmt(median([float(x['drain_s']) for x in bs]), 2)} s (median; longest {max(float(x['drain_s']) for x in bs):.2f} s) after the load stopped.")
    replay_path = os.path.join(directory, "replay.csv")
    replays = list(csv.DictReader(open(replay_path))) if os.path.exists(replay_path) else []
    if replays:
        print()
        print("### Replay: rows spooled while Postgres was stopped, shipped when it started again\n")
        print("| replay | rows spooled | requests answered meanwhile | ready -> all shipped (s) | rows/s (ready -> all shipped) | rows/s (while shipping) | gateway CPU s (us per row) | gateway B per row | Postgres CPU s (us per row) |")
        print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for x in replays:
            rows_n = int(x["rows"])
            print(f"| {x['replay']} | {rows_n:,} | {int(x['answered']):,} | {float(x['seconds']):.2f} | {rows_n / float(x['seconds']):,.0f} | "
                  f"{fmt(rows_n / float(x['ship_seconds']) if float(x['ship_seconds']) > 0 else None)} | "
                  f"{float(x['cpu_s']):.2f} ({float(x['cpu_s']) * 1e6 / rows_n:.1f}) | {int(x['alloc_bytes']) / rows_n:,.0f} | "
                  f"{float(x['pg_cpu_s']):.2f} ({float(x['pg_cpu_s']) * 1e6 / rows_n:.1f}) |")
        rates = [int(x["rows"]) / float(x["seconds"]) for x in replays]
        print(f"\nMedian {median(rates):,.0f} rows/s from Postgres ready to the spool empty.")
    check_path = os.path.join(directory, "check.csv")
    if os.path.exists(check_path):
        checks = list(csv.DictReader(open(check_path)))
        print()
        print("### Nothing lost, nothing doubled: the local file against the shared ledger\n")
        print("| where | rows | distinct row ids | last row id | prompt tokens | completion tokens | cost (nano-USD) |")
        print("|---|--:|--:|--:|--:|--:|--:|")
        for x in checks:
            print(f"| {x['where']} | {int(x['rows']):,} | {int(x['distinct_ids']):,} | {x['max_id']} | {int(x['prompt']):,} | {int(x['completion']):,} | {int(x['cost']):,} |")
        same = len(checks) == 2 and all(checks[0][k] == checks[1][k] for k in ("rows", "distinct_ids", "max_id", "prompt", "completion", "cost"))
        print(f"\n{'EQUAL' if same else 'DIFFERENT'}: the shared ledger holds {'exactly' if same else 'not'} the rows the file holds.")
        return 0 if same else 2
    return 0


def main(argv):
    import argparse
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("sample")
    c.add_argument("file")
    c.add_argument("interval", type=float)
    c.add_argument("url")
    c = sub.add_parser("wait")
    c.add_argument("url")
    c.add_argument("what", choices=("drained", "written", "spooled"))
    c.add_argument("--timeout", type=float, default=120)
    c = sub.add_parser("ticks")
    c.add_argument("pid", type=int)
    c.add_argument("--tree", action="store_true")
    c = sub.add_parser("row")
    for name in ("round", "setup", "wrk_result", "cpu_ticks", "clk_tck", "alloc0", "alloc1", "rss0", "rss1", "pg_ticks", "samples", "t0", "t1", "drain_s"):
        c.add_argument(name)
    sub.add_parser("header")
    c = sub.add_parser("h2load")
    c.add_argument("output")
    c.add_argument("log")
    c = sub.add_parser("report")
    c.add_argument("dir")
    args = parser.parse_args(argv)
    if args.command == "sample":
        return sample(args.file, args.interval, args.url)
    if args.command == "wait":
        return wait(args.url, args.what, args.timeout)
    if args.command == "ticks":
        print(ticks(args.pid, args.tree))
        return 0
    if args.command == "row":
        row = run_row(args.round, args.setup, args.wrk_result, int(args.cpu_ticks), int(args.clk_tck), int(args.alloc0), int(args.alloc1),
                      int(args.rss0), int(args.rss1), int(args.pg_ticks), read_samples(args.samples), float(args.t0), float(args.t1), args.drain_s)
        csv.DictWriter(sys.stdout, RUN_FIELDS, lineterminator="\n").writerow(row)
        return 0
    if args.command == "h2load":
        print(h2load_result(open(args.output).read(), open(args.log).readlines()))
        return 0
    if args.command == "header":
        print(",".join(RUN_FIELDS))
        return 0
    return report(args.dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
