"""Every figure of a suite, its numbers and a short report, regenerated from results with one command.

    python -m analysis.figures --suite NAME [--results DIR] [--out DIR] [--frames F]
                               [--reference METHOD] [--baseline METHOD] [--reps N]

Reads ``results/<suite>/scores.csv`` (rebuilt from the runs when missing or stale) and writes, as PNG
and PDF under ``results/<suite>/figures/`` by default:

- ``aggregates_final``, ``aggregates_<F>_frames``: IQM, mean, median, optimality gap of the success
  rate with 95% stratified-bootstrap CIs (rliable), at the final budget and at ``--frames`` (no Median
  panel with 2 tasks or fewer, where it equals the Mean by construction: ``plots.median_repeats_mean``);
- ``probability_of_improvement``: P(reference > Y) with CIs; ``improvement_over_<baseline>``: P(X >
  baseline) with CIs (sparse by default); ``improvement_matrix``: P(X > Y) for every ordered pair
  (point estimates);
- ``performance_profile``: fraction of runs above each success-rate threshold, with CIs;
- ``sample_efficiency_iqm``: IQM over frames with CI bands;
- ``sample_efficiency_wall_clock``: the same IQM curves against frames and, beside them, against the
  training hours the runs took (``eval.csv`` time), on the machine the runs recorded: where a video
  reward's labelling costs its users time, not frames;
- ``learning_curves``: per task, mean success rate and standard error over seeds (unfinished runs
  dotted);
- ``figure_data.csv`` (every plotted number) and ``report.md``.

Every figure carries a caption line (``analysis.captions``): its interval, the definition of a run's
score, the budget and the runs; every success-rate and probability axis is 0-1. The runner calls
:func:`make_figures` at the end of a suite. Partial results follow the rules of
``analysis.aggregate``; every exclusion is listed in the report. A run with an unreadable file
(``common.runs.RunFileError``: an emptied config.json, a truncated done.json, an eval.csv row repeated
or not a number) is left out of everything and named in one line on stderr and in the report; the
others are drawn.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from analysis import aggregate as agg
from analysis import captions, permutation, plots
from analysis.consistency import check_one_setting
from analysis.palette import method_colors, method_order
from analysis.report import AggregateTable, ReportInputs, render, suite_context
from analysis.scores import load_scores, run_status, run_times
from common.io import atomic_write_text
from common.runs import EVAL_FILE, RunFileError, unreadable_runs

DEFAULT_REFERENCE = "diffusion_reward"
DEFAULT_BASELINE = "sparse"  # what every learned reward should improve on
DEFAULT_REPS = 2000
TAUS = np.linspace(0.0, 1.0, 101)


class NoResultsError(ValueError):
    """The suite has nothing to analyse yet (no directory, or no evaluation)."""


def _suite_dir(suite: str, results_dir: Path) -> Path:
    suite_dir = results_dir / suite
    if not suite or suite != Path(suite).name:
        raise ValueError(f"--suite must be a suite name (a folder of {results_dir}), got {suite!r}")
    if not suite_dir.is_dir():
        present = sorted(p.name for p in results_dir.iterdir() if p.is_dir()) if results_dir.is_dir() else []
        raise NoResultsError(
            f"no results for suite {suite!r}: {suite_dir} does not exist "
            f"(suites with results: {', '.join(present) or 'none'}); "
            f"run `python -m suites.run --suite {suite}` first"
        )
    return suite_dir


def _check_method(role: str, method: str, selection: agg.Selection, all_methods: list[str]) -> str:
    """A method named by a flag must be one of the suite's and must be in the aggregates."""
    if method not in all_methods:
        raise ValueError(f"unknown {role} method {method!r}; methods of this suite: {', '.join(all_methods)}")
    if method not in selection.methods:
        raise ValueError(
            f"{role} method {method!r} is left out of the aggregates (missing tasks or "
            f"unfinished runs); usable {role}s: {', '.join(selection.methods) or 'none'}"
        )
    return method


def _pick_reference(reference: str | None, selection: agg.Selection, all_methods: list[str]) -> str | None:
    """The method every other one is compared with: the flag, else diffusion_reward, else the first."""
    if reference is not None:
        return _check_method("reference", reference, selection, all_methods)
    if not selection.methods:
        return None
    return DEFAULT_REFERENCE if DEFAULT_REFERENCE in selection.methods else selection.methods[0]


def _pick_baseline(baseline: str | None, selection: agg.Selection, all_methods: list[str]) -> str | None:
    """The method every other one should beat: the flag, else sparse when it is aggregated, else none."""
    if baseline is not None:
        return _check_method("baseline", baseline, selection, all_methods)
    return DEFAULT_BASELINE if DEFAULT_BASELINE in selection.methods else None


def _warn(line: str) -> None:
    """Where ``make_figures`` says what it left out, by default: stderr, beside the command's own errors."""
    print(line, file=sys.stderr, flush=True)


def _unreadable_note(error: RunFileError, suite_dir: Path) -> str:
    """The report's line for a run left out for an unreadable file: the run, the file, what is wrong with
    it and what to do (the report outlives the terminal the warning went to)."""
    run = error.path.parent.relative_to(suite_dir).as_posix()
    return (
        f"{run}: {error.path.name}: {error.problem}: left out of everything (delete the run folder to "
        "re-run it, or restore the file)"
    )


def _rows(df: pd.DataFrame, figure: str, **const) -> pd.DataFrame:
    """Tag a table of plotted numbers with its figure for the shared figure CSV."""
    return df.assign(figure=figure, **const)


def make_figures(
    suite: str,
    results_dir: str | os.PathLike = "results",
    out_dir: str | os.PathLike | None = None,
    frames: int | None = None,
    reference: str | None = None,
    reps: int = DEFAULT_REPS,
    baseline: str | None = None,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write every figure (PNG and PDF), ``figure_data.csv`` and ``report.md``; return their paths.

    Each run left out for an unreadable file is one ``log`` line (default: stderr) and a note of the report.

    Raises :class:`NoResultsError` when the suite has no evaluations, :class:`MixedSettingsError` when its
    runs were made under different settings (e.g. bf16 and fp32), ``ValueError`` on bad arguments (unknown
    reference or baseline, negative frames, reps < 1); all three are ``ValueError``s.
    """
    if reps < 1:
        raise ValueError(f"reps (bootstrap repetitions) must be >= 1, got {reps}")
    if frames is not None and frames <= 0:
        raise ValueError(f"frames must be a positive frame count, got {frames}")
    results_dir = Path(results_dir)
    suite_dir = _suite_dir(suite, results_dir)
    out_dir = Path(out_dir) if out_dir is not None else suite_dir / "figures"
    unreadable = unreadable_runs(suite_dir)
    for error in unreadable:
        (log or _warn)(f"warning: a run is left out of the figures: {error}")

    check_one_setting(suite_dir)  # bf16 beside fp32 runs, or smoke beside quick: refused, runs named
    scores = load_scores(suite_dir)
    success = agg.success_rates(scores)
    if success.empty:
        raise NoResultsError(
            f"suite {suite!r} has no evaluations yet under {suite_dir} "
            f"(no readable {EVAL_FILE} with a {agg.SUCCESS_METRIC} row"
            + (f"; {len(unreadable)} run(s) with an unreadable file left out, named above" if unreadable else "")
            + ")"
        )
    status = run_status(suite_dir)
    all_methods = method_order(status["method"])
    status = (
        status.assign(_o=status["method"].map(all_methods.index))
        .sort_values(["_o", "task", "seed"])
        .drop(columns="_o")
        .reset_index(drop=True)
    )
    selection = agg.select_runs(status, success)
    selection.notes += [_unreadable_note(error, suite_dir) for error in unreadable]
    reference = _pick_reference(reference, selection, all_methods)
    baseline = _pick_baseline(baseline, selection, all_methods)
    colors = method_colors(all_methods)
    context = suite_context(suite, suite_dir, status)  # every title states suite, profile, frames, seeds
    methods = selection.methods
    facts = captions.suite_facts(suite_dir, context.frames, context.seeds, selection, reps)
    out_dir.mkdir(parents=True, exist_ok=True)

    written: list[Path] = []
    data: list[pd.DataFrame] = []
    report = ReportInputs(suite, status, selection, reference, reps, context=context)
    if methods:
        budgets = [("final budget", None, "aggregates_final")]
        if frames is not None:
            budgets.append((f"{frames:,} frames", frames, f"aggregates_{frames}_frames"))
        final = None
        for label, at, stem in budgets:
            matrices = agg.score_matrices(agg.run_scores(success, at), selection)
            final = matrices if at is None else final
            est = agg.interval_estimates(matrices, reps)
            data.append(_rows(est, stem, frame=at))
            written += plots.save(
                plots.aggregates(
                    est,
                    methods,
                    colors,
                    context.title(f"success rate at {label}"),
                    captions.aggregates(facts),
                    num_tasks=len(selection.tasks),
                ),
                out_dir,
                stem,
            )
            tests = permutation.pairwise_tests(matrices, permutation.TEST_STATISTIC)
            csv_name = "pairwise_tests.csv" if at is None else f"pairwise_tests_{at}_frames.csv"
            written.append(atomic_write_text(out_dir / csv_name, tests.to_csv(index=False, float_format="%.6g")))
            report.tables.append(AggregateTable(label, est, {m: x.shape[0] for m, x in matrices.items()}, tests))

        poi = agg.probability_of_improvement(final, reference, reps)
        report.poi = poi
        if not poi.empty:
            data.append(
                _rows(
                    poi.rename(columns={"x": "method", "y": "other"}), "probability_of_improvement", metric="P(X > Y)"
                )
            )
            written += plots.save(
                plots.improvement(
                    poi, colors, context.title("probability of improvement"), caption=captions.improvement(facts)
                ),
                out_dir,
                "probability_of_improvement",
            )
            table = agg.improvement_matrix(final)
            long = table.stack().rename_axis(["method", "other"]).reset_index(name="value")
            data.append(_rows(long, "improvement_matrix", metric="P(X > Y)"))
            written += plots.save(
                plots.improvement_heatmap(
                    table, context.title("P(X > Y), final budget"), captions.improvement_matrix(facts)
                ),
                out_dir,
                "improvement_matrix",
            )
        if baseline is not None:
            over = agg.improvement_over(final, baseline, reps)
            report.poi_over = over
            if not over.empty:
                stem = f"improvement_over_{baseline}"
                data.append(_rows(over.rename(columns={"x": "method", "y": "other"}), stem, metric="P(X > Y)"))
                written += plots.save(
                    plots.improvement(
                        over,
                        colors,
                        context.title(f"probability of improvement over {baseline}"),
                        color_by="x",
                        caption=captions.improvement(facts),
                    ),
                    out_dir,
                    stem,
                )

        profile, cis = agg.performance_profiles(final, TAUS, reps)
        for m in methods:
            data.append(
                _rows(
                    pd.DataFrame(
                        {"method": m, "tau": TAUS, "value": profile[m], "lower": cis[m][0], "upper": cis[m][1]}
                    ),
                    "performance_profile",
                    metric="fraction of runs > tau",
                )
            )
        written += plots.save(
            plots.profiles(
                profile,
                cis,
                TAUS,
                methods,
                colors,
                context.title("performance profile (final budget)"),
                captions.profile(facts),
            ),
            out_dir,
            "performance_profile",
        )

        grid = agg.frame_grid(success, selection)
        curves = agg.iqm_curves(agg.scores_over_frames(success, selection, grid), grid, reps)
        data.append(_rows(curves, "sample_efficiency_iqm", metric="IQM"))
        written += plots.save(
            plots.sample_efficiency(
                curves, methods, colors, context.title("IQM success rate"), captions.sample_efficiency(facts)
            ),
            out_dir,
            "sample_efficiency_iqm",
        )
        hours = agg.hours_over_frames(run_times(suite_dir), selection, grid)
        data.append(
            _rows(hours, "sample_efficiency_wall_clock", metric="training hours (median; fastest, slowest run)")
        )
        written += plots.save(
            plots.sample_efficiency_wall_clock(
                curves,
                hours,
                methods,
                colors,
                context.title("IQM success rate against frames and training hours"),
                captions.wall_clock(facts),
                facts.machine_short,
            ),
            out_dir,
            "sample_efficiency_wall_clock",
        )

    rows = agg.learning_curve_rows(success, status)
    tasks = sorted(rows["task"].unique())
    lc = agg.learning_curves(success, status).rename(columns={"mean": "value"})
    data.append(_rows(lc, "learning_curves", metric=agg.SUCCESS_METRIC))
    written += plots.save(
        plots.learning_curves(
            rows,
            tasks,
            method_order(rows["method"]),
            colors,
            context.title("success rate per task"),
            caption=captions.learning_curves(facts),
        ),
        out_dir,
        "learning_curves",
    )

    columns = [
        "figure",
        "metric",
        "method",
        "other",
        "task",
        "status",
        "frame",
        "tau",
        "value",
        "lower",
        "upper",
        "se",
        "n_seeds",
    ]
    # Records, not concat: the tables have different all-NA columns, which concat's dtype rules warn about.
    table = pd.DataFrame.from_records([r for d in data for r in d.to_dict("records")], columns=columns)
    written.append(atomic_write_text(out_dir / "figure_data.csv", table.to_csv(index=False)))
    report.figures = list(written)
    written.append(atomic_write_text(out_dir / "report.md", render(report, out_dir)))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.figures", description=__doc__.split("\n\n")[0].replace("``", "")
    )
    parser.add_argument("--suite", required=True, help="suite name (a folder of --results)")
    parser.add_argument("--results", default="results", help="results root (default: ./results)")
    parser.add_argument("--out", default=None, help="output folder (default: <results>/<suite>/figures)")
    parser.add_argument(
        "--frames",
        type=int,
        default=None,
        help="also aggregate at this frame count (last 3 evaluations at or before it)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        help=f"method compared with every other one (default: {DEFAULT_REFERENCE} if present, else the first method)",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help=f"method every other one is compared against, P(X > baseline) (default: "
        f"{DEFAULT_BASELINE} if aggregated, else no such figure)",
    )
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS, help="bootstrap repetitions (default 2000)")
    args = parser.parse_args(argv)
    try:
        written = make_figures(
            args.suite, args.results, args.out, args.frames, args.reference, args.reps, args.baseline
        )
    except (ValueError, FileNotFoundError) as exc:  # NoResultsError is a ValueError
        print(f"analysis.figures: {exc}", file=sys.stderr)
        return 1
    report = next(p for p in written if p.name == "report.md")
    print(f"wrote {len(written)} files under {report.parent}; report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
