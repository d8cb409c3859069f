"""analysis.same_runs: the reproduction check compares runs row for row, ignoring only wall-clock columns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.same_runs import main
from tests.test_scores import write_run

KEY = "toy/dense/reach/seed_0"
TRAIN = "frame,step,episode,episode_return,learned_return,success,fps,critic_loss,actor_loss,bonus,time\n"


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "a"
    run = write_run(a / "toy", "dense", "reach", 0, [0.0, 0.2, 0.6, 0.8])
    (run / "train.csv").write_text(
        TRAIN + "200,100,1,0,17.2984,0,107.6,,,,8.7\n400,200,2,0,9.77771,0,151.1,0.5,-0.1,,10.1\n"
    )
    b = tmp_path / "b"
    shutil.copytree(a, b)
    return a, b


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_identical_runs_are_the_same_even_with_other_wall_clock(tmp_path, capsys):
    a, b = _pair(tmp_path)
    _edit(b / KEY / "train.csv", "107.6,,,,8.7", "99.0,,,,9.9")  # fps and time: the machine's speed
    _edit(b / KEY / "eval.csv", ",1.5\n", ",7.25\n")
    assert main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert f"same       {KEY}: config, eval.csv 4 rows, train.csv 2 rows" in out


@pytest.mark.parametrize(
    "file, old, new, said",
    [
        ("train.csv", "9.77771", "9.77772", "train.csv row 2 (frame 400): learned_return 9.77771 vs 9.77772"),
        ("eval.csv", "2000,1000,20,0.6", "2000,1000,20,0.4", "eval.csv row 3 (frame 2000): success_rate 0.6 vs 0.4"),
        ("config.json", '"seed": 0', '"seed": 0, "torch_threads": 2', "config torch_threads: '<absent>' vs 2"),
    ],
)
def test_one_changed_cell_or_key_makes_the_runs_different_and_is_named(tmp_path, capsys, file, old, new, said):
    a, b = _pair(tmp_path)
    _edit(b / KEY / file, old, new)
    assert main([str(a), str(b)]) == 1
    assert f"DIFFERENT  {KEY}: {said}" in capsys.readouterr().out


def test_an_unfinished_run_is_compared_on_its_prefix(tmp_path, capsys):
    a, b = _pair(tmp_path)
    (b / KEY / "done.json").unlink()
    lines = (b / KEY / "eval.csv").read_text().splitlines(keepends=True)
    (b / KEY / "eval.csv").write_text("".join(lines[:3]))  # header + 2 of 4 evaluations so far
    assert main([str(a), str(b)]) == 0
    assert "eval.csv prefix of 2 rows (one side unfinished)" in capsys.readouterr().out
    (a / KEY / "done.json").unlink()
    (a / KEY / "eval.csv").write_text("".join(lines[:2]))  # now the shorter one is finished: not a prefix
    (a / KEY / "done.json").write_text(json.dumps({"frames": 3000}))
    assert main([str(a), str(b)]) == 1
    assert "the finished run has fewer rows (1)" in capsys.readouterr().out


def test_no_common_run_compares_nothing_and_fails(tmp_path, capsys):
    a, _ = _pair(tmp_path)
    c = tmp_path / "c"
    write_run(c / "toy", "sparse", "reach", 0, [0.0])
    assert main([str(a), str(c)]) == 1
    captured = capsys.readouterr()
    assert "0 run(s) in both" in captured.out and "nothing was compared" in captured.err
    assert main([str(a), str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def _set_versions(run: Path, versions: dict) -> None:
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "versions": versions}))


def test_a_cpu_recorded_on_one_side_only_is_noted_and_a_different_cpu_is_a_difference(tmp_path, capsys):
    """Runs made before configs recorded the CPU are compared on what both recorded; once both sides
    record it, another CPU (e.g. one without native bf16) makes the runs different."""
    a, b = _pair(tmp_path)
    _set_versions(a / KEY, {"torch": "2.13.0+cpu"})
    _set_versions(b / KEY, {"torch": "2.13.0+cpu", "cpu": "AMD EPYC", "cpu_native_bf16": True})
    assert main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert (
        f"same       {KEY}: config (versions.cpu recorded on the second side only; versions.cpu_native_bf16 "
        "recorded on the second side only), eval.csv 4 rows"
    ) in out
    _set_versions(a / KEY, {"torch": "2.13.0+cpu", "cpu": "Intel Xeon", "cpu_native_bf16": False})
    assert main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert (
        f"DIFFERENT  {KEY}: config versions.cpu: 'Intel Xeon' vs 'AMD EPYC'; config versions.cpu_native_bf16: "
        "False vs True"
    ) in out
    _set_versions(a / KEY, {"torch": "2.14.0+cpu", "cpu": "AMD EPYC", "cpu_native_bf16": True})
    assert main([str(a), str(b)]) == 1
    assert "config versions.torch: '2.14.0+cpu' vs '2.13.0+cpu'" in capsys.readouterr().out
