#!/usr/bin/env python3
"""The arithmetic behind perf/soak.sh's verdict: python3 -m unittest discover -s perf -p 'soak_report_test.py'"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from soak_report import fifths, per_minute, summarize  # noqa: E402


def samples(rss, fds=100, queue=0):
    # One sample a minute from minute 0 (skipped as warm-up) to minute len(rss) - 1.
    return [{"t_s": 60.0 * i, "rss_kb": r, "fds": fds, "gen0": i, "gen1": 0, "gen2": i // 5,
             "heap_bytes": 1.0, "cpu_s": 0.0, "ledger_queue": queue, "load1": 1.0} for i, r in enumerate(rss)]


def requests(latency_by_minute):
    return [{"end": 60.0 * m + 1, "latency": lat, "ok": True} for m, lat in enumerate(latency_by_minute) for _ in range(10)]


class SoakReportTest(unittest.TestCase):
    def test_fifths_skip_the_warm_up_minute(self):
        first, last = fifths(samples([1] + [2] * 10))
        self.assertEqual([s["t_s"] for s in first], [60.0, 120.0])
        self.assertEqual([s["t_s"] for s in last], [540.0, 600.0])

    def test_a_flat_run_is_flat(self):
        # RSS 100 MB -> 105 MB (+5%), p99 the same every minute.
        summary = summarize(samples([50_000] + [102_400] * 5 + [107_520] * 5), requests([0.1] * 11))
        self.assertAlmostEqual(summary["rss_growth"], 0.05, places=3)
        self.assertEqual(summary["gen2_during"], 2)  # gen2 = i // 5: 0 at minute 0, 2 at minute 10
        self.assertTrue(summary["flat"])

    def test_growing_rss_is_not_flat(self):
        summary = summarize(samples([100_000 + 10_000 * i for i in range(11)]), requests([0.1] * 11))
        self.assertGreater(summary["rss_growth"], 0.10)
        self.assertFalse(summary["flat"])

    def test_a_p99_that_triples_is_not_flat(self):
        summary = summarize(samples([100_000] * 11), requests([0.1] * 6 + [0.3] * 5))
        self.assertAlmostEqual(summary["p99_last_s"] / summary["p99_first_s"], 3.0)
        self.assertFalse(summary["flat"])

    def test_per_minute_counts_errors_apart(self):
        rows = [{"end": 5.0, "latency": 0.2, "ok": True}, {"end": 6.0, "latency": 9.0, "ok": False}]
        self.assertEqual(per_minute(rows), {0: (2, 0.2, 0.2, 1)})


if __name__ == "__main__":
    unittest.main()
