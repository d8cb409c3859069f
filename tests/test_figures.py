"""analysis.figures on a synthetic suite where the answer is known (diffusion_reward dominates).

The suite also carries the partial-results cases: an unfinished run (high scores that would change
the numbers if it were averaged in), a method missing two tasks, and a task with fewer finished seeds.
Expected numbers are computed here from the eval lists and checked against rliable called directly.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from rliable import library as rly
from rliable import metrics

from analysis import aggregate as agg
from analysis import captions, plots
from analysis.figures import main, make_figures
from analysis.palette import method_color, method_colors, method_order
from analysis.scores import load_scores, run_status
from tests.test_scores import write_run

TASKS = ["door-close", "reach", "window-open"]
LEVEL = {"sparse": 0.1, "viper": 0.45, "diffusion_reward": 0.9}
N_EVALS, EVERY, REPS, FRAMES = 6, 1000, 60, 3000
STEMS = [
    "aggregates_final",
    f"aggregates_{FRAMES}_frames",
    "probability_of_improvement",
    "improvement_over_sparse",
    "improvement_matrix",
    "performance_profile",
    "sample_efficiency_iqm",
    "sample_efficiency_wall_clock",
    "learning_curves",
]


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
        write_run(
            d,
            m,
            t,
            s,
            [1.0, 1.0, 1.0] if unfinished else sr,
            every=EVERY,
            budget=(N_EVALS - 1) * EVERY,
            done=not unfinished,
        )
    write_run(d, "amp", "reach", 0, curve(0.95, 1, 0), every=EVERY)  # amp lacks two tasks
    out = results / "figs"
    written = make_figures("toy", results, out, frames=FRAMES, reps=REPS)
    return {
        "results": results,
        "out": out,
        "written": written,
        "runs": runs,
        "report": (out / "report.md").read_text(),
        "data": pd.read_csv(out / "figure_data.csv"),
    }


def expected_matrices(runs: dict, frames: int | None = None) -> dict[str, np.ndarray]:
    """Score matrices built by hand: mean of the last 3 evals (at or before ``frames``)."""
    upto = N_EVALS if frames is None else frames // EVERY + 1
    seeds = {"sparse": [0, 1], "viper": [0, 1, 2], "diffusion_reward": [0, 1, 2]}
    return {
        m: np.array([[np.mean(runs[(m, t, s)][:upto][-3:]) for t in TASKS] for s in seeds[m]])
        for m in ["sparse", "viper", "diffusion_reward"]
    }


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
        out / "figure_data.csv",
        out / "report.md",
        out / "pairwise_tests.csv",
        out / f"pairwise_tests_{FRAMES}_frames.csv",
    }


@pytest.mark.parametrize("label,frames", [("final budget", None), (f"{FRAMES:,} frames", FRAMES)])
def test_report_order_and_iqm_match_rliable(suite, label, frames):
    expected = expected_matrices(suite["runs"], frames)
    # the same call the analysis makes, with its seed, on matrices built independently
    func = lambda x: np.array(  # noqa: E731
        [
            metrics.aggregate_iqm(x),
            metrics.aggregate_mean(x),
            metrics.aggregate_median(x),
            metrics.aggregate_optimality_gap(x),
        ]
    )
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
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.figures", "--suite", "nope", "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
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
    assert np.allclose(agg.fast_iqm_per_frame(curves), [metrics.aggregate_iqm(curves[..., i]) for i in range(7)])


def test_scores_over_frames_matches_per_frame_scores(suite):
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
        "sparse",
        "viper",
        "diffusion_reward",
        "alpha",
        "zeta",
    ]
    assert method_colors(["viper", "diffusion_reward"])["viper"] == method_colors(["viper", "sparse", "x"])["viper"]
    # pinned: a new method's colour is the same in every process (an unstable hash such as hash() would not be)
    assert method_color("my_new_reward") == pytest.approx((0.0, 0.10980392156862745, 0.4980392156862745))
    assert method_color("zeta") != method_color("my_new_reward")
    known = [
        method_color(m)
        for m in method_order(
            [
                "dense",
                "sparse",
                "rnd",
                "amp",
                "viper",
                "viper_std",
                "viper_ce",
                "diffusion_reward",
                "diffusion_ll",
                "diffusion_reward_nonoise",
                "genreward",
            ]
        )
    ]
    assert len(set(known)) == len(known)
    assert method_order(["sparse", "dense"]) == ["dense", "sparse"]  # the oracle first, drawn apart


# --- what a figure tells a reader by itself: caption, 0-1 axes, visible intervals, compute axis ---------------


def _png_caption(path) -> str:
    return Image.open(path).text.get("Description", "")


def test_every_figure_carries_a_caption_with_its_interval_score_budget_and_runs(suite):
    for stem in STEMS:
        caption = _png_caption(suite["out"] / f"{stem}.png")
        assert "5,000 frames per run" in caption, (stem, caption)
        if stem == "learning_curves":
            assert "standard error" in caption and "not a CI" in caption and "3 seeds per task" in caption
            assert "95% stratified-bootstrap" in caption  # names what the other figures use instead
        else:
            assert (
                f"95% stratified-bootstrap CIs (rliable; {REPS:,} resamples" in caption
                or stem == "improvement_matrix"
                and "no CIs" in caption
            ), (stem, caption)
            assert "mean of its last 3 evaluations" in caption, (stem, caption)
            # sparse keeps 2 seeds per task (its third is unfinished on reach), the others 3
            assert "3 tasks; runs per method: sparse 6, viper 9, diffusion_reward 9" in caption, (stem, caption)
        pdf = (suite["out"] / f"{stem}.pdf").read_bytes()
        assert b"/Subject" in pdf, stem  # the PDF carries it too


def _estimates(values: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(m, n, *values[m]) for m in values for n in agg.AGGREGATE_METRICS],
        columns=["method", "metric", "value", "lower", "upper"],
    )


COLORS = {"sparse": (0.0, 0.0, 1.0), "rnd": (1.0, 0.0, 0.0), "viper": (0.0, 0.6, 0.0)}


def test_aggregate_panels_share_one_0_1_axis_and_drop_the_median_only_when_it_is_the_mean():
    est = _estimates({"sparse": (0.0, 0.0, 0.0), "rnd": (0.02, 0.0, 0.03), "viper": (0.2, 0.1, 0.3)})
    for tasks, panels in [
        (2, ["IQM", "Mean", "Optimality Gap"]),
        (1, ["IQM", "Mean", "Optimality Gap"]),
        (3, ["IQM", "Mean", "Median", "Optimality Gap"]),
    ]:
        fig = plots.aggregates(est, list(COLORS), COLORS, "t", caption="c", num_tasks=tasks)
        try:
            assert [ax.get_title() for ax in fig.axes] == panels
            assert all(ax.get_xlim() == (0.0, 1.0) for ax in fig.axes)
            assert all(list(ax.get_xticks()) == plots.UNIT_TICKS for ax in fig.axes)
            assert ("No Median panel: with" in plots.figure_caption(fig)) == (tasks <= 2)
        finally:
            plt.close(fig)
    # the rule is rliable's arithmetic: with two tasks the median of the task means is their mean
    x = np.random.default_rng(0).random((5, 2))
    assert metrics.aggregate_median(x) == pytest.approx(metrics.aggregate_mean(x))
    assert metrics.aggregate_median(np.random.default_rng(0).random((5, 3))) != pytest.approx(
        metrics.aggregate_mean(np.random.default_rng(0).random((5, 3)))
    )


def _colour_pixels(fig, rgb) -> int:
    """Pixels within a small distance of ``rgb`` in the figure as drawn."""
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255
    return int((np.abs(img - np.asarray(rgb)).max(axis=-1) < 0.08).sum())


def test_a_zero_width_ci_is_drawn_as_a_visible_tick_and_a_missing_one_as_a_circle():
    poi = pd.DataFrame(
        {
            "x": ["rnd", "viper"],
            "y": "sparse",
            "value": [0.75, 0.4],
            "lower": [0.75, float("nan")],
            "upper": [0.75, float("nan")],
        }
    )
    fig = plots.improvement(poi, COLORS, "t", color_by="x", caption="c")
    try:
        ax = fig.axes[0]
        narrow = [ln for ln in ax.get_lines() if ln.get_gid() == plots.NARROW_CI_GID]
        assert len(narrow) == 1 and narrow[0].get_visible() and narrow[0].get_linewidth() >= 4
        assert list(narrow[0].get_xdata()) == [0.75, 0.75]
        missing = [ln for ln in ax.get_lines() if ln.get_gid() == plots.NO_CI_GID]
        assert len(missing) == 1 and list(missing[0].get_xdata()) == [0.4]
        assert plots.NARROW_CI_NOTE in plots.figure_caption(fig) and plots.NO_CI_NOTE in plots.figure_caption(fig)
        # visible in pixels: rnd's red is on the canvas, and only because of the tick
        assert _colour_pixels(fig, COLORS["rnd"]) > 50
        narrow[0].remove()
        assert _colour_pixels(fig, COLORS["rnd"]) < 5
    finally:
        plt.close(fig)
    est = _estimates({"sparse": (0.0, 0.0, 0.0), "viper": (0.2, 0.1, 0.3)})
    fig = plots.aggregates(est, ["sparse", "viper"], COLORS, "t", num_tasks=2)
    try:
        ticks = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == plots.NARROW_CI_GID]
        assert len(ticks) == 3 and all(ln.get_color() == COLORS["sparse"] for ln in ticks)  # one per panel
        assert _colour_pixels(fig, COLORS["sparse"]) > 50
    finally:
        plt.close(fig)


def test_curves_use_0_1_axes_and_every_learning_curve_panel_has_tick_labels():
    rows = pd.DataFrame(
        [
            (m, t, s, f, v, "finished")
            for m, v in (("sparse", 0.0), ("rnd", 0.0), ("viper", 0.02))
            for t in ("door-close", "reach")
            for s in (0, 1)
            for f in range(0, 6000, 1000)
        ],
        columns=["method", "task", "seed", "frame", "value", "status"],
    )
    fig = plots.learning_curves(rows, ["door-close", "reach"], list(COLORS), COLORS, "t", caption="c")
    try:
        fig.canvas.draw()
        assert len(fig.axes) == 2
        for ax in fig.axes:
            assert ax.get_ylim() == (0.0, 1.0)
            labels = [t.get_text() for t in ax.get_yticklabels() if t.get_visible()]
            assert labels == ["0", "0.25", "0.5", "0.75", "1"], labels
            assert ax.get_window_extent().height / fig.dpi > 3.0  # inches: a panel big enough to read
        # sparse and rnd coincide: named under the panel, markers staggered (never on the same evaluation)
        notes = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert notes and all("sparse = rnd (0 throughout)" in n for n in notes)
        sparse, rnd = fig.axes[0].get_lines()[:2]
        assert sparse.get_markevery() != rnd.get_markevery()
    finally:
        plt.close(fig)
    curves = pd.DataFrame(
        [(m, f, v, v, v) for m, v in (("sparse", 0.0), ("viper", 0.02)) for f in (0, 1000, 2000)],
        columns=["method", "frame", "value", "lower", "upper"],
    )
    for fig in (
        plots.sample_efficiency(curves, ["sparse", "viper"], COLORS, "t"),
        plots.profiles(
            {"sparse": np.zeros(11), "viper": np.linspace(1, 0, 11)},
            {"sparse": np.zeros((2, 11)), "viper": np.zeros((2, 11))},
            np.linspace(0, 1, 11),
            ["sparse", "viper"],
            COLORS,
            "t",
        ),
    ):
        try:
            assert fig.axes[0].get_ylim() == (0.0, 1.0)
        finally:
            plt.close(fig)


def test_wall_clock_figure_draws_the_iqm_against_recorded_hours(suite):
    data = suite["data"]
    hours = data[data["figure"] == "sample_efficiency_wall_clock"]
    assert set(hours["method"]) == {"sparse", "viper", "diffusion_reward"}
    # write_run records 1.5 s per evaluation: the i-th evaluation (frame i * EVERY) at 1.5 i seconds
    for r in hours.itertuples(index=False):
        assert r.value == pytest.approx(1.5 * r.frame / EVERY / 3600)
        assert r.lower <= r.value <= r.upper
    caption = _png_caption(suite["out"] / "sample_efficiency_wall_clock.png")
    assert "Machine: machine as recorded in config.json" in caption  # the toy runs record no CPU
    assert "training hours" in Image.open(suite["out"] / "sample_efficiency_wall_clock.png").text["Title"]


def test_machine_is_named_from_the_runs_configs(tmp_path):
    for seed, cpu in ((0, "AMD EPYC"), (1, None)):
        run = write_run(tmp_path / "s", "sparse", "reach", seed, [0.0, 0.1])
        cfg = json.loads((run / "config.json").read_text())
        versions = {"torch": "2.13.0+cpu"} | ({"cpu": cpu} if cpu else {})
        (run / "config.json").write_text(
            json.dumps({**cfg, "versions": versions, "torch_threads": 1, "eval_episodes": 5})
        )
    assert captions.recorded_machine(tmp_path / "s") == (
        "AMD EPYC, CPU-only torch 2.13.0+cpu, 1 torch thread per run (config.json; 1 of 2 runs did not record "
        "their CPU)"
    )
    assert captions.machine_name(tmp_path / "s") == "AMD EPYC, 1 torch thread per run"
    assert captions.eval_episodes(tmp_path / "s") == "5 evaluation episodes"


def test_wall_clock_caption_states_each_methods_hours_to_the_last_frame():
    curves = pd.DataFrame(
        [(m, f, 0.0, 0.0, 0.0) for m in ("sparse", "viper") for f in (0, 1000, 2000)],
        columns=["method", "frame", "value", "lower", "upper"],
    )
    hours = pd.DataFrame(
        [("sparse", f, f / 1000, f / 1000, f / 1000) for f in (0, 1000, 2000)]
        + [("viper", f, f / 500, f / 800, f / 400) for f in (0, 1000, 2000)],
        columns=["method", "frame", "value", "lower", "upper"],
    )
    fig = plots.sample_efficiency_wall_clock(curves, hours, ["sparse", "viper"], COLORS, "t", "c", "AMD EPYC")
    try:
        caption = plots.figure_caption(fig)
        assert "Median training hours to 2,000 frames: sparse 2.00 (2.00-2.00), viper 4.00 (2.50-5.00)." in caption
        assert "sparse = viper (0 throughout)" in caption  # equal IQM: named, though their hours differ
        left, right = fig.axes[:2]
        assert left.get_ylim() == right.get_ylim() == (0.0, 1.0)
        assert right.get_lines()[1].get_xdata()[-1] == pytest.approx(4.0)  # viper drawn at its median hours
        assert "AMD EPYC" in right.get_title()
    finally:
        plt.close(fig)
