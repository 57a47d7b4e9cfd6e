#!/usr/bin/env python3
"""The arithmetic behind perf/cluster.sh's figures: python3 -m unittest discover -s perf -p 'cluster_report_test.py'

perf/cluster.sh runs it before it measures anything, so that a figure it prints (the 60 s window
maximum, the weighted shares, the reservations in flight, a worker's running count) can be
trusted. The expected values are worked out by hand in each test's comment.
"""
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster_report import in_flight_reservations, reserved_by_replica, running_count, weighted_shares, worst_with_warmups  # noqa: E402
from windows import worst_sliding  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "fixtures", "vllm")


def request(lo, hi=None, end=None, reservation=0):
    return {"lo": lo, "hi": lo + 0.1 if hi is None else hi, "end": lo + 0.5 if end is None else end, "reservation": reservation}


class SlidingWindowTests(unittest.TestCase):
    def test_one_request_every_10_s_gives_6_in_a_window(self):
        # 0, 10, ..., 120: [0, 60) holds 0..50 (6); 60 itself is outside it.
        rows = [request(10.0 * i) for i in range(13)]
        worst, at = worst_sliding(rows, lambda r: 1)
        self.assertEqual(6, worst)
        self.assertEqual(0.0, at)

    def test_a_burst_in_the_middle_is_found_where_it_is(self):
        # 1 per 10 s, plus 20 at 100-101.9 s: [50, 110) holds 50..100 (6) + 20 = 26, and so does every
        # window up to [100, 160); [40, 100) holds only 40..90 (6): the first that reaches 26 starts at 50.
        rows = sorted([request(10.0 * i) for i in range(19)] + [request(100.0 + 0.1 * k) for k in range(20)], key=lambda r: r["lo"])
        worst, at = worst_sliding(rows, lambda r: 1)
        self.assertEqual(26, worst)
        self.assertEqual(50.0, at)

    def test_a_request_whose_head_came_after_the_window_does_not_count(self):
        # The second's send..head interval (59.9..60.1) crosses the window's end at 60.
        rows = [request(0.0), request(59.9, hi=60.1), request(130.0)]
        worst, _ = worst_sliding(rows, lambda r: 1)
        self.assertEqual(1, worst)

    def test_sums_the_key_not_the_rows(self):
        rows = [dict(request(0.0), tokens=100), dict(request(30.0), tokens=250), dict(request(70.0), tokens=10)]
        worst, _ = worst_sliding(rows, lambda r: r["tokens"])
        self.assertEqual(350, worst)

    def test_after_skips_the_windows_that_start_earlier(self):
        rows = [request(float(i)) for i in range(10)] + [request(100.0)]
        self.assertEqual(10, worst_sliding(rows, lambda r: 1)[0])
        self.assertEqual(1, worst_sliding(rows, lambda r: 1, after=60.0)[0])


class WarmUpTests(unittest.TestCase):
    def test_the_warmups_count_into_the_first_minute(self):
        # 5 served in [0, 60) and 2 after: the warm-ups (3) were served before 0, so a window can
        # hold 5 + 3 = 8.
        rows = [request(float(i)) for i in range(5)] + [request(70.0), request(80.0)]
        self.assertEqual(8, worst_with_warmups(rows, 0.0, 3)[0])

    def test_a_later_window_above_that_wins(self):
        # [0, 60) holds 1 (+3 = 4); [100, 160) holds 10.
        rows = [request(0.0)] + [request(100.0 + i) for i in range(10)]
        self.assertEqual(10, worst_with_warmups(rows, 0.0, 3)[0])


class WeightedSharesTests(unittest.TestCase):
    WEIGHTS = {"t70": 70, "t20": 20, "t10": 10}

    def test_service_in_the_weights_ratio_has_no_error(self):
        shares = weighted_shares({"t70": 7000.0, "t20": 2000.0, "t10": 1000.0}, self.WEIGHTS)
        for tenant, (share, target, error) in shares.items():
            self.assertAlmostEqual(self.WEIGHTS[tenant] / 100, share)
            self.assertAlmostEqual(share, target)
            self.assertAlmostEqual(0.0, error)

    def test_the_issues_measured_12_64_24_is_far_off(self):
        # issue 16: 12 % / 64 % / 24 %: t70 has 12/70 - 1 = -82.9 % of its share, t20 64/20 - 1 = +220 %.
        shares = weighted_shares({"t70": 12.0, "t20": 64.0, "t10": 24.0}, self.WEIGHTS)
        self.assertAlmostEqual(0.12, shares["t70"][0])
        self.assertAlmostEqual(12 / 70 - 1, shares["t70"][2])
        self.assertAlmostEqual(2.2, shares["t20"][2])
        self.assertAlmostEqual(1.4, shares["t10"][2])

    def test_the_targets_come_from_the_tenants_present(self):
        # Two tenants, 70:20: the targets are 7/9 and 2/9.
        shares = weighted_shares({"t70": 1.0, "t20": 1.0}, self.WEIGHTS)
        self.assertAlmostEqual(7 / 9, shares["t70"][1])
        self.assertAlmostEqual(0.5 / (2 / 9) - 1, shares["t20"][2])


class ReservationsTests(unittest.TestCase):
    def test_counts_the_requests_sent_and_not_yet_complete(self):
        rows = [
            request(0.0, end=5.0, reservation=100),   # in flight at 3
            request(3.0, end=4.0, reservation=20),    # sent at 3: in flight
            request(1.0, end=3.0, reservation=7),     # complete at 3: not
            request(3.5, end=9.0, reservation=1000),  # not sent yet
        ]
        self.assertEqual(120, in_flight_reservations(rows, 3.0))


class ReplicaReservationsTests(unittest.TestCase):
    @staticmethod
    def tenants(spent, left):
        return json.dumps([{"name": "other", "budget_tokens": 0, "spent_tokens": None, "budget_left_tokens": None},
                           {"name": "budget", "budget_tokens": 1000, "spent_tokens": spent, "budget_left_tokens": left}])

    def test_budget_minus_spent_minus_left_at_the_last_sample_before(self):
        # A at 2.0: 1000 - 600 - 300 = 100 (its sample at 3.0 is after); B at 1.0: 1000 - 0 - 1000 = 0;
        # C has nothing left (left 0: unknown, left out); no sample of D.
        samples = [
            (1.0, "a", self.tenants(500, 450)), (1.0, "b", self.tenants(None, 1000)), (1.0, "c", self.tenants(900, 20)),
            (2.0, "a", self.tenants(600, 300)), (2.0, "c", self.tenants(1000, 0)), (3.0, "a", self.tenants(900, 10)),
        ]
        held = reserved_by_replica(samples, {"A": "a", "B": "b", "C": "c", "D": "d"}, "budget", 2.5)
        self.assertEqual({"A": 100, "B": 0}, held)


class RunningCountTests(unittest.TestCase):
    def test_sums_the_engines_and_ignores_other_gauges(self):
        text = (
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            'vllm:num_requests_running{engine="0",model_name="m"} 12.0\n'
            'vllm:num_requests_running{engine="1",model_name="m"} 4.0\n'
            'vllm:num_requests_waiting{engine="0",model_name="m"} 30.0\n'
        )
        self.assertEqual(16.0, running_count(text))

    def test_reads_real_vllm_metrics(self):
        # Both fixtures come from idle vLLM servers: one running sample each, 0.0; set to 5 it reads 5.
        for name in ("metrics-v1-0.19.1.txt", "metrics-v0-partial.txt"):
            with open(os.path.join(FIXTURES, name)) as f:
                text = f.read()
            self.assertEqual(0.0, running_count(text))
            busy = re.sub(r"^(vllm:num_requests_running\{[^}]*\}) 0\.0$", r"\1 5.0", text, flags=re.M)
            self.assertNotEqual(text, busy)
            self.assertEqual(5.0, running_count(busy))

if __name__ == "__main__":
    unittest.main()
