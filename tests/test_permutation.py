"""Exact stratified permutation tests on small hand-made score matrices whose p-values are counted by hand."""

import numpy as np
import pytest
from scipy import stats

from analysis.permutation import pairwise_tests, separated, stratified_permutation_test


def test_three_successes_against_three_failures_on_one_task():
    # 20 ways to pick 3 of 6 runs as "a"; only the observed one puts all three 1s in a
    a, b = np.ones((3, 1)), np.zeros((3, 1))
    r = stratified_permutation_test(a, b, "mean", "greater")
    assert (r.difference, r.p_value, r.permutations, r.exact) == (1.0, pytest.approx(1 / 20), 20, True)
    assert stratified_permutation_test(a, b, "mean", "two-sided").p_value == pytest.approx(2 / 20)
    assert stratified_permutation_test(a, b, "mean", "less").p_value == pytest.approx(1.0)


def test_iqm_over_two_tasks_where_one_task_cannot_move_the_statistic():
    # task 0: a all 1, b all 0; task 1: every run 0. IQM(a) = trim_mean([0,0,0,1,1,1]) = 0.5, IQM(b) = 0.
    # Over the 20 x 20 relabellings only those putting all three task-0 ones in a (1 of 20 per task-1
    # labelling) reach 0.5; two ones in a give IQM 0.25 - 0 = 0.25.
    a = np.array([[1, 0], [1, 0], [1, 0]], float)
    b = np.zeros((3, 2))
    r = stratified_permutation_test(a, b, "iqm", "greater")
    assert r.difference == pytest.approx(0.5) and r.permutations == 400
    assert r.p_value == pytest.approx(20 / 400)
    assert r.driving_runs == 6 and r.tasks == 2


def test_one_task_on_ranks_matches_the_exact_mann_whitney_test():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=4), rng.normal(size=5) + 0.8
    ranks = stats.rankdata(np.concatenate([x, y]))
    r = stratified_permutation_test(ranks[:4, None], ranks[4:, None], "mean", "less")
    mw = stats.mannwhitneyu(x, y, alternative="less", method="exact")
    assert r.exact and r.p_value == pytest.approx(mw.pvalue)


def test_sampled_relabellings_estimate_the_exact_p_value():
    a, b = np.ones((3, 1)), np.zeros((3, 1))
    sampled = stratified_permutation_test(a, b, "mean", "greater", n_resamples=20000, exact_limit=1, seed=0)
    assert not sampled.exact and sampled.permutations == 20000
    assert sampled.p_value == pytest.approx(0.05, abs=0.006)


def test_identical_methods_are_never_separated():
    a = np.array([[0.2, 1.0], [0.0, 1.0], [0.4, 0.9]])
    r = stratified_permutation_test(a, a.copy(), "iqm", "two-sided")
    assert r.difference == 0 and r.p_value == pytest.approx(1.0)
    assert not separated((0.0, 0.5), (0.6, 0.9), p_value=0.2)  # disjoint CIs, but the test disagrees
    assert not separated((0.0, 0.5), (0.4, 0.9), p_value=0.001)  # the test agrees, the CIs overlap
    assert separated((0.0, 0.5), (0.6, 0.9), p_value=0.01)


def test_pairwise_table_and_bad_input():
    m = {"x": np.ones((3, 2)), "y": np.zeros((3, 2)), "z": np.full((3, 2), 0.5)}
    t = pairwise_tests(m)
    assert list(zip(t.a, t.b)) == [("x", "y"), ("x", "z"), ("y", "z")]
    assert (t.p_value <= 1).all() and t.exact.all()
    with pytest.raises(ValueError, match="valid: iqm, mean"):
        stratified_permutation_test(m["x"], m["y"], "median")
    with pytest.raises(ValueError, match="same tasks"):
        stratified_permutation_test(np.ones((3, 2)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="finite"):
        stratified_permutation_test(np.array([[np.nan]]), np.ones((1, 1)))
