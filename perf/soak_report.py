#!/usr/bin/env python3
"""perf/soak.sh's sampler and report.

  python3 perf/soak_report.py sample GATEWAY_PID RUNNER_PID ADMIN_URL OUT.csv [INTERVAL_S]
      every INTERVAL_S (default 5) until RUNNER_PID exits: the gateway's RSS and open files from
      /proc, its GC counts, managed heap and CPU from GET /api/status, the ledger's queue from
      /metrics, and the host's load average.
  python3 perf/soak_report.py report DIR
      reads DIR/samples.csv and DIR/requests.csv (the runner's --requests file), writes
      DIR/soak-rss.png, DIR/soak-latency.png, DIR/soak-throughput.png and DIR/summary.md.

A run is flat when, between the first and the last fifth of the run (the first minute skipped as
warm-up), RSS grows by less than 10%, open files by fewer than 16, the ledger's queue drains, and
the p99 latency per minute does not trend up by more than 2x. The figures are printed whether or
not it is.
"""
import csv
import json
import os
import statistics
import sys
import time
import urllib.request

WARMUP_S = 60.0
SAMPLE_FIELDS = ["t_s", "rss_kb", "fds", "gen0", "gen1", "gen2", "heap_bytes", "cpu_s", "ledger_queue", "load1"]


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def fetch(url):
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.read().decode()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def sample_once(pid, admin, started):
    runtime = json.loads(fetch(admin + "/api/status"))["runtime"]
    queue = metric(fetch(admin + "/metrics"), "llm_gateway_ledger_queue_depth")
    with open("/proc/loadavg") as loadavg:
        load1 = float(loadavg.read().split()[0])
    return {
        "t_s": round(time.monotonic() - started, 1),
        "rss_kb": rss_kb(pid),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "gen0": runtime["gen0_collections"],
        "gen1": runtime["gen1_collections"],
        "gen2": runtime["gen2_collections"],
        "heap_bytes": runtime["heap_bytes"],
        "cpu_s": runtime["cpu_seconds"],
        "ledger_queue": "" if queue is None else int(queue),
        "load1": load1,
    }


def sample(pid, runner, admin, out, interval):
    started = time.monotonic()
    with open(out, "w", newline="") as file:
        writer = csv.DictWriter(file, SAMPLE_FIELDS)
        writer.writeheader()
        while alive(runner) and alive(pid):
            try:
                writer.writerow(sample_once(pid, admin, started))
                file.flush()
            except (OSError, ValueError, KeyError) as error:
                # The gateway is starting or stopping: the next sample tells.
                print(f"soak: sample skipped: {error}", file=sys.stderr)
            time.sleep(interval)


def percentile(values, q):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def per_minute(requests, bin_s=60):
    """{bin: (completed, p50 s, p99 s, errors)} by the request's end time, bins of bin_s (a minute)."""
    minutes = {}
    for r in requests:
        minutes.setdefault(int(r["end"] // bin_s), []).append(r)
    out = {}
    for minute, rows in sorted(minutes.items()):
        latencies = [r["latency"] for r in rows if r["ok"]]
        out[minute] = (len(rows), percentile(latencies, 0.5), percentile(latencies, 0.99), sum(1 for r in rows if not r["ok"]))
    return out


def read_requests(path):
    rows = []
    with open(path) as file:
        for r in csv.DictReader(file):
            sent, end = float(r["sent_s"]), float(r["end_s"])
            rows.append({"mix": r["mix"], "end": end, "latency": end - sent, "ok": r["status"] == "200" and not r["error"]})
    return rows


def read_samples(path):
    with open(path) as file:
        return [{k: float(v) if v not in ("", None) else None for k, v in r.items()} for r in csv.DictReader(file)]


def fifths(samples):
    """The samples of the first and the last fifth of the run after the warm-up."""
    steady = [s for s in samples if s["t_s"] >= WARMUP_S] or samples
    n = max(1, len(steady) // 5)
    return steady[:n], steady[-n:]


def summarize(samples, requests):
    first, last = fifths(samples)
    rss_first = statistics.median(s["rss_kb"] for s in first)
    rss_last = statistics.median(s["rss_kb"] for s in last)
    fds_first = statistics.median(s["fds"] for s in first)
    fds_last = statistics.median(s["fds"] for s in last)
    minutes = per_minute(requests)
    p99s = [m[2] for m in minutes.values() if m[2] is not None]
    k = max(1, len(p99s) // 5)
    p99_first = statistics.median(p99s[:k]) if p99s else None
    p99_last = statistics.median(p99s[-k:]) if p99s else None
    queues = [s["ledger_queue"] for s in samples if s["ledger_queue"] is not None]
    gen2 = [s["gen2"] for s in samples]
    duration = samples[-1]["t_s"] - samples[0]["t_s"] if len(samples) > 1 else 0.0
    ok = [r for r in requests if r["ok"]]
    summary = {
        "duration_s": duration,
        "requests": len(requests),
        "errors": len(requests) - len(ok),
        "rss_first_mb": rss_first / 1024,
        "rss_last_mb": rss_last / 1024,
        "rss_growth": rss_last / rss_first - 1 if rss_first else None,
        "rss_peak_mb": max(s["rss_kb"] for s in samples) / 1024,
        "fds_first": fds_first,
        "fds_last": fds_last,
        "gen2_during": (gen2[-1] - gen2[0]) if gen2 else None,
        "ledger_queue_max": max(queues) if queues else None,
        "ledger_queue_last": queues[-1] if queues else None,
        "p50_s": percentile([r["latency"] for r in ok], 0.5),
        "p99_s": percentile([r["latency"] for r in ok], 0.99),
        "p99_first_s": p99_first,
        "p99_last_s": p99_last,
        "load_median": statistics.median(s["load1"] for s in samples) if samples else None,
    }
    summary["flat"] = (
        summary["rss_growth"] is not None and summary["rss_growth"] < 0.10
        and fds_last - fds_first < 16
        and (summary["ledger_queue_last"] or 0) <= 1000
        and (p99_first is None or p99_last <= 2 * p99_first))
    return summary


def markdown(summary):
    s = summary
    lines = [
        "| figure | value |",
        "|---|---|",
        f"| duration | {s['duration_s'] / 60:.1f} min |",
        f"| requests (errors) | {s['requests']:,} ({s['errors']:,}) |",
        f"| RSS first fifth -> last fifth (peak) | {s['rss_first_mb']:.1f} -> {s['rss_last_mb']:.1f} MB ({s['rss_growth'] * 100:+.1f}%; peak {s['rss_peak_mb']:.1f} MB) |",
        f"| open files first fifth -> last fifth | {s['fds_first']:.0f} -> {s['fds_last']:.0f} |",
        f"| Gen2 collections during the run | {s['gen2_during']:.0f} |",
        f"| ledger queue max / at the end | {s['ledger_queue_max']} / {s['ledger_queue_last']} |",
        f"| latency p50 / p99 (whole run) | {s['p50_s'] * 1000:.1f} / {s['p99_s'] * 1000:.1f} ms |",
        f"| p99 per minute, first fifth -> last fifth | {s['p99_first_s'] * 1000:.1f} -> {s['p99_last_s'] * 1000:.1f} ms |",
        f"| host load average (median of samples) | {s['load_median']:.1f} |",
        f"| flat | {'yes' if s['flat'] else 'NO'} |",
    ]
    return "\n".join(lines) + "\n"


def plot(directory, samples, requests):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # A soak is drawn per minute on a time axis in minutes, a shorter run per second and a burst
    # (under a minute) per 100 ms, both on an axis in seconds.
    span = max(r["end"] for r in requests)
    bin_s = 60 if span > 600 else 1 if span > 60 else 0.1
    axis_s, unit = (60, "minutes") if span > 600 else (1, "seconds")
    t = [s["t_s"] / axis_s for s in samples]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(t, [s["rss_kb"] / 1024 for s in samples], label="RSS (MB)")
    ax.plot(t, [s["heap_bytes"] / 2**20 for s in samples], label="managed heap (MB)")
    ax.set_xlabel(unit)
    ax.set_ylabel("MB")
    ax2 = ax.twinx()
    ax2.plot(t, [s["fds"] for s in samples], color="gray", linestyle=":", label="open files")
    ax2.set_ylabel("open files")
    fig.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "soak-rss.png"), dpi=100)

    # Per mix: a stream's latency is its whole answer, a non-stream request's a fraction of it,
    # so one percentile over both jumps between the two.
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for mix in sorted({r["mix"] for r in requests}):
        minutes = per_minute([r for r in requests if r["mix"] == mix], bin_s)
        m = list(minutes)
        for index, name in ((1, "p50"), (2, "p99")):
            ax.plot([k * bin_s / axis_s for k in m], [minutes[k][index] * 1000 if minutes[k][index] is not None else None for k in m], label=f"{mix} {name}")
    ax.set_xlabel(unit)
    ax.set_ylabel("latency (ms)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "soak-latency.png"), dpi=100)

    minutes = per_minute(requests, bin_s)
    m = list(minutes)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    x = [k * bin_s / axis_s for k in m]
    ax.plot(x, [minutes[k][0] / bin_s for k in m], label="completed / s")
    ax.plot(x, [minutes[k][3] / bin_s for k in m], label="errors / s")
    ax.set_xlabel(unit)
    ax.set_ylabel("requests per second")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "soak-throughput.png"), dpi=100)


def report(directory):
    samples = read_samples(os.path.join(directory, "samples.csv"))
    requests = read_requests(os.path.join(directory, "requests.csv"))
    if not samples or not requests:
        print(f"soak: nothing to report in {directory}", file=sys.stderr)
        return 1
    text = markdown(summarize(samples, requests))
    with open(os.path.join(directory, "summary.md"), "w") as file:
        file.write(text)
    plot(directory, samples, requests)
    print(text, end="")
    return 0


def main(argv):
    if len(argv) >= 5 and argv[0] == "sample":
        sample(int(argv[1]), int(argv[2]), argv[3].rstrip("/"), argv[4], float(argv[5]) if len(argv) > 5 else 5.0)
        return 0
    if len(argv) == 2 and argv[0] == "report":
        return report(argv[1])
    print(__doc__, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
