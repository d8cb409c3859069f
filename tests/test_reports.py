"""Reports and figures that claim no more than the numbers carry, and the dense oracle kept apart."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from analysis import plots
from analysis.figures import make_figures
from analysis.report import separated_pairs, tie_aware_ranks
from tests.test_scores import write_run

TASKS = ["door-close", "reach"]
REPS = 20


def _write(suite_dir: Path, method: str, task: str, seed: int, success: list[float], profile: str) -> None:
    run = write_run(suite_dir, method, task, seed, success, every=500)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "profile": profile}))


def _report(tmp_path_factory, name: str, runs: dict, profile: str) -> dict:
    results = tmp_path_factory.mktemp(name)
    for (method, task, seed), success in runs.items():
        _write(results / name, method, task, seed, success, profile)
    out = results / "figs"
    written = make_figures(name, results, out, reps=REPS)
    return {
        "results": results,
        "out": out,
        "written": written,
        "report": (out / "report.md").read_text(),
        "data": pd.read_csv(out / "figure_data.csv"),
    }


@pytest.fixture(scope="module")
def tie(tmp_path_factory) -> dict:
    """sparse and rnd never succeed (an all-zero tie); the dense oracle does, on a smoke profile."""
    runs = {(m, t, s): [0.0, 0.0, 0.0, 0.0] for m in ("sparse", "rnd") for t in TASKS for s in (0, 1)}
    runs.update({("dense", t, s): [0.0, 0.5, 1.0, 1.0] for t in TASKS for s in (0, 1)})
    return _report(tmp_path_factory, "tie", runs, "smoke")


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory) -> dict:
    runs = {("sparse", t, 0): [0.0, 0.1, 0.2, 0.2] for t in TASKS}
    runs.update({("diffusion_reward", t, 0): [0.0, 0.4, 0.8, 0.9] for t in TASKS})
    return _report(tmp_path_factory, "single", runs, "quick")


def _aggregates_section(report: str) -> str:
    return report.split("## Aggregates at final budget")[1].split("\n## ")[0]


def test_all_zero_tie_names_no_best_method(tie):
    section = _aggregates_section(tie["report"])
    assert "Best method" not in tie["report"]
    assert "No best method: a tie: every method has IQM 0.000" in section
    ranks = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| 1")]
    assert ranks == ["1=", "1="]


def test_overlapping_cis_share_a_rank_separated_ones_do_not():
    est = pd.DataFrame(
        {
            "method": ["a", "b", "c"],
            "metric": "IQM",
            "value": [0.5, 0.45, 0.1],
            "lower": [0.4, 0.3, 0.0],
            "upper": [0.6, 0.55, 0.2],
        }
    )
    ranks = tie_aware_ranks(est)
    assert ranks[["method", "rank", "tied"]].values.tolist() == [["a", 1, True], ["b", 1, True], ["c", 3, False]]
    assert separated_pairs(est) == [("a", "c"), ("b", "c")]  # a and b overlap: not a claim


def test_tied_methods_are_listed_by_iqm_not_display_order():
    """One rank, two methods: the one with the higher IQM comes first whatever the display order (the shipped
    metaworld7 table once listed amp, IQM 0.067, above viper_std, 0.483, both "1=")."""
    est = pd.DataFrame(
        {
            "method": ["amp", "viper_std", "sparse"],
            "metric": "IQM",
            "value": [0.067, 0.483, 0.0],
            "lower": [0.0, 0.467, 0.0],
            "upper": [0.567, 0.5, 0.1],
        }
    )
    ranks = tie_aware_ranks(est)
    assert ranks[["method", "rank"]].values.tolist() == [["viper_std", 1], ["amp", 1], ["sparse", 2]]


def test_report_lists_separated_pairs_or_says_none(tie, tmp_path_factory):
    section = _aggregates_section(tie["report"])
    assert (
        "Separated pairs (IQM 95% CIs disjoint and permutation p < 0.05): none: no two methods are told apart"
    ) in section
    runs = {("sparse", t, s): [0.0, 0.0, 0.0, 0.0] for t in TASKS for s in (0, 1, 2)}
    runs.update({("amp", t, s): [0.0, 0.5, 1.0, 1.0] for t in TASKS for s in (0, 1, 2)})
    apart = _aggregates_section(_report(tmp_path_factory, "apart", runs, "quick")["report"])
    assert "Separated pairs (IQM 95% CIs disjoint and permutation p < 0.05): `amp` above `sparse`." in apart


def test_methods_with_seeds_are_compared_while_a_one_seed_method_is_not(tmp_path_factory):
    """Under way: amp and sparse have 3 seeds, rnd one. amp and sparse get CIs, ranks and their pair; rnd
    gets no interval, no rank, and blocks only the "best method" claim (its CI is unknown)."""
    runs = {("sparse", t, s): [0.0, 0.0, 0.0, 0.0] for t in TASKS for s in (0, 1, 2)}
    runs.update({("amp", t, s): [0.0, 0.5, 1.0, 1.0] for t in TASKS for s in (0, 1, 2)})
    runs.update({("rnd", t, 0): [0.0, 0.0, 0.0, 0.0] for t in TASKS})
    partial = _report(tmp_path_factory, "partial", runs, "quick")
    report = partial["report"]
    section = _aggregates_section(report)
    rows = {
        line.split("|")[2].strip(): line
        for line in section.splitlines()
        if line.startswith("| ") and "rank" not in line and "---" not in line
    }
    assert rows["amp"].startswith("| 1 | amp | 0.833 [") and rows["sparse"].startswith("| 2 | sparse | 0.000 [")
    assert rows["rnd"].startswith("| - | rnd | 0.000 (CI not available)")
    assert "CIs not available for `rnd` (one seed per task)" in section
    assert "Separated pairs (IQM 95% CIs disjoint and permutation p < 0.05): `amp` above `sparse`." in section
    assert "No best method: CIs not available for `rnd` (one seed per task)" in section
    alone = {k: v for k, v in runs.items() if k[0] != "amp"}  # only sparse has seeds: no pair to compare
    section = _aggregates_section(_report(tmp_path_factory, "alone", alone, "quick")["report"])
    assert "Separated pairs (IQM 95% CIs disjoint and permutation p < 0.05): none yet: only `sparse` has CIs" in section
    poi = report.split("## Probability of improvement")[1].split("\n## ")[0]
    assert any(
        line.startswith("- P(") and "amp" in line and "sparse" in line and "[" in line for line in poi.splitlines()
    )
    assert all("CI not available" in line for line in poi.splitlines() if line.startswith("- P(") and "rnd" in line)
    over = report.split("## Probability of improvement over `sparse` (final budget)")[1].split("\n## ")[0]
    lines = sorted(line for line in over.splitlines() if line.startswith("- P("))
    assert len(lines) == 2 and lines[0].startswith("- P(amp > sparse) = 1.000 [")  # amp wins every pairing
    assert lines[1].startswith("- P(rnd > sparse) = 0.500 (CI not available")  # all-zero tie: 0.5
    # the figures draw what the report says: no interval wherever rnd is involved, intervals elsewhere
    data = partial["data"]
    with_rnd = (data["method"] == "rnd") | (data["other"] == "rnd")
    stats = data[
        data["figure"].isin(
            [
                "aggregates_final",
                "probability_of_improvement",
                "improvement_over_sparse",
                "performance_profile",
                "sample_efficiency_iqm",
            ]
        )
    ]
    assert set(stats.loc[with_rnd, "figure"]) >= {
        "aggregates_final",
        "improvement_over_sparse",
        "performance_profile",
        "sample_efficiency_iqm",
    }
    assert stats.loc[with_rnd, ["lower", "upper"]].isna().all().all()
    assert stats.loc[~with_rnd, ["lower", "upper"]].notna().all().all()


def test_verdict_says_a_separated_difference_is_measured_while_another_method_lacks_a_ci(tmp_path_factory):
    """The shipped metaworld7 case: viper_std and diffusion_reward have seeds and disjoint CIs, rnd has one
    seed. No method is called best (rnd's CI is unknown), but viper_std's lead over diffusion_reward is a
    measured difference and the verdict says so; with overlapping CIs it says the opposite."""
    runs = {("viper_std", t, s): [0.0, 0.5, 1.0, 1.0] for t in TASKS for s in (0, 1, 2)}
    runs.update({("diffusion_reward", t, s): [0.0, 0.0, 0.0, 0.0] for t in TASKS for s in (0, 1, 2)})
    runs.update({("rnd", t, 0): [0.0, 0.0, 0.0, 0.0] for t in TASKS})
    section = _aggregates_section(_report(tmp_path_factory, "measured", runs, "quick")["report"])
    assert "No best method: CIs not available for `rnd` (one seed per task)" in section
    assert (
        "Among the methods with CIs, `viper_std` is above every other (IQM 95% CIs disjoint and permutation p < 0.05)."
    ) in section
    assert (
        "IQM of `diffusion_reward` relative to `viper_std` (the other method with the highest point "
        "estimate): -100.0%, a measured difference (`viper_std` above `diffusion_reward`"
    ) in section
    assert "not a measured difference" not in section
    close = {k: v for k, v in runs.items() if k[0] != "viper_std"}
    close.update({("viper_std", t, s): [0.0, 0.0, 0.0, 1.0 if s == 0 else 0.0] for t in TASKS for s in (0, 1, 2)})
    section = _aggregates_section(_report(tmp_path_factory, "overlap", close, "quick")["report"])
    assert "Among the methods with CIs" not in section
    assert "not a measured difference (not told apart" in section


def test_disjoint_cis_on_one_task_of_three_seeds_are_not_a_separation(tmp_path_factory):
    """The shipped metaworld7 case: on one task a method succeeds in all three seeds and the baseline in none,
    on the other both score 0. The bootstrap CIs are disjoint, but the exact two-sided permutation p is
    2/20 = 0.1 (the smallest 3 vs 3 runs on one task allow), so the pair is not called separated, and the
    report says why the bootstrap is too confident."""
    first, other = TASKS[0], TASKS[1:]
    runs = {("sparse", t, s): [0.0, 0.0, 0.0, 0.0] for t in TASKS for s in (0, 1, 2)}
    runs.update({("viper_std", first, s): [0.0, 1.0, 1.0, 1.0] for s in (0, 1, 2)})
    runs.update({("viper_std", t, s): [0.0, 0.0, 0.0, 0.0] for t in other for s in (0, 1, 2)})
    section = _aggregates_section(_report(tmp_path_factory, "thin", runs, "quick")["report"])
    assert "| `sparse` vs `viper_std` | -0.500 | disjoint | 0.100 | 3 vs 3 | 6 | no |" in section
    assert "Separated pairs (IQM 95% CIs disjoint and permutation p < 0.05): none" in section
    assert "its CIs understate the uncertainty" in section


def test_runs_table_counts_training_episodes_with_a_success(tmp_path_factory):
    runs = {("sparse", t, 0): [0.0, 0.0, 0.0, 0.0] for t in TASKS}
    results = tmp_path_factory.mktemp("trained")
    for (method, task, seed), success in runs.items():
        _write(results / "trained", method, task, seed, success, "quick")
    flags = {"door-close": [0, 0, 0], "reach": [1, 0, 1]}
    for task, succ in flags.items():
        rows = "".join(f"{200 * (i + 1)},{100 * (i + 1)},{i + 1},0,0,{s},90\n" for i, s in enumerate(succ))
        (results / "trained" / "sparse" / task / "seed_0" / "train.csv").write_text(
            "frame,step,episode,episode_return,learned_return,success,fps\n" + rows
        )
    for task, seconds in (("door-close", 5400), ("reach", 1800)):  # done.json as the runner writes it
        (results / "trained" / "sparse" / task / "seed_0" / "done.json").write_text(
            json.dumps({"frames": 1500, "seconds": seconds})
        )
    make_figures("trained", results, results / "figs", reps=REPS)
    runs_section = (results / "figs" / "report.md").read_text().split("## Runs")[1].split("\n## ")[0]
    assert "| sparse | 2 | 2 | 0 | 0 | 2 of 6 (door-close 0, reach 2) | 2.0 |" in runs_section
    assert "Training time of the finished runs: 2.0 hours in all" in runs_section


def test_one_seed_says_cis_are_not_available(one_seed):
    section = _aggregates_section(one_seed["report"])
    assert "CIs not available" in section and "[0.000, 0.000]" not in one_seed["report"]
    assert "[" not in section.split("runs per task |")[1].split("CIs not available")[0]  # no interval cells
    assert "No best method: CIs not available (one seed per task)" in section
    assert all(
        line.startswith("| - |")
        for line in section.splitlines()
        if line.startswith("| ") and "rank" not in line and "---" not in line
    )
    assert "CI not available: one seed per task" in one_seed["report"].split("## Probability of improvement")[1]


def test_smoke_report_opens_with_the_pipeline_check_line(tie, one_seed):
    first = tie["report"].splitlines()[0]
    assert first.startswith("**Smoke profile: this report checks the pipeline and measures nothing**")
    assert "results/reference/" in first
    assert not one_seed["report"].startswith("**Smoke")
    assert "**suite tie, profile smoke, 1,500 frames per run, 2 seeds per task.**" in tie["report"]
    assert "**suite single, profile quick, 1,500 frames per run, 1 seed per task.**" in one_seed["report"]


def test_figure_titles_state_suite_profile_frames_and_seeds(tie):
    pngs = [p for p in tie["written"] if p.suffix == ".png"]
    assert len(pngs) >= 5
    for png in pngs:
        title = Image.open(png).text["Title"]
        for part in ("tie:", "smoke profile", "1,500 frames per run", "2 seeds per task"):
            assert part in title, (png.name, title)


def test_regenerated_figures_are_byte_identical(tie):
    """Same results, same figures: a shipped PDF changes in git only when its numbers do."""
    before = {p.name: p.read_bytes() for p in tie["written"] if p.suffix in (".pdf", ".png")}
    make_figures("tie", tie["results"], tie["out"], reps=REPS)
    after = {name: (tie["out"] / name).read_bytes() for name in before}
    assert [n for n in before if before[n] != after[n]] == []


def test_dense_never_enters_aggregates_or_rankings(tie):
    data, report = tie["data"], tie["report"]
    ranked = data[
        data["figure"].isin(
            [
                "aggregates_final",
                "probability_of_improvement",
                "improvement_matrix",
                "performance_profile",
                "sample_efficiency_iqm",
            ]
        )
    ]
    assert set(ranked["method"]) == {"sparse", "rnd"} and "dense" not in set(ranked["other"].dropna())
    assert "dense" not in _aggregates_section(report)
    assert "dense" not in report.split("## Probability")[1].split("##")[0]
    assert "dense (oracle): a reference, not a method" in report
    lc = data[data["figure"] == "learning_curves"]
    assert lc[lc["method"] == "dense"]["value"].max() == 1.0  # still drawn, apart
    with pytest.raises(ValueError, match="reference method 'dense' is left out of the aggregates"):
        make_figures("tie", tie["results"], tie["out"], reference="dense", reps=REPS)


def test_learning_curves_draw_the_oracle_dashed_and_keep_coinciding_lines_visible():
    rows = pd.DataFrame(
        [
            (m, "reach", s, f, 0.0 if m != "dense" else 1.0, "finished")
            for m in ("sparse", "rnd", "dense")
            for s in (0, 1)
            for f in (0, 500, 1000)
        ],
        columns=["method", "task", "seed", "frame", "value", "status"],
    )
    colors = {"sparse": (0, 0, 1), "rnd": (1, 0, 0), "dense": (0, 0, 0)}
    fig = plots.learning_curves(rows, ["reach"], ["sparse", "rnd", "dense"], colors, "t")
    try:
        assert [t.get_text() for t in fig.legends[0].get_texts()] == ["sparse", "rnd", "dense (oracle)"]
        lines = fig.axes[0].get_lines()
        assert [ln.get_linestyle() for ln in lines] == ["-", "-", "--"]
        sparse, rnd = lines[0], lines[1]  # both at 0 everywhere: distinct markers and sizes keep both visible
        assert list(sparse.get_ydata()) == list(rnd.get_ydata())
        assert sparse.get_marker() != rnd.get_marker() and sparse.get_markersize() > rnd.get_markersize()
    finally:
        plt.close(fig)


def test_optimality_gap_axis_is_labelled_as_such():
    est = pd.DataFrame(
        [(m, n, 0.5, 0.4, 0.6) for m in ("sparse", "rnd") for n in ("IQM", "Mean", "Median", "Optimality Gap")],
        columns=["method", "metric", "value", "lower", "upper"],
    )
    fig = plots.aggregates(est, ["sparse", "rnd"], {"sparse": (0, 0, 1), "rnd": (1, 0, 0)}, "t")
    try:
        labels = [ax.get_xlabel() for ax in fig.axes]
        assert labels == ["Success rate"] * 3 + ["Optimality gap (1 - success rate)"]
    finally:
        plt.close(fig)


def test_improvement_plot_without_a_ci_keeps_both_label_columns_on_the_rows():
    """A pair without a CI (NaN bounds) draws its point only; the right-hand labels stay on their rows."""
    poi = pd.DataFrame(
        {
            "x": ["rnd", "amp", "viper_std"],
            "y": "sparse",
            "value": [0.375, 0.9, 0.75],
            "lower": [float("nan"), 0.8, 0.7],
            "upper": [float("nan"), 1.0, 0.8],
        }
    )
    colors = {m: (0.1 * i, 0, 0) for i, m in enumerate(["rnd", "amp", "viper_std", "sparse"])}
    fig = plots.improvement(poi, colors, "t", color_by="x")
    try:
        left, right = fig.axes[0], fig.axes[1]
        assert right.get_ylim() == pytest.approx(left.get_ylim())
        widths = sorted(round(p.get_width(), 6) for p in left.patches)
        assert widths == [0.0, 0.1, 0.2]  # rnd: no bar; amp and viper_std: their CIs
    finally:
        plt.close(fig)
