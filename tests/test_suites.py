"""The suite runner on real envs: end to end, kill -9 and resume (replay reloaded from its episode files),
corrupted checkpoints, checkpoint size, file modes, locks, config mismatches, errors."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from common.runtime import cpu_name
from suites import launch, train
from suites import run as suite_run
from suites.plan import budget_warnings, expand
from tasks.registry import spec


def _eval_rows(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "eval.csv").drop(columns=["time"])


def _sparse_run(tmp_path, name="r", frames=1200):
    [spec] = expand("smoke", methods=["sparse"], results=tmp_path / name, frames=frames, torch_threads=1)
    return dataclasses.replace(spec, config=dataclasses.replace(spec.config, checkpoint_every_frames=400))


def test_local_runs_default_to_one_thread_on_cpu_and_one_job_per_core(tmp_path, monkeypatch):
    """A CPU run's thread count changes its float reductions, so the default must not depend on how many
    runs share the machine: one thread per run, one run per core (at most the number of runs)."""
    monkeypatch.setattr(launch, "gpu_slots", lambda: 0)
    monkeypatch.setattr(launch.os, "cpu_count", lambda: 4)
    assert launch.LocalLauncher.default_jobs(10) == 4 and launch.LocalLauncher.default_jobs(3) == 3
    assert launch.LocalLauncher.default_jobs(0) == 1
    [spec] = expand("smoke", methods=["sparse"], results=tmp_path)
    launcher = launch.LocalLauncher()
    for jobs in (1, 2, 4):
        assert launcher._placed(spec, 0, jobs).torch_threads == 1
    # --threads wins; with GPUs the CPU threads are shared out between the slots
    [explicit] = expand("smoke", methods=["sparse"], results=tmp_path, torch_threads=3)
    assert launcher._placed(explicit, 0, 1).torch_threads == 3
    monkeypatch.setattr(launch, "gpu_slots", lambda: 2)
    placed = launcher._placed(spec, 1, 2)
    assert placed.device == "cuda:1" and placed.torch_threads == 2


@pytest.mark.slow
def test_smoke_suite_end_to_end(tmp_path, capsys):
    results = tmp_path / "results"
    assert suite_run.main(["--suite", "smoke", "--results", str(results), "--jobs", "2", "--frames", "600"]) == 0
    suite_dir = results / "smoke"
    for method in ("sparse", "rnd", "amp"):
        run_dir = suite_dir / method / "reach" / "seed_0"
        done = json.loads((run_dir / "done.json").read_text())
        assert done["frame"] == 600
        assert list(_eval_rows(run_dir)["frame"]) == [0, 600]
        config = json.loads((run_dir / "config.json").read_text())
        assert config["seed"] == 0 and config["provider"] == method and config["versions"]["torch"]
        # the CPU that made the rows: auto precision and float kernels depend on it
        assert config["versions"]["cpu"] == cpu_name() != "" and config["versions"]["cpu_native_bf16"] in (True, False)
        if not torch.cuda.is_available():  # auto precision on a CPU follows its bf16 units
            assert config["precision"] == ("bf16" if config["versions"]["cpu_native_bf16"] else "fp32")
        # a finished run keeps its results, not what only a resume needs
        assert not (run_dir / "checkpoints").exists() and not (run_dir / train.REPLAY_DIR).exists()
        assert sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file()) < 200_000
        train_log = pd.read_csv(run_dir / "train.csv")
        assert train_log["frame"].is_monotonic_increasing and train_log["frame"].iloc[-1] == 600
    scores = pd.read_csv(suite_dir / "scores.csv")
    assert set(scores["method"]) == {"sparse", "rnd", "amp"}
    assert set(scores.columns) == {"method", "task", "seed", "frame", "metric", "value"}
    assert "scores:" in capsys.readouterr().out
    # a second launch finds every run complete and redoes nothing
    mtime = (suite_dir / "sparse" / "reach" / "seed_0" / "eval.csv").stat().st_mtime
    assert suite_run.main(["--suite", "smoke", "--results", str(results), "--no-figures", "--frames", "600"]) == 0
    assert (suite_dir / "sparse" / "reach" / "seed_0" / "eval.csv").stat().st_mtime == mtime


@pytest.mark.slow
def test_kill_and_resume_gives_the_rows_of_an_uninterrupted_run(tmp_path):
    whole = _sparse_run(tmp_path, "whole")
    train.run(whole.config, whole.run_dir)

    killed = _sparse_run(tmp_path, "killed")
    code = "import json, sys; from suites import train; train.run(json.loads(sys.argv[1]), sys.argv[2])"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(killed.config.as_dict()), str(killed.run_dir)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    deadline = time.monotonic() + 300
    while not train.list_checkpoints(killed.run_dir) or _rows(killed.run_dir) < 2:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.0)  # let it get into the next episode past the checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed.run_dir / "done.json").exists()
    # the replay lives in episode files beside the run, not in the checkpoint: the resume must read them
    assert len(list((killed.run_dir / train.REPLAY_DIR).glob("ep_*.npz"))) >= 4

    logs = []
    train.run(killed.config, killed.run_dir, log=logs.append)
    assert any("resumed" in m for m in logs)
    pd.testing.assert_frame_equal(_eval_rows(killed.run_dir), _eval_rows(whole.run_dir))
    a = pd.read_csv(killed.run_dir / "train.csv").drop(columns=["time", "fps"])
    b = pd.read_csv(whole.run_dir / "train.csv").drop(columns=["time", "fps"])
    pd.testing.assert_frame_equal(a, b)


def _rows(run_dir):
    path = run_dir / "eval.csv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


def _run_keeping_checkpoints(spec):
    """A whole run through the Trainer, which (unlike ``train.run``) leaves checkpoints and replay files."""
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / "config.json").write_text(json.dumps(spec.config.as_dict()))
    trainer = train.Trainer(spec.config, spec.run_dir, log=lambda m: None)
    try:
        trainer.run()
    finally:
        trainer.close()


@pytest.mark.slow
def test_corrupted_checkpoint_falls_back_to_the_previous_one(tmp_path):
    """Also the replay's side: the older checkpoint holds fewer episodes, so the files past it are dropped
    and rewritten, and the rerun's training rows equal the first run's."""
    spec = _sparse_run(tmp_path)
    old_umask = os.umask(0o022)
    try:
        _run_keeping_checkpoints(spec)
    finally:
        os.umask(old_umask)
    files = [f for f in spec.run_dir.rglob("*") if f.is_file()]
    assert {f.parent.name for f in files} >= {"checkpoints", train.REPLAY_DIR, spec.run_dir.name}
    unreadable = [
        f"{f.relative_to(spec.run_dir)} {f.stat().st_mode & 0o777:o}"
        for f in files
        if f.stat().st_mode & 0o777 != 0o644
    ]
    assert not unreadable, unreadable  # umask 022: every output 0644, none mkstemp's private 0600
    before, before_train = _eval_rows(spec.run_dir), pd.read_csv(spec.run_dir / "train.csv")
    older, newest = train.list_checkpoints(spec.run_dir)
    # the checkpoint does not carry the replay: 4 more episodes in it change its size by a few bytes
    assert abs(newest.stat().st_size - older.stat().st_size) < 4096, (older.stat().st_size, newest.stat().st_size)
    (spec.run_dir / "done.json").unlink()
    newest.write_bytes(b"torn")
    logs = []
    train.run(spec.config, spec.run_dir, log=logs.append)
    assert any(str(newest) in m and "unreadable" in m for m in logs), logs
    assert any("resumed" in m and "frame 800" in m for m in logs), logs
    pd.testing.assert_frame_equal(_eval_rows(spec.run_dir), before)
    after_train = pd.read_csv(spec.run_dir / "train.csv")
    cols = [c for c in before_train.columns if c not in ("time", "fps")]
    pd.testing.assert_frame_equal(after_train[cols], before_train[cols])


def test_a_locked_run_is_skipped(tmp_path):
    spec = _sparse_run(tmp_path)
    with train.run_lock(spec.run_dir):
        code = (
            "import json, sys; from suites import train; "
            "print(json.dumps(train.run(json.loads(sys.argv[1]), sys.argv[2])))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, json.dumps(spec.config.as_dict()), str(spec.run_dir)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    assert "another process" in json.loads(out.splitlines()[-1])["skipped"]
    assert not (spec.run_dir / "eval.csv").exists()


def test_a_changed_config_is_refused(tmp_path):
    spec = _sparse_run(tmp_path)
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / "config.json").write_text(json.dumps({**spec.config.as_dict(), "frames": 5}))
    with pytest.raises(ValueError, match="another config.*frames"):
        train.run(spec.config, spec.run_dir)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--suite", "nope"], "valid suites: metaworld7"),
        (
            ["--suite", "smoke", "--methods", "viperr"],
            "the suite's methods: sparse, rnd, amp; registered providers: amp, ",
        ),
        (["--suite", "smoke", "--tasks", "reachh"], "valid tasks: "),
        (["--suite", "smoke", "--tasks", "door"], "not in suite 'smoke'"),
        (["--suite", "smoke", "--profile", "huge"], "valid profiles: paper, quick, smoke"),
    ],
)
def test_bad_names_list_the_valid_ones(argv, expected, capsys):
    with pytest.raises(SystemExit) as e:
        suite_run.main(argv)
    assert e.value.code == 2
    assert expected in capsys.readouterr().err


def test_list_prints_the_suites(capsys):
    assert suite_run.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "metaworld7" in out and "adroit3" in out and "smoke" in out


def test_budget_warnings_name_the_tasks_a_pilot_found_the_oracle_fails_on(tmp_path):
    """adroit3's quick budget is no longer than the pilot in which the dense oracle never reached an
    evaluation success on door: the launch says so; a longer --frames, or MetaWorld's piloted budget, does not."""
    quick = expand("adroit3", "quick", methods=["sparse"], results=tmp_path, precision="fp32")
    lines = budget_warnings(quick)
    failing = sorted({r.config.task for r in quick if r.config.frames <= spec(r.config.task).oracle_fails_within})
    assert failing and [line.split(":")[0] for line in lines] == failing
    assert f"{spec('door').oracle_fails_within:,}-frame pilot" in lines[0] and "--frames" in lines[0]
    longer = expand(
        "adroit3",
        "quick",
        methods=["sparse"],
        results=tmp_path,
        precision="fp32",
        frames=spec("door").oracle_fails_within + 2,
    )
    assert budget_warnings(longer) == []
    assert budget_warnings(expand("metaworld7", "quick", results=tmp_path, precision="fp32")) == []
