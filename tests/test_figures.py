"""analysis.figures on a synthetic suite where the answer is known (diffusion_reward dominates).

The suite also carries the partial-results cases: an unfinished run (high scores that would change
the numbers if it were averaged in), a method missing two tasks, and a task with fewer finished seeds.
Expected numbers are computed here from the eval lists and checked against rliable called directly.
"""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from rliable import metrics

from analysis import aggregate as agg
from analysis.figures import main, make_figures
from analysis.palette import method_color, method_colors, method_order
from tests.test_scores import write_run

TASKS = ["door-close", "reach", "window-open"]
LEVEL = {"sparse": 0.1, "viper": 0.45, "diffusion_reward": 0.9}
N_EVALS, EVERY, REPS, FRAMES = 6, 1000, 60, 3000
STEMS = ["aggregates_final", f"aggregates_{FRAMES}_frames", "probability_of_improvement",
         "improvement_over_sparse", "improvement_matrix", "performance_profile", "sample_efficiency_iqm", "learning_curves"]


def curve(level: float, task_i: int, seed: int) -> list[float]:
    """A rising success curve ending near ``level``, on the 0.1 grid of 10 eval episodes."""
    x = np.linspace(0, 1, N_EVALS)
    wiggle = 0.1 * ((task_i + 2 * seed) % 3 - 1)
    return list(np.clip(np.round(level * x + wiggle * x, 1), 0, 1))


def known_runs() -> dict[tuple[str, str, int], list[float]]:
    runs = {(m, t, s): curve(lvl, i, s) for m, lvl in LEVEL.items() for i, t in enumerate(TASKS) for s in range(3)}
    return runs


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> dict:
    results = tmp_path_factory.mktemp("results")
    d = results / "toy"
    runs = known_runs()
    for (m, t, s), sr in runs.items():
        unfinished = (m, t, s) == ("sparse", "reach", 2)
        write_run(d, m, t, s, [1.0, 1.0, 1.0] if unfinished else sr, every=EVERY,
                  budget=(N_EVALS - 1) * EVERY, done=not unfinished)
    write_run(d, "amp", "reach", 0, curve(0.95, 1, 0), every=EVERY)  # amp lacks two tasks
    out = results / "figs"
    written = make_figures("toy", results, out, frames=FRAMES, reps=REPS)
    return {"results": results, "out": out, "written": written, "runs": runs,
            "report": (out / "report.md").read_text(), "data": pd.read_csv(out / "figure_data.csv")}


def expected_matrices(runs: dict, frames: int | None = None) -> dict[str, np.ndarray]:
    """Score matrices built by hand: mean of the last 3 evals (at or before ``frames``)."""
    upto = N_EVALS if frames is None else frames // EVERY + 1
    seeds = {"sparse": [0, 1], "viper": [0, 1, 2], "diffusion_reward": [0, 1, 2]}
    return {m: np.array([[np.mean(runs[(m, t, s)][:upto][-3:]) for t in TASKS] for s in seeds[m]])
            for m in ["sparse", "viper", "diffusion_reward"]}


def report_table(report: str, label: str) -> list[tuple[str, float, float, float]]:
    """(method, IQM, lower, upper) rows of the report's table for ``label``, in report order."""
    section = report.split(f"## Aggregates at {label}")[1].split("##")[0]
    rows = re.findall(r"^\| \d+ \| (\S+) \| ([\d.]+) \[([\d.]+), ([\d.]+)\]", section, flags=re.M)
    return [(m, float(v), float(lo), float(hi)) for m, v, lo, hi in rows]


def test_every_figure_is_written_as_png_and_pdf(suite):
    out = suite["out"]
    for stem in STEMS:
        png, pdf = out / f"{stem}.png", out / f"{stem}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert pdf.read_bytes()[:5] == b"%PDF-", stem
        assert png.stat().st_size > 5000 and pdf.stat().st_size > 3000, stem
        assert f"({stem}.png)" in suite["report"]
    assert set(suite["written"]) == {out / f"{s}.{e}" for s in STEMS for e in ("png", "pdf")} | {
        out / "figure_data.csv", out / "report.md"}


@pytest.mark.parametrize("label,frames", [("final budget", None), (f"{FRAMES:,} frames", FRAMES)])
def test_report_order_and_iqm_match_rliable(suite, label, frames):
    expected = expected_matrices(suite["runs"], frames)
    # the same call the analysis makes, with its seed, on matrices built independently
    func = lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x),  # noqa: E731
                               metrics.aggregate_median(x), metrics.aggregate_optimality_gap(x)])
    np.random.seed(0)
    point, ci = rly.get_interval_estimates(expected, func, reps=REPS)
    rows = report_table(suite["report"], label)
    assert [r[0] for r in rows] == ["diffusion_reward", "viper", "sparse"]
    for method, iqm, lo, hi in rows:
        assert iqm == pytest.approx(point[method][0], abs=5e-4)
        assert (lo, hi) == pytest.approx((ci[method][0, 0], ci[method][1, 0]), abs=5e-4)
    # the CSV holds the unrounded numbers
    data = suite["data"]
    stem = "aggregates_final" if frames is None else f"aggregates_{frames}_frames"
    iqm = data[(data.figure == stem) & (data.metric == "IQM")].set_index("method")["value"]
    for method in expected:
        assert iqm[method] == pytest.approx(point[method][0], abs=1e-12)
    # the dominant method is ahead by a margin the bootstrap agrees on
    assert ci["diffusion_reward"][0, 0] > ci["viper"][1, 0]


def test_improvement_of_best_method_over_best_baseline(suite):
    point = {m: metrics.aggregate_iqm(x) for m, x in expected_matrices(suite["runs"]).items()}
    rel = 100 * (point["diffusion_reward"] - point["viper"]) / point["viper"]
    assert "Best method by IQM: **diffusion_reward**" in suite["report"]
    assert f"best baseline `viper`: **{rel:+.1f}%**" in suite["report"]
    poi = suite["data"].query("figure == 'probability_of_improvement'").set_index("other")["value"]
    assert poi["viper"] == 1.0 and poi["sparse"] == 1.0
    # and against the baseline (sparse by default): every method above it, each with a CI
    over = suite["data"].query("figure == 'improvement_over_sparse'").set_index("method")
    assert set(over.index) == {"viper", "diffusion_reward"} and set(over["other"]) == {"sparse"}
    assert (over["value"] == 1.0).all() and (over["lower"] <= over["value"]).all()
    assert "## Probability of improvement over `sparse` (final budget)" in suite["report"]


def test_partial_results_are_reported_and_left_out(suite):
    report = suite["report"]
    assert "sparse/reach/seed_2: unfinished (last evaluated frame 2,000 of 5,000)" in report
    assert "amp: no finished run on task(s) ['door-close', 'window-open']" in report
    assert "sparse/door-close: seed(s) [2] left out" in report
    assert "amp/reach: no run for seed(s) [1, 2] (the suite's runs so far have seeds [0, 1, 2])" in report
    assert "| amp |" not in report.split("## Probability")[0]  # not in the aggregate tables
    assert "amp" not in set(suite["data"].query("figure == 'aggregates_final'")["method"])
    # the unfinished run is still drawn, marked, in the learning curves
    lc = suite["data"].query("figure == 'learning_curves'")
    marked = lc[(lc.method == "sparse") & (lc.task == "reach") & (lc.status == "unfinished")]
    assert marked["value"].tolist() == [1.0, 1.0, 1.0]
    finished = lc[(lc.method == "sparse") & (lc.task == "reach") & (lc.status == "finished")]
    last = [suite["runs"][("sparse", "reach", s)][-1] for s in (0, 1)]
    assert finished["value"].iloc[-1] == pytest.approx(np.mean(last))
    assert finished["se"].iloc[-1] == pytest.approx(np.std(last, ddof=1) / np.sqrt(2))


def test_no_results_exit_non_zero_with_a_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["--suite", "empty", "--results", str(tmp_path)]) == 1
    assert "no evaluations yet" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "analysis.figures", "--suite", "nope", "--results", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "no results for suite 'nope'" in proc.stderr and "empty" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_arguments(suite):
    with pytest.raises(ValueError, match="unknown reference method 'dreamer'.*diffusion_reward"):
        make_figures("toy", suite["results"], suite["out"] / "x", reference="dreamer", reps=5)
    with pytest.raises(ValueError, match="left out of the aggregates.*usable references"):
        make_figures("toy", suite["results"], suite["out"] / "x", reference="amp", reps=5)
    with pytest.raises(ValueError, match="unknown baseline method 'dreamer'.*sparse"):
        make_figures("toy", suite["results"], suite["out"] / "x", baseline="dreamer", reps=5)
    with pytest.raises(ValueError, match="baseline method 'amp' is left out.*usable baselines"):
        make_figures("toy", suite["results"], suite["out"] / "x", baseline="amp", reps=5)
    with pytest.raises(ValueError, match="positive frame count"):
        make_figures("toy", suite["results"], frames=-5)
    with pytest.raises(ValueError, match="reps"):
        make_figures("toy", suite["results"], reps=0)


def test_fast_estimators_equal_rliable():
    rng = np.random.default_rng(0)
    for shape_x, shape_y in [((3, 4), (5, 4)), ((1, 2), (1, 2)), ((4, 6), (2, 6))]:
        x = rng.integers(0, 4, shape_x) / 4  # coarse grid: many ties
        y = rng.integers(0, 4, shape_y) / 4
        assert agg.fast_probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y))
        assert agg.fast_probability_of_improvement(x, x) == pytest.approx(0.5)
        taus = np.linspace(0, 1, 11)
        assert np.allclose(agg.fast_score_distribution(x, taus), rly.score_distributions(x, taus))
    curves = rng.integers(0, 11, (5, 3, 7)) / 10
    assert np.allclose(agg.fast_iqm_per_frame(curves),
                       [metrics.aggregate_iqm(curves[..., i]) for i in range(7)])


def test_scores_over_frames_matches_per_frame_scores(suite):
    from analysis.scores import load_scores, run_status

    suite_dir = suite["results"] / "toy"
    success = agg.success_rates(load_scores(suite_dir))
    selection = agg.select_runs(run_status(suite_dir), success)
    grid = agg.frame_grid(success, selection)
    assert grid.tolist() == [i * EVERY for i in range(N_EVALS)]
    curves = agg.scores_over_frames(success, selection, grid)
    for i, f in enumerate(grid):
        per_frame = agg.score_matrices(agg.run_scores(success, int(f)), selection)
        for m in selection.methods:
            assert np.allclose(curves[m][..., i], per_frame[m])


def test_palette_is_keyed_by_name_only():
    assert method_order(["viper", "zeta", "diffusion_reward", "sparse", "alpha"]) == [
        "sparse", "viper", "diffusion_reward", "alpha", "zeta"]
    assert method_colors(["viper", "diffusion_reward"])["viper"] == method_colors(["viper", "sparse", "x"])["viper"]
    # pinned: a new method's colour is the same in every process (an unstable hash such as hash() would not be)
    assert method_color("my_new_reward") == pytest.approx((0.0, 0.10980392156862745, 0.4980392156862745))
    assert method_color("zeta") != method_color("my_new_reward")
    known = [method_color(m) for m in method_order(["dense", "sparse", "rnd", "amp", "viper", "viper_std", "viper_ce",
                                                    "diffusion_reward", "diffusion_ll",
                                                    "diffusion_reward_nonoise", "genreward"])]
    assert len(set(known)) == len(known)
    assert method_order(["sparse", "dense"]) == ["dense", "sparse"]  # the oracle first, drawn apart
