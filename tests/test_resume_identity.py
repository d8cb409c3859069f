"""A resume never changes what a run means, on a real smoke run: a checkpoint carries the config it was made
under, so deleting ``config.json`` does not let it resume under another budget; a truncated replay episode
costs that episode, named, never the checkpoint; the thread count is part of the run; and a budget too
short to train, or an empty ``$VRB_DATA_ROOT``, is refused at launch in one line.

One real run serves every test (``interrupted``): ``python -m suites.run --suite smoke --methods sparse
--frames 400 --threads 1``'s run, trained by ``suites.train.Trainer`` (which keeps its checkpoints), and
its ``done.json`` removed: a run killed after its last checkpoint, before it could say it was done. Each
test works on a copy.
"""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from common.io import data_root
from common.runs import CONFIG_FILE, DONE_FILE, EVAL_FILE, REPLAY_DIR, TRAIN_FILE, list_checkpoints
from suites import run as suite_run
from suites import train
from suites.plan import expand, min_frames

FRAMES = 400  # the smoke profile's seed frames: the shortest run the launch accepts
CLI = ["--suite", "smoke", "--methods", "sparse", "--no-figures", "--jobs", "1"]


def _spec(results: Path, frames: int = FRAMES, threads: int | None = 1):
    """The run ``suites.run`` plans for ``CLI`` with this budget and ``--threads``."""
    [spec] = expand("smoke", methods=["sparse"], results=results, frames=frames, torch_threads=threads)
    return spec


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A results folder holding one unfinished smoke run with its checkpoint at frame 400 and its replay."""
    results = tmp_path_factory.mktemp("interrupted")
    spec = _spec(results)
    spec.run_dir.mkdir(parents=True)
    spec.config.write(spec.run_dir)
    trainer = train.Trainer(spec.config, spec.run_dir, log=lambda m: None)
    try:
        trainer.run()
    finally:
        trainer.close()
    (spec.run_dir / DONE_FILE).unlink()
    assert [p.name for p in list_checkpoints(spec.run_dir)] == ["ckpt_0000000400.pt"]
    assert sorted(p.name for p in (spec.run_dir / REPLAY_DIR).iterdir()) == ["ep_000000.npz", "ep_000001.npz"]
    return results


@pytest.fixture
def results(interrupted, tmp_path):
    """A copy of the interrupted run's results folder, for one test to change."""
    return Path(shutil.copytree(interrupted, tmp_path / "results"))


def _refusal(capsys, argv) -> str:
    """The one line ``python -m suites.run`` ends with when it refuses ``argv`` (exit code 2)."""
    with pytest.raises(SystemExit) as e:
        suite_run.main([*CLI, *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def _untouched(run_dir: Path, checkpoint: bytes) -> None:
    """Nothing of the run changed: no training happened, no row and no checkpoint was written."""
    assert [p.name for p in list_checkpoints(run_dir)] == ["ckpt_0000000400.pt"]
    assert list_checkpoints(run_dir)[0].read_bytes() == checkpoint
    assert list(pd.read_csv(run_dir / EVAL_FILE)["frame"]) == [0, 400]
    assert not (run_dir / DONE_FILE).exists()


# ----------------------------------------------------------------------------------------- the budget
def test_a_checkpoint_refuses_another_budget_with_its_config_json_deleted(results, capsys):
    spec = _spec(results)
    checkpoint = list_checkpoints(spec.run_dir)[0]
    before = checkpoint.read_bytes()
    (spec.run_dir / CONFIG_FILE).unlink()

    line = _refusal(capsys, ["--frames", "1000", "--threads", "1", "--results", str(results)])
    assert line.startswith(f"python -m suites.run: error: {spec.run_dir} holds a run of another config"), line
    assert "frames: 400 there, 1000 now" in line and f"recorded in {checkpoint}" in line, line
    assert "relaunch with --frames 400" in line, line

    longer = _spec(results, frames=1000).config
    with pytest.raises(train.ConfigMismatch, match="frames: 400 there, 1000 now"):  # the run itself, too
        train.run(longer, spec.run_dir, log=lambda m: None)
    trainer = train.Trainer(longer, spec.run_dir, log=lambda m: None)  # and the resume, whatever checked first
    try:
        with pytest.raises(train.ConfigMismatch, match="frames: 400 there, 1000 now"):
            trainer.resume()
    finally:
        trainer.close()
    _untouched(spec.run_dir, before)
    assert not (spec.run_dir / CONFIG_FILE).exists()


def test_a_checkpoint_without_a_config_and_no_config_json_is_refused(results):
    """A checkpoint made before checkpoints carried their config cannot tell which run it continues."""
    spec = _spec(results)
    checkpoint = list_checkpoints(spec.run_dir)[0]
    state = torch.load(checkpoint, weights_only=False)
    del state["config"]
    torch.save(state, checkpoint)
    train.check_config(spec.config, spec.run_dir)  # beside its config.json it is checked against that
    (spec.run_dir / CONFIG_FILE).unlink()
    with pytest.raises(train.ConfigMismatch, match=f"checkpoint {checkpoint} records no config"):
        train.check_config(spec.config, spec.run_dir)


# ------------------------------------------------------------------------------------- the replay
def test_a_truncated_replay_episode_is_named_and_the_run_resumes_from_its_checkpoint(results):
    spec = _spec(results)
    bad = spec.run_dir / REPLAY_DIR / "ep_000001.npz"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    rows = pd.read_csv(spec.run_dir / TRAIN_FILE).drop(columns=["time", "fps"])
    logs: list[str] = []
    done = train.run(spec.config, spec.run_dir, log=logs.append)
    warnings = [m for m in logs if m.startswith("warning: replay episode")]
    assert len(warnings) == 1 and f"{bad} is unreadable" in warnings[0], logs
    assert "resumes from" in warnings[0] and "ckpt_0000000400.pt" in warnings[0], warnings
    assert any(m.startswith(f"resumed {spec.run_dir} from frame 400") for m in logs), logs
    assert not any(m.startswith("checkpoint ") or "from scratch" in m for m in logs), logs  # the checkpoint held
    assert done["frame"] == FRAMES
    # the checkpoint's rows are all still there: nothing was trained again
    pd.testing.assert_frame_equal(pd.read_csv(spec.run_dir / TRAIN_FILE).drop(columns=["time", "fps"]), rows)


def test_the_resumed_trainer_holds_every_episode_but_the_bad_one(results):
    spec = _spec(results)
    (spec.run_dir / REPLAY_DIR / "ep_000000.npz").write_bytes(b"not a zip")
    logs: list[str] = []
    trainer = train.Trainer(spec.config, spec.run_dir, log=logs.append)
    try:
        assert trainer.resume()
        assert trainer.frame == FRAMES and trainer.episode == 2
        assert trainer.replay.num_episodes == 1 and trainer.replay.first_held == 1 and trainer.replay.num_added == 2
        assert trainer.replay.num_windows > 0  # training can go on from the episode it kept
    finally:
        trainer.close()
    assert sum("ep_000000.npz is unreadable" in m for m in logs) == 1, logs


# ------------------------------------------------------------------------------------ the threads
def test_another_thread_count_is_refused_naming_both(results, capsys):
    spec = _spec(results)
    before = list_checkpoints(spec.run_dir)[0].read_bytes()
    line = _refusal(capsys, ["--frames", str(FRAMES), "--threads", "2", "--results", str(results)])
    assert "torch_threads: 1 there, 2 now" in line and "relaunch with --threads 1" in line, line
    with pytest.raises(train.ConfigMismatch, match="torch_threads: 1 there, 2 now"):
        train.run(_spec(results, threads=2).config, spec.run_dir, log=lambda m: None)
    (spec.run_dir / CONFIG_FILE).unlink()  # the checkpoint records the count too
    line = _refusal(capsys, ["--frames", str(FRAMES), "--threads", "2", "--results", str(results)])
    assert "torch_threads: 1 there, 2 now" in line and "ckpt_0000000400.pt" in line, line
    _untouched(spec.run_dir, before)


def test_a_launch_that_names_no_thread_count_keeps_the_recorded_one(results, tmp_path):
    """So neither --jobs (GPU runs default to cores / jobs) nor another launcher's default changes it."""
    spec = _spec(results)
    unasked = _spec(results, threads=None).config
    assert train.launch_config(unasked, spec.run_dir).torch_threads == 1
    (spec.run_dir / CONFIG_FILE).unlink()
    assert train.launch_config(unasked, spec.run_dir).torch_threads == 1  # from the checkpoint
    assert train.launch_config(unasked, tmp_path / "new_run").torch_threads is None  # the launcher's to pick


# ----------------------------------------------------------------------------------- at the launch
def test_a_budget_below_the_seed_frames_is_refused_with_the_minimum(tmp_path, capsys):
    results = tmp_path / "results"
    assert min_frames(_spec(results).config) == FRAMES
    line = _refusal(capsys, ["--frames", "10", "--threads", "1", "--results", str(results)])
    assert line == (
        "python -m suites.run: error: a budget of 10 frames is below the minimum of 400 for reach (smoke "
        "profile): the agent does not update before its 400 seed frames (num_seed_frames) and a run is whole "
        "episodes of 200 frames; pass --frames 400 or more"
    )
    line = _refusal(capsys, ["--frames", "399", "--threads", "1", "--results", str(results)])
    assert "a budget of 399 frames is below the minimum of 400" in line
    assert not results.exists()


def test_an_empty_data_root_variable_is_an_error_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VRB_DATA_ROOT", "")
    with pytest.raises(ValueError, match=r"^\$VRB_DATA_ROOT is set but empty"):
        data_root()
    assert data_root(tmp_path) == tmp_path  # --data-root still wins
    line = _refusal(capsys, ["--frames", str(FRAMES), "--results", str(tmp_path / "results")])
    assert line == (
        "python -m suites.run: error: $VRB_DATA_ROOT is set but empty: set it to your data directory, "
        "unset it to use ./data, or pass --data-root DIR"
    )
    assert not (tmp_path / "results").exists()
