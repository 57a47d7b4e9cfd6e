#!/usr/bin/env python3
"""The arithmetic behind perf/routing.sh's summary: python3 -m unittest discover -s perf -p 'routing_report_test.py'

Each test writes the files one routing.sh run leaves (the runner's JSON, the workers' /sim/stats,
the gateway's /metrics and breaker stats) for made-up numbers, and checks the tables and goals that
perf/routing_report.py draws from them. The expected values are worked out by hand in the comments.
"""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from routing_report import Report, main, metric_sum  # noqa: E402


def write_run(root, strategy, workload, ttft_p90, requests=100, codes=None, workers=None, metrics="", breakers=None, log=""):
    base = os.path.join(root, strategy)
    os.makedirs(base, exist_ok=True)
    whole = {"requests": requests, "ttft_us": {"p50": ttft_p90 / 2, "p90": ttft_p90, "p99": ttft_p90 * 2},
             "latency_us": {"p99": ttft_p90 * 3}, "output_tokens_per_s": 500.0, "error_rate": 0.0,
             "status_codes": codes or {"200": requests}, "max_schedule_lag_us": 100}
    with open(os.path.join(base, f"routing-{workload}.json"), "w") as f:
        json.dump({"scenarios": [whole]}, f)
    with open(os.path.join(base, f"{workload}.workers.json"), "w") as f:
        json.dump(workers if workers is not None else [{"requests_total": requests // 4}] * 4, f)
    with open(os.path.join(base, f"{workload}.gateway-metrics.txt"), "w") as f:
        f.write(metrics)
    with open(os.path.join(base, f"{workload}.gateway.log"), "w") as f:
        f.write(log)
    if breakers is not None:
        with open(os.path.join(base, f"{workload}.breakers.json"), "w") as f:
            json.dump([{"name": f"sim-{i}", "times_opened": n} for i, n in enumerate(breakers)], f)


def cache(hits, queries):
    """Four workers' /sim/stats whose prefix-cache counters add up to hits / queries."""
    return [{"requests_total": 25, "prefix_cache_hits": hits // 4, "prefix_cache_queries": queries // 4}] * 4


def goal(markdown, label):
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {label}")]
    if len(rows) != 1:
        raise AssertionError(f"{len(rows)} goal rows start with {label!r}:\n{markdown}")
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


class Runs(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def run_dir(self, name):
        path = os.path.join(self.tmp.name, name)
        os.makedirs(path, exist_ok=True)
        return path

    def against_least_queue(self, workload, p2c, lq):
        """One run of p2c_kv and least_queue, each (TTFT p90 in us, prompt tokens hit of 10,000)."""
        d = self.run_dir("run")
        for strategy, (ttft, hits) in (("p2c_kv", p2c), ("least_queue", lq)):
            write_run(d, strategy, workload, ttft, workers=cache(hits, 10000))
        return self.report([d], "least_queue p2c_kv", workload)

    def report(self, dirs, strategies, workloads):
        return main([*dirs, "--strategies", strategies, "--workloads", workloads, "--command", "perf/routing.sh test"])


class CachePressureTests(Runs):
    def test_each_goal_is_the_median_of_the_per_run_ratios(self):
        # TTFT p90 p2c_kv / least_queue per run: 300/1000 = 0.30, 800/1000 = 0.80, 500/1000 = 0.50 -> median 0.50
        # (<= 0.7: met). p2c_kv / round_robin: 300/500, 800/1000, 500/2000 = 0.60, 0.80, 0.25 -> 0.60 (> 0.5: not met).
        # Hit rate p2c_kv / least_queue: 60/100 against 20/100 in every run = 3.00 (>= 1.5: met).
        dirs = []
        for n, (p2c, lq, rr) in enumerate([(300, 1000, 500), (800, 1000, 1000), (500, 1000, 2000)]):
            d = self.run_dir(f"run{n}")
            write_run(d, "p2c_kv", "cache-pressure", p2c * 1000, workers=cache(6000, 10000))
            write_run(d, "least_queue", "cache-pressure", lq * 1000, workers=cache(2000, 10000))
            write_run(d, "round_robin", "cache-pressure", rr * 1000, workers=cache(2000, 10000))
            dirs.append(d)
        md = self.report(dirs, "round_robin least_queue p2c_kv", "cache-pressure")
        self.assertEqual(["(c) TTFT p90: p2c_kv / least_queue ≤ 0.7", "0.50 (0.30, 0.80, 0.50)", "met"], goal(md, "(c) TTFT p90: p2c_kv / least_queue"))
        self.assertEqual(["(c) TTFT p90: p2c_kv / round_robin ≤ 0.5", "0.60 (0.60, 0.80, 0.25)", "**not met**"], goal(md, "(c) TTFT p90: p2c_kv / round_robin"))
        self.assertEqual("3.00 (3.00, 3.00, 3.00)", goal(md, "(c) cache hit rate")[1])
        self.assertEqual("met", goal(md, "(c) cache hit rate")[2])
        # The table shows the median TTFT p90 (500 ms for p2c_kv) and the hit rate.
        self.assertIn("| p2c_kv | 100 | 250 | 500 | 1,000 | 1,500 | 500 | 0.00% | 0 | 60% |", md)

    def test_a_hit_rate_below_the_goal_is_not_met(self):
        # 25% against 20%: 1.25 < 1.5.
        md = self.against_least_queue("cache-pressure", (100_000, 2500), (100_000, 2000))
        self.assertEqual(["(c) cache hit rate: p2c_kv / least_queue ≥ 1.5", "1.25", "**not met**"], goal(md, "(c) cache hit rate"))


class MultiTurnTests(Runs):
    def test_ttft_and_hits_against_least_queue(self):
        # TTFT 50/100 = 0.5 (<= 0.6: met); hits 30% / 20% = 1.5 (< 2: not met).
        md = self.against_least_queue("multi-turn", (50_000, 3000), (100_000, 2000))
        self.assertEqual(["(d) TTFT p90: p2c_kv / least_queue ≤ 0.6", "0.50", "met"], goal(md, "(d) TTFT p90"))
        self.assertEqual(["(d) cache hit rate: p2c_kv / least_queue ≥ 2", "1.50", "**not met**"], goal(md, "(d) cache hit rate"))


class PushBackTests(Runs):
    METRICS = """# HELP llm_circuit_breaker_failures_total Failures.
# TYPE llm_circuit_breaker_failures_total counter
llm_circuit_breaker_failures_total{worker="sim-0"} 0
llm_circuit_breaker_failures_total{worker="sim-2"} 7
llm_circuit_breaker_failures_total{worker="sim-3"} 6
llm_worker_push_backs_total{worker="sim-2",status="503"} 4
llm_worker_push_backs_total{worker="sim-3",status="503"} 5
"""

    def test_503s_and_trips_are_counted_per_strategy_and_any_fails_the_goal(self):
        # round_robin: one 503 to a client, breakers opened 1 + 1 times, 13 failures, 9 push-backs.
        # p2c_kv: none of it. The goals name the strategy that failed them.
        d = self.run_dir("run")
        write_run(d, "round_robin", "push-back", 500_000, requests=144, codes={"200": 140, "502": 3, "503": 1},
                  metrics=self.METRICS, breakers=[0, 0, 1, 1])
        write_run(d, "p2c_kv", "push-back", 400_000, requests=144, metrics="llm_circuit_breaker_failures_total{worker=\"sim-0\"} 0\n",
                  breakers=[0, 0, 0, 0])
        md = self.report([d], "round_robin p2c_kv", "push-back")
        self.assertEqual(["(e) no 503 reaches a client (the fleet had room), every strategy", "worst 1 (round_robin)", "**not met**: round_robin"],
                         goal(md, "(e) no 503"))
        self.assertEqual(["(e) no breaker trip, every strategy", "worst 2 (round_robin)", "**not met**: round_robin"], goal(md, "(e) no breaker trip"))
        self.assertEqual(["(e) no push-back counted as a breaker failure, every strategy", "worst 13 (round_robin)", "**not met**: round_robin"],
                         goal(md, "(e) no push-back counted"))
        # cache hit (no prefix counters here), 503s, trips, failures, push-backs (– where the gateway has no such metric).
        self.assertIn("| – | 1 | 2 | 13 | 9 | 36 / 36 / 36 / 36 |", md)
        self.assertIn("| – | 0 | 0 | 0 | – | 36 / 36 / 36 / 36 |", md)

    def test_the_worst_run_decides_and_a_clean_fleet_meets_both_goals(self):
        # Two runs of p2c_kv: the second had one 503, so the worst run's count (1) is shown.
        first, second = self.run_dir("a"), self.run_dir("b")
        write_run(first, "p2c_kv", "push-back", 1000, breakers=[0, 0, 0, 0])
        write_run(second, "p2c_kv", "push-back", 1000, codes={"200": 99, "503": 1}, breakers=[0, 0, 0, 0])
        md = self.report([first, second], "p2c_kv", "push-back")
        self.assertEqual("**not met**: p2c_kv", goal(md, "(e) no 503")[2])
        self.assertEqual("met", goal(md, "(e) no breaker trip")[2])
        md = self.report([first], "p2c_kv", "push-back")
        self.assertEqual(["(e) no 503 reaches a client (the fleet had room), every strategy", "worst 0 (p2c_kv)", "met"], goal(md, "(e) no 503"))

    def test_missing_breaker_stats_are_not_a_pass(self):
        d = self.run_dir("run")
        write_run(d, "p2c_kv", "push-back", 1000)
        md = self.report([d], "p2c_kv", "push-back")
        self.assertEqual("n/a for p2c_kv (not recorded)", goal(md, "(e) no breaker trip")[2])
        # write_run leaves an empty /metrics: no failures series at all is not recorded either.
        self.assertEqual("n/a for p2c_kv (not recorded)", goal(md, "(e) no push-back counted")[2])


class LoraTests(Runs):
    def test_adapter_loads_per_100_requests_from_the_workers_stats(self):
        # least_queue: 10 + 20 + 30 + 40 = 100 loads over 200 requests = 50 per 100.
        # p2c_kv: 2 + 2 + 2 + 2 = 8 over 200 = 4 per 100: 4 / 50 = 0.08 (<= 0.5: met); TTFT 90/100 = 0.90 (<= 1: met).
        d = self.run_dir("run")
        write_run(d, "least_queue", "lora", 100_000, requests=200, workers=[{"requests_total": 50, "lora_loads": n} for n in (10, 20, 30, 40)])
        write_run(d, "p2c_kv", "lora", 90_000, requests=200, workers=[{"requests_total": 50, "lora_loads": 2}] * 4)
        md = self.report([d], "least_queue p2c_kv", "lora")
        self.assertEqual(["(f) adapter loads per 100 requests: p2c_kv / least_queue ≤ 0.5", "0.08", "met"], goal(md, "(f) adapter loads"))
        self.assertEqual(["(f) TTFT p90: p2c_kv / least_queue ≤ 1 (no worse)", "0.90", "met"], goal(md, "(f) TTFT p90"))
        self.assertIn("| 50.0 |", md)
        self.assertIn("| 4.0 |", md)

    def test_no_loads_at_all_is_a_ratio_of_zero_not_a_missing_one(self):
        d = self.run_dir("run")
        write_run(d, "least_queue", "lora", 100_000, workers=[{"lora_loads": 5}] * 4)
        write_run(d, "p2c_kv", "lora", 100_000, workers=[{"lora_loads": 0}] * 4)
        md = self.report([d], "least_queue p2c_kv", "lora")
        self.assertEqual(["(f) adapter loads per 100 requests: p2c_kv / least_queue ≤ 0.5", "0.00", "met"], goal(md, "(f) adapter loads"))

    def test_a_skipped_workload_says_why_in_its_table_and_its_goals(self):
        d = self.run_dir("run")
        for s in ("least_queue", "p2c_kv"):
            os.makedirs(os.path.join(d, s))
            with open(os.path.join(d, s, "lora.skipped"), "w") as f:
                f.write("the simulator has no --lora-modules (lora19) yet\n")
        md = self.report([d], "least_queue p2c_kv", "lora")
        self.assertIn("| p2c_kv | skipped: the simulator has no --lora-modules (lora19) yet |", md)
        self.assertEqual("–", goal(md, "(f) adapter loads")[1])
        self.assertIn("n/a", goal(md, "(f) adapter loads")[2])


class SubsetTests(Runs):
    def test_only_the_asked_workloads_get_tables_and_the_rest_of_the_goals_say_not_run(self):
        d = self.run_dir("run")
        write_run(d, "p2c_kv", "no-reuse", 100_000)
        write_run(d, "least_queue", "no-reuse", 102_000)
        md = self.report([d], "least_queue p2c_kv", "no-reuse")
        self.assertIn("## (b) no reuse", md)
        self.assertNotIn("## (c)", md)
        self.assertNotIn("## (a)", md)
        # 100 / 102 = 0.98: within 0.95-1.05.
        self.assertEqual(["(b) TTFT p90: p2c_kv / least_queue within 0.95-1.05", "0.98", "met"], goal(md, "(b) TTFT p90"))
        self.assertEqual(["(c) TTFT p90: p2c_kv / least_queue ≤ 0.7", "–", "n/a (cache-pressure not run)"], goal(md, "(c) TTFT p90: p2c_kv / least_queue"))

    def test_an_unknown_workload_is_a_usage_error(self):
        with self.assertRaises(SystemExit):
            main([self.tmp.name, "--workloads", "cache-presure"])


class MetricTests(unittest.TestCase):
    def test_sums_every_labelled_sample_and_tells_absent_from_zero(self):
        text = 'x_total{worker="a"} 1\nx_total{worker="b",status="503"} 2.5\nx_total_created 9\n# x_total 100\ny 0\n'
        self.assertEqual(3.5, metric_sum(text, "x_total"))
        self.assertEqual(0.0, metric_sum(text, "y"))
        self.assertIsNone(metric_sum(text, "z_total"))


class ReportObjectTests(Runs):
    def test_a_strategy_that_ran_as_round_robin_is_flagged(self):
        d = self.run_dir("run")
        write_run(d, "adaptive", "no-reuse", 1000, log="routing strategy adaptive is accepted but not built yet")
        report = Report([d], ["adaptive"], ["no-reuse"])
        self.assertTrue(report.ran("adaptive", "no-reuse")["as_rr"])


if __name__ == "__main__":
    unittest.main()
