"""Runs never mix silently and outputs are readable by others.

A run directory holds one config: relaunching on it with another budget or profile is an error naming the
keys, whether the run finished or not; impossible budgets and seeds are refused before anything runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from common.io import atomic_save_npz, atomic_torch_save, atomic_write_json, atomic_write_text, current_umask
from common.runs import ADDED_KEYS, RunConfig, find_results
from suites import run as suite_run
from suites import train
from suites.plan import expand


def _spec(tmp_path, frames=1000, **kw):
    [spec] = expand("smoke", methods=["sparse"], results=tmp_path / "results", frames=frames, torch_threads=1, **kw)
    return spec


def _finished(spec):
    """A run directory as a finished run leaves it (config.json and done.json), without running it."""
    spec.config.write(spec.run_dir)
    atomic_write_json(spec.run_dir / "done.json", {"frame": spec.config.frames, "episodes": 10})


# ------------------------------------------------------------------------------------ config mismatches
def test_a_finished_run_with_another_budget_is_refused_not_skipped(tmp_path):
    _finished(_spec(tmp_path, frames=1000))
    with pytest.raises(train.ConfigMismatch) as e:
        train.run(_spec(tmp_path, frames=3000).config, _spec(tmp_path).run_dir)
    msg = str(e.value)
    assert "frames" in msg and "1000" in msg and "3000" in msg and "(finished)" in msg
    assert "--results" in msg and "delete" in msg  # the ways out
    # the same config is still a skip
    assert train.run(_spec(tmp_path, frames=1000).config, _spec(tmp_path).run_dir)["skipped"] == "done"


def test_nested_differences_are_named_with_their_path(tmp_path):
    spec = _spec(tmp_path)
    _finished(spec)
    other = json.loads(json.dumps(spec.config.as_dict()))
    other["agent"]["batch_size"] += 1
    other["profile"] = "quick"
    with pytest.raises(train.ConfigMismatch, match=r"agent\.batch_size, profile differ"):
        train.run(other, spec.run_dir)
    del other["agent"]["batch_size"]  # a key one side lacks is a difference too
    with pytest.raises(train.ConfigMismatch, match="<absent>"):
        train.check_config(other, spec.run_dir)


def test_launch_keys_may_change_and_data_root_or_versions_warn(tmp_path):
    spec = _spec(tmp_path)
    _finished(spec)
    moved = {
        **spec.config.as_dict(),
        "device": "cpu",
        "wandb": "offline",
        "data_root": "/elsewhere",
        "versions": {**spec.config.versions, "torch": "0.0.1"},
    }
    logs = []
    train.check_config(moved, spec.run_dir, logs.append)
    assert len(logs) == 1 and "data_root" in logs[0] and "versions.torch" in logs[0] and "warning" in logs[0]
    logs.clear()
    train.check_config({**spec.config.as_dict(), "device": "cpu"}, spec.run_dir, logs.append)
    assert logs == []


def test_the_cli_refuses_another_budget_on_a_finished_run_before_preparing_anything(tmp_path, capsys):
    spec = _spec(tmp_path, frames=1000)
    _finished(spec)
    argv = ["--suite", "smoke", "--methods", "sparse", "--results", str(tmp_path / "results"), "--threads", "1"]
    with pytest.raises(SystemExit) as e:
        suite_run.main([*argv, "--frames", "500"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "frames" in err and "500" in err and "--results" in err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--frames", "0"], "--frames must be a positive number of frames, got 0"),
        (["--frames", "-5"], "--frames must be a positive number of frames, got -5"),
        (["--seeds", "0", "-1"], "--seeds must be whole numbers >= 0, got 0 -1"),
    ],
)
def test_the_cli_refuses_impossible_budgets_and_seeds(argv, expected, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        suite_run.main(["--suite", "smoke", "--results", str(tmp_path), *argv])
    assert e.value.code == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "smoke").exists()


@pytest.mark.parametrize("frames", [0, -5, 1.5, None, True])
def test_train_run_refuses_a_config_without_a_positive_budget(frames, tmp_path):
    spec = _spec(tmp_path)
    with pytest.raises(ValueError, match="'frames' must be a positive whole number"):
        train.run({**spec.config.as_dict(), "frames": frames}, spec.run_dir)
    assert not spec.run_dir.exists()  # refused before anything is written


def test_train_run_refuses_a_negative_seed(tmp_path):
    spec = _spec(tmp_path)
    with pytest.raises(ValueError, match="'seed' must be a whole number >= 0"):
        train.run({**spec.config.as_dict(), "seed": -1}, spec.run_dir)


# ------------------------------------------------------------------------------ the config's schema
REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
SHIPPED = REFERENCE / "metaworld7-quick" / "metaworld7" / "diffusion_reward" / "reach" / "seed_0"
#: shipped before precision_requested existed (bf16 asked for and run, before "auto")
BEFORE_AUTO = REFERENCE / "pilots" / "metaworld7" / "dense" / "reach" / "seed_0"


def test_a_shipped_config_round_trips_byte_for_byte(tmp_path):
    """A shipped config is read and written back unchanged, but for the keys added since it was written
    (``dense_reward``), which the upgrade fills with the value it ran under."""
    config = RunConfig.load(SHIPPED)
    assert config.task == "reach" and config.seed == 0 and config.agent["precision"] == config.precision
    shipped = json.loads((SHIPPED / "config.json").read_text())
    written = json.loads(config.write(tmp_path).read_text())
    assert set(written) - set(shipped) == {"dense_reward", "reward_quality"} and written["dense_reward"] == "env"
    assert {k: written[k] for k in shipped} == shipped
    assert (tmp_path / "config.json").read_text() == json.dumps(written, indent=2, sort_keys=True) + "\n"
    assert RunConfig.from_dict(config.as_dict()) == config


def test_a_new_config_has_the_keys_of_the_shipped_ones(tmp_path):
    """What suites.plan writes today compares key for key with the reference runs (``check_config``,
    ``analysis.consistency``): every shipped run made since the last key was added has exactly these."""
    written = set(_spec(tmp_path).config.as_dict())
    assert written == set(RunConfig.keys())
    shipped = [
        json.loads((run / "config.json").read_text())
        for results in (REFERENCE / "metaworld7-quick", REFERENCE / "metaworld_unseen-quick")
        for run in find_results(results).values()
    ]
    # runs recorded their dense-reward rule only from when the Adroit rule changed; MetaWorld's is "env"
    assert len(shipped) >= 40 and all(set(c) | {"dense_reward", "reward_quality"} == written for c in shipped)


def test_an_old_config_gets_the_values_in_force_then_not_today_s_defaults():
    before_auto = RunConfig.load(BEFORE_AUTO)
    assert "precision_requested" not in json.loads((BEFORE_AUTO / "config.json").read_text())
    assert before_auto.precision == before_auto.precision_requested == "bf16"  # not DEFAULT_PRECISION ("auto")
    first = json.loads((SHIPPED / "config.json").read_text())
    for key in (*ADDED_KEYS, "precision_requested"):
        first.pop(key, None)  # reward_quality came after this config was written
    del first["agent"]["precision"]
    old = RunConfig.from_dict(first)  # as the first runner wrote it
    assert (old.zero_shot, old.pretrain_steps, old.expert_episodes, old.model_reports) == (False, None, None, True)
    assert old.precision == old.precision_requested == old.agent["precision"] == "fp32"


def test_a_run_without_a_video_model_reads_as_having_no_pretraining_budget():
    """Runs used to record their profile's pretraining steps whatever their reward; only a video reward's
    (the providers the planner gives a model ``preset``) means anything, so only theirs is kept."""
    config = json.loads((SHIPPED / "config.json").read_text())
    sparse = {**config, "provider": "sparse", "provider_overrides": {}, "pretrain_steps": 1000}
    video = {**config, "provider": "viper_std", "provider_overrides": {"preset": "small"}, "pretrain_steps": 1000}
    assert RunConfig.from_dict(sparse).pretrain_steps is None
    assert RunConfig.from_dict(video).pretrain_steps == 1000


def test_a_config_with_unknown_or_missing_keys_is_refused_naming_the_valid_ones():
    config = json.loads((SHIPPED / "config.json").read_text())
    with pytest.raises(ValueError, match=r"unknown keys batch_size; valid keys: suite, zero_shot, method"):
        RunConfig.from_dict({**config, "batch_size": 4})
    with pytest.raises(ValueError, match=r"missing keys dense_reward, task; valid keys: .*versions"):
        RunConfig.from_dict({k: v for k, v in config.items() if k != "task"})


# --------------------------------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_take_the_umask_mode(umask, mode, tmp_path):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        paths = [
            atomic_write_text(tmp_path / "a.txt", "x"),
            atomic_write_json(tmp_path / "b.json", {"a": 1}),
            atomic_save_npz(tmp_path / "c.npz", x=[1, 2]),
            atomic_torch_save(tmp_path / "d.pt", {"a": 1}),
            atomic_write_text(tmp_path / "a.txt", "replaced"),
        ]
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in paths} == {oct(mode)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.npz", "d.pt"]
