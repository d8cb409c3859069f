"""From the long scores table to rliable's score matrices, and the rliable statistics on them.

Score of a run on its task (docs/protocol.md#evaluation-and-statistics): the success rate averaged over its last 3
evaluations; "at frame F" means the last 3 evaluations at or before F. rliable wants, per method, a
``[num_runs, num_tasks]`` matrix over one common task set, so this module also decides which runs can
enter the aggregates and records, in plain words, every run or method it leaves out and why:

- oracles (``analysis.oracles.ORACLES``, e.g. ``dense``, the env's shaped reward) are references,
  not methods: never aggregated, compared or ranked with the methods (the figures draw them apart);
- unfinished runs (no ``done.json``) and finished runs with no evaluation are left out;
- a method without a finished run on some task of the suite is left out of every aggregate (they
  all compare methods on the same task set);
- seeds: each task column keeps the lowest ``n`` finished seeds, ``n`` being the method's smallest
  count over tasks, so the matrix is rectangular. rliable's stratified bootstrap resamples runs
  within each task independently, so columns need not share seed ids. Seeds the suite has elsewhere
  but a (method, task) lacks are reported as missing.

Statistics are rliable's own (``rly.get_interval_estimates``, ``rly.create_performance_profile``,
``metrics.aggregate_*``). A method with one run per task has no interval: the stratified bootstrap has
nothing to resample, so rliable's interval is the point itself (or, for a pair, only the other
method's spread); every interval involving such a method is NaN (``MIN_RUNS_FOR_CI``), so the figures
draw no bar and ``figure_data.csv`` records none, as the report says "CI not available". numpy's
global RNG is seeded right before each call, since rliable draws from it, so CIs are reproducible.
Three estimators are evaluated thousands of times per bootstrap with scipy's per-call overhead (about
1 ms each), which made a paper-size suite take many minutes:
for those, rliable's bootstrap gets a vectorised function that returns exactly what rliable's own
estimator returns (``fast_probability_of_improvement``, ``fast_score_distribution``,
``fast_iqm_per_frame``; tests/test_figures.py checks the equality, ties included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics

from analysis.oracles import ORACLES, display_name
from analysis.palette import method_order
from common.runs import DONE_FILE, SUCCESS_RATE, run_key

SUCCESS_METRIC = SUCCESS_RATE  # the eval.csv column that the aggregates are of
LAST_N_EVALS = 3
BOOTSTRAP_SEED = 0
# Name shown in figures and tables -> rliable estimator on a [num_runs, num_tasks] matrix.
AGGREGATE_METRICS: dict[str, Callable[[np.ndarray], float]] = {
    "IQM": metrics.aggregate_iqm,
    "Mean": metrics.aggregate_mean,
    "Median": metrics.aggregate_median,
    "Optimality Gap": metrics.aggregate_optimality_gap,
}
PAIR_SEPARATOR = "|"  # joins (X, Y) in rliable's probability-of-improvement keys
MIN_RUNS_FOR_CI = 2  # runs per task below which a method's bootstrap interval is not reported


def has_ci(matrix: np.ndarray) -> bool:
    """Whether a ``[num_runs, num_tasks, ...]`` score array has enough runs per task for a CI."""
    return matrix.shape[0] >= MIN_RUNS_FOR_CI


def _without_ci(ci: np.ndarray) -> np.ndarray:
    return np.full_like(np.asarray(ci, dtype=float), np.nan)


def success_rates(scores: pd.DataFrame) -> pd.DataFrame:
    """``method, task, seed, frame, value`` rows of the success-rate metric, sorted by frame."""
    rows = scores[scores["metric"] == SUCCESS_METRIC]
    return (
        rows[["method", "task", "seed", "frame", "value"]]
        .sort_values(["method", "task", "seed", "frame"], kind="stable")
        .reset_index(drop=True)
    )


def run_scores(success: pd.DataFrame, frames: int | None = None, last_n: int = LAST_N_EVALS) -> pd.DataFrame:
    """Per run: ``method, task, seed, score, n_evals, frame`` (mean of the last ``last_n`` evals).

    With ``frames``, only evaluations at or before that frame count; runs with none are dropped.
    ``frame`` is the last evaluation used.
    """
    if frames is not None and frames < 0:
        raise ValueError(f"frames must be a non-negative frame count, got {frames}")
    if last_n < 1:
        raise ValueError(f"last_n must be >= 1, got {last_n}")
    rows = success if frames is None else success[success["frame"] <= frames]
    tail = rows.groupby(["method", "task", "seed"], sort=True).tail(last_n)
    out = tail.groupby(["method", "task", "seed"], sort=True).agg(
        score=("value", "mean"), n_evals=("value", "size"), frame=("frame", "max")
    )
    return out.reset_index()


@dataclass
class Selection:
    """Which runs enter the aggregates, and why the others do not."""

    methods: list[str]  # aggregated methods, display order
    tasks: list[str]  # the common task set (columns of every matrix)
    runs: pd.DataFrame  # method, task, seed of every run used
    notes: list[str] = field(default_factory=list)  # human-readable exclusions
    unfinished: pd.DataFrame = field(default_factory=pd.DataFrame)  # status rows left out as unfinished
    dropped_methods: dict[str, list[str]] = field(default_factory=dict)  # method -> tasks it lacks

    @property
    def empty(self) -> bool:
        return not self.methods


def select_runs(status: pd.DataFrame, success: pd.DataFrame) -> Selection:
    """Apply the partial-results rules (module docstring) to the suite's runs."""
    notes: list[str] = []
    evaluated = set(map(tuple, success[["method", "task", "seed"]].drop_duplicates().to_numpy()))
    has_evals = np.array(
        [(m, t, s) in evaluated for m, t, s in status[["method", "task", "seed"]].itertuples(index=False)], dtype=bool
    )
    unfinished = status[~status["done"].to_numpy(bool)]
    for r in unfinished.itertuples(index=False):
        notes.append(
            f"{run_key(r.method, r.task, r.seed)}: unfinished (last evaluated frame "
            f"{_fmt_frame(r.last_frame)} of {_fmt_frame(r.budget)}): left out of aggregates"
        )
    for r in status[status["done"].to_numpy(bool) & ~has_evals].itertuples(index=False):
        notes.append(f"{run_key(r.method, r.task, r.seed)}: {DONE_FILE} but no evaluation: left out")
    finished = status[status["done"].to_numpy(bool) & has_evals][["method", "task", "seed"]]
    for oracle in method_order(set(status["method"]) & set(ORACLES)):
        notes.append(
            f"{display_name(oracle)}: a reference, not a method: drawn apart in the learning curves, "
            "never aggregated, compared or ranked with the methods"
        )
    finished = finished[~finished["method"].isin(ORACLES)]

    all_seeds = sorted(set(status["seed"]))
    for (method, task), grp in status.groupby(["method", "task"], sort=True):
        missing = sorted(set(all_seeds) - set(grp["seed"]))
        if missing:
            notes.append(
                f"{method}/{task}: no run for seed(s) {missing} (the suite's runs so far have seeds {all_seeds})"
            )

    tasks = sorted(set(finished["task"]))
    methods, kept, dropped = [], [], {}
    for method in method_order(finished["method"]):
        runs = finished[finished["method"] == method]
        lacking = [t for t in tasks if t not in set(runs["task"])]
        if lacking:
            dropped[method] = lacking
            notes.append(
                f"{method}: no finished run on task(s) {lacking}: left out of aggregates "
                "(they need every method on the same task set)"
            )
            continue
        n = int(runs.groupby("task").size().min())
        for task, grp in runs.groupby("task", sort=True):
            seeds = sorted(grp["seed"])
            if len(seeds) > n:
                notes.append(
                    f"{method}/{task}: seed(s) {seeds[n:]} left out to keep {n} run(s) per task "
                    f"(the fewest finished on any task for {method})"
                )
            kept.append(pd.DataFrame({"method": method, "task": task, "seed": seeds[:n]}))
        methods.append(method)
    runs = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=["method", "task", "seed"])
    return Selection(methods, tasks if methods else [], runs, notes, unfinished.reset_index(drop=True), dropped)


def _fmt_frame(x: float) -> str:
    return "none" if pd.isna(x) else f"{int(x):,}"


def score_matrices(scores_per_run: pd.DataFrame, selection: Selection) -> dict[str, np.ndarray]:
    """``{method: [num_runs, num_tasks]}`` from :func:`run_scores` output, over the selected runs.

    Row ``i`` of column ``t`` is the ``i``-th lowest selected seed of task ``t``.
    """
    merged = selection.runs.merge(scores_per_run, on=["method", "task", "seed"], how="left")
    if merged["score"].isna().any():
        lost = merged[merged["score"].isna()][["method", "task", "seed"]].to_dict("records")
        raise ValueError(f"no score for selected run(s) {lost}: no evaluation at or before the frame asked")
    out = {}
    for method in selection.methods:
        cols = [
            merged[(merged["method"] == method) & (merged["task"] == t)].sort_values("seed")["score"].to_numpy(float)
            for t in selection.tasks
        ]
        out[method] = np.stack(cols, axis=1)
    return out


def fast_probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """``metrics.probability_of_improvement`` without a scipy call per task.

    Per task, the Mann-Whitney U statistic over ``n_x * n_y`` counts pairs with ``x > y`` as 1 and
    ties as 1/2; rliable's identical-columns shortcut (0.5) is the same number.
    """
    greater = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return float(np.mean(greater + 0.5 * ties))


def fast_score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """``rly.score_distributions(scores, taus)`` (fraction of runs above each tau), vectorised."""
    return (scores.reshape(-1, 1) > np.asarray(taus).reshape(1, -1)).mean(axis=0)


def fast_iqm_per_frame(x: np.ndarray) -> np.ndarray:
    """``metrics.aggregate_iqm(x[..., i])`` for every frame ``i`` of ``[runs, tasks, frames]``.

    The same 25% trimmed mean as ``scipy.stats.trim_mean`` (sort, drop ``int(0.25 n)`` values at
    each end, average the rest), computed for all frames at once without scipy's per-call overhead.
    """
    flat = np.sort(x.reshape(-1, x.shape[-1]), axis=0)
    cut = int(0.25 * flat.shape[0])
    return flat[cut : flat.shape[0] - cut].mean(axis=0)


def _seeded(call: Callable, *args, **kwargs):
    """Run a rliable call right after seeding numpy's global RNG (rliable samples from it)."""
    np.random.seed(BOOTSTRAP_SEED)
    return call(*args, **kwargs)


def interval_estimates(matrices: Mapping[str, np.ndarray], reps: int) -> pd.DataFrame:
    """IQM, mean, median, optimality gap with 95% stratified-bootstrap CIs (rliable).

    Returns ``method, metric, value, lower, upper`` in the order of ``matrices``.
    """
    names = list(AGGREGATE_METRICS)

    def aggregates(x: np.ndarray) -> np.ndarray:
        return np.array([AGGREGATE_METRICS[n](x) for n in names])

    point, ci = _seeded(rly.get_interval_estimates, dict(matrices), aggregates, reps=reps)
    ci = {m: c if has_ci(matrices[m]) else _without_ci(c) for m, c in ci.items()}
    rows = [(m, n, point[m][i], ci[m][0, i], ci[m][1, i]) for m in matrices for i, n in enumerate(names)]
    return pd.DataFrame(rows, columns=["method", "metric", "value", "lower", "upper"])


def _improvement(matrices: Mapping[str, np.ndarray], pairs: list[tuple[str, str]], reps: int) -> pd.DataFrame:
    """P(X > Y) for each ``(x, y)`` pair, with stratified-bootstrap CIs (rliable): ``x, y, value, lower, upper``."""
    if not pairs:
        return pd.DataFrame(columns=["x", "y", "value", "lower", "upper"])
    keyed = {f"{x}{PAIR_SEPARATOR}{y}": (matrices[x], matrices[y]) for x, y in pairs}
    point, ci = _seeded(
        rly.get_interval_estimates, keyed, lambda x, y: np.array([fast_probability_of_improvement(x, y)]), reps=reps
    )
    ci = {k: c if has_ci(a) and has_ci(b) else _without_ci(c) for (k, c), (a, b) in zip(ci.items(), keyed.values())}
    rows = [(x, y, float(point[k][0]), float(ci[k][0, 0]), float(ci[k][1, 0])) for (x, y), k in zip(pairs, keyed)]
    return pd.DataFrame(rows, columns=["x", "y", "value", "lower", "upper"])


def probability_of_improvement(matrices: Mapping[str, np.ndarray], reference: str, reps: int) -> pd.DataFrame:
    """P(reference > Y) for every other method Y, with stratified-bootstrap CIs (rliable).

    Returns ``x, y, value, lower, upper``.
    """
    return _improvement(matrices, [(reference, y) for y in matrices if y != reference], reps)


def improvement_over(matrices: Mapping[str, np.ndarray], baseline: str, reps: int) -> pd.DataFrame:
    """P(X > baseline) for every other method X, with CIs: how likely each method beats the baseline
    (sparse by default: the reward every learned one should improve on). Same columns."""
    return _improvement(matrices, [(x, baseline) for x in matrices if x != baseline], reps)


def improvement_matrix(matrices: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Point estimates of P(X > Y) for every ordered pair (rows X, columns Y; NaN on the diagonal)."""
    names = list(matrices)
    table = pd.DataFrame(np.nan, index=names, columns=names)
    for x in names:
        for y in names:
            if x != y:
                table.loc[x, y] = metrics.probability_of_improvement(matrices[x], matrices[y])
    return table


def performance_profiles(
    matrices: Mapping[str, np.ndarray], taus: np.ndarray, reps: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score distributions (fraction of runs with score > tau) with CIs (rliable)."""
    profile, cis = _seeded(
        rly.create_performance_profile, dict(matrices), taus, reps=reps, custom_profile_func=fast_score_distribution
    )
    return profile, {m: c if has_ci(matrices[m]) else _without_ci(c) for m, c in cis.items()}


def scores_over_frames(
    success: pd.DataFrame, selection: Selection, grid: np.ndarray, last_n: int = LAST_N_EVALS
) -> dict[str, np.ndarray]:
    """``{method: [num_runs, num_tasks, len(grid)]}``: each run's score at each frame of ``grid``.

    The same numbers as ``score_matrices(run_scores(success, f), selection)`` for each ``f``, from
    one running mean per run instead of one groupby per frame.
    """
    keys = ["method", "task", "seed"]
    used = success.merge(selection.runs, on=keys).sort_values(keys + ["frame"], kind="stable")
    used["score"] = used.groupby(keys)["value"].transform(lambda v: v.rolling(last_n, min_periods=1).mean())
    per_run = {k: (g["frame"].to_numpy(), g["score"].to_numpy()) for k, g in used.groupby(keys)}
    grid = np.asarray(grid)
    out = {}
    for method in selection.methods:
        runs = selection.runs[selection.runs["method"] == method]
        columns = []
        for task in selection.tasks:
            rows = []
            for seed in sorted(runs.loc[runs["task"] == task, "seed"]):
                frames, score = per_run[(method, task, seed)]
                idx = np.searchsorted(frames, grid, side="right") - 1
                if (idx < 0).any():
                    raise ValueError(
                        f"{run_key(method, task, seed)} has no evaluation at or before frame {int(grid[idx < 0][0])}"
                    )
                rows.append(score[idx])
            columns.append(np.stack(rows))
        out[method] = np.stack(columns, axis=1)
    return out


def frame_grid(success: pd.DataFrame, selection: Selection, max_points: int = 30) -> np.ndarray:
    """Evaluation frames every selected run has reached, thinned to at most ``max_points``.

    The curve stops at the smallest final frame of the selected runs (tasks may differ in budget),
    so every point aggregates the same runs. Thinning keeps the bootstrap cost bounded on long runs
    and always keeps the first and last frame.
    """
    used = success.merge(selection.runs, on=["method", "task", "seed"])
    if used.empty:
        return np.array([], dtype=np.int64)
    horizon = used.groupby(["method", "task", "seed"])["frame"].max().min()
    frames = np.unique(used.loc[used["frame"] <= horizon, "frame"].to_numpy(np.int64))
    if len(frames) > max_points:
        frames = frames[np.unique(np.linspace(0, len(frames) - 1, max_points).round().astype(int))]
    return frames


def iqm_curves(curves: Mapping[str, np.ndarray], grid: np.ndarray, reps: int) -> pd.DataFrame:
    """IQM at each frame with 95% CIs (rliable on ``[runs, tasks, frames]`` arrays).

    Returns ``method, frame, value, lower, upper``.
    """
    point, ci = _seeded(rly.get_interval_estimates, dict(curves), fast_iqm_per_frame, reps=reps)
    ci = {m: c if has_ci(curves[m]) else _without_ci(c) for m, c in ci.items()}
    rows = [(m, int(f), point[m][i], ci[m][0, i], ci[m][1, i]) for m in curves for i, f in enumerate(grid)]
    return pd.DataFrame(rows, columns=["method", "frame", "value", "lower", "upper"])


def hours_over_frames(times: pd.DataFrame, selection: Selection, grid: np.ndarray) -> pd.DataFrame:
    """``method, frame, value, lower, upper``: training hours at each frame of ``grid``, over a method's
    selected runs: the median (``value``), the fastest (``lower``) and the slowest run (``upper``).

    The IQM curves of :func:`iqm_curves` are drawn against these hours, so the same numbers read as what a
    method costs in time; the median, not the mean, so one run slowed by a busy machine does not move the
    whole curve. A run's time at a frame it did not evaluate at is interpolated between its evaluations.
    A method with a run that recorded no time is left out (its hours would be a guess).
    """
    grid = np.asarray(grid, dtype=float)
    rows = []
    for method in selection.methods:
        runs = selection.runs[selection.runs["method"] == method]
        per_run = []
        for r in runs.itertuples(index=False):
            t = times[(times["method"] == r.method) & (times["task"] == r.task) & (times["seed"] == r.seed)]
            if t.empty:
                per_run = []
                break
            t = t.sort_values("frame")
            per_run.append(np.interp(grid, t["frame"].to_numpy(float), t["seconds"].to_numpy(float)) / 3600.0)
        if not per_run:
            continue
        hours = np.stack(per_run)
        rows += [
            (method, int(f), float(np.median(hours[:, i])), float(hours[:, i].min()), float(hours[:, i].max()))
            for i, f in enumerate(grid)
        ]
    return pd.DataFrame(rows, columns=["method", "frame", "value", "lower", "upper"])


def learning_curves(success: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """Per (method, task, status, frame): mean success rate and standard error over seeds.

    Every run appears, unfinished ones under ``status="unfinished"``, so the plots can mark them.
    The standard error is pandas' ``sem`` (ddof 1), the same as seaborn's ``errorbar="se"``.
    """
    data = learning_curve_rows(success, status)
    grouped = data.groupby(["method", "task", "status", "frame"], sort=True)["value"]
    out = grouped.agg(mean="mean", se="sem", n_seeds="size").reset_index()
    return out


def learning_curve_rows(success: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """The success-rate rows with a ``status`` column (``finished`` / ``unfinished``)."""
    done = status[["method", "task", "seed", "done"]]
    data = success.merge(done, on=["method", "task", "seed"], how="left")
    data["status"] = np.where(data["done"].fillna(False).astype(bool), "finished", "unfinished")
    return data.drop(columns="done")
