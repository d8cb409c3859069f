"""Whether two results folders hold the same runs, row for row (the reproduction check of docs/reference-experiment.md).

    python -m analysis.same_runs results/reference/metaworld7-quick results

The suite promises: same seed, same machine, same precision (and the default one torch thread per CPU run):
same results. This checks it from the files alone. Runs are matched by ``<suite>/<method>/<task>/seed_<s>``
below each folder; for every run found in both, it compares

- ``config.json``, key by key (versions, platform and CPU included: a different torch, MuJoCo or CPU is a
  different machine for this purpose; a ``versions`` entry that only one side recorded, such as the CPU
  of a run made before runs recorded it, is noted, not counted as a difference);
- ``eval.csv`` and ``train.csv``, cell by cell, exactly (no float tolerance hides a drift), except the wall-clock
columns (``common.runs.WALL_CLOCK_COLUMNS``), which no two runs share.

A run still training on one side is compared on the rows it has written so far ("prefix"), so a long
reproduction can be checked while it runs. A run with an unreadable file on either side
(``common.runs.RunFileError``) is different, with the file and what is wrong with it named; the other
runs are still compared. Exit status 0 when at least one run matched and every matched
run is the same, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from common.runs import (
    CSV_FILES,
    FRAME,
    LAYOUT,
    WALL_CLOCK_COLUMNS,
    RunFileError,
    find_results,
    is_done,
    read_config_json,
    read_run_csv,
)


@dataclass
class Comparison:
    key: str  # <suite>/<method>/<task>/seed_<s>
    differences: list[str]
    compared: list[str]  # what was found equal, e.g. "eval.csv 13 rows"

    @property
    def same(self) -> bool:
        return not self.differences


def run_dirs(root: Path) -> dict[str, Path]:
    """``<suite>/<method>/<task>/seed_<s>`` -> run directory, for every run with a config below ``root``."""
    return find_results(root)


def _config_differences(a: Path, b: Path) -> tuple[list[str], list[str]]:
    """(differences, notes) between two runs' configs, key by key. A ``versions`` entry recorded on one
    side only (a run made before that entry existed, e.g. ``versions.cpu``) is unknown there, not
    different: it is a note. Every other key, ``versions`` entries recorded on both sides included, must
    be equal."""
    ca, cb = (read_config_json(d) for d in (a, b))
    out, notes = [], []
    for k in sorted(set(ca) | set(cb)):
        x, y = ca.get(k, "<absent>"), cb.get(k, "<absent>")
        if k == "versions" and isinstance(x, dict) and isinstance(y, dict):
            for v in sorted(set(x) | set(y)):
                if v in x and v in y and x[v] != y[v]:
                    out.append(f"config versions.{v}: {x[v]!r} vs {y[v]!r}")
                elif (v in x) != (v in y):
                    notes.append(f"versions.{v} recorded on the {'first' if v in x else 'second'} side only")
        elif x != y:
            out.append(f"config {k}: {x!r} vs {y!r}")
    return out, notes


def _csv_difference(name: str, a: Path, b: Path, finished: tuple[bool, bool]) -> tuple[str | None, str]:
    """(first difference or None, what was compared) for one CSV of a run."""
    pa, pb = a / name, b / name
    if not pa.exists() or not pb.exists():
        if pa.exists() == pb.exists():
            return None, f"{name} absent on both sides"
        return f"{name}: only on the {'first' if pa.exists() else 'second'} side", ""
    da, db = read_run_csv(pa), read_run_csv(pb)  # a row still being written is not compared yet
    if list(da.columns) != list(db.columns):
        return f"{name}: columns {list(da.columns)} vs {list(db.columns)}", ""
    cols = [c for c in da.columns if c not in WALL_CLOCK_COLUMNS]
    n = min(len(da), len(db))
    if len(da) != len(db) and all(finished):
        return f"{name}: {len(da)} rows vs {len(db)} rows, both runs finished", ""
    if len(da) != len(db) and finished[0 if len(da) < len(db) else 1]:
        return f"{name}: the finished run has fewer rows ({n}) than the unfinished one", ""
    for i in range(n):
        for c in cols:
            x, y = da.at[i, c], db.at[i, c]
            if x != y and not (pd.isna(x) and pd.isna(y)):
                return f"{name} row {i + 1} (frame {da.at[i, FRAME]}): {c} {x} vs {y}", ""
    kind = f"{n} rows" if len(da) == len(db) else f"prefix of {n} rows (one side unfinished)"
    return None, f"{name} {kind}"


def compare_run(key: str, a: Path, b: Path) -> Comparison:
    """Compare one run found in both folders; a side whose files cannot be read makes it different."""
    try:
        return _compare_readable(key, a, b)
    except RunFileError as e:
        return Comparison(key, [str(e)], [])


def _compare_readable(key: str, a: Path, b: Path) -> Comparison:
    """``compare_run`` of two runs (``RunFileError`` from the first file that cannot be read)."""
    finished = (is_done(a), is_done(b))
    diffs, notes = _config_differences(a, b)
    compared = ["config" + (f" ({'; '.join(notes)})" if notes else "")]
    for name in CSV_FILES:
        diff, what = _csv_difference(name, a, b, finished)
        if diff:
            diffs.append(diff)
        elif what:
            compared.append(what)
    return Comparison(key, diffs, compared if not diffs else [])


def compare(first: Path, second: Path) -> tuple[list[Comparison], list[str], list[str]]:
    """(comparisons of the runs in both, keys only in the first, keys only in the second)."""
    ra, rb = run_dirs(first), run_dirs(second)
    both = [k for k in ra if k in rb]
    return (
        [compare_run(k, ra[k], rb[k]) for k in both],
        [k for k in ra if k not in rb],
        [k for k in rb if k not in ra],
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.same_runs", description=__doc__.split("\n\n")[0])
    p.add_argument("first", type=Path, help="a results folder, e.g. results/reference/metaworld7-quick")
    p.add_argument("second", type=Path, help="another one, e.g. results")
    a = p.parse_args(argv)
    for root in (a.first, a.second):
        if not root.is_dir():
            print(f"error: {root} is not a directory (a results folder holds {LAYOUT}/)", file=sys.stderr)
            return 2
    comparisons, only_first, only_second = compare(a.first, a.second)
    for c in comparisons:
        print(
            f"same       {c.key}: {', '.join(c.compared)}"
            if c.same
            else f"DIFFERENT  {c.key}: " + "; ".join(c.differences)
        )
    print(
        f"{len(comparisons)} run(s) in both: {sum(c.same for c in comparisons)} same, "
        f"{sum(not c.same for c in comparisons)} different; {len(only_first)} only in {a.first}, "
        f"{len(only_second)} only in {a.second}"
    )
    if not comparisons:
        print("no run is in both folders: nothing was compared", file=sys.stderr)
    return 0 if comparisons and all(c.same for c in comparisons) else 1


if __name__ == "__main__":
    sys.exit(main())
