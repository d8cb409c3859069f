"""The suite's short markdown report: what was measured, on what evidence, and what is missing.

Written next to the figures it links (relative links, so the folder can be moved or published as is).

It claims no more than the numbers carry, so that a reader cannot take a figure for more than it is:

- the header, like every figure title (:meth:`Context.title`), states suite, profile, frames per run
  and seeds per task;
- a smoke-profile report opens by saying it checks the pipeline and measures nothing, and points to
  the shipped reference results;
- ranks are tie-aware: a method's rank is 1 + the number of methods whose IQM 95% CI lies wholly
  above its own, so methods with overlapping CIs (or equal scores) share a rank ("1="), and a "best
  method" is named only when its CI clears every other one;
- with one seed per task a stratified bootstrap has nothing to resample: the report says CIs are not
  available (instead of printing a zero-width interval) and ranks nothing; when only some methods have
  one seed (an experiment under way), those get no interval and no rank, and the others are ranked and
  paired among themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.aggregate import AGGREGATE_METRICS, LAST_N_EVALS, MIN_RUNS_FOR_CI, Selection
from analysis.oracles import display_name
from analysis.permutation import ALPHA, FEW_RUNS, separated
from common.runs import CONFIG_FILE, DONE_FILE, read_config_json, readable_runs

#: where the suite ships what it measured (docs/results.md)
REFERENCE_RESULTS = Path(__file__).resolve().parents[1] / "results" / "reference"
SMOKE_PROFILE = "smoke"
NO_CI = "CI not available"
SEPARATION_RULE = f"IQM 95% CIs disjoint and permutation p < {ALPHA}"


def _span(values, unit: str, fmt=lambda v: f"{int(v):,}") -> str:
    """``"3 seeds"`` or ``"2-3 seeds"`` (several values) or ``"unknown seeds"`` (none)."""
    vals = sorted({float(v) for v in values if pd.notna(v)})
    if not vals:
        return f"unknown {unit}"
    text = fmt(vals[0]) if len(vals) == 1 else f"{fmt(vals[0])}-{fmt(vals[-1])}"
    return f"{text} {unit}"


@dataclass(frozen=True)
class Context:
    """What a reader needs to weigh a figure: suite, profile, frames per run, seeds per task."""

    suite: str
    profile: str
    frames: str  # "100,000 frames per run"
    seeds: str  # "3 seeds per task"

    @property
    def caption(self) -> str:
        return f"suite {self.suite}, profile {self.profile}, {self.frames}, {self.seeds}"

    def title(self, what: str) -> str:
        """A figure title: what it shows, then the budget line on its own line."""
        return f"{self.suite}: {what}\n{self.profile} profile, {self.frames}, {self.seeds}"


def suite_context(suite: str, suite_dir: str | Path, status: pd.DataFrame) -> Context:
    """The context of a suite's results, read from its runs' ``config.json`` and run status.

    ``profile`` is the runs' ``config.json["profile"]`` (several are listed, a missing one reads
    "unknown"); frames per run are the runs' budgets; seeds per task count the runs of each
    (method, task).
    """
    profiles = set()
    for run in readable_runs(suite_dir):  # a run with a damaged file is named elsewhere, not guessed at here
        if (run.path / CONFIG_FILE).is_file():
            profiles.add(str(read_config_json(run.path).get("profile") or "unknown"))
    profile = "/".join(sorted(profiles)) or "unknown"
    return Context(suite, profile, _span(status["budget"], "frames per run"), _seeds_per_task(status))


def _seeds_per_task(status: pd.DataFrame) -> str:
    text = _span(status.groupby(["method", "task"]).size() if len(status) else [], "seeds per task")
    return "1 seed per task" if text == "1 seeds per task" else text


@dataclass
class AggregateTable:
    """Interval estimates of one budget (final, or at a frame count) for the report."""

    label: str  # "final budget", "500,000 frames"
    estimates: pd.DataFrame  # method, metric, value, lower, upper
    runs_per_task: dict[str, int]
    tests: pd.DataFrame | None = None  # analysis.permutation.pairwise_tests (None: the CIs alone decide)


@dataclass
class ReportInputs:
    suite: str
    status: pd.DataFrame
    selection: Selection
    reference: str | None
    reps: int
    tables: list[AggregateTable] = field(default_factory=list)
    poi: pd.DataFrame | None = None  # P(reference > Y)
    poi_over: pd.DataFrame | None = None  # P(X > baseline)
    figures: list[Path] = field(default_factory=list)
    context: Context | None = None  # None: built from ``status`` with an unknown profile
    reference_results: Path = REFERENCE_RESULTS


def ranking(estimates: pd.DataFrame) -> pd.DataFrame:
    """Methods by IQM, best first (ties keep the display order): ``method, value, lower, upper``."""
    iqm = estimates[estimates["metric"] == "IQM"].reset_index(drop=True)
    return iqm.sort_values("value", ascending=False, kind="stable").reset_index(drop=True)


def methods_with_cis(table: AggregateTable) -> list[str]:
    """The methods whose bootstrap CI means something: at least 2 runs per task (with one, the stratified
    bootstrap has nothing to resample and the interval is a point). While an experiment is under way,
    methods with their seeds can be compared among themselves before the others have theirs."""
    return [m for m, n in table.runs_per_task.items() if n >= MIN_RUNS_FOR_CI]


def cis_available(table: AggregateTable) -> bool:
    """Whether every aggregated method has a CI (at least 2 runs per task)."""
    return bool(table.runs_per_task) and len(methods_with_cis(table)) == len(table.runs_per_task)


def p_value(tests: pd.DataFrame | None, a: str, b: str) -> float:
    """The permutation p-value of the pair (either order); NaN without tests or without that pair."""
    if tests is None or tests.empty:
        return float("nan")
    row = tests[((tests["a"] == a) & (tests["b"] == b)) | ((tests["a"] == b) & (tests["b"] == a))]
    return float(row["p_value"].iloc[0]) if len(row) else float("nan")


def _above(x, y, tests: pd.DataFrame | None) -> bool:
    """``x`` is told apart above ``y``: IQM CIs disjoint (x's lower end over y's upper end) and, where the
    permutation tests are given, the exact test agrees (p < ALPHA)."""
    if not x.lower > y.upper:
        return False
    return tests is None or p_value(tests, x.method, y.method) < ALPHA


def tie_aware_ranks(estimates: pd.DataFrame, tests: pd.DataFrame | None = None) -> pd.DataFrame:
    """``method, value, lower, upper, rank, tied`` in rank order, within a rank by IQM (best first), then
    display order.

    rank = 1 + the number of methods told apart above this one (``_above``: IQM CIs disjoint and, with
    ``tests``, the permutation test agreeing); ``tied`` marks ranks shared with another method. The point
    estimate alone decides no rank, but it orders the methods within one: a table that listed a tied method
    with IQM 0.07 above one with 0.48 (their display order) would read as a ranking the numbers do not make.
    """
    iqm = estimates[estimates["metric"] == "IQM"].reset_index(drop=True)
    rows = list(iqm.itertuples(index=False))
    rank = [1 + sum(_above(o, r, tests) for o in rows) for r in rows]
    out = iqm.assign(rank=rank)
    out["tied"] = out["rank"].map(out["rank"].value_counts()) > 1
    return out.sort_values(["rank", "value"], ascending=[True, False], kind="stable").reset_index(drop=True)


def separated_pairs(estimates: pd.DataFrame, tests: pd.DataFrame | None = None) -> list[tuple[str, str]]:
    """``(above, below)`` for every pair of methods whose IQM 95% CIs are disjoint (``above``'s lower end
    over ``below``'s upper end) and, with ``tests``, whose permutation p-value is below ALPHA; best-ranked
    first. This is the claim a reader may make from the aggregate: "``above`` beats ``below`` at this
    budget"; any pair not listed is not told apart."""
    ranks = tie_aware_ranks(estimates, tests)
    return [
        (a.method, b.method)
        for a in ranks.itertuples(index=False)
        for b in ranks.itertuples(index=False)
        if _above(a, b, tests)
    ]


def best_method(table: AggregateTable) -> tuple[str | None, str]:
    """``(method, "")`` when one method's IQM CI clears every other one's, else ``(None, why not)``."""
    ranks = tie_aware_ranks(table.estimates, table.tests)
    if len(ranks) < 2:
        return None, "only one method is aggregated"
    if not cis_available(table):
        lacking = [m for m in table.runs_per_task if m not in methods_with_cis(table)]
        whose = "" if len(lacking) == len(table.runs_per_task) else " for " + ", ".join(f"`{m}`" for m in lacking)
        return None, f"CIs not available{whose} (one seed per task), so no method is called best"
    if ranks["value"].nunique() == 1:
        return None, f"a tie: every method has IQM {ranks['value'].iloc[0]:.3f}"
    top = ranks[ranks["rank"] == 1]
    if len(top) > 1:
        return None, (
            f"a tie: {', '.join(f'`{m}`' for m in top['method'])} are not told apart "
            f"({SEPARATION_RULE}), so none of them is ahead on this evidence"
        )
    return str(top["method"].iloc[0]), ""


def relative_improvement(estimates: pd.DataFrame, reference: str) -> tuple[str, str, float]:
    """(best method, best baseline, relative IQM improvement of the reference over that baseline).

    Baselines are every aggregated method other than the reference (the method under study), so a
    negative value means a baseline beats the reference. NaN when the baseline's IQM is 0 or there
    is no baseline.
    """
    ranked = ranking(estimates)
    best = ranked.loc[0, "method"]
    baselines = ranked[ranked["method"] != reference]
    if baselines.empty:
        return best, "", np.nan
    base = baselines.iloc[0]
    ref = float(ranked.loc[ranked["method"] == reference, "value"].iloc[0])
    rel = (ref - base["value"]) / base["value"] if base["value"] > 0 else np.nan
    return best, base["method"], float(rel)


def _table(table: AggregateTable) -> list[str]:
    """Aggregates with CIs, ranked only as far as the CIs separate the methods; a method with one seed per
    task gets neither an interval nor a rank, and the others are ranked among themselves."""
    names = list(AGGREGATE_METRICS)
    with_ci = methods_with_cis(table)
    lines = [
        "| rank | method | " + " | ".join(f"{n} [95% CI]" for n in names) + " | runs per task |",
        "|---:|---|" + "---|" * len(names) + "---:|",
    ]
    est = table.estimates.set_index(["method", "metric"])
    ranked = tie_aware_ranks(table.estimates[table.estimates["method"].isin(with_ci)], table.tests)
    unranked = [m for m in ranking(table.estimates)["method"] if m not in with_ci]
    rows = [(r.method, f"{r.rank}{'=' if r.tied else ''}") for r in ranked.itertuples(index=False)]
    for method, rank in rows + [(m, "-") for m in unranked]:
        cells = []
        for n in names:
            e = est.loc[(method, n)]
            ci = f"[{e['lower']:.3f}, {e['upper']:.3f}]" if method in with_ci else f"({NO_CI})"
            cells.append(f"{e['value']:.3f} {ci}")
        lines.append(f"| {rank} | {method} | " + " | ".join(cells) + f" | {table.runs_per_task[method]} |")
    if not with_ci:
        lines += [
            "",
            "CIs not available: one seed per task leaves the stratified bootstrap nothing to "
            "resample, so no interval and no rank is given.",
        ]
        return lines
    if unranked:
        lines += [
            "",
            f"CIs not available for {', '.join(f'`{m}`' for m in unranked)} (one seed per task): "
            "no interval and no rank; the ranks and separated pairs compare the other methods only.",
        ]
    rule = SEPARATION_RULE if table.tests is not None else "IQM 95% CIs disjoint"
    if ranked["tied"].any():
        lines += ["", f"Ranks with `=` are ties: those methods are not told apart ({rule})."]
    pairs = separated_pairs(table.estimates[table.estimates["method"].isin(with_ci)], table.tests)
    if pairs:
        told_apart = "; ".join(f"`{a}` above `{b}`" for a, b in pairs) + "."
    elif len(with_ci) < 2:
        told_apart = f"none yet: only `{with_ci[0]}` has CIs, so there is no pair to compare."
    else:
        told_apart = "none: no two methods are told apart at this budget."
    lines += ["", f"Separated pairs ({rule}): {told_apart}"]
    if table.tests is not None:
        lines += [""] + _tests_table(table, with_ci)
    return lines


def _tests_table(table: AggregateTable, with_ci: list[str]) -> list[str]:
    """Every pair with its CIs' overlap, its exact permutation p-value and the runs behind it, and the
    warning that few runs per task make the bootstrap CI too narrow."""
    est = table.estimates[table.estimates["metric"] == "IQM"].set_index("method")
    stat = str(table.tests["statistic"].iloc[0]).replace("iqm", "IQM") if len(table.tests) else "mean"
    lines = [
        f"Pairwise tests (two-sided stratified permutation test of the {stat} score difference: method "
        "labels exchanged within each task; exact where every relabelling can be counted):",
        "",
        f"| pair | {stat} difference | IQM 95% CIs | permutation p | runs per task | runs that can move it | "
        "separated |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for r in table.tests.itertuples(index=False):
        if r.a not in with_ci or r.b not in with_ci:
            continue
        a, b = est.loc[r.a], est.loc[r.b]
        disjoint = a["lower"] > b["upper"] or b["lower"] > a["upper"]
        both = separated((a["lower"], a["upper"]), (b["lower"], b["upper"]), r.p_value)
        kind = "" if r.exact else f" (est., {r.permutations:,} relabellings)"
        lines.append(
            f"| `{r.a}` vs `{r.b}` | {r.difference:+.3f} | {'disjoint' if disjoint else 'overlap'} | "
            f"{r.p_value:.3f}{kind} | {r.runs_per_task_a} vs {r.runs_per_task_b} | {r.driving_runs} | "
            f"{'yes' if both else 'no'} |"
        )
    fewest = min(table.runs_per_task[m] for m in with_ci) if with_ci else 0
    if fewest < FEW_RUNS:
        lines += [
            "",
            f"With {fewest} run{'s' if fewest != 1 else ''} per task (fewer than {FEW_RUNS}) the "
            "stratified bootstrap has few distinct resamples per task (3 runs: 10), so its CIs understate "
            "the uncertainty: a CI cannot include a seed that was never observed to fail. A pair is "
            "called separated only where the permutation test agrees.",
        ]
    return lines


def _difference(table: AggregateTable, a: str, b: str) -> str:
    """Whether the IQM difference of ``a`` and ``b`` is measured: only when both have CIs and the CIs are
    disjoint. The reason travels with the number, so a reader never takes a point estimate for a finding."""
    with_ci = methods_with_cis(table)
    lacking = [m for m in (a, b) if m not in with_ci]
    if lacking:
        return f"not a measured difference ({' and '.join(f'`{m}`' for m in lacking)} without a CI)"
    pairs = separated_pairs(table.estimates[table.estimates["method"].isin([a, b])], table.tests)
    rule = SEPARATION_RULE if table.tests is not None else "IQM 95% CIs disjoint"
    if pairs:
        return f"a measured difference (`{pairs[0][0]}` above `{pairs[0][1]}`: {rule})"
    return f"not a measured difference (not told apart: {rule} does not hold)"


def _verdict(table: AggregateTable, reference: str) -> str:
    """Best method (or why there is none), the best among the methods with CIs while others lack them,
    and the reference's relative IQM over the best baseline, said to be measured only when it is."""
    best, why = best_method(table)
    _, baseline, rel = relative_improvement(table.estimates, reference)
    rel_text = "undefined (baseline IQM is 0)" if np.isnan(rel) else f"{100 * rel:+.1f}%"
    if best is not None:
        return (
            f"Best method by IQM: **{best}**. Relative IQM improvement of `{reference}` "
            f"over the best baseline `{baseline}`: **{rel_text}**."
        )
    text = f"No best method: {why}."
    with_ci = methods_with_cis(table)
    if 2 <= len(with_ci) < len(table.runs_per_task):
        ranks = tie_aware_ranks(table.estimates[table.estimates["method"].isin(with_ci)], table.tests)
        top = ranks[ranks["rank"] == 1]
        if len(top) == 1:
            rule = SEPARATION_RULE if table.tests is not None else "IQM 95% CIs disjoint"
            text += f" Among the methods with CIs, `{top['method'].iloc[0]}` is above every other ({rule})."
    return (
        text + f" IQM of `{reference}` relative to `{baseline}` (the other method with the highest point "
        f"estimate): {rel_text}, {_difference(table, reference, baseline)}."
    )


def _training_successes(grp: pd.DataFrame) -> str:
    """``"17 of 600 (door-close 1, reach 16)"``: training episodes that reached the goal, all runs."""
    per_task = grp.groupby("task")["train_successes"].sum()
    text = f"{int(grp['train_successes'].sum()):,} of {int(grp['train_episodes'].sum()):,}"
    return text + (f" ({', '.join(f'{t} {int(n):,}' for t, n in per_task.items())})" if len(per_task) > 1 else "")


def _hours(seconds: pd.Series) -> str:
    """Training hours of the finished runs that recorded them ("-" when none did)."""
    known = seconds.dropna()
    return f"{known.sum() / 3600:.1f}" if len(known) else "-"


def _counts(status: pd.DataFrame) -> list[str]:
    """Runs per method, with the training episodes that succeeded (a difference that shows before
    evaluation success does: at a small budget every learned reward may evaluate at 0) and the hours
    the finished runs took (done.json), so the cost of an experiment is read from its own files."""
    lines = [
        "| method | tasks | finished runs | unfinished runs | seeds | training episodes with a success "
        "| hours (finished runs) |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for method, grp in status.groupby("method", sort=False):
        seeds = sorted(set(grp["seed"]))
        lines.append(
            f"| {display_name(method)} | {grp['task'].nunique()} | {int(grp['done'].sum())} | "
            f"{int((~grp['done']).sum())} | {', '.join(map(str, seeds))} | "
            f"{_training_successes(grp)} | {_hours(grp['seconds'])} |"
        )
    return lines


def render(inp: ReportInputs, out_dir: Path) -> str:
    """The report as markdown text."""
    sel, status = inp.selection, inp.status
    ctx = inp.context or Context(
        inp.suite, "unknown", _span(status["budget"], "frames per run"), _seeds_per_task(status)
    )
    lines = []
    if ctx.profile == SMOKE_PROFILE:
        shipped = inp.reference_results.is_dir() and any(inp.reference_results.iterdir())
        where = (
            "see the shipped reference results in `results/reference/`"
            if shipped
            else "the reference results (`results/reference/`) are not shipped yet"
        )
        lines += [f"**Smoke profile: this report checks the pipeline and measures nothing**; {where}.", ""]
    lines += [f"# Suite `{inp.suite}`: results", "", f"**{ctx.caption}.**", ""]
    lines.append(
        f"{status['method'].nunique()} method(s), {status['task'].nunique()} task(s), "
        f"{len(status)} run(s): {int(status['done'].sum())} finished, "
        f"{int((~status['done']).sum())} unfinished. Score of a run = success rate, mean of "
        f"its last {LAST_N_EVALS} evaluations. Aggregates use finished runs only, on "
        f"{len(sel.tasks)} task(s) ({', '.join(sel.tasks) or 'none'}); 95% CIs from "
        f"{inp.reps} stratified-bootstrap repetitions (rliable)."
    )
    lines.append("")
    if sel.empty:
        lines += [
            "**No aggregates**: no method has a finished run on every task of the suite "
            "(see below). The learning curves still show every run.",
            "",
        ]
    for table in inp.tables:
        lines += [f"## Aggregates at {table.label}", ""] + _table(table) + [""]
        if inp.reference is not None and len(table.estimates["method"].unique()) > 1:
            lines += [_verdict(table, inp.reference), ""]
    for poi, over in ((inp.poi, False), (inp.poi_over, True)):
        if poi is None or poi.empty:
            continue
        what = f" over `{poi['y'].iloc[0]}`" if over else ""
        lines += [f"## Probability of improvement{what} (final budget)", ""]
        lines += [
            f"- P({r.x} > {r.y}) = {r.value:.3f} "
            + (f"[{r.lower:.3f}, {r.upper:.3f}]" if pd.notna(r.lower) else f"({NO_CI}: one seed per task)")
            for r in poi.itertuples(index=False)
        ]
        lines.append("")
    lines += ["## Runs", ""] + _counts(status) + [""]
    if status["seconds"].notna().any():
        lines += [
            f"Training time of the finished runs: {_hours(status['seconds'])} hours in all (each run's "
            f"{DONE_FILE}; runs side by side overlap in wall-clock time).",
            "",
        ]
    lines += ["## Left out or missing", ""]
    lines += [f"- {n}" for n in sel.notes] or ["- nothing: every run finished and entered the aggregates"]
    lines += ["", "## Figures", ""]
    pngs = [p for p in inp.figures if p.suffix == ".png"]
    for png in pngs:
        rel_png = png.relative_to(out_dir).as_posix()
        rel_pdf = png.with_suffix(".pdf").relative_to(out_dir).as_posix()
        lines.append(f"- [{png.stem}]({rel_png}) ([pdf]({rel_pdf}))")
    lines += ["- [every plotted number](figure_data.csv)", ""]
    return "\n".join(lines)
