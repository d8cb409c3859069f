"""Add finished runs to a reference folder: each run's config and CSVs, never checkpoints or replay.

    python -m analysis.ship results/pilots60k results/reference/metaworld7-quick [--suite metaworld7]
        [--dry-run] [--no-figures]

``results/reference/`` ships, per run, the four files of ``SHIPPED_FILES`` and nothing heavier, and each
suite's ``scores.csv``, figures and report regenerated from them (docs/reference-experiment.md). The runs
come from many launches and machines, and copying them by hand is where mistakes come in: an
unfinished run, a checkpoint, a run of another setting beside the others (fp32 beside bf16), or a re-run
that silently replaces the run whose numbers the README quotes. This copies with those checks:

- only finished runs (``done.json``) are shipped; unfinished ones are listed and left out, and so are runs
  with an unreadable file (``common.runs.RunFileError``), each named with the file and what to do;
- a run already in the reference folder with the same four files is left alone; one whose files differ is a
  conflict: nothing is copied, and the run and its differing files are named (to replace a shipped run,
  remove its directory first, on purpose);
- a suite folder the reference folder lacks is added only when ``--suite`` names it (or the folder is
  empty), so a work folder holding two suites does not spill one into the other's reference;
- the runs to add must share the reference suite folder's setting (``analysis.consistency``: precision,
  profile, agent, ...; per task the budget), or nothing is copied;
- every file is written atomically and ``done.json`` last, so an interrupted ship leaves at most a run
  without ``done.json``, which counts as not shipped and the next ship completes;
- then ``analysis.figures`` regenerates the suite's ``scores.csv``, figures and report from the reference
  folder alone (``--no-figures`` for folders that ship no figures, such as the pilots).

Exit status 0 when it shipped or found nothing new to ship, 1 on a conflict, a mixed setting or bad input.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from analysis.consistency import check_one_setting
from analysis.figures import DEFAULT_REPS, make_figures
from analysis.same_runs import run_dirs
from common.io import atomic_write_bytes
from common.runs import DONE_FILE, LAYOUT, RESULT_FILES, read_config_json, run_problem

#: what a shipped run holds; done.json last: a run is shipped once its done.json is there
SHIPPED_FILES = RESULT_FILES
DONE = DONE_FILE
assert SHIPPED_FILES[-1] == DONE
SHOWN = 6  # runs named per line of the summary


class ShipError(ValueError):
    """Nothing was copied: a conflict with a shipped run, a missing file, or bad input."""


@dataclass
class Plan:
    """What ``python -m analysis.ship`` would do, run by run (keys ``<suite>/<method>/<task>/seed_<s>``)."""

    add: dict[str, Path] = field(default_factory=dict)  # key -> the finished source run directory
    same: list[str] = field(default_factory=list)  # shipped already, the same four files
    unfinished: list[str] = field(default_factory=list)  # no done.json in the source: left out
    unreadable: list[str] = field(default_factory=list)  # a file of the source run cannot be read: left out
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # key -> files that differ from the shipped

    @property
    def suites(self) -> list[str]:
        return _suites(self.add)


def _suite(key: str) -> str:
    """The suite folder of a run key ``<suite>/<method>/<task>/seed_<s>``."""
    return key.split("/", 1)[0]


def _suites(keys) -> list[str]:
    """The suite folders of some run keys, sorted, each once."""
    return sorted({_suite(key) for key in keys})


def _names(keys: Sequence[str]) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:SHOWN]) + (f", ... ({len(keys)} in all)" if len(keys) > SHOWN else "")


def plan(source: str | Path, reference: str | Path, suites: Sequence[str] | None = None) -> Plan:
    """Compare every run under ``source`` (``<suite>/<method>/<task>/seed_<s>`` with a config.json) with
    ``reference``; ``suites`` restricts it to those suite folders. Reads only."""
    source, reference = Path(source), Path(reference)
    if not source.is_dir():
        raise ShipError(f"no results folder {source}")
    runs = run_dirs(source)
    found = _suites(runs)
    unknown = sorted(set(suites or ()) - set(found))
    if unknown:
        raise ShipError(
            f"no runs of suite {', '.join(map(repr, unknown))} under {source}; suites there: "
            f"{', '.join(found) or 'none'}"
        )
    out = Plan()
    for key, run in sorted(runs.items()):
        if suites and _suite(key) not in suites:
            continue
        problem = run_problem(run)
        if problem is not None:  # a damaged run must not become a reference, nor stop the others
            out.unreadable.append(str(problem))
            continue
        if not (run / DONE).is_file():
            out.unfinished.append(key)
            continue
        missing = [name for name in SHIPPED_FILES if not (run / name).is_file()]
        if missing:
            raise ShipError(
                f"{run} is finished but lacks {', '.join(missing)}: not a run directory of "
                f"suites.train, nothing shipped"
            )
        shipped = reference / key
        if not (shipped / DONE).is_file():  # not there, or an interrupted ship: (re)copy
            out.add[key] = run
            continue
        differ = [
            name
            for name in SHIPPED_FILES
            if not (shipped / name).is_file() or (shipped / name).read_bytes() != (run / name).read_bytes()
        ]
        if differ:
            out.conflicts[key] = differ
        else:
            out.same.append(key)
    return out


def _reference_suites(reference: Path) -> list[str]:
    """The suite folders that already hold shipped runs in ``reference``."""
    return _suites(run_dirs(reference)) if reference.is_dir() else []


def check(p: Plan, reference: str | Path, suites: Sequence[str] | None = None) -> None:
    """Raise ``ShipError`` on a conflict or on a suite the reference folder does not hold yet (unless
    ``suites`` names it), ``MixedSettingsError`` when the runs to add and the reference suite folder's runs
    were made under different settings.

    Why the suite check: one work folder often holds the runs of several suites (metaworld7 and
    metaworld_unseen launched into the same ``--results``), and the settings check cannot tell them apart
    (same profile, same agent), so shipping it whole into ``metaworld_unseen-quick`` would put metaworld7
    runs there. A new suite folder is added only when asked for by name, or into an empty folder."""
    held = _reference_suites(Path(reference))
    new = sorted(set(p.suites) - set(held) - set(suites or ()))
    if held and new:
        raise ShipError(
            f"{reference} holds suite(s) {', '.join(held)}, not {', '.join(new)} (runs to add: "
            f"{_names([k for k in p.add if _suite(k) in new])}). Nothing shipped; to ship only "
            f"some suites give --suite {' '.join(held)}, to add a new suite folder name it in --suite"
        )
    if p.conflicts:
        lines = "; ".join(f"{key} ({', '.join(files)})" for key, files in sorted(p.conflicts.items()))
        raise ShipError(
            f"{len(p.conflicts)} run(s) are shipped already with other files: {lines}. Nothing "
            f"shipped; to replace a shipped run, remove its directory under {reference} first"
        )
    for suite in p.suites:
        extra = [
            (f"{key.split('/', 1)[1]} (to add)", read_config_json(run))
            for key, run in p.add.items()
            if _suite(key) == suite
        ]
        check_one_setting(Path(reference) / suite, extra)


def copy_runs(p: Plan, reference: str | Path) -> list[Path]:
    """Copy the four files of every run to add, each atomically, done.json last; return the run dirs."""
    written = []
    for key, run in sorted(p.add.items()):
        target = Path(reference) / key
        for name in SHIPPED_FILES:
            atomic_write_bytes(target / name, (run / name).read_bytes())
        written.append(target)
    return written


def ship(
    source: str | Path,
    reference: str | Path,
    suites: Sequence[str] | None = None,
    figures: bool = True,
    reps: int = DEFAULT_REPS,
    dry_run: bool = False,
    log=print,
) -> Plan:
    """Plan, check, copy, then regenerate the figures of every suite that got runs; return the plan."""
    p = plan(source, reference, suites)
    check(p, reference, suites)
    log(summary(p))
    if dry_run or not p.add:
        return p
    copy_runs(p, reference)
    for suite in p.suites if figures else ():
        written = make_figures(suite, reference, reps=reps)
        log(f"{suite}: figures and report regenerated under {written[-1].parent}")
    return p


def summary(p: Plan) -> str:
    parts = [f"{len(p.add)} run(s) to add" + (f": {_names(list(p.add))}" if p.add else "")]
    if p.same:
        parts.append(f"{len(p.same)} shipped already")
    if p.unfinished:
        parts.append(f"{len(p.unfinished)} not finished, left out: {_names(p.unfinished)}")
    return "\n".join(["; ".join(parts), *(f"left out, unreadable: {line}" for line in p.unreadable)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.ship", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help=f"results folder holding {LAYOUT} runs")
    parser.add_argument("reference", help="folder to add them to, e.g. results/reference/metaworld7-quick")
    parser.add_argument("--suite", nargs="+", default=None, help="only these suite folders of the source")
    parser.add_argument("--dry-run", action="store_true", help="say what would be shipped, copy nothing")
    parser.add_argument(
        "--no-figures",
        action="store_true",
        help="do not regenerate scores.csv, figures and report (folders that ship none)",
    )
    args = parser.parse_args(argv)
    try:
        ship(args.source, args.reference, args.suite, figures=not args.no_figures, dry_run=args.dry_run)
    except ValueError as exc:  # ShipError, MixedSettingsError, analysis.figures' errors
        print(f"analysis.ship: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
