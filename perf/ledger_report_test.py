#!/usr/bin/env python3
"""The arithmetic behind perf/ledger.sh's figures: python3 -m unittest discover -s perf -p 'ledger_report_test.py'

perf/ledger.sh runs it before it measures anything, so that a figure it prints (a metric read from
/metrics, Postgres's CPU over its process tree, the spool's peak, the shipping rate, the medians and
the (b) / (a) ratios) can be trusted. The expected values are worked out by hand in each test's comment.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ledger_report import (  # noqa: E402
    drained, h2load_result, ledger_state, written, max_behind, max_spooled, parse_metrics, run_row, shipped_between, shipping_span, spooled_all, stat_ticks, summarize, tree_ticks)

METRICS = """# HELP llm_gateway_ledger_rows_total Rows the usage ledger has written.
# TYPE llm_gateway_ledger_rows_total counter
llm_gateway_ledger_rows_total 1234
llm_gateway_ledger_queue_depth 0
llm_gateway_ledger_shipped_total 1200
llm_gateway_ledger_spooled_rows 34
llm_gateway_requests_total{tenant="bench",status="200"} 99
llm_gateway_ledger_store_up 1
"""


def stat(pid, ppid, utime, stime, cutime=0, cstime=0, comm="postgres"):
    # /proc/PID/stat: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
    return f"{pid} ({comm}) S {ppid} 1 1 0 -1 4194304 10 0 0 0 {utime} {stime} {cutime} {cstime} 20 0 1 0 100 1000 10"


class MetricsTests(unittest.TestCase):
    def test_reads_the_ledger_samples_and_skips_labelled_ones(self):
        m = parse_metrics(METRICS)
        self.assertEqual(1234.0, m["llm_gateway_ledger_rows_total"])
        self.assertNotIn("llm_gateway_requests_total", m)
        self.assertEqual((1234, 1200, 34, 0), ledger_state(m))

    def test_a_gateway_without_a_store_has_no_shipped_or_spooled(self):
        m = parse_metrics("llm_gateway_ledger_rows_total 5\nllm_gateway_ledger_queue_depth 2\n")
        self.assertEqual((5, -1, -1, 2), ledger_state(m))

    def test_drained_needs_every_row_shipped_and_nothing_queued(self):
        self.assertTrue(drained((100, 100, 0, 0)))
        self.assertFalse(drained((100, 100, 0, 3)))  # 3 entries not yet in the file
        self.assertFalse(drained((100, 99, 0, 0)))  # the gauge is as of the last round; the counter is not
        self.assertFalse(drained((100, 90, 10, 0)))

    def test_written_needs_only_an_empty_queue(self):
        self.assertTrue(written((100, -1, -1, 0)))
        self.assertFalse(written((100, -1, -1, 1)))

    def test_spooled_all_needs_each_row_shipped_or_spooled(self):
        self.assertTrue(spooled_all((1100, 1000, 100, 0)))
        self.assertFalse(spooled_all((1100, 1000, 90, 0)))  # 10 written after the last round
        self.assertFalse(spooled_all((1000, 1000, 0, 0)))  # nothing spooled: Postgres is not down
        self.assertFalse(spooled_all((1100, 1000, 100, 1)))


class CpuTests(unittest.TestCase):
    def test_a_comm_with_spaces_and_parentheses(self):
        # utime 7 + stime 5 = 12; cutime 3 + cstime 1 = 4.
        line = stat(42, 1, 7, 5, 3, 1, comm="postgres: a (b) c")
        self.assertEqual((42, 1, 12, 4), stat_ticks(line))

    def test_a_tree_counts_its_descendants_and_what_the_root_reaped(self):
        # postmaster 100 (10 + 2, reaped 5 + 1) with backends 101 (3 + 1) and 102 (4 + 0), 102's
        # child 103 (1 + 1); 200 is not in the tree. 12 + 6 + 4 + 4 + 2 = 28.
        stats = [stat(100, 1, 10, 2, 5, 1), stat(101, 100, 3, 1), stat(102, 100, 4, 0), stat(103, 102, 1, 1), stat(200, 1, 50, 50)]
        self.assertEqual(28, tree_ticks(stats, 100))

    def test_a_root_that_is_gone_counts_nothing(self):
        self.assertEqual(0, tree_ticks([stat(200, 1, 50, 50)], 100))


SAMPLES = [
    # epoch, rows, shipped, spooled, queue
    (10.0, 0, 0, 0, 0),
    (10.5, 500, 0, 0, 200),
    (11.0, 1000, 0, 900, 0),
    (11.5, 1500, 900, 400, 0),
    (12.0, 2000, 1500, 300, 0),
    (12.5, 2000, 2000, 0, 0),
    (13.0, 2000, 2000, 0, 0),
]


class SpoolTests(unittest.TestCase):
    def test_the_peak_is_taken_within_the_span_only(self):
        self.assertEqual(900, max_spooled(SAMPLES, 10.0, 12.0))
        self.assertEqual(400, max_spooled(SAMPLES, 11.5, 13.0))

    def test_behind_is_rows_written_less_rows_shipped(self):
        # 11.0: 1000 - 0; 11.5: 1500 - 900 = 600; 12.0: 2000 - 1500 = 500.
        self.assertEqual(1000, max_behind(SAMPLES, 10.0, 12.0))
        self.assertEqual(600, max_behind(SAMPLES, 11.5, 13.0))

    def test_shipped_between_the_last_samples_at_or_before_each_end(self):
        # At or before 10.7: 0; at or before 12.2: 1500.
        self.assertEqual(1500, shipped_between(SAMPLES, 10.7, 12.2))

    def test_the_shipping_span_is_from_before_the_first_rise_to_the_final_value(self):
        # From 11.0 on the count rises first at 11.5 (900) and reaches its final 2000 at 12.5.
        self.assertEqual((11.0, 12.5), shipping_span(SAMPLES, 11.0))

    def test_no_span_when_nothing_was_shipped(self):
        self.assertIsNone(shipping_span(SAMPLES, 12.5))


WRK = "RESULT requests=20000 duration_us=10000000 p50_us=2000 p99_us=9000 mean_us=2500.0 errors=1 status_errors=2"


H2LOAD = """finished in 10.00s, 999.90 req/s, 1.2MB/s
requests: 10000 total, 10000 started, 9999 done, 9998 succeeded, 1 failed, 1 errored, 0 timeout
"""


class RunTests(unittest.TestCase):
    def test_an_h2load_run_as_a_result_line(self):
        # 4 logged requests of 100, 200, 300, 400 us: p50 the 2nd (200), p99 the 4th (400), mean 250;
        # one 503 is a status error; failed 1 + errored 1 + timeout 0 = 2 errors.
        log = ["1\t200\t300\n", "2\t200\t100\n", "3\t503\t400\n", "4\t200\t200\n"]
        self.assertEqual("RESULT requests=9999 duration_us=10000000 p50_us=200 p99_us=400 mean_us=250.0 errors=2 status_errors=1",
                         h2load_result(H2LOAD, log))

    def test_a_run_row_divides_by_its_requests(self):
        # 20,000 requests in 10 s: 2,000/s. CPU 500 ticks at 100 per second = 5 s = 250 us per
        # request; 8,000,000 B allocated = 400 per request; Postgres 40 ticks = 0.4 s = 20 us;
        # shipped 1,500 (10.7 .. 12.2) over 10 s = 150/s; the peak 900.
        row = run_row(1, "b", WRK, 500, 100, 1_000_000, 9_000_000, 50_000, 52_000, 40, SAMPLES, 10.7, 12.2, "0.50")
        self.assertEqual("2000.0", row["rps"])
        self.assertEqual("250.00", row["cpu_us_per_request"])
        self.assertEqual("400", row["alloc_per_request"])
        self.assertEqual("20.00", row["pg_cpu_us_per_request"])
        self.assertEqual(3, row["errors"])
        self.assertEqual(1500, row["shipped"])
        self.assertEqual("150", row["shipped_per_s"])
        self.assertEqual(900, row["max_spooled"])
        self.assertEqual(1000, row["max_behind"])

    def test_a_gateway_without_a_shipper_leaves_the_shipping_figures_empty(self):
        samples = [(s[0], s[1], -1, -1, s[4]) for s in SAMPLES]
        row = run_row(1, "a", WRK, 500, 100, 0, 0, 1, 1, 0, samples, 10.0, 13.0, "")
        self.assertEqual(("", "", ""), (row["shipped"], row["shipped_per_s"], row["max_spooled"]))

    def test_medians_per_setup_and_the_ratio(self):
        def row(setup, rps, cpu, rss0, rss1):
            return {"setup": setup, "rps": str(rps), "p50_us": "100", "p99_us": "200", "cpu_us_per_request": str(cpu),
                    "alloc_per_request": "400", "pg_cpu_us_per_request": "0", "errors": "0", "rss_before_kib": str(rss0), "rss_after_kib": str(rss1)}
        # a: 1000, 3000, 2000 -> 2000; b: 900, 1900, 1500 -> 1500; 1500 / 2000 = 0.75. CPU a 40, b 50: 1.25.
        rows = [row("a", 1000, 40, 100, 110), row("b", 900, 50, 200, 210), row("a", 3000, 30, 110, 120),
                row("b", 1900, 60, 210, 220), row("a", 2000, 50, 120, 130), row("b", 1500, 40, 220, 230)]
        s = summarize(rows)
        self.assertEqual(2000, s["a"]["rps"])
        self.assertEqual(1500, s["b"]["rps"])
        self.assertAlmostEqual(0.75, s["ratio"]["rps"])
        self.assertAlmostEqual(1.25, s["ratio"]["cpu_us_per_request"])
        self.assertEqual((100, 130), (s["a"]["rss_first_kib"], s["a"]["rss_last_kib"]))
        self.assertEqual((200, 230), (s["b"]["rss_first_kib"], s["b"]["rss_last_kib"]))


if __name__ == "__main__":
    unittest.main()
