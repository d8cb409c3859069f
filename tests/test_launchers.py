"""Launchers: the submitit job path (submitit's local executor: real subprocess jobs), the registry and
the error texts. The local launcher is covered by test_suites.py (end to end) and test_faults.py (faults)."""

import json
import os
import shutil

import pandas as pd
import pytest

from suites import run as suite_run
from suites.launch import LAUNCHERS, make_launcher

submitit = pytest.importorskip("submitit")


def test_submitit_local_runs_a_suite_as_jobs_and_a_second_launch_redoes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    args = [
        "--suite",
        "smoke",
        "--methods",
        "sparse",
        "--frames",
        "600",
        "--results",
        str(results),
        "--launcher",
        "submitit-local",
        "--slurm-cpus",
        "1",
        "--no-figures",
    ]
    assert suite_run.main(args) == 0
    suite_dir = results / "smoke"
    run_dir = suite_dir / "sparse" / "reach" / "seed_0"
    assert json.loads((run_dir / "done.json").read_text())["frame"] == 600
    assert list(pd.read_csv(run_dir / "eval.csv")["frame"]) == [0, 600]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["torch_threads"] == 1  # --slurm-cpus is the run's thread count
    # the run and the preparation ran as submitit jobs, each with its own logs and result
    jobs = sorted(suite_dir.glob("slurm/*_submitted.pkl"))
    assert len(jobs) == 2, jobs
    assert len(list(suite_dir.glob("slurm/*_result.pkl"))) == 2
    assert set(pd.read_csv(suite_dir / "scores.csv")["method"]) == {"sparse"}
    assert "submitit-local launcher" in capsys.readouterr().out

    mtime = (run_dir / "eval.csv").stat().st_mtime
    assert suite_run.main(args) == 0
    assert (run_dir / "eval.csv").stat().st_mtime == mtime


def test_submitit_call_runs_elsewhere_and_reraises_the_jobs_error(tmp_path):
    launcher = make_launcher("submitit-local", 1, folder=tmp_path / "jobs", cpus=1)
    assert launcher.call(os.getpid) != os.getpid()
    with pytest.raises(submitit.core.utils.FailedJobError, match="invalid literal"):
        launcher.call(int, "not a number")


def test_bad_slurm_settings_list_the_valid_names(tmp_path):
    with pytest.raises(ValueError, match=r"bad --slurm-param.*'bogus'.*Valid arguments:.*partition"):
        make_launcher("submitit-local", 1, folder=tmp_path, slurm={"bogus": "1"})
    with pytest.raises(SystemExit):
        suite_run.main(
            ["--suite", "smoke", "--launcher", "submitit-local", "--slurm-param", "novalue", "--results", str(tmp_path)]
        )


def test_unknown_launcher_lists_the_valid_ones(capsys):
    with pytest.raises(ValueError, match="valid launchers: local, slurm, submitit-local"):
        make_launcher("pbs")
    with pytest.raises(SystemExit):
        suite_run.main(["--suite", "smoke", "--launcher", "pbs"])
    err = capsys.readouterr().err
    assert all(name in err for name in LAUNCHERS)


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has Slurm")
def test_slurm_launcher_without_slurm_says_what_to_use(tmp_path, capsys):
    with pytest.raises(SystemExit):
        suite_run.main(["--suite", "smoke", "--launcher", "slurm", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert "no sbatch" in err and "--launcher local" in err
    assert not (tmp_path / "smoke").exists()  # nothing was started


def test_threads_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        suite_run.main(["--suite", "smoke", "--threads", "0"])
    assert "--threads must be >= 1" in capsys.readouterr().err
