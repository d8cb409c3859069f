"""The suite's short markdown report: who wins, by how much, on what evidence, and what is missing.

Written next to the figures it links (relative links, so the folder can be moved or published as is).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.aggregate import AGGREGATE_METRICS, LAST_N_EVALS, Selection


@dataclass
class AggregateTable:
    """Interval estimates of one budget (final, or at a frame count) for the report."""

    label: str                  # "final budget", "500,000 frames"
    estimates: pd.DataFrame     # method, metric, value, lower, upper
    runs_per_task: dict[str, int]


@dataclass
class ReportInputs:
    suite: str
    status: pd.DataFrame
    selection: Selection
    reference: str | None
    reps: int
    tables: list[AggregateTable] = field(default_factory=list)
    poi: pd.DataFrame | None = None
    figures: list[Path] = field(default_factory=list)


def ranking(estimates: pd.DataFrame) -> pd.DataFrame:
    """Methods by IQM, best first (ties keep the display order): ``method, value, lower, upper``."""
    iqm = estimates[estimates["metric"] == "IQM"].reset_index(drop=True)
    return iqm.sort_values("value", ascending=False, kind="stable").reset_index(drop=True)


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
    names = list(AGGREGATE_METRICS)
    lines = ["| rank | method | " + " | ".join(f"{n} [95% CI]" for n in names) + " | runs per task |",
             "|---:|---|" + "---|" * len(names) + "---:|"]
    est = table.estimates.set_index(["method", "metric"])
    for i, method in enumerate(ranking(table.estimates)["method"], start=1):
        cells = []
        for n in names:
            r = est.loc[(method, n)]
            cells.append(f"{r['value']:.3f} [{r['lower']:.3f}, {r['upper']:.3f}]")
        lines.append(f"| {i} | {method} | " + " | ".join(cells) + f" | {table.runs_per_task[method]} |")
    return lines


def _counts(status: pd.DataFrame) -> list[str]:
    lines = ["| method | tasks | finished runs | unfinished runs | seeds |", "|---|---:|---:|---:|---|"]
    for method, grp in status.groupby("method", sort=False):
        seeds = sorted(set(grp["seed"]))
        lines.append(f"| {method} | {grp['task'].nunique()} | {int(grp['done'].sum())} | "
                     f"{int((~grp['done']).sum())} | {', '.join(map(str, seeds))} |")
    return lines


def render(inp: ReportInputs, out_dir: Path) -> str:
    """The report as markdown text."""
    sel, status = inp.selection, inp.status
    lines = [f"# Suite `{inp.suite}`: results", ""]
    lines.append(f"{status['method'].nunique()} method(s), {status['task'].nunique()} task(s), "
                 f"{len(status)} run(s): {int(status['done'].sum())} finished, "
                 f"{int((~status['done']).sum())} unfinished. Score of a run = success rate, mean of "
                 f"its last {LAST_N_EVALS} evaluations. Aggregates use finished runs only, on "
                 f"{len(sel.tasks)} task(s) ({', '.join(sel.tasks) or 'none'}); 95% CIs from "
                 f"{inp.reps} stratified-bootstrap repetitions (rliable).")
    lines.append("")
    if sel.empty:
        lines += ["**No aggregates**: no method has a finished run on every task of the suite "
                  "(see below). The learning curves still show every run.", ""]
    for table in inp.tables:
        lines += [f"## Aggregates at {table.label}", ""] + _table(table) + [""]
        if inp.reference is not None and len(table.estimates["method"].unique()) > 1:
            best, baseline, rel = relative_improvement(table.estimates, inp.reference)
            rel_text = "undefined (baseline IQM is 0)" if np.isnan(rel) else f"{100 * rel:+.1f}%"
            lines += [f"Best method by IQM: **{best}**. Relative IQM improvement of `{inp.reference}` "
                      f"over the best baseline `{baseline}`: **{rel_text}**.", ""]
    if inp.poi is not None and not inp.poi.empty:
        lines += ["## Probability of improvement (final budget)", ""]
        lines += [f"- P({r.x} > {r.y}) = {r.value:.3f} [{r.lower:.3f}, {r.upper:.3f}]"
                  for r in inp.poi.itertuples(index=False)]
        lines.append("")
    lines += ["## Runs", ""] + _counts(status) + [""]
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
