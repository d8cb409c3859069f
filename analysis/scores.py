"""Consolidated scores of a suite: one long table from every run's ``eval.csv``.

Runs append to their own ``eval.csv`` while they train, so the suite-level table is a derived
artefact: ``build_scores`` rebuilds ``results/<suite>/scores.csv`` from the run directories at any
time (atomically, so a reader never sees half a file), and ``load_scores`` reuses it only while it is
newer than every ``eval.csv``. ``run_status`` says which runs have finished their frame budget, which
the analysis needs to keep unfinished runs out of aggregates. A run with an unreadable file
(``common.runs.run_problem``) is in none of these tables: its numbers cannot be trusted, and the readers
of a whole folder name it (``common.runs.unreadable_runs``) and go on with the others.

Layout (docs/interfaces.md; the run folders' names and columns are ``common.runs``)::

    <suite_dir>/<method>/<task>/seed_<k>/{config.json, eval.csv, done.json}
    <suite_dir>/scores.csv      long form: method, task, seed, frame, metric, value
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from common.io import atomic_write_text
from common.runs import (
    CONFIG_FILE,
    EVAL_FILE,
    EVAL_TIME,
    FRAME,
    NON_METRIC_COLUMNS,
    TRAIN_FILE,
    TRAIN_SUCCESS,
    RunDir,
    find_runs,
    read_config_json,
    read_done,
    read_run_csv,
    readable_runs,
)

SCORES_FILE = "scores.csv"
SCORE_COLUMNS = ["method", "task", "seed", "frame", "metric", "value"]
STATUS_COLUMNS = [
    "method",
    "task",
    "seed",
    "done",
    "last_frame",
    "budget",
    "train_episodes",
    "train_successes",
    "seconds",
]


def _eval_to_long(df: pd.DataFrame, run: RunDir) -> pd.DataFrame:
    """Every numeric column except frame/step/time becomes a metric row."""
    metrics = [c for c in df.columns if c not in NON_METRIC_COLUMNS and pd.api.types.is_numeric_dtype(df[c])]
    if df.empty or not metrics:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    long = df.melt(id_vars=[FRAME], value_vars=metrics, var_name="metric", value_name="value")
    long = long.dropna(subset=["value"])
    long.insert(0, "seed", run.seed)
    long.insert(0, "task", run.task)
    long.insert(0, "method", run.method)
    return long[SCORE_COLUMNS]


def build_scores(suite_dir: str | os.PathLike) -> pd.DataFrame:
    """Rebuild ``<suite_dir>/scores.csv`` from every run's ``eval.csv`` and return the table.

    Long form, one row per (method, task, seed, frame, metric). Written atomically with
    ``common.io.atomic_write_text``. A suite without runs gives an empty table (and file); runs with an
    unreadable file are left out (``common.runs.readable_runs``).
    """
    suite_dir = Path(suite_dir)
    if not suite_dir.is_dir():
        raise FileNotFoundError(f"suite directory {suite_dir} does not exist")
    parts = [_eval_to_long(read_run_csv(run.path / EVAL_FILE), run) for run in readable_runs(suite_dir)]
    parts = [p for p in parts if not p.empty]
    scores = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SCORE_COLUMNS)
    scores = _typed(scores.sort_values(["method", "task", "seed", "metric", "frame"], kind="stable"))
    atomic_write_text(suite_dir / SCORES_FILE, scores.to_csv(index=False))
    return scores.reset_index(drop=True)


def _typed(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.astype(
        {"method": str, "task": str, "seed": "int64", "frame": "int64", "metric": str, "value": "float64"}
    )


def _newest_eval_mtime(suite_dir: Path) -> int:
    mtimes = [
        (run.path / EVAL_FILE).stat().st_mtime_ns for run in find_runs(suite_dir) if (run.path / EVAL_FILE).is_file()
    ]
    return max(mtimes, default=0)


def load_scores(suite_dir: str | os.PathLike, rebuild: bool = False) -> pd.DataFrame:
    """Read ``<suite_dir>/scores.csv``, rebuilding it first when asked, missing, or stale.

    Stale means not strictly newer than the newest ``eval.csv`` (an equal timestamp may hide an
    append made in the same clock tick, and a rebuild is cheap). A fresh one keeps only the rows of runs
    that are there and readable now: a run whose ``config.json`` or ``done.json`` was damaged since leaves
    no ``eval.csv`` newer than the table, yet must drop out of it as it would from a rebuild.
    """
    suite_dir = Path(suite_dir)
    path = suite_dir / SCORES_FILE
    if rebuild or not path.is_file() or path.stat().st_mtime_ns <= _newest_eval_mtime(suite_dir):
        return build_scores(suite_dir)
    scores = pd.read_csv(path)
    missing = set(SCORE_COLUMNS) - set(scores.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}; expected {SCORE_COLUMNS}")
    scores = _typed(scores[SCORE_COLUMNS])
    readable = {(r.method, r.task, r.seed) for r in readable_runs(suite_dir)}
    keys = scores[["method", "task", "seed"]].itertuples(index=False, name=None)
    keep = np.fromiter((key in readable for key in keys), dtype=bool, count=len(scores))
    return scores[keep].reset_index(drop=True)


def run_times(suite_dir: str | os.PathLike) -> pd.DataFrame:
    """``method, task, seed, frame, seconds``: each run's training time at each of its evaluations.

    ``eval.csv``'s ``time`` column is the run's training seconds when it evaluated (summed over resumes by
    the runner), so a sample-efficiency curve can be drawn against what a method costs in hours, not only in
    frames. It is a coordinate, not a metric, so ``build_scores`` leaves it out.
    """
    parts = []
    for run in readable_runs(suite_dir):
        evals = read_run_csv(run.path / EVAL_FILE)
        if evals.empty:
            continue
        seconds = evals[EVAL_TIME]
        parts.append(
            pd.DataFrame(
                {
                    "method": run.method,
                    "task": run.task,
                    "seed": run.seed,
                    "frame": evals[FRAME].to_numpy(),
                    "seconds": seconds.to_numpy(),
                }
            )
        )
    columns = ["method", "task", "seed", "frame", "seconds"]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return (
        out.dropna(subset=["seconds"])
        .astype({"method": str, "task": str, "seed": "int64", "frame": "int64", "seconds": "float64"})
        .reset_index(drop=True)
    )


def _number(data: dict | None, key: str) -> float:
    """``data[key]`` as a float; NaN without the file (None) or a number there (a run still going has no
    done.json; an older runner's done.json has no ``seconds``)."""
    value = (data or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan


def _training_successes(run: RunDir) -> tuple[int, int]:
    """(training episodes, episodes with a success) from the run's ``train.csv`` ((0, 0) without one).

    At a small budget evaluation success is often 0 for every learned reward; whether the agent ever
    reached the goal while training is then the first sign of a difference, so the report counts it.
    """
    train = read_run_csv(run.path / TRAIN_FILE)
    if train.empty or TRAIN_SUCCESS not in train.columns:
        return len(train), 0
    return len(train), int((pd.to_numeric(train[TRAIN_SUCCESS], errors="coerce").fillna(0) > 0).sum())


def run_status(suite_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per run: ``method, task, seed, done, last_frame, budget, train_episodes, train_successes,
    seconds``.

    ``done`` is the presence of a readable ``done.json`` (written when the run has finished its frame
    budget; a run whose files are unreadable is not in the table, see ``common.runs.readable_runs``);
    ``last_frame`` is the newest evaluated frame (NaN before the first evaluation); ``budget`` is
    ``config.json["frames"]`` (NaN when the config is missing); the last two count the training
    episodes in ``train.csv`` and those with a success; ``seconds`` is a finished run's training time
    (``done.json["seconds"]``, summed over resumes by the runner): what an experiment cost, from its files.
    """
    rows = []
    for run in readable_runs(suite_dir):
        evals = read_run_csv(run.path / EVAL_FILE)
        last = float(evals[FRAME].max()) if not evals.empty else np.nan
        config = read_config_json(run.path) if (run.path / CONFIG_FILE).is_file() else None
        done = read_done(run.path)
        rows.append(
            (
                run.method,
                run.task,
                run.seed,
                done is not None,
                last,
                _number(config, "frames"),
                *_training_successes(run),
                _number(done, "seconds"),
            )
        )
    status = pd.DataFrame(rows, columns=STATUS_COLUMNS)
    return status.astype(
        {
            "method": str,
            "task": str,
            "seed": "int64",
            "done": bool,
            "last_frame": "float64",
            "budget": "float64",
            "train_episodes": "int64",
            "train_successes": "int64",
            "seconds": "float64",
        }
    )
