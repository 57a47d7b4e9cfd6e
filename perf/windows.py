"""Sliding-window arithmetic shared by the perf reports (perf/limits_report.py, perf/cluster_report.py).

A request's admission happened at some moment between lo (its send began) and hi (its response
head came back). A window counts a request only when that whole interval lies inside it, so that
client-side delays can never make the gateway look worse than it is: a count above the limit is a
real breach.
"""

WINDOW = 60.0


def worst_sliding(rows, key, after=0.0, window=WINDOW):
    """(the largest sum of key over the rows whose [lo, hi] lies inside one [t, t + window), that t),
    over t >= after; rows sorted by lo. The best t is always some row's lo: moving t right to the
    next lo loses nothing and widens the window's end."""
    best, where = 0, None
    for i, first in enumerate(rows):
        t = first["lo"]
        if t < after:
            continue
        total = 0
        for r in rows[i:]:
            if r["lo"] >= t + window:
                break
            if r["hi"] < t + window:
                total += key(r)
        if total > best:
            best, where = total, t
    return best, where
