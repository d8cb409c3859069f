"""``python -m analysis.ship``: finished runs go into a reference folder with their four files only; an
unfinished run, a checkpoint, a changed re-run or a run of another setting never does.

The runs are real ones: copies of the reference experiment's shipped runs (results/reference/), with a
checkpoint-like file and a replay folder added where a training run would have them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.consistency import MixedSettingsError
from analysis.ship import SHIPPED_FILES, ShipError, main, ship
from suites import run as suite_run

SHIPPED = Path(__file__).resolve().parent.parent / "results" / "reference" / "metaworld7-quick" / "metaworld7"
SUITE = "metaworld7"
RUNS = [
    f"{method}/{task}/seed_{seed}"
    for method in ("sparse", "viper_std")
    for task in ("reach", "door-close")
    for seed in (0, 1)
]


def _source(tmp_path: Path, runs=RUNS) -> Path:
    """A results folder as training leaves it: finished runs plus what they keep while training."""
    src = tmp_path / "results"
    for run in runs:
        shutil.copytree(SHIPPED / run, src / SUITE / run)
        (src / SUITE / run / "checkpoints").mkdir()
        (src / SUITE / run / "checkpoints" / "ckpt_0000060000.pt").write_bytes(b"\0" * 64)
    return src


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_ships_finished_runs_with_their_four_files_and_regenerates_the_figures(tmp_path):
    src = _source(tmp_path)
    unfinished = src / SUITE / "rnd" / "reach" / "seed_1"
    shutil.copytree(SHIPPED / "rnd" / "reach" / "seed_0", unfinished)
    (unfinished / "done.json").unlink()  # still training
    cfg = json.loads((unfinished / "config.json").read_text())
    (unfinished / "config.json").write_text(json.dumps({**cfg, "seed": 1}))
    ref = tmp_path / "reference"
    logs = []
    p = ship(src, ref, reps=50, log=logs.append)
    assert sorted(p.add) == sorted(f"{SUITE}/{r}" for r in RUNS)
    assert p.unfinished == [f"{SUITE}/rnd/reach/seed_1"] and not p.same
    for run in RUNS:  # exactly the four files, byte for byte; no checkpoint
        assert _files(ref / SUITE / run) == set(SHIPPED_FILES)
        for name in SHIPPED_FILES:
            assert (ref / SUITE / run / name).read_bytes() == (SHIPPED / run / name).read_bytes()
    assert not (ref / SUITE / "rnd").exists()
    report = (ref / SUITE / "figures" / "report.md").read_text()
    assert "viper_std" in report and "sparse" in report and (ref / SUITE / "scores.csv").is_file()
    assert "8 run(s) to add" in logs[0] and "1 not finished, left out: metaworld7/rnd/reach/seed_1" in logs[0]

    again = ship(src, ref, figures=False, log=logs.append)  # a second ship finds nothing new
    assert not again.add and len(again.same) == len(RUNS)
    assert logs[-1].startswith("0 run(s) to add; 8 shipped already")


def test_a_changed_rerun_of_a_shipped_run_is_a_conflict_and_nothing_is_copied(tmp_path, capsys):
    ref = tmp_path / "reference"
    ship(_source(tmp_path / "first", RUNS[:2]), ref, figures=False, log=lambda m: None)
    before = {p: p.read_bytes() for p in ref.rglob("*") if p.is_file()}
    src = _source(tmp_path, RUNS)
    changed = src / SUITE / RUNS[0] / "eval.csv"
    changed.write_text(changed.read_text() + "65000,32500,650,1.0,0,1\n")  # e.g. run again, longer
    assert main([str(src), str(ref), "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert f"{SUITE}/{RUNS[0]} (eval.csv)" in err and "remove its directory" in err
    assert {p: p.read_bytes() for p in ref.rglob("*") if p.is_file()} == before  # the 6 other runs not added


def test_a_run_of_another_precision_is_refused_before_anything_is_copied(tmp_path):
    ref = tmp_path / "reference"
    ship(_source(tmp_path / "first", RUNS[:4]), ref, figures=False, log=lambda m: None)
    src = _source(tmp_path, RUNS[4:])
    config = src / SUITE / RUNS[4] / "config.json"
    cfg = json.loads(config.read_text())
    cfg["precision"] = cfg["agent"]["precision"] = "fp32"
    config.write_text(json.dumps(cfg))
    with pytest.raises(MixedSettingsError, match=rf"and the runs to add there.*'fp32' \(1 run: {RUNS[4]} \(to add\)\)"):
        ship(src, ref, figures=False, log=lambda m: None)
    assert not (ref / SUITE / "viper_std").exists()


def test_an_interrupted_ship_is_completed_by_the_next_one(tmp_path):
    src = _source(tmp_path, RUNS[:2])
    ref = tmp_path / "reference"
    half = ref / SUITE / RUNS[0]
    half.mkdir(parents=True)
    shutil.copy(SHIPPED / RUNS[0] / "config.json", half)  # killed after the first file: no done.json yet
    (half / "eval.csv").write_text("frame\n")  # and a file half-written by something else
    p = ship(src, ref, figures=False, log=lambda m: None)
    assert sorted(p.add) == [f"{SUITE}/{r}" for r in RUNS[:2]]
    assert (half / "eval.csv").read_bytes() == (SHIPPED / RUNS[0] / "eval.csv").read_bytes()


def test_bad_input_names_what_is_there(tmp_path, capsys):
    src = _source(tmp_path, RUNS[:1])
    with pytest.raises(ShipError, match="no runs of suite 'metaworld_unseen' under .*; suites there: metaworld7"):
        ship(src, tmp_path / "ref", suites=["metaworld_unseen"], log=lambda m: None)
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "ref")]) == 1
    assert "no results folder" in capsys.readouterr().err
    (src / SUITE / RUNS[0] / "train.csv").unlink()
    with pytest.raises(ShipError, match="is finished but lacks train.csv"):
        ship(src, tmp_path / "ref", log=lambda m: None)
    dry = ship(_source(tmp_path / "dry", RUNS[:2]), tmp_path / "ref", dry_run=True, log=lambda m: None)
    assert len(dry.add) == 2 and not (tmp_path / "ref").exists()


def test_a_suite_the_reference_folder_lacks_is_added_only_when_named(tmp_path, capsys):
    """A work folder with the runs of two suites (both launched into one --results) shipped whole into a
    reference folder of one suite: refused, nothing copied; with --suite it ships that suite only, and a
    new suite folder goes in when --suite names it."""
    src = _source(tmp_path, RUNS[:1])
    ref = tmp_path / "reference"
    ship(src, ref, figures=False, log=lambda m: None)
    unseen = "sparse/window-open/seed_0"
    shutil.copytree(
        SHIPPED.parent.parent / "metaworld_unseen-quick" / "metaworld_unseen" / unseen,
        src / "metaworld_unseen" / unseen,
    )
    shutil.copytree(SHIPPED / RUNS[1], src / SUITE / RUNS[1])
    before = _files(ref)
    with pytest.raises(
        ShipError,
        match=r"holds suite\(s\) metaworld7, not metaworld_unseen .*"
        r"metaworld_unseen/sparse/window-open/seed_0.*--suite metaworld7",
    ):
        ship(src, ref, figures=False, log=lambda m: None)
    assert _files(ref) == before  # not even the metaworld7 run
    assert main([str(src), str(ref), "--no-figures"]) == 1 and "Nothing shipped" in capsys.readouterr().err
    assert sorted(ship(src, ref, suites=[SUITE], figures=False, log=lambda m: None).add) == [f"{SUITE}/{RUNS[1]}"]
    added = ship(src, ref, suites=[SUITE, "metaworld_unseen"], figures=False, log=lambda m: None)
    assert sorted(added.add) == [f"metaworld_unseen/{unseen}"]
    assert _files(ref / "metaworld_unseen" / unseen) == set(SHIPPED_FILES)


@pytest.mark.slow
def test_run_what_a_reference_folder_lacks_then_ship_it(tmp_path, capsys):
    """The reference experiment's loop across machines: ``suites.run --skip-finished-in`` runs only the
    runs the reference folder lacks (real short smoke runs), ``analysis.ship`` adds them; a launch of
    another setting is refused up front, and one with nothing left to run says so and succeeds."""
    ref, work = tmp_path / "reference", tmp_path / "work"
    common = ["--suite", "smoke", "--methods", "sparse", "--frames", "400", "--precision", "fp32", "--no-figures"]
    assert suite_run.main([*common, "--seeds", "0", "--results", str(ref)]) == 0
    capsys.readouterr()
    assert suite_run.main([*common, "--seeds", "0", "1", "--results", str(work), "--skip-finished-in", str(ref)]) == 0
    out = capsys.readouterr().out
    assert f"1 run(s) finished under {ref} are left out: sparse/reach/seed_0" in out and "1 runs" in out
    assert not (work / "smoke" / "sparse" / "reach" / "seed_0").exists()
    assert (work / "smoke" / "sparse" / "reach" / "seed_1" / "done.json").is_file()

    shipped = ship(work, ref, figures=False, log=lambda m: None)
    assert sorted(shipped.add) == ["smoke/sparse/reach/seed_1"]
    assert suite_run.main([*common, "--seeds", "0", "1", "--results", str(work), "--skip-finished-in", str(ref)]) == 0
    assert "nothing to run: every selected run is finished under" in capsys.readouterr().out

    bf16 = [a if a != "fp32" else "bf16" for a in common]
    with pytest.raises(SystemExit) as exc:  # another setting than the reference's: refused, nothing made
        suite_run.main([*bf16, "--seeds", "2", "--results", str(tmp_path / "other"), "--skip-finished-in", str(ref)])
    assert exc.value.code == 2 and "precision: 'bf16' now, 'fp32' in 2 runs" in capsys.readouterr().err
    assert not (tmp_path / "other" / "smoke").exists()
