"""Collection round trip, resume, corruption handling, epsilon-greedy quality, loader errors."""

import json

import numpy as np
import pytest

import tasks
from tasks import collect as collect_mod
from tasks import datasets as ds


@pytest.fixture(scope="module")
def reach_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    collect_mod.collect(
        "metaworld", ["reach"], episodes=3, epsilons=[1.0], eps_episodes=3, root=root, show_progress=False
    )
    return root


def test_round_trip(reach_dataset):
    train = ds.load_episodes("metaworld", ["reach"], root=reach_dataset)
    test = ds.load_episodes("metaworld", ["reach"], split="test", root=reach_dataset)
    assert (len(train), len(test)) == (2, 1)
    ep = train[0]
    t = ep.length
    assert ep.frames.shape == (t + 1, 3, 64, 64) and ep.frames.dtype == np.uint8
    assert ep.actions.shape == (t, 4) and ep.rewards.shape == (t,) and ep.successes.dtype == bool
    assert ep.success and ep.meta["task"] == "reach" and ep.meta["camera"] == "corner2"
    assert ep.meta["split"] == "train" and ep.meta["epsilon"] == 0.0 and ep.meta["format"] == ds.FORMAT
    # the stored episode is the env's: replaying its seed and actions reproduces its frames

    env = tasks.make("reach")
    try:
        first = env.reset(seed=ep.meta["seed"])[0]
        np.testing.assert_array_equal(first, ep.frames[0])
        np.testing.assert_array_equal(env.step(ep.actions[0])[0], ep.frames[1])
    finally:
        env.close()
    windows = ds.frame_windows(train, 3)
    assert windows.shape == (sum(e.length - 1 for e in train), 3, 3, 64, 64)
    np.testing.assert_array_equal(windows[1], ep.frames[1:4])
    assert (reach_dataset / "datasets" / "metaworld" / "contact_sheet.png").stat().st_size > 1000


def test_expert_clips_end_at_their_first_success(reach_dataset):
    """docs/protocol.md#expert-and-epsilon-greedy-videos: an expert video ends at its first success frame
    (inclusive); epsilon-greedy
    videos keep the full horizon."""
    experts = ds.load_episodes("metaworld", ["reach"], root=reach_dataset) + ds.load_episodes(
        "metaworld", ["reach"], split="test", root=reach_dataset
    )
    for ep in experts:
        assert np.flatnonzero(ep.successes).tolist() == [ep.length - 1]
        assert ep.meta["first_success"] == ep.length < tasks_spec("reach").horizon
    noisy = ds.load_episodes("metaworld", ["reach"], kind=ds.eps_kind(1.0), root=reach_dataset)
    assert all(ep.length == tasks_spec("reach").horizon for ep in noisy)


def tasks_spec(name):
    return tasks.spec(name)


def test_an_episode_without_success_is_no_expert_clip():
    t = 5
    ep = ds.Episode(
        np.zeros((t + 1, 3, 64, 64), np.uint8),
        np.zeros((t, 4), np.float32),
        np.zeros(t, np.float32),
        np.zeros(t, bool),
        {"task": "reach", "seed": 7},
    )
    with pytest.raises(ValueError, match="never succeeds"):
        ds.clip_at_first_success(ep)
    ep.successes[[2, 4]] = True
    clip = ds.clip_at_first_success(ep)
    assert clip.length == 3 and clip.frames.shape[0] == 4 and clip.meta["first_success"] == 3


def test_old_format_is_refused_and_rerecorded(reach_dataset):
    """A file recorded under the old rule (no format field: full-horizon experts) is an error that names
    the command, and resuming collection re-records it."""
    victim = ds.episode_path(ds.episode_dir("metaworld", "reach", split="test", root=reach_dataset), 0)
    good = ds.read_episode(victim)
    old_meta = {k: v for k, v in good.meta.items() if k != "format"}
    with open(victim, "wb") as f:
        np.savez_compressed(
            f,
            frames=good.frames,
            actions=good.actions,
            rewards=good.rewards,
            successes=good.successes,
            meta=np.array(json.dumps(old_meta)),
        )
    with pytest.raises(
        ds.OutdatedEpisodeError,
        match=f"format 1.*python -m tasks.collect --domain metaworld --tasks reach --data-root {reach_dataset}",
    ):
        ds.load_episodes("metaworld", ["reach"], split="test", root=reach_dataset)
    messages = []
    plan = collect_mod.Plan("metaworld", "reach", 3, (1.0,), 3, reach_dataset)
    assert collect_mod.record_task(plan, log=messages.append) == 1
    assert any("format 1" in m and "re-recording" in m for m in messages)
    again = ds.load_episodes("metaworld", ["reach"], split="test", root=reach_dataset)[0]
    np.testing.assert_array_equal(again.frames, good.frames)


@pytest.mark.parametrize("count", ["0", "-3"])
def test_episode_counts_must_be_positive(tmp_path, count, capsys):
    with pytest.raises(SystemExit):
        collect_mod.main(
            ["--domain", "metaworld", "--tasks", "reach", "--episodes", count, "--data-root", str(tmp_path)]
        )
    assert "must be at least 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="episodes must be at least 1"):
        collect_mod.collect("metaworld", ["reach"], episodes=int(count), root=tmp_path, show_progress=False)
    assert not (tmp_path / "datasets").exists()


def test_epsilon_one_succeeds_less_than_the_expert(reach_dataset):
    expert = ds.load_episodes("metaworld", ["reach"], root=reach_dataset)
    noisy = ds.load_episodes("metaworld", ["reach"], kind=ds.eps_kind(1.0), root=reach_dataset)
    assert len(noisy) == 3
    assert np.mean([e.success for e in noisy]) < np.mean([e.success for e in expert]) == 1.0
    assert np.mean([e.rewards.sum() for e in noisy]) < np.mean([e.rewards.sum() for e in expert])


def test_rerun_skips_existing_and_rerecords_corrupted(reach_dataset, capsys):
    plan = collect_mod.Plan("metaworld", "reach", 3, (1.0,), 3, reach_dataset)
    assert collect_mod.record_task(plan) == 0
    victim = ds.episode_path(ds.episode_dir("metaworld", "reach", root=reach_dataset), 1)
    before = ds.read_episode(victim).frames
    victim.write_bytes(b"not a zip file")
    messages = []
    assert collect_mod.record_task(plan, log=messages.append) == 1
    assert any(str(victim) in m and "corrupted" in m for m in messages)
    np.testing.assert_array_equal(ds.read_episode(victim).frames, before)  # same seed, same episode


def test_missing_dataset_names_the_command(tmp_path):
    with pytest.raises(ds.DatasetMissingError, match="python -m tasks.collect --domain adroit --tasks door"):
        ds.load_episodes("adroit", ["door"], root=tmp_path)
    with pytest.raises(FileNotFoundError, match="--epsilon 0.5"):
        ds.load_episodes("metaworld", ["reach"], kind=ds.eps_kind(0.5), root=tmp_path)


def test_bad_names_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="valid domains"):
        collect_mod.collect("dmc", root=tmp_path, show_progress=False)
    with pytest.raises(ValueError, match="not a metaworld task"):
        collect_mod.collect("metaworld", ["door"], root=tmp_path, show_progress=False)
    with pytest.raises(SystemExit):
        collect_mod.main(["--domain", "metaworld", "--tasks", "nope", "--data-root", str(tmp_path)])


def test_a_corrupted_file_names_the_command_that_re_records_it(tmp_path):
    root = tmp_path / "data"
    victim = ds.episode_path(ds.episode_dir("metaworld", "reach", root=root), 0)
    victim.parent.mkdir(parents=True)
    victim.write_bytes(b"truncated")
    with pytest.raises(
        ValueError,
        match=f"corrupted episode file .*re-record with: python -m tasks.collect "
        f"--domain metaworld --tasks reach --data-root {root}",
    ):
        ds.read_episode(victim, root=root)
    noisy = ds.episode_path(ds.episode_dir("metaworld", "reach", kind=ds.eps_kind(0.5), root=root), 0)
    noisy.parent.mkdir(parents=True)
    noisy.write_bytes(b"")
    with pytest.raises(ValueError, match="--tasks reach --epsilon 0.5"):
        ds.read_episode(noisy, root=root)
