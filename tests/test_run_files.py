"""Run files that vouch for themselves: a run folder whose ``config.json``, ``done.json`` or ``eval.csv`` was
emptied, cut short or edited is named in one line (its path and what to do), left out of every score, and
never stops a launch of the folder's other runs or the figures of the rest.

One real finished smoke run (sparse reward, nothing to prepare) is made once; each case damages a copy of it
as the probe that found these did, and reads what the user's commands print.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis import aggregate as agg
from analysis import figures
from analysis.scores import load_scores, run_status
from common import runs
from suites import run as suite_run
from suites.plan import expand

SUITE, METHOD, TASK, FRAMES = "smoke", "sparse", "reach", 400
LAUNCH = ["--suite", SUITE, "--profile", "smoke", "--frames", str(FRAMES), "--threads", "1", "--no-figures"]
REMEDY = "to re-run that run, or restore the file from a copy"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The folder of one real run that finished its 400 frames (``python -m suites.run`` on the smoke suite)."""
    results = tmp_path_factory.mktemp("finished")
    assert suite_run.main([*LAUNCH, "--methods", METHOD, "--seeds", "0", "--results", str(results)]) == 0
    run = runs.run_dir(results, SUITE, METHOD, TASK, 0)
    assert runs.is_done(run) and len(runs.read_run_csv(run / runs.EVAL_FILE)) == 2
    return run


def _results(tmp_path: Path, finished: Path, seeds=(0,)) -> Path:
    """A results folder holding copies of the finished run as seeds ``seeds`` (each config says its seed)."""
    results = tmp_path / "results"
    for seed in seeds:
        run = runs.run_dir(results, SUITE, METHOD, TASK, seed)
        shutil.copytree(finished, run)
        config = runs.read_config_json(run)
        (run / runs.CONFIG_FILE).write_text(json.dumps({**config, "seed": seed}))
    return results


def _eval_lines(run: Path) -> list[str]:
    return (run / runs.EVAL_FILE).read_text().splitlines(keepends=True)


def _duplicate_last_row(run: Path) -> None:
    lines = _eval_lines(run)
    (run / runs.EVAL_FILE).write_text("".join([*lines, lines[-1]]))


def _nan_success_rate(run: Path) -> None:
    lines = _eval_lines(run)
    cells = lines[1].split(",")
    cells[runs.EVAL_COLUMNS.index(runs.SUCCESS_RATE)] = "nan"
    (run / runs.EVAL_FILE).write_text("".join([lines[0], ",".join(cells), *lines[2:]]))


def _non_numeric_row(run: Path) -> None:
    with open(run / runs.EVAL_FILE, "a") as f:
        f.write(",".join(["oops"] * len(runs.EVAL_COLUMNS)) + "\n")


def _missing_column(run: Path) -> None:
    table = pd.read_csv(run / runs.EVAL_FILE)
    (run / runs.EVAL_FILE).write_text(table.drop(columns=runs.SUCCESS_RATE).to_csv(index=False))


def _empty_config(run: Path) -> None:
    (run / runs.CONFIG_FILE).write_text("")


def _truncated_done(run: Path) -> None:
    text = (run / runs.DONE_FILE).read_text()
    (run / runs.DONE_FILE).write_text(text[: len(text) // 2])


#: damage -> (the file it names, what the line says is wrong with it)
DAMAGES = {
    _empty_config: (runs.CONFIG_FILE, "the file is empty"),
    _truncated_done: (runs.DONE_FILE, "not valid JSON ("),
    _duplicate_last_row: (runs.EVAL_FILE, f"line 4: frame {FRAMES} is evaluated twice"),
    _nan_success_rate: (runs.EVAL_FILE, "line 2: success_rate is 'nan', not a finite number"),
    _non_numeric_row: (runs.EVAL_FILE, "line 4: frame is 'oops', not a finite number"),
    _missing_column: (runs.EVAL_FILE, "no success_rate column"),
}
CASES = pytest.mark.parametrize("damage", list(DAMAGES), ids=[d.__name__.strip("_") for d in DAMAGES])


def _expected_line(run: Path, damage) -> str:
    """The one line naming the damaged file of ``run``, up to what it says is wrong."""
    name, problem = DAMAGES[damage]
    return f"{run / name}: {problem}"


def _lines_naming(text: str, run: Path) -> list[str]:
    return [line for line in text.splitlines() if str(run) in line]


@CASES
def test_a_damaged_run_is_named_and_left_out_of_the_scores(tmp_path, finished, damage):
    results = _results(tmp_path, finished, seeds=(0, 1))
    suite_dir = results / SUITE
    good, bad = (runs.run_dir(results, SUITE, METHOD, TASK, s) for s in (0, 1))
    load_scores(suite_dir)  # a scores.csv made before the damage must not keep the run either
    damage(bad)

    [error] = runs.unreadable_runs(suite_dir)
    assert str(error).startswith(_expected_line(bad, damage)), error
    assert str(error).endswith(f"; delete {bad} {REMEDY}") and "\n" not in str(error)
    assert pickle.loads(pickle.dumps(error)).args == error.args  # a worker's error reaches the launcher whole
    assert runs.readable_runs(suite_dir) == [r for r in runs.find_runs(suite_dir) if r.path == good]

    scores = agg.run_scores(agg.success_rates(load_scores(suite_dir)))
    assert scores["seed"].tolist() == [0], scores
    status = run_status(suite_dir)
    assert status["seed"].tolist() == [0] and status["done"].tolist() == [True]


def test_a_truncated_done_json_is_not_finished_but_named(tmp_path, finished):
    run = runs.run_dir(_results(tmp_path, finished), SUITE, METHOD, TASK, 0)
    _truncated_done(run)
    with pytest.raises(runs.RunFileError, match="not valid JSON") as e:
        runs.is_done(run)
    assert e.value.path == run / runs.DONE_FILE
    (run / runs.DONE_FILE).unlink()
    assert runs.read_done(run) is None and not runs.is_done(run)  # no done.json: simply unfinished


def test_a_torn_last_eval_line_is_a_row_being_written_not_damage(tmp_path, finished):
    run = runs.run_dir(_results(tmp_path, finished), SUITE, METHOD, TASK, 0)
    with open(run / runs.EVAL_FILE, "a") as f:
        f.write(f"{2 * FRAMES},{FRAMES},4,0.")
    assert runs.run_problem(run) is None
    assert runs.read_run_csv(run / runs.EVAL_FILE)[runs.FRAME].tolist() == [0, FRAMES]


@pytest.mark.slow  # trains the other method's run
def test_a_launch_of_another_method_names_the_emptied_config_and_goes_on(tmp_path, finished, capsys):
    results = _results(tmp_path, finished)
    bad = runs.run_dir(results, SUITE, METHOD, TASK, 0)
    _empty_config(bad)
    assert suite_run.main([*LAUNCH, "--methods", "rnd", "--seeds", "0", "--results", str(results)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "FAILED" not in out, err
    [line] = _lines_naming(err, bad)
    warning = "warning: a run of the folder is left out of the scores"
    assert line == f"{warning}: {bad / runs.CONFIG_FILE}: the file is empty; delete {bad} {REMEDY}"
    assert runs.is_done(runs.run_dir(results, SUITE, "rnd", TASK, 0))


@CASES
def test_a_relaunch_of_the_damaged_run_fails_in_one_line_naming_the_file(tmp_path, finished, damage, capsys):
    results = _results(tmp_path, finished)
    bad = runs.run_dir(results, SUITE, METHOD, TASK, 0)
    damage(bad)
    assert suite_run.main([*LAUNCH, "--methods", METHOD, "--seeds", "0", "--results", str(results)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    [failed] = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert failed.startswith(f"FAILED {METHOD}/{TASK}/seed_0: RunFileError: {_expected_line(bad, damage)}"), failed
    assert failed.endswith(f"; delete {bad} {REMEDY}")
    assert not (bad / runs.ERROR_LOG).exists()


@CASES
def test_the_progress_bar_reads_a_damaged_run_without_crashing(tmp_path, finished, damage):
    results = _results(tmp_path, finished)
    damage(runs.run_dir(results, SUITE, METHOD, TASK, 0))
    [spec] = expand(SUITE, "smoke", methods=[METHOD], seeds=[0], results=results, frames=FRAMES)
    progress = suite_run.Progress([spec])
    progress.close()  # polls the run's CSVs once more
    assert progress.bar.n == FRAMES


def test_the_figures_draw_the_other_runs_and_name_each_damaged_one(tmp_path, finished, capsys):
    seeds = range(len(DAMAGES) + 1)
    results = _results(tmp_path, finished, seeds=seeds)
    damaged = {runs.run_dir(results, SUITE, METHOD, TASK, s + 1): d for s, d in enumerate(DAMAGES)}
    for run, damage in damaged.items():
        damage(run)
    assert figures.main(["--suite", SUITE, "--results", str(results), "--reps", "20"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    for run, damage in damaged.items():
        [line] = _lines_naming(err, run)
        assert line.startswith(f"warning: a run is left out of the figures: {_expected_line(run, damage)}"), line
        assert line.endswith(f"; delete {run} {REMEDY}")
    report = (results / SUITE / "figures" / "report.md").read_text()
    for run, damage in damaged.items():
        name, problem = DAMAGES[damage]
        assert f"- {METHOD}/{TASK}/{run.name}: {name}: {problem}" in report
    data = pd.read_csv(results / SUITE / "figures" / "figure_data.csv")
    curves = data[data["figure"] == "learning_curves"]
    assert set(curves["n_seeds"]) == {1}, curves  # only the undamaged run is drawn
