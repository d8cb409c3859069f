"""Collection round trip, resume, corruption handling, epsilon-greedy quality, loader errors."""
import numpy as np
import pytest

from tasks import collect as collect_mod
from tasks import datasets as ds


@pytest.fixture(scope="module")
def reach_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    collect_mod.collect("metaworld", ["reach"], episodes=3, epsilons=[1.0], eps_episodes=3, root=root,
                        show_progress=False)
    return root


def test_round_trip(reach_dataset):
    train = ds.load_episodes("metaworld", ["reach"], root=reach_dataset)
    test = ds.load_episodes("metaworld", ["reach"], split="test", root=reach_dataset)
    assert (len(train), len(test)) == (2, 1)
    ep = train[0]
    assert ep.frames.shape == (101, 3, 64, 64) and ep.frames.dtype == np.uint8
    assert ep.actions.shape == (100, 4) and ep.rewards.shape == (100,) and ep.successes.dtype == bool
    assert ep.success and ep.meta["task"] == "reach" and ep.meta["camera"] == "corner2"
    assert ep.meta["split"] == "train" and ep.meta["epsilon"] == 0.0
    # the stored episode is the env's: replaying its seed and actions reproduces its frames
    import tasks

    env = tasks.make("reach")
    try:
        first = env.reset(seed=ep.meta["seed"])[0]
        np.testing.assert_array_equal(first, ep.frames[0])
        np.testing.assert_array_equal(env.step(ep.actions[0])[0], ep.frames[1])
    finally:
        env.close()
    windows = ds.frame_windows(train, 3)
    assert windows.shape == (2 * 99, 3, 3, 64, 64)
    np.testing.assert_array_equal(windows[1], ep.frames[1:4])
    assert (reach_dataset / "datasets" / "metaworld" / "contact_sheet.png").stat().st_size > 1000


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
