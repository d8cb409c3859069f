"""The run folder has one schema (``common.runs``): every writer and reader takes its names from there.

A run folder is written by ``suites`` and read back by ``analysis`` (and by ``suites.run``'s progress bar),
often by another version of the code. When each side spells ``"eval.csv"`` or ``"success_rate"`` itself, a
rename on one side is a silent empty table on the other; so no module but ``common.runs`` may spell the
layout's file names or the CSVs' columns in code (docstrings and comments may describe them).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from common import runs

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "tasks", "agents", "rewards", "analysis", "suites")
SCHEMA = ROOT / "common" / "runs.py"
REFERENCE = ROOT / "results" / "reference"

#: names of the layout, as they appear in paths, globs and messages
LAYOUT_NAMES = (*runs.RESULT_FILES, runs.ERROR_LOG, runs.LOCK_FILE, runs.CHECKPOINT_DIR, runs.SEED_PREFIX, "ckpt_")
#: run-CSV columns that are ordinary words elsewhere, with what else they name: the checkpoint's counters
#: (frame, step, episode), the scores table's coordinate (frame), the agent's update metrics (critic_loss,
#: actor_loss), an expert episode's outcome (success); checking them would flag those, not the run files
SHARED_WORDS = {"frame", "step", "episode", "time", "success", "fps", "bonus", "critic_loss", "actor_loss"}
COLUMN_NAMES = tuple(sorted(set(runs.EVAL_COLUMNS + runs.TRAIN_COLUMNS) - SHARED_WORDS))
#: (module, name) pairs that spell a schema name for something else
ALLOWED = {("analysis/reward_analysis.py", "config.json")}  # the reward analysis' own settings file, no run's


def spelled(source: str) -> list[tuple[int, str]]:
    """(line, name) for every layout file name (at the start of a word) or distinctive column name (the whole
    string) in a string constant of ``source`` that is not a docstring; f-string pieces included."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
            continue
        out += [
            (node.lineno, name) for name in LAYOUT_NAMES if re.search(rf"(?<!\w){re.escape(name)}", node.value)
        ]  # not num_seed_frames
        out += [(node.lineno, name) for name in COLUMN_NAMES if node.value == name]
    return sorted(set(out))


def test_no_module_but_the_schema_spells_the_run_folder():
    found = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if path == SCHEMA:
                continue
            rel = path.relative_to(ROOT).as_posix()
            found += [
                f"{rel}:{line} spells {name!r}"
                for line, name in spelled(path.read_text())
                if (rel, name) not in ALLOWED
            ]
    assert found == [], "use the names of common.runs instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source, expect",
    [
        ('p = run / "eval.csv"', [(1, "eval.csv")]),
        ('glob("*/*/seed_*/config.json")', [(1, "config.json"), (1, "seed_")]),
        ('msg = f"{key}: done.json but no evaluation"', [(1, "done.json")]),
        ('x = df["success_rate"]', [(1, "success_rate")]),
        ('n = cfg["num_seed_frames"]', []),
        ('"""Reads eval.csv."""\nx = df["frame"]  # eval.csv', []),
        ('def f():\n    """the train.csv rows"""\n    return 1', []),
    ],
)
def test_the_check_catches_what_it_is_for(source, expect):
    assert spelled(source) == expect


def test_the_shipped_runs_have_the_schema_s_files_and_columns():
    """The reference runs were written by earlier versions of the runner; the readers must still read
    them under today's names, so the schema may only change together with an upgrade of these files."""
    found = 0
    for config in sorted(REFERENCE.rglob(runs.CONFIG_FILE)):
        run = config.parent
        if not run.name.startswith(runs.SEED_PREFIX):
            continue  # the reward analysis' own settings
        found += 1
        assert all((run / name).is_file() for name in runs.RESULT_FILES), run
        assert runs.read_run_csv(run / runs.EVAL_FILE).columns.tolist() == runs.EVAL_COLUMNS, run
        assert runs.read_run_csv(run / runs.TRAIN_FILE).columns.tolist() == runs.TRAIN_COLUMNS, run
        assert runs.is_done(run) and set(runs.read_done(run)) <= set(runs.Done.__dataclass_fields__), run
        assert run in runs.find_results(run.parents[3]).values(), run
    assert found >= 50


def test_layout_names_and_finds_runs(tmp_path):
    path = runs.run_dir(tmp_path, "suite", "sparse", "reach", 3)
    assert path == tmp_path / "suite" / runs.run_key("sparse", "reach", 3)
    path.mkdir(parents=True)
    (tmp_path / "suite" / "figures" / "x" / "seed_x").mkdir(parents=True)  # not a run: no seed number
    (tmp_path / "suite" / ".hidden" / "reach" / "seed_0").mkdir(parents=True)
    assert runs.find_runs(tmp_path / "suite") == [runs.RunDir("sparse", "reach", 3, path)]
    assert runs.find_results(tmp_path) == {}  # no config.json yet
    assert list(runs.find_results(tmp_path, configured=False)) == ["suite/sparse/reach/seed_3"]
    assert runs.checkpoint_path(path, 1200).parent == path / runs.CHECKPOINT_DIR
    assert runs.list_checkpoints(path) == []


def test_last_row_is_the_newest_complete_row(tmp_path):
    csv = tmp_path / runs.EVAL_FILE
    assert runs.last_row(csv) is None
    csv.write_text(",".join(runs.EVAL_COLUMNS) + "\n")
    assert runs.last_row(csv) is None
    csv.write_text(csv.read_text() + "2000,1000,4,0.5,12.5,33.1\n")
    assert runs.last_row(csv)[runs.SUCCESS_RATE] == "0.5"
    csv.write_text(csv.read_text() + "4000,20")  # torn by a crash
    assert runs.last_row(csv) is None
