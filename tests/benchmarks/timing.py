"""Comparing two pieces of work in one process on a shared machine."""

import time

import numpy as np


def paired_ratio(new, old, pairs: int, clock=time.perf_counter) -> tuple[float, list[float], dict[str, float]]:
    """Median over ``pairs`` of (new's time / old's time), each pair timed back to back with the order
    alternating: the load of a shared machine (or another pytest-xdist worker) changes from second to
    second but rarely within one pair, and the median ignores the pairs it did hit. Returns the median,
    every pair's ratio, and each side's shortest time in seconds of ``clock``.

    ``clock=time.process_time`` times the CPU this process spent, not the wall clock: for CPU-only work
    (MuJoCo stepping and software rendering) that is the cost being compared, and it does not count the
    time the process waited for a core. Measured on the 2-core AMD EPYC beside two training runs (three
    busy processes): the wall-clock ratios of one piece of work against itself spread over 0.64-1.48 per
    pair, and a median of 9 came out at 0.89; CPU-time ratios spread over 0.92-1.09, medians 0.98-1.02."""
    ratios, best = [], {"new": float("inf"), "old": float("inf")}
    for i in range(pairs):
        times = {}
        for key in ("new", "old") if i % 2 == 0 else ("old", "new"):
            t = clock()
            (new if key == "new" else old)()
            times[key] = clock() - t
            best[key] = min(best[key], times[key])
        ratios.append(times["new"] / times["old"])
    return float(np.median(ratios)), ratios, best
