#!/usr/bin/env python3
"""Summary for perf/limits.sh: python3 perf/limits_report.py DIR [--command C] [--seconds N]

Reads
  DIR/requests.csv                  one line per request (aotproxy-load --requests)
  DIR/gateway.toml                  the tenants' rpm and tpm, as the gateway ran them
  DIR/limits-many-tenants.json      the aotproxy-load report (the schedule's wall-clock start)
  perf/profiles/limits-many-tenants.toml   which tenant each [[mix]] entry is, and its max_tokens
and writes Markdown on stdout: per tenant, its limits, what it offered, what was admitted, and
the worst 60 s window and calendar minute, for requests and for tokens. Exit 0 when every check
passes, 2 when one fails. The rules (perf/LOAD.md, "Tenant limits under many tenants"):

- A request's admission happened at some moment between send_s (its send began) and head_s (its
  response head came back). A window counts a request only when that whole interval lies inside
  it, so that client-side delays can never make the gateway look worse than it is: a count above
  the limit is a real breach.
- Admitted: a response head came back, and its status is neither 429 (refused by the limit
  stage) nor 503 (refused by admission, which gives the limit tokens back).
- Requests: in every 60 s window [t, t + 60 s) and every calendar minute, admitted <= rpm.
- Tokens: in the same windows, the usage the admitted requests reported (prompt + completion)
  <= tpm + the tenant's largest reservation (body bytes / 4 + max_tokens, the gateway's own
  estimate) over the run.
- The harness itself: the fleet is not what refuses (503s <= 1% of all requests), every limited
  tenant was refused at least once (it was offered more than its limit), and the unlimited ones
  never.
"""
import argparse
import collections
import csv
import datetime
import json
import os
import sys
import tomllib

from windows import worst_sliding

PROFILE = "limits-many-tenants"
PROFILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")
WINDOW = 60.0
LEAD = 0.02  # aotproxy-load starts its schedule 20 ms after the started_at it reports
MAX_503_SHARE = 0.01
MIX_MAX_TOKENS = 16  # aotproxy-load's default max_tokens for an entry without one

parser = argparse.ArgumentParser()
parser.add_argument("dir")
parser.add_argument("--profile", default=os.path.join(PROFILES, PROFILE + ".toml"))
parser.add_argument("--command", default="perf/limits.sh")
parser.add_argument("--seconds", type=int, default=None)
args = parser.parse_args()


def load_toml(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


config = load_toml(os.path.join(args.dir, "gateway.toml"))
limits = {t["name"]: (t.get("rpm", 0), t.get("tpm", 0)) for t in config.get("tenants", [])}
profile = load_toml(args.profile)
mixes = {m["name"]: (m.get("tenant") or m["name"], m.get("max_tokens", MIX_MAX_TOKENS)) for m in profile["mix"]}
with open(os.path.join(args.dir, PROFILE + ".json")) as f:
    started = datetime.datetime.fromisoformat(json.load(f)["started_at"]).timestamp() + LEAD

# Per tenant: every request as (status, lo, hi, tokens, reservation); lo/hi None without a head.
requests = collections.defaultdict(list)
with open(os.path.join(args.dir, "requests.csv")) as f:
    for r in csv.DictReader(f):
        tenant, max_tokens = mixes[r["mix"]]
        head = float(r["head_s"]) if r["head_s"] else None
        requests[tenant].append({
            "status": int(r["status"]),
            "lo": float(r["send_s"]),
            "hi": head,
            "tokens": int(r["prompt_tokens"]) + int(r["completion_tokens"]),
            "reservation": int(r["body_bytes"]) // 4 + max_tokens,
        })

missing = sorted(set(requests) - set(limits))
if missing:
    sys.exit(f"limits_report.py: tenants in the profile but not in gateway.toml: {', '.join(missing)}")


def admitted(rows):
    return sorted((r for r in rows if r["hi"] is not None and r["status"] not in (429, 503)), key=lambda r: r["lo"])


def worst_minute(rows, key):
    """(the largest sum of key over the rows inside one calendar minute (UTC), that minute's start
    as an epoch)."""
    sums = collections.Counter()
    for r in rows:
        minute = (started + r["lo"]) // WINDOW
        if (started + r["hi"]) // WINDOW == minute:
            sums[minute] += key(r)
    if not sums:
        return 0, None
    minute, total = max(sums.items(), key=lambda kv: (kv[1], -kv[0]))
    return total, minute * WINDOW


def clock(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%H:%M") if epoch is not None else "-"


def at(t):
    return f"{t:.1f} s" if t is not None else "-"


def ratio(value, limit):
    return f"{value / limit:.2f}" if limit else "-"


rows_out, failures = [], []
total_requests = sum(len(v) for v in requests.values())
total_503 = sum(1 for v in requests.values() for r in v if r["status"] == 503)
for tenant in sorted(requests):
    rpm, tpm = limits[tenant]
    rows = requests[tenant]
    ok = admitted(rows)
    refused = sum(1 for r in rows if r["status"] == 429)
    no_head = sum(1 for r in rows if r["hi"] is None)
    reservation = max(r["reservation"] for r in rows)
    count = lambda r: 1  # noqa: E731
    tokens = lambda r: r["tokens"]  # noqa: E731
    req_min, req_min_at = worst_minute(ok, count)
    req_win, req_win_at = worst_sliding(ok, count)
    req_late, _ = worst_sliding(ok, count, after=WINDOW)
    tok_min, tok_min_at = worst_minute(ok, tokens)
    tok_win, tok_win_at = worst_sliding(ok, tokens)
    tok_late, _ = worst_sliding(ok, tokens, after=WINDOW)
    token_bound = tpm + reservation if tpm else 0
    checks = []
    if rpm:
        checks += [("rpm, calendar minute", req_min <= rpm), ("rpm, 60 s window", req_win <= rpm)]
    if tpm:
        checks += [("tpm, calendar minute", tok_min <= token_bound), ("tpm, 60 s window", tok_win <= token_bound)]
    if rpm or tpm:
        checks.append(("refused at least once", refused > 0))
    else:
        checks.append(("never refused", refused == 0))
    failed = [name for name, passed in checks if not passed]
    failures += [f"{tenant}: {name}" for name in failed]
    rows_out.append({
        "tenant": tenant, "rpm": rpm, "tpm": tpm, "reservation": reservation, "offered": len(rows),
        "admitted": len(ok), "refused": refused, "503": sum(1 for r in rows if r["status"] == 503), "no_head": no_head,
        "req_min": req_min, "req_min_at": req_min_at, "req_win": req_win, "req_win_at": req_win_at, "req_late": req_late,
        "tok_min": tok_min, "tok_min_at": tok_min_at, "tok_win": tok_win, "tok_win_at": tok_win_at, "tok_late": tok_late,
        "token_bound": token_bound, "failed": failed,
    })

share_503 = total_503 / total_requests if total_requests else 0.0
if share_503 > MAX_503_SHARE:
    failures.append(f"fleet: {total_503} 503s, {share_503:.1%} of the requests (at most {MAX_503_SHARE:.0%})")

print("# Tenant limits under many tenants (issue 6)\n")
print(f"Command: `{args.command}`" + (f", {args.seconds} s in all" if args.seconds is not None else "") + ".")
print(f"Schedule start {datetime.datetime.fromtimestamp(started, datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC; "
      f"{total_requests} requests, {sum(r['refused'] for r in rows_out)} refused with 429, {total_503} with 503 "
      f"({share_503:.2%}), {sum(r['no_head'] for r in rows_out)} without a response head (not counted).\n")
print("Worst windows, as `count @ where` (sliding: the window's start, seconds from the schedule's start; "
      "calendar: the UTC minute) and the ratio to the limit; tokens against tpm + the largest reservation. "
      "\"after 60 s\": the worst sliding window that starts after the first minute (information, not a check).\n")
print("### Requests per minute\n")
print("| tenant | rpm | offered | admitted | 429 | worst calendar minute | ratio | worst 60 s window | ratio | after 60 s | ratio | |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
for r in rows_out:
    if r["rpm"]:
        verdict = "FAIL" if any(f.startswith("rpm") for f in r["failed"]) else "ok"
        print(f"| {r['tenant']} | {r['rpm']} | {r['offered']} | {r['admitted']} | {r['refused']} | "
              f"{r['req_min']} @ {clock(r['req_min_at'])} | {ratio(r['req_min'], r['rpm'])} | "
              f"{r['req_win']} @ {at(r['req_win_at'])} | {ratio(r['req_win'], r['rpm'])} | "
              f"{r['req_late']} | {ratio(r['req_late'], r['rpm'])} | {verdict} |")
print("\n### Tokens per minute\n")
print("| tenant | tpm | largest reservation | bound | offered | admitted | 429 | worst calendar minute | ratio | worst 60 s window | ratio | after 60 s | ratio | |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
for r in rows_out:
    if r["tpm"]:
        verdict = "FAIL" if any(f.startswith("tpm") for f in r["failed"]) else "ok"
        bound = r["token_bound"]
        print(f"| {r['tenant']} | {r['tpm']} | {r['reservation']} | {bound} | {r['offered']} | {r['admitted']} | {r['refused']} | "
              f"{r['tok_min']} @ {clock(r['tok_min_at'])} | {ratio(r['tok_min'], bound)} | "
              f"{r['tok_win']} @ {at(r['tok_win_at'])} | {ratio(r['tok_win'], bound)} | "
              f"{r['tok_late']} | {ratio(r['tok_late'], bound)} | {verdict} |")
print("\n### Unlimited tenants\n")
print("| tenant | offered | admitted | 429 | worst 60 s window (requests) | tokens |")
print("|---|--:|--:|--:|--:|--:|")
for r in rows_out:
    if not r["rpm"] and not r["tpm"]:
        print(f"| {r['tenant']} | {r['offered']} | {r['admitted']} | {r['refused']} | {r['req_win']} | {r['tok_win']} |")

print("\n## Checks\n")
if failures:
    print(f"**FAILED** ({len(failures)}):\n")
    for f in failures:
        print(f"- {f}")
else:
    print("**PASSED**: every tenant within its rpm and tpm + one reservation in every 60 s window and calendar minute.")
sys.exit(2 if failures else 0)
