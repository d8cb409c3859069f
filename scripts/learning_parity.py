"""Learning parity between two variants of the same runs (fp32 vs bf16), from their CSVs alone.

The learning half of the gate for bf16 as the default (docs/precision.md#learning-parity-2026-11-22).

    python -m scripts.learning_parity results/reference/precision-parity/fp32 \
        results/reference/precision-parity/bf16

Each argument is a results folder (``<suite>/<method>/<task>/seed_<s>/eval.csv`` and ``train.csv`` below it,
as ``suites.run`` writes them). Runs are matched by (suite, method, task); for each, the table holds per
evaluation frame every seed's evaluation success and the mean training return of the episodes that ended in
the 5k... frames before it (the learned reward's return: for ``dense``, the env's shaped return, which moves
long before success does).

The check is the issue's: "the success curves agree within their seed spread": at every evaluation frame
the two variants' [min, max] ranges over seeds overlap. With two seeds per variant this is a weak test (it
says "no difference beyond what the seeds already show", not "equal"), so the table is printed in full.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from common.runs import EVAL_FILE, FRAME, LAYOUT, LEARNED_RETURN, SUCCESS_RATE, TRAIN_FILE, find_runs, read_run_csv


def load(root: str | Path) -> pd.DataFrame:
    """One row per (suite, method, task, seed, eval frame): ``success`` and ``train_return`` (see above)."""
    root = Path(root)
    rows = []
    suites = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for suite, r in ((s.name, r) for s in suites for r in find_runs(s) if (r.path / EVAL_FILE).is_file()):
        method, task, seed = r.method, r.task, r.seed
        ev, tr = read_run_csv(r.path / EVAL_FILE), read_run_csv(r.path / TRAIN_FILE)
        frames = list(ev[FRAME])
        for i, f in enumerate(frames):
            lo = frames[i - 1] if i else -1
            window = tr[(tr[FRAME] > lo) & (tr[FRAME] <= f)]
            rows.append(
                dict(
                    suite=suite,
                    method=method,
                    task=task,
                    seed=seed,
                    frame=int(f),
                    success=float(ev[SUCCESS_RATE].iloc[i]),
                    train_return=float(window[LEARNED_RETURN].mean()) if len(window) else float("nan"),
                )
            )
    if not rows:
        raise FileNotFoundError(f"no runs under {root} (expected {LAYOUT}/{EVAL_FILE})")
    return pd.DataFrame(rows)


def compare(a: pd.DataFrame, b: pd.DataFrame, names: Sequence[str] = ("a", "b")) -> pd.DataFrame:
    """Per (suite, method, task, frame): each variant's success range over seeds and whether they overlap."""
    keys = ["suite", "method", "task", "frame"]
    ra = a.groupby(keys)["success"].agg(["min", "max"]).add_prefix(f"{names[0]}_")
    rb = b.groupby(keys)["success"].agg(["min", "max"]).add_prefix(f"{names[1]}_")
    out = ra.join(rb, how="inner")
    if out.empty:
        raise ValueError("the two folders share no (suite, method, task, evaluation frame)")
    out["overlap"] = (out[f"{names[0]}_min"] <= out[f"{names[1]}_max"]) & (
        out[f"{names[1]}_min"] <= out[f"{names[0]}_max"]
    )
    return out.reset_index()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.learning_parity", description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="results folder of the first variant (e.g. fp32)")
    p.add_argument("b", help="results folder of the second variant (e.g. bf16)")
    args = p.parse_args(argv)
    names = (Path(args.a).name or "a", Path(args.b).name or "b")
    try:
        a, b = load(args.a), load(args.b)
        verdict = compare(a, b, names)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for label, col in (
        ("evaluation success", "success"),
        ("mean training return before each evaluation", "train_return"),
    ):
        both = pd.concat([a.assign(variant=names[0]), b.assign(variant=names[1])])
        table = both.pivot_table(index=["suite", "method", "task", "frame"], columns=["variant", "seed"], values=col)
        print(f"{label} per seed:\n{table.round(2).to_string()}\n")
    print(verdict.to_string(index=False))
    ok = bool(verdict["overlap"].all())
    print(f"\nsuccess ranges over seeds overlap at every evaluation: {'yes' if ok else 'no'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
