"""Faults of the local launcher, for real: a worker killed with SIGKILL fails its own run only, a killed
launcher takes its workers with it, a relaunch names the run another launch holds, and Ctrl-C ends in one
line. Real processes and signals on tiny smoke runs (sparse reward: nothing to prepare)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from analysis import figures
from rewards.models import pretrain, store
from suites import run as suite_run
from suites.launch import LocalLauncher, WorkerDied
from suites.plan import expand

ROOT = Path(__file__).parents[1]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as dead: it trains nothing and holds no memory)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_for(cond, what: str, timeout: float = 120.0, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc is None or proc.poll() is None, f"the launcher ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _worker_pid(run_dir: Path) -> int | None:
    """The pid ``suites.train.run_lock`` writes into the run's lock file ("host pid N")."""
    try:
        text = (run_dir / ".lock").read_text().split()
    except FileNotFoundError:
        return None
    return int(text[-1]) if len(text) == 3 and text[-1].isdigit() else None


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _launch(results: Path, frames: int) -> subprocess.Popen:
    """``python -m suites.run`` in its own session, as a terminal would start it (its own process group),
    with SIGINT inherited as ignored: the worst case (a parent that ignores it, as a shell script's
    background job or a test runner may), in which Python installs no KeyboardInterrupt handler itself."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "suites.run",
            "--suite",
            "smoke",
            "--methods",
            "sparse",
            "--frames",
            str(frames),
            "--results",
            str(results),
            "--no-figures",
            "--threads",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_ignore_sigint,
    )


@pytest.mark.slow
def test_a_killed_worker_fails_only_its_own_run(tmp_path):
    runs = expand("smoke", methods=["sparse"], seeds=[0, 1], results=tmp_path, frames=200, torch_threads=1)
    launcher = LocalLauncher(jobs=2, poll_seconds=0.2)
    victim = runs[0]
    killed: list[int] = []

    def kill_once():
        pid = _worker_pid(victim.run_dir)
        if not killed and pid is not None:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    launcher.on_poll = kill_once
    results = dict((r.key, out) for r, out in launcher.launch(runs))
    assert killed, "the victim's worker never started"
    assert isinstance(results[victim.key], WorkerDied)
    assert "SIGKILL" in str(results[victim.key])
    assert suite_run._failure_kind(results[victim.key]) == "stopped"
    sibling = results[runs[1].key]
    assert not isinstance(sibling, BaseException), sibling
    assert sibling["frame"] == 200 and (runs[1].run_dir / "done.json").exists()
    assert not (victim.run_dir / "done.json").exists()


@pytest.mark.slow
def test_a_killed_launcher_takes_its_workers_with_it(tmp_path):
    results = tmp_path / "results"
    run_dir = results / "smoke" / "sparse" / "reach" / "seed_0"
    proc = _launch(results, frames=5000)
    _wait_for(lambda: _worker_pid(run_dir) is not None, "the worker started", proc=proc)
    worker = _worker_pid(run_dir)
    assert _alive(worker)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the worker outlived its launcher"


@pytest.mark.slow
def test_a_relaunch_names_the_busy_run_and_ctrl_c_ends_in_one_line(tmp_path, capsys):
    results = tmp_path / "results"
    run_dir = results / "smoke" / "sparse" / "reach" / "seed_0"
    first = _launch(results, frames=5000)
    try:
        _wait_for(lambda: _worker_pid(run_dir) is not None, "the worker started", proc=first)
        worker = _worker_pid(run_dir)

        # a second launch of the same command while the first runs: the run is busy, not done
        assert (
            suite_run.main(
                [
                    "--suite",
                    "smoke",
                    "--methods",
                    "sparse",
                    "--frames",
                    "5000",
                    "--results",
                    str(results),
                    "--no-figures",
                    "--threads",
                    "1",
                ]
            )
            == 1
        )
        out, err = capsys.readouterr()
        assert "BUSY sparse/reach/seed_0" in out and f"pid {worker}" in out, out
        assert "runs 1/1 done" not in err  # busy is not done
        assert "being run by another process and were left alone: sparse/reach/seed_0" in err
        assert "failed" not in err
        assert not (run_dir / "done.json").exists()

        # Ctrl-C in the terminal: SIGINT to the launcher's process group
        os.killpg(first.pid, signal.SIGINT)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.rstrip().splitlines()[-1] == "interrupted; re-run the same command to resume"
    assert not _alive(worker), "Ctrl-C left the worker running"
    assert json.loads((run_dir / "config.json").read_text())["frames"] == 5000  # kept for the resume


# ------------------------------------------------------------------------------ messages at the edges
# a read-only --data-root is not an error (it is fine when it holds what the runs need): no such case
@pytest.mark.parametrize(
    "flag, where, expected",
    [
        ("--results", "file", "is a file, not a directory"),
        ("--data-root", "file", "is a file, not a directory"),
        ("--results", "under_file", "which is a file, not a directory"),
        ("--data-root", "under_file", "which is a file, not a directory"),
        ("--results", "read_only", "is not writable"),
    ],
)
def test_an_unusable_directory_is_one_line_naming_it(tmp_path, capsys, flag, where, expected):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    path = {"file": a_file, "under_file": a_file / "sub", "read_only": Path("/proc/sys/vrb_results")}[where]
    if where == "read_only" and os.access("/proc/sys", os.W_OK):
        pytest.skip("no read-only directory on this machine")
    args = ["--suite", "smoke", "--methods", "sparse", "--results", str(tmp_path / "r"), flag, str(path)]
    with pytest.raises(SystemExit):
        suite_run.main(args)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{flag} {path}" in err and expected in err, err
    assert not (tmp_path / "r").exists()


def test_a_truncated_model_names_the_file_and_the_command_that_rebuilds_it(tmp_path):

    ref = store.ModelRef("metaworld", "codec", "small", data_root=tmp_path)
    store.save_checkpoint(ref.checkpoint, "codec", {}, {}, torch.nn.Linear(64, 64))
    data = ref.checkpoint.read_bytes()
    ref.checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(store.ModelMissingError) as e:
        ref.load()
    assert str(ref.checkpoint) in str(e.value) and "truncated or corrupted" in str(e.value)
    assert str(e.value).endswith(f"delete it and rebuild it with: {ref.command}")


def test_the_metaworld_gain_warning_stays_out_of_the_output():
    code = (
        "import numpy as np, tasks; from metaworld.policies.policy import move; "
        "move(np.zeros(3), np.ones(3), p=10.0); print('moved')"
    )
    r = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0 and "moved" in r.stdout, r.stderr
    assert "may be too high" not in r.stderr, r.stderr


def test_help_and_list_say_what_is_valid(capsys):
    for main in (suite_run.main, pretrain.main, figures.main):
        with pytest.raises(SystemExit):
            main(["--help"])
        out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        assert "``" not in out, out
        if main is pretrain.main:
            assert "(default: codec small 3000" in out and "default: small 32" in out, out
        if main is suite_run.main:
            assert "--methods METHOD [METHOD ...] these methods (default: the suite's)" in out, out
            assert "--tasks TASK [TASK ...] only these of the suite's tasks" in out, out
            assert "--seeds SEED [SEED ...] these seeds" in out, out
    assert suite_run.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "    methods: sparse rnd amp" in out and "    tasks:   " in out and "default profile quick" in out
