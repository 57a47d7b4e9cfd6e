#!/usr/bin/env python3
"""The arithmetic behind perf/admission.sh's summary: python3 -m unittest discover -s perf -p 'admission_report_test.py'

perf/admission.sh runs it before it measures anything. Each test writes the files one experiment's
run leaves (requests.csv, the runner's JSON, queues.jsonl, gateway.toml, faults.log, /metrics) for
made-up requests and checks the tables and goals perf/admission_report.py draws from them. The
phases come from the real profiles (three-shapes and late-arrival end at 100 s, late joins at 60 s,
degradation ends at 90 s, preemption at 60 s); the expected values are worked out by hand in the comments.
"""
import datetime
import json
import os
import sqlite3
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import admission_report  # noqa: E402
from admission_report import main, spread, water_fill  # noqa: E402

STARTED = 1_800_000_000.0  # the schedule's start, epoch seconds


def request(mix, sent, ttft, end, prompt=0, completion=0, status=200):
    """A requests.csv row; a status other than 200 is an error (http_status) without usage."""
    error = "" if status == 200 else "http_status"
    return f"{mix},{sent},{ttft if status == 200 else ''},{end},{status},{error},{prompt},{completion},{sent},{sent},100"


def write_experiment(root, experiment, rows, tenants, classes, queues=(), faults=None, metrics="", absent=None):
    base = os.path.join(root, experiment)
    os.makedirs(base, exist_ok=True)
    if absent is not None:
        with open(os.path.join(base, "absent.txt"), "w") as f:
            f.write(absent)
        return
    with open(os.path.join(base, "requests.csv"), "w") as f:
        f.write("mix,sent_s,ttft_s,end_s,status,error,prompt_tokens,completion_tokens,send_s,head_s,body_bytes\n")
        f.write("\n".join(rows) + "\n")
    started = datetime.datetime.fromtimestamp(STARTED, datetime.timezone.utc).isoformat()
    with open(os.path.join(base, f"{admission_report.profile_name(experiment)}.json"), "w") as f:
        json.dump({"started_at": started}, f)
    with open(os.path.join(base, "gateway.toml"), "w") as f:
        for name, priority in classes:
            f.write(f'[[classes]]\nname = "{name}"\npriority = {priority}\n\n')
        for name, cls, weight in tenants:
            f.write(f'[[tenants]]\nname = "{name}"\nclass = "{cls}"\nweight = {weight}\n\n')
    with open(os.path.join(base, "queues.jsonl"), "w") as f:
        for t, body in queues:
            f.write(f"{STARTED + t} {json.dumps(body)}\n")
    if faults is not None:
        with open(os.path.join(base, "faults.log"), "w") as f:
            f.write("".join(f"{STARTED + t} {phase}\n" for phase, t in faults))
    with open(os.path.join(base, "gateway-metrics.txt"), "w") as f:
        f.write(metrics)


def rows_of(markdown, label):
    return [[c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines() if line.startswith(f"| {label}")]


def goal(markdown, label):
    rows = rows_of(markdown, label)
    if len(rows) != 1:
        raise AssertionError(f"{len(rows)} rows start with {label!r}:\n{markdown}")
    return rows[0]


THREE_TENANTS = [("three-long", "shared", 70), ("three-medium", "shared", 20), ("three-short", "shared", 10)]


def three_shapes_rows(last_short_prompt):
    """One long (600 + 2 x 50 = 700 weighted tokens), one medium (100 + 2 x 50 = 200) and one short
    (60 + 2 x 20 = 100) request ending in each 30 s window (10-40, 40-70, 70-100), the last window's
    short one with `last_short_prompt` prompt tokens; and two 503s per tenant in the span, so that
    every tenant asked for more than it got (backlogged: the targets are the weights, 70/20/10)."""
    rows = []
    for i, start in enumerate((10, 40, 70)):
        rows.append(request("long", start + 1, 0.5, start + 5, 600, 50))
        rows.append(request("medium", start + 1, 0.3, start + 5, 100, 50))
        short_prompt = last_short_prompt if i == 2 else 60
        rows.append(request("short", start + 1, (0.1, 0.2, 0.9)[i], start + 5, short_prompt, 20))
    for mix in ("long", "medium", "short"):
        rows += [request(mix, 20, None, 24, status=503), request(mix, 50, None, 54, status=503)]
    return sorted(rows, key=lambda r: float(r.split(",")[1]))


class Arithmetic(unittest.TestCase):
    def test_water_fill_gives_a_tenant_that_asks_less_what_it_asks_and_splits_the_rest_by_weight(self):
        # 100 served; c asked for 10, a and b for more than all: c 10, a and b 45 each.
        table = {"a": (0, 1), "b": (0, 1), "c": (0, 1)}
        self.assertEqual({"a": 0.45, "b": 0.45, "c": 0.10}, water_fill(100, {"a": float("inf"), "b": float("inf"), "c": 10}, table))

    def test_water_fill_serves_a_higher_priority_first(self):
        # p0 (priority 0) asked for 30 of 100: all of it; p4 the remaining 70, though its weight is 9x.
        self.assertEqual({"p0": 0.3, "p4": 0.7}, water_fill(100, {"p0": 30, "p4": 1000}, {"p0": (0, 1), "p4": (4, 9)}))

    def test_spread_splits_a_request_over_the_windows_between_its_first_token_and_its_end(self):
        # cost 100 from 60.5 to 61.5: half in [60, 61), half in [61, 62); one ending at once counts where it ends.
        ok = [{"mix": "a", "first": 60.5, "end": 61.5, "cost": 100}, {"mix": "b", "first": None, "end": 60.2, "cost": 40}]
        self.assertEqual({"a": 50.0, "b": 40.0}, spread(ok, ["a", "b"], 60, 61))
        self.assertEqual({"a": 50.0, "b": 0.0}, spread(ok, ["a", "b"], 61, 62))


class Reports(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.root = self.tmp.name

    def summary(self, experiments, dirs=None):
        return main([*(dirs or [self.root]), "--experiments", experiments])

    def test_three_shapes_within_five_percent_is_met_and_the_fairness_numbers_are_published(self):
        # Last window: long 700, medium 200, short 65 + 40 = 105 of 1,005: 69.65% (-0.5%),
        # 19.90% (-0.5%), 10.45% (+4.5%): worst 4.5%, met.
        write_experiment(self.root, "three-shapes", three_shapes_rows(65), THREE_TENANTS, [("shared", 0)])
        md = self.summary("three-shapes")
        row = goal(md, "each tenant within ±5% of its share")
        self.assertEqual(["worst 4.5%", "met"], row[1:])
        # 10-100 s: long 2,100, medium 600, short 305 of 3,005: 69.9% (-0.2%), 20.0% (-0.2%),
        # 10.1% (+1.5%). Short's TTFTs 0.1, 0.2, 0.9 s: p50 200 ms, p99 900 ms (nearest rank).
        self.assertEqual(["short", "10.1%", "10.0%", "+1.5%", "200 ms", "900 ms", "3"], goal(md, "short |"))
        self.assertEqual(["long", "69.9%", "70.0%", "-0.2%", "500 ms", "500 ms", "3"], goal(md, "long |"))
        # Jain over 0.998, 0.998, 1.015: 9.0701 / (3 x 3.0235) = 0.9999.
        self.assertIn("Jain's index over share / target: 0.9999.", md)

    def test_three_shapes_beyond_five_percent_is_missed(self):
        # Last window short 80 + 40 = 120 of 1,020: 11.76%, +17.6% of its 10%.
        write_experiment(self.root, "three-shapes", three_shapes_rows(80), THREE_TENANTS, [("shared", 0)])
        self.assertEqual(["worst 17.6%", "missed"], goal(self.summary("three-shapes"), "each tenant within ±5% of its share")[1:])

    def late_rows(self, extra_late):
        """From 60 s to 100 s each tenant has one request a second (weighted tokens 100, first token at
        t, end t + 1); `extra_late` more for late in [60, 61)."""
        rows = []
        for t in range(60, 100):
            for mix in ("early-a", "early-b", "late"):
                rows.append(request(mix, t - 0.5, 0.5, t + 1, 60, 20))
        rows += [request("late", 59.5, 0.5, 61, 60, 20) for _ in range(extra_late)]
        return sorted(rows, key=lambda r: float(r.split(",")[1]))

    def write_late(self, extra_late):
        tenants = [("late-early-a", "shared", 1), ("late-early-b", "shared", 1), ("late-late", "shared", 1)]
        write_experiment(self.root, "late-arrival", self.late_rows(extra_late), tenants, [("shared", 0)])

    def test_late_arrival_at_its_share_at_once_meets_both_goals(self):
        # Every window one third: the first 2 s window [60, 62) already at it (+2.0 s); no burst (+0.0%).
        self.write_late(0)
        md = self.summary("late-arrival")
        self.assertTrue(goal(md, "its share (target 33.3%)")[1].startswith("first window at it ends +2.0 s; from +10 s to the end +0.0%"))
        self.assertEqual("met", goal(md, "its share (target 33.3%)")[2])
        self.assertEqual(["largest +0.0% (1 s windows: +0.0%); the early tenants' own largest in the same windows: +0.0% (1 s: +0.0%)", "met"], goal(md, "no burst")[1:])

    def test_a_late_tenant_that_bursts_misses_the_burst_goal(self):
        # One extra late request spread over [60, 61): [60, 61) late 200 of 400, 50% (+50%);
        # [60, 62) late 300 of 700, 42.9% (+28.6%), so the first 2 s window at one third is [62, 64): +4.0 s.
        # The early tenants never above a third (+0.0%): the burst is late's alone.
        self.write_late(1)
        md = self.summary("late-arrival")
        self.assertEqual(["largest +28.6% (1 s windows: +50.0%); the early tenants' own largest in the same windows: +0.0% (1 s: +0.0%)", "missed"], goal(md, "no burst")[1:])
        self.assertTrue(goal(md, "its share (target 33.3%)")[1].startswith("first window at it ends +4.0 s"))

    def test_degradation_compares_each_phase_with_the_healthy_one_and_reads_the_shedding(self):
        # Phases: healthy 5-30 s, errors 35-60 s (flip at 30), slow 65-90 s (flip at 60). Enterprise
        # TTFT 100 ms, 150 ms, 300 ms: ratios 1.5x and 3.0x, worst 3.00x > 2x: missed. Free is shed in
        # 2 of the 4 samples of the errors phase and all 2 of the slow phase (the goal's): 100.0%, met.
        rows = []
        for t, ttft in ((10, 0.1), (40, 0.15), (70, 0.3)):
            rows += [request("enterprise", t, ttft, t + 1, 100, 64), request("premium", t, ttft, t + 1, 100, 64),
                     request("free", t, 0.1, t + 1, 100, 64), request("free", t + 1, None, t + 1.1, status=503)]
        rows.sort(key=lambda r: float(r.split(",")[1]))
        sample = lambda shed: {"models": [{"classes": [{"name": "enterprise", "protection": {"shedding": False}},
                                                       {"name": "free", "protection": {"shedding": shed}}]}]}
        queues = [(36, sample(True)), (40, sample(False)), (50, sample(True)), (55, sample(False)), (70, sample(True)), (80, sample(True))]
        metrics = 'llm_gateway_admissions_total{class="free",outcome="shed"} 42\nllm_gateway_admissions_total{class="free",outcome="granted"} 7\n'
        write_experiment(self.root, "degradation", rows, [("deg-enterprise", "enterprise", 1), ("deg-premium", "premium", 1), ("deg-free", "free", 1)],
                         [("enterprise", 0), ("premium", 1), ("free", 2)], queues=queues, faults=[("errors", 30), ("slow", 60)], metrics=metrics)
        # The ledger's sheds by arrival: free at 41 s and 42 s (errors), premium at 70 s and free at
        # 71 s (slow), one at 62 s (between the phases: in none); a granted row counts nowhere.
        with sqlite3.connect(os.path.join(self.root, "degradation", "aotproxy-usage.db")) as db:
            db.execute("CREATE TABLE requests (class TEXT, time INTEGER, outcome TEXT)")
            db.executemany("INSERT INTO requests VALUES (?, ?, ?)", [(c, int((STARTED + t) * 1000), o) for c, t, o in (
                ("free", 41, "shed"), ("free", 42, "shed"), ("premium", 70, "shed"), ("free", 71, "shed"), ("free", 62, "shed"), ("free", 72, "granted"))])
        md = self.summary("degradation")
        self.assertEqual(["worst phase 3.00x", "missed"], goal(md, "enterprise TTFT p95 within 2x")[1:])
        self.assertEqual(["free shed in 100.0% of the slow phase's samples; shed in all: 42", "met"], goal(md, "free shed while")[1:])
        self.assertEqual(["client errors 0; requests shed 2", ""], goal(md, "(not a goal: the errors phase")[1:])
        # Shed at 36 s, not at 40 s or 55 s, again at 70 s: 10 s after the slowdown; premium never in a sample.
        self.assertIn("Shed after the slowdown (from the first /api/queues sample showing it; 0.0: already shed): run 1: free 10.0 s, premium never", md)
        slow = [r for r in rows_of(md, "1 | slow")]
        self.assertEqual("300 ms / 300 ms (1 of 1)", slow[0][3])
        self.assertEqual(["0 / 1 / 1", "0 / 0 / 0"], slow[0][6:8])
        self.assertEqual(["0 / 0 / 2", "0 / 0 / 0"], rows_of(md, "1 | errors")[0][6:8])

    def test_a_class_shed_since_before_the_slowdown_is_detected_at_once(self):
        # Free shed in every sample from 56 s on (several before the flip at 60 s): 0.0 s, not the
        # first sample after it; enterprise shed first at 62.5 s: 2.5 s.
        sample = lambda e, f: {"models": [{"classes": [{"name": "enterprise", "protection": {"shedding": e}},
                                                       {"name": "free", "protection": {"shedding": f}}]}]}
        queues = [(55, sample(False, False)), (56, sample(False, True)), (57, sample(False, True)), (58, sample(False, True)), (59, sample(False, True)),
                  (61, sample(False, True)), (62.5, sample(True, True))]
        write_experiment(self.root, "degradation", [], [], [], queues=queues, faults=[("errors", 30), ("slow", 60)])
        admission_report.scale = 1.0
        self.assertEqual({"enterprise": 2.5, "premium": None, "free": 0.0}, admission_report.first_shed(os.path.join(self.root, "degradation"), 60))

    def test_preemption_compares_enterprise_ttft_p90_with_the_run_without(self):
        # Enterprise TTFT p90: 100 ms with preemption, 1,000 ms without: 0.10x <= 0.5x, met.
        # Free: 3 sent, 2 served, one 503.
        classes = [("enterprise", 0), ("free", 2)]
        tenants = [("pre-enterprise", "enterprise", 1), ("pre-free", "free", 1)]
        for name, ttft in (("preemption", 0.1), ("preemption-off", 1.0)):
            rows = [request("enterprise", 10 + i, ttft, 11 + i, 60, 16) for i in range(10)]
            rows += [request("free", 10.5, 2.0, 13, 4000, 16), request("free", 11.5, 2.0, 14, 4000, 16), request("free", 12.5, None, 22.5, status=503)]
            rows.sort(key=lambda r: float(r.split(",")[1]))
            write_experiment(self.root, name, rows, tenants, classes, metrics='llm_gateway_preemptions_total{class="free"} 5\n')
        md = self.summary("preemption preemption-off")
        self.assertEqual(["0.10x", "met"], goal(md, "enterprise TTFT p90 with preemption")[1:])
        self.assertEqual(["preemption", "100 ms / 100 ms (10)", "0", "2 of 3 (1, 0)", "5"], goal(md, "1 | preemption |")[1:])

    def test_an_experiment_whose_config_the_binary_rejects_is_reported_as_feature_absent(self):
        write_experiment(self.root, "degradation", [], [], [], absent="gateway.toml:9: [[classes]] has no key max_error_rate\n")
        md = self.summary("degradation")
        self.assertIn("Feature absent: the binary rejects the config (gateway.toml:9: [[classes]] has no key max_error_rate).", md)
        self.assertNotIn("| goal |", md)

    def test_medians_over_several_runs_list_every_run(self):
        # Run 1 worst 4.5% (met above), run 2 17.6%, run 3 4.5%: median 4.5%, met.
        dirs = [os.path.join(self.root, str(i)) for i in range(3)]
        for d, prompt in zip(dirs, (65, 80, 65)):
            write_experiment(d, "three-shapes", three_shapes_rows(prompt), THREE_TENANTS, [("shared", 0)])
        row = goal(self.summary("three-shapes", dirs), "each tenant within ±5% of its share")
        self.assertEqual(["worst 4.5% (runs: 4.5%, 17.6%, 4.5%)", "met"], row[1:])


if __name__ == "__main__":
    unittest.main()
