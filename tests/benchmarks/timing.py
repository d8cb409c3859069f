"""Comparing two pieces of work in one process on a shared machine."""
import time

import numpy as np


def paired_ratio(new, old, pairs: int) -> tuple[float, list[float], dict[str, float]]:
    """Median over ``pairs`` of (new's time / old's time), each pair timed back to back with the order
    alternating: the load of a shared machine (or another pytest-xdist worker) changes from second to
    second but rarely within one pair, and the median ignores the pairs it did hit. Returns the median,
    every pair's ratio, and each side's shortest time in seconds."""
    ratios, best = [], {"new": float("inf"), "old": float("inf")}
    for i in range(pairs):
        times = {}
        for key in (("new", "old") if i % 2 == 0 else ("old", "new")):
            t = time.perf_counter()
            (new if key == "new" else old)()
            times[key] = time.perf_counter() - t
            best[key] = min(best[key], times[key])
        ratios.append(times["new"] / times["old"])
    return float(np.median(ratios)), ratios, best
