#!/usr/bin/env python3
"""Figures for perf/cluster.sh (issue 16, cluster mode): python3 perf/cluster_report.py COMMAND ...

  sample FILE INTERVAL URL...   poll each URL every INTERVAL seconds until SIGTERM; one line per
                                answer, "EPOCH URL VALUE": for a /metrics URL the sum of its
                                vllm:num_requests_running samples, otherwise the body as one line
  case1 DIR --rpm N [--slack N] the tenant's served requests in any 60 s window, against rpm + slack
  case2 DIR --shape NAME [--from S --to S]   served weighted tokens per tenant against 70/20/10
  case3 DIR --max-concurrency N the most requests each worker ran at once (samples.txt)
  case4 DIR --budget N --max-tokens N [--tenants-urls A B C]   fleet spend over the budget against
                                the reservations in flight (and the replicas' own, from tenants.txt)
  case5 DIR                     runs.csv: medians of the alternated runs, ratios, B/request
  case6 DIR --rpm N [--slack N] 5xx by status, and case 1's window check over the outage

DIR is one case's directory; the runners' outputs are in DIR/A, DIR/B and DIR/C (one
`aotproxy-load run --requests` per replica, each with its own schedule start, put on one clock by
its report's started_at). Each case prints Markdown, and last a table row
"| case | figure | measured | bound | verdict |"; exit 0 PASS, 2 FAIL.

The arithmetic (windows.worst_sliding, weighted_shares, in_flight_reservations) is checked by
perf/cluster_report_test.py, which perf/cluster.sh runs before it measures anything.
"""
import csv
import datetime
import json
import os
import re
import signal
import statistics
import sys
import time
import urllib.request

from windows import WINDOW, worst_sliding

LEAD = 0.02  # aotproxy-load starts its schedule 20 ms after the started_at it reports
REPLICAS = ("A", "B", "C")
INPUT_WEIGHT, OUTPUT_WEIGHT = 1.0, 2.0  # [scheduler] input_weight, output_weight (the defaults)
FAIR_WEIGHTS = {"t70": 70, "t20": 20, "t10": 10}
FAIR_TOLERANCE = 0.05  # issue 16: within +-5 % of each tenant's share
RUNNING = re.compile(r"^vllm:num_requests_running(?:\{[^}]*\})?\s+([0-9.eE+-]+)", re.M)


# ---------------------------------------------------------------- arithmetic (tested)

def weighted_shares(served, weights):
    """{tenant: (share of the served cost, target share from weights, share / target - 1)}."""
    total = sum(served.values())
    weight_sum = sum(weights[t] for t in served)
    out = {}
    for tenant, cost in served.items():
        share = cost / total if total else 0.0
        target = weights[tenant] / weight_sum
        out[tenant] = (share, target, share / target - 1)
    return out


def in_flight_reservations(rows, at):
    """The sum of the reservations (row["reservation"]) of the admitted rows in flight at `at`:
    sent (lo) at or before it and not yet complete (end after it)."""
    return sum(r["reservation"] for r in rows if r["lo"] <= at < r["end"])


def reserved_by_replica(samples, urls, tenant, at):
    """{replica: budget_tokens - spent_tokens - budget_left_tokens} of the tenant, at each replica's
    last /api/tenants sample at or before `at` (`urls`: replica -> its sampled URL). A replica whose
    budget had nothing left (left = 0 is clamped, so the reservations are unknown) or that has no
    sample is left out."""
    last = {}
    for epoch, url, body in samples:
        if epoch <= at:
            last[url] = body
    out = {}
    for replica, url in urls.items():
        if url not in last:
            continue
        t = next(t for t in json.loads(last[url]) if t["name"] == tenant)
        if t["budget_left_tokens"]:
            out[replica] = t["budget_tokens"] - (t["spent_tokens"] or 0) - t["budget_left_tokens"]
    return out


def running_count(metrics_text):
    """The sum of vllm:num_requests_running over a /metrics body (one sample per engine)."""
    return sum(float(v) for v in RUNNING.findall(metrics_text))


def admitted(row):
    """Served: a response head came back with 200 (429: a limit; 503: admission or the fleet)."""
    return row["hi"] is not None and row["status"] == 200


# ---------------------------------------------------------------- inputs

def read_spread(directory, max_tokens=None):
    """Every request of the three runners, on one clock (epoch seconds), sorted by lo."""
    rows = []
    for replica in REPLICAS:
        sub = os.path.join(directory, replica)
        if not os.path.isdir(sub):
            continue
        report = next(f for f in os.listdir(sub) if f.endswith(".json"))
        with open(os.path.join(sub, report)) as f:
            started = datetime.datetime.fromisoformat(json.load(f)["started_at"]).timestamp() + LEAD
        with open(os.path.join(sub, "requests.csv")) as f:
            for r in csv.DictReader(f):
                head = started + float(r["head_s"]) if r["head_s"] else None
                prompt, completion = int(r["prompt_tokens"]), int(r["completion_tokens"])
                rows.append({
                    "replica": replica, "mix": r["mix"], "status": int(r["status"]), "error": r["error"],
                    "lo": started + float(r["send_s"]), "hi": head, "end": started + float(r["end_s"]),
                    "tokens": prompt + completion,
                    "cost": INPUT_WEIGHT * prompt + OUTPUT_WEIGHT * completion,
                    "reservation": int(r["body_bytes"]) // 4 + (max_tokens or {}).get(r["mix"], 0),
                })
    rows.sort(key=lambda r: r["lo"])
    return rows


def read_samples(path):
    """[(epoch, url, value)] of a `sample` file."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) == 3:
                out.append((float(parts[0]), parts[1], parts[2]))
    return out


def row(case, figure, measured, bound, passed, doubt=None):
    """Prints the verdict row; `doubt` (e.g. "NOISY") replaces PASS/FAIL, and is not a pass."""
    verdict = doubt or ("PASS" if passed else "FAIL")
    print(f"| {case} | {figure} | {measured} | {bound} | {verdict} |")
    return 0 if passed and not doubt else 2


def by_replica(rows, predicate):
    return "/".join(str(sum(1 for r in rows if r["replica"] == x and predicate(r))) for x in REPLICAS)


# ---------------------------------------------------------------- the cases

def worst_with_warmups(ok, start, warmups):
    """The most served in one 60 s window, counting the runners' warm-ups: each runner sends one
    unrecorded request per [[mix]] entry before its schedule starts (perf/LOAD.md), served too. They
    all precede `start` (the first recorded send), so a window that holds them holds at most what
    [start, start + 60 s) holds besides: (worst over the recorded windows, that bound)."""
    worst, at = worst_sliding(ok, lambda r: 1)
    first = sum(1 for r in ok if r["lo"] >= start and r["hi"] < start + WINDOW)
    return max(worst, first + warmups), at


def window_check(rows, mix, warmups):
    ok = [r for r in rows if r["mix"] == mix and admitted(r)]
    start = rows[0]["lo"] if rows else 0.0
    worst, at = worst_with_warmups(ok, start, warmups)
    span = (max(r["end"] for r in rows) - start) if rows else 0.0
    widest = max((r["hi"] - r["lo"] for r in ok), default=0.0)
    return ok, worst, (at - start if at is not None else 0.0), span, widest


def case1(args):
    rows = read_spread(args.dir)
    ok, worst, at, span, widest = window_check(rows, "rpm", len(REPLICAS))
    print(f"### Case 1: a tenant with rpm = {args.rpm} over 3 replicas\n")
    print(f"{len(rows)} requests sent (A/B/C {by_replica(rows, lambda r: True)}) over {span:.0f} s, "
          f"{len(ok)} served (A/B/C {by_replica(rows, admitted)}), "
          f"{sum(1 for r in rows if r['status'] == 429)} refused with 429, "
          f"{sum(1 for r in rows if r['status'] >= 500)} 5xx, {sum(1 for r in rows if r['hi'] is None)} without a head.")
    print(f"Most served in one 60 s window: **{worst}** (the worst recorded window starts {at:.1f} s after the first send; "
          f"the 3 runners' warm-up requests, one each before the schedule, are counted into the first minute); "
          f"a request counts when its whole send..head interval ({widest * 1000:.0f} ms at most) lies inside.")
    print()
    return row(1, f"served in any 60 s, rpm = {args.rpm}", worst, f"<= {args.rpm + args.slack}", worst <= args.rpm + args.slack)


def case2(args):
    rows = read_spread(args.dir)
    first = rows[0]["lo"]
    lo, hi = first + args.start, first + args.stop
    served = {t: sum(r["cost"] for r in rows if r["mix"] == t and admitted(r) and lo <= r["end"] < hi) for t in FAIR_WEIGHTS}
    shares = weighted_shares(served, FAIR_WEIGHTS)
    worst = max(abs(e) for _, _, e in shares.values())
    print(f"### Case 2 ({args.shape}): tenants weighted 70/20/10, t70 only on replica A, t20 and t10 only on B and C\n")
    print(f"Served weighted tokens (prompt x {INPUT_WEIGHT:g} + completion x {OUTPUT_WEIGHT:g}) of the requests "
          f"completed {args.start:g}-{args.stop:g} s after the first send; 503s: "
          f"{sum(1 for r in rows if r['status'] == 503)} of {len(rows)}.\n")
    print("| tenant | served | share | target | error |")
    print("|---|--:|--:|--:|--:|")
    for t, (share, target, error) in shares.items():
        print(f"| {t} | {served[t]:.0f} | {share:.1%} | {target:.0%} | {error:+.1%} |")
    measured = " / ".join(f"{s:.1%}" for s, _, _ in shares.values())
    print()
    return row(2, f"weighted shares ({args.shape})", measured, "70 / 20 / 10 % +-5 % each", worst <= FAIR_TOLERANCE)


def case3(args):
    samples = read_samples(os.path.join(args.dir, "samples.txt"))
    workers = sorted({url for _, url, _ in samples})
    print(f"### Case 3: requests running on each worker, summed over the replicas ({len(samples)} samples)\n")
    print("| worker /metrics | samples | most running at once | max_concurrency |")
    print("|---|--:|--:|--:|")
    worst = 0
    for url in workers:
        values = [float(v) for _, u, v in samples if u == url]  # `sample` wrote the running count
        top = int(max(values, default=0))
        worst = max(worst, top)
        print(f"| {url} | {len(values)} | {top} | {args.max_concurrency} |")
    rows = read_spread(args.dir)
    print(f"\nThe client: {len(rows)} requests, {sum(1 for r in rows if admitted(r))} served, "
          f"{sum(1 for r in rows if r['status'] >= 500)} 5xx.")
    print()
    return row(3, "most running on one worker", worst, f"<= {args.max_concurrency}", worst <= args.max_concurrency and samples != [])


def case4(args):
    rows = read_spread(args.dir, max_tokens={"budget": args.max_tokens})
    ok = [r for r in rows if admitted(r)]
    client_spent = sum(r["tokens"] for r in ok)
    spent = {}
    for replica in REPLICAS:
        path = os.path.join(args.dir, f"tenants-{replica}.json")
        if os.path.exists(path):
            with open(path) as f:
                tenant = next(t for t in json.load(f) if t["name"] == "budget")
            spent[replica] = tenant["spent_tokens"] or 0
    fleet_spent = sum(spent.values())
    refused = [r for r in rows if r["status"] == 429]
    ran_out = refused[0]["lo"] if refused else None
    reserved = in_flight_reservations(ok, ran_out) if ran_out is not None else 0
    overshoot = max(fleet_spent, client_spent) - args.budget
    start = rows[0]["lo"] if rows else 0.0
    print(f"### Case 4: budget_tokens = {args.budget:,}, 3 replicas, 64 concurrent clients\n")
    print(f"{len(rows)} requests, {len(ok)} served, {len(refused)} refused with 429. Spent as the replicas' "
          f"/api/tenants say (A/B/C): {' / '.join(f'{spent.get(x, 0):,}' for x in REPLICAS)} = {fleet_spent:,} tokens; "
          f"the served responses' usage: {client_spent:,}.")
    if ran_out is None:
        print("The budget never ran out (no 429): the run was too short for it.\n")
        return row(4, "overshoot vs reservations in flight", "no 429 seen", "budget ran out", False)
    print(f"It ran out {ran_out - start:.1f} s after the first send (the first 429). Then "
          f"{sum(1 for r in ok if r['lo'] <= ran_out < r['end'])} served requests were in flight, reserving "
          f"{reserved:,} tokens (body bytes / 4 + max_tokens {args.max_tokens} each, the gateway's estimate).")
    held = reserved_by_replica(read_samples(os.path.join(args.dir, "tenants.txt")), dict(zip(REPLICAS, args.tenants_urls)), "budget", ran_out)
    if held:
        print("The replicas' own reservations at their last /api/tenants sample before it (budget - spent - left, "
              "sampled every 100 ms; a replica with nothing left shows none): "
              + " / ".join(f"{x} {held[x]:,}" if x in held else f"{x} -" for x in REPLICAS)
              + f" = {sum(held.values()):,} tokens.")
    print(f"Overshoot: {overshoot:,} tokens over the budget.")
    print()
    return row(4, "overshoot vs reservations in flight when it ran out", f"{overshoot:,} vs {reserved:,}",
               "overshoot <= reservations", overshoot <= reserved)


def case5(args):
    runs = list(csv.DictReader(open(os.path.join(args.dir, "runs.csv"))))
    def med(config, kind, field):
        values = [float(r[field]) for r in runs if r["config"] == config and r["kind"] == kind and r[field] != ""]
        return statistics.median(values) if values else float("nan")
    rounds = len({r["round"] for r in runs})
    print(f"### Case 5: cost of the cluster, {rounds} alternated rounds (a, b, c in each)\n")
    print("a: one replica without [cluster]; b: one replica with [cluster] (Redis on loopback); "
          "c: three replicas with [cluster], the connections split 60/30/10. Latency: one connection, "
          "closed loop (wrk -c1: each request alone); throughput: wrk at the case's connections. "
          "B/request: the replicas' allocated bytes (/api/status runtime) over the throughput run / its requests.\n")
    print("| run | round | req/s | p50 us | p99 us | B/request |")
    print("|---|--:|--:|--:|--:|--:|")
    for r in runs:
        print(f"| {r['config']} {r['kind']} | {r['round']} | {float(r['rps']):.0f} | {r['p50_us']} | {r['p99_us']} | {r['alloc_per_request']} |")
    a50, a99 = med("a", "latency", "p50_us"), med("a", "latency", "p99_us")
    b50, b99 = med("b", "latency", "p50_us"), med("b", "latency", "p99_us")
    a_rps, b_rps, c_rps = med("a", "throughput", "rps"), med("b", "throughput", "rps"), med("c", "throughput", "rps")
    a_alloc, b_alloc, c_alloc = (med(x, "throughput", "alloc_per_request") for x in "abc")
    print("\nMedians:\n")
    print("| | p50 us | p99 us | req/s | B/request |")
    print("|---|--:|--:|--:|--:|")
    for name, p50, p99, rps, alloc in (("a", f"{a50:.0f}", f"{a99:.0f}", a_rps, a_alloc), ("b", f"{b50:.0f}", f"{b99:.0f}", b_rps, b_alloc), ("c", "", "", c_rps, c_alloc)):
        print(f"| {name} | {p50} | {p99} | {rps:.0f} | {alloc:.0f} |")
    added50, added99, ratio = b50 - a50, b99 - a99, c_rps / a_rps
    print(f"\nAdded by [cluster] (b - a): p50 {added50:+.0f} us, p99 {added99:+.0f} us; c / a throughput {ratio:.0%}; "
          f"b / a throughput {b_rps / a_rps:.0%}.")
    # A p99 of a few thousand one-connection requests moves by milliseconds when other work shares
    # the cores: when (a)'s own p99 spans more than the bound over the rounds, the difference says nothing.
    a99s = [float(r["p99_us"]) for r in runs if r["config"] == "a" and r["kind"] == "latency"]
    noise = max(a99s) - min(a99s)
    if noise > 1000:
        print(f"(a)'s own p99 spans {min(a99s):.0f}-{max(a99s):.0f} us over the rounds: the p99 difference is noise here, not a verdict.")
    print()
    status = 0
    status |= row(5, "added latency p50 (b - a)", f"{added50:+.0f} us", "<= 300 us", added50 <= 300)
    status |= row(5, "added latency p99 (b - a)", f"{added99:+.0f} us", "<= 1,000 us", added99 <= 1000,
                  "NOISY" if noise > 1000 else None)
    status |= row(5, "req/s, 3 replicas with Redis / 1 without", f"{ratio:.0%}", ">= 70 %", ratio >= 0.70)
    status |= row(5, "allocated per request (b; c)", f"{b_alloc:.0f} B; {c_alloc:.0f} B", "<= 1,024 B", max(b_alloc, c_alloc) <= 1024)
    return status


def case6(args):
    rows = read_spread(args.dir)
    events = {}
    with open(os.path.join(args.dir, "events.txt")) as f:
        for line in f:
            name, epoch = line.split()
            events[name] = float(epoch)
    start = rows[0]["lo"]
    ok, worst, at, span, _ = window_check(rows, "rpm", len(REPLICAS))
    fives = {}
    for r in rows:
        if r["status"] >= 500:
            key = (r["mix"], r["status"])
            fives[key] = fives.get(key, 0) + 1
    down, up = events["redis_killed"] - start, events["redis_started"] - start
    print(f"### Case 6: Redis killed {down:.0f} s into the run, restarted (empty) at {up:.0f} s; store_down = \"local\"\n")
    print(f"{len(rows)} requests (tenant rpm = {args.rpm} and an unlimited tenant), "
          f"{sum(1 for r in rows if admitted(r))} served, {sum(1 for r in rows if r['status'] == 429)} refused with 429, "
          f"{sum(1 for r in rows if r['hi'] is None)} without a head.")
    print("5xx: " + (", ".join(f"{n} x {s} ({m})" for (m, s), n in sorted(fives.items())) if fives else "none") + ".")
    for name, lo, hi in (("before", start, start + down), ("down", start + down, start + up), ("after", start + up, start + span)):
        served = sum(1 for r in ok if lo <= r["lo"] < hi)
        print(f"- {name} ({lo - start:.0f}-{hi - start:.0f} s): {served} of the rpm tenant's requests served")
    print(f"Most served in one 60 s window: **{worst}** (window starting {at:.1f} s after the first send).")
    print()
    status = row(6, "5xx with store_down = local", sum(fives.values()), "0", not fives)
    status |= row(6, f"served in any 60 s across the outage, rpm = {args.rpm}", worst, f"<= {args.rpm + args.slack}", worst <= args.rpm + args.slack)
    return status


# ---------------------------------------------------------------- sampling

def sample(path, interval, urls):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(path, "a") as out:
        while not stop:
            for url in urls:
                try:
                    with urllib.request.urlopen(url, timeout=1) as response:
                        body = response.read().decode()
                except OSError:
                    continue
                value = running_count(body) if url.endswith("/metrics") else body.replace("\n", " ")
                out.write(f"{time.time():.3f} {url} {value}\n")
            out.flush()
            time.sleep(interval)
    return 0


def main(argv):
    import argparse
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample")
    s.add_argument("file")
    s.add_argument("interval", type=float)
    s.add_argument("urls", nargs="+")
    for name in ("case1", "case6"):
        c = sub.add_parser(name)
        c.add_argument("dir")
        c.add_argument("--rpm", type=int, required=True)
        c.add_argument("--slack", type=int, default=3)  # one request per replica (issue 16)
    c = sub.add_parser("case2")
    c.add_argument("dir")
    c.add_argument("--shape", required=True)
    c.add_argument("--start", type=float, required=True)
    c.add_argument("--stop", type=float, required=True)
    c = sub.add_parser("case3")
    c.add_argument("dir")
    c.add_argument("--max-concurrency", type=int, required=True)
    c = sub.add_parser("case4")
    c.add_argument("dir")
    c.add_argument("--budget", type=int, required=True)
    c.add_argument("--max-tokens", type=int, required=True)
    c.add_argument("--tenants-urls", nargs=3, default=[], metavar="URL")  # A's, B's and C's /api/tenants, as sampled
    c = sub.add_parser("case5")
    c.add_argument("dir")
    args = parser.parse_args(argv)
    if args.command == "sample":
        return sample(args.file, args.interval, args.urls)
    return globals()[args.command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
