"""ReplayBuffer: n-step targets by hand, episode boundaries, FIFO eviction, checkpoint round trip, episode store."""

from __future__ import annotations

import io
import os
import tracemalloc

import numpy as np
import pytest
import torch

from agents import ReplayBuffer
from agents.replay import nstep_returns

OBS = (3, 8, 8)


def tagged_episode(tag: int, length: int, action_dim: int = 2, rewards=None, discounts=None):
    """Frame i of the episode is filled with ``tag + i``, so a sampled frame tells where it came from."""
    frames = (tag + np.arange(length + 1, dtype=np.int64)).astype(np.uint8)
    frames = np.broadcast_to(frames[:, None, None, None], (length + 1, *OBS)).copy()
    actions = np.stack([np.full(action_dim, tag + i, np.float32) for i in range(length)])
    rewards = np.arange(length, dtype=np.float32) if rewards is None else np.asarray(rewards, np.float32)
    discounts = np.ones(length, np.float32) if discounts is None else np.asarray(discounts, np.float32)
    return frames, actions, rewards, discounts


def test_nstep_returns_by_hand_with_terminal():
    r = np.array([1, 2, 3, 4, 5], np.float32)
    d = np.array([1, 1, 1, 1, 0], np.float32)  # terminal at the last step
    reward, discount = nstep_returns(r, d, nstep=3, gamma=0.9)
    np.testing.assert_allclose(
        reward, [1 + 0.9 * 2 + 0.81 * 3, 2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4 + 0.81 * 5], rtol=1e-6
    )
    np.testing.assert_allclose(discount, [0.729, 0.729, 0.0], rtol=1e-6)
    # a zero discount in the middle of a window cuts the later rewards and the bootstrap
    reward, discount = nstep_returns(r, np.array([1, 0, 1, 1, 1], np.float32), nstep=3, gamma=0.9)
    np.testing.assert_allclose(reward, [1 + 0.9 * 2, 2, 3 + 0.9 * 4 + 0.81 * 5], rtol=1e-6)
    np.testing.assert_allclose(discount, [0.0, 0.0, 0.729], rtol=1e-6)


def test_sample_shapes_and_nstep_values():
    rb = ReplayBuffer(100, OBS, 2, nstep=3, gamma=0.9, seed=0)
    r = np.array([1, 2, 3, 4, 5], np.float32)
    rb.add_episode(*tagged_episode(0, 5, rewards=r, discounts=[1, 1, 1, 1, 0]))
    assert len(rb) == 5 and rb.num_windows == 3
    batch = rb.sample(64)
    assert batch["obs"].shape == (64, *OBS) and batch["obs"].dtype == torch.uint8
    assert batch["next_obs"].shape == (64, *OBS) and batch["next_obs"].dtype == torch.uint8
    assert batch["action"].shape == (64, 2) and batch["action"].dtype == torch.float32
    assert batch["reward"].shape == (64,) and batch["discount"].shape == (64,)
    t = batch["obs"][:, 0, 0, 0].long().numpy()
    assert set(t.tolist()) == {0, 1, 2}  # every valid start is drawn, no other
    np.testing.assert_array_equal(batch["next_obs"][:, 0, 0, 0].long().numpy(), t + 3)
    np.testing.assert_array_equal(batch["action"][:, 0].numpy(), t)
    expected_r = np.array([5.23, 7.94, 10.65])[t]
    expected_d = np.array([0.729, 0.729, 0.0])[t]
    np.testing.assert_allclose(batch["reward"].numpy(), expected_r, rtol=1e-5)
    np.testing.assert_allclose(batch["discount"].numpy(), expected_d, rtol=1e-5, atol=1e-7)


def test_windows_never_cross_episodes():
    rb = ReplayBuffer(1000, OBS, 2, nstep=3, gamma=0.99, seed=1)
    lengths = {0: 7, 50: 4, 100: 12, 150: 3}
    for tag, length in lengths.items():
        rb.add_episode(*tagged_episode(tag, length))
    rb.add_episode(*tagged_episode(200, 2))  # shorter than nstep: stored, never a window start
    assert len(rb) == 7 + 4 + 12 + 3 + 2
    assert rb.num_windows == 5 + 2 + 10 + 1
    batch = rb.sample(2000)
    obs = batch["obs"][:, 0, 0, 0].long().numpy()
    nxt = batch["next_obs"][:, 0, 0, 0].long().numpy()
    tag, t = (obs // 50) * 50, obs % 50
    assert np.all(nxt == obs + 3)  # same episode, n steps later
    for k, length in lengths.items():
        drawn = set(t[tag == k].tolist())
        assert drawn == set(range(length - 3 + 1)), (k, drawn)
    assert 200 not in set(tag.tolist())


def test_fifo_eviction_by_transitions():
    rb = ReplayBuffer(10, OBS, 2, nstep=1, gamma=0.99, seed=0)
    for tag in (0, 50, 100):
        rb.add_episode(*tagged_episode(tag, 4))
    assert len(rb) == 8 and rb.num_episodes == 2  # the first episode was dropped to fit the third
    tags = set((rb.sample(500)["obs"][:, 0, 0, 0].long() // 50 * 50).tolist())
    assert tags == {50, 100}
    rb.add_episode(*tagged_episode(150, 10))  # fills the buffer alone
    assert len(rb) == 10 and rb.num_episodes == 1
    with pytest.raises(ValueError, match="capacity"):
        rb.add_episode(*tagged_episode(0, 11))


def test_state_round_trip_gives_identical_samples():
    rb = ReplayBuffer(50, OBS, 2, nstep=3, gamma=0.97, seed=3)
    rng = np.random.default_rng(0)
    for tag in (0, 40, 80, 120, 160):
        rb.add_episode(*tagged_episode(tag, 12, rewards=rng.random(12), discounts=rng.random(12) > 0.1))
    assert len(rb) == 48
    rb.sample(7)
    buf = io.BytesIO()
    torch.save(rb.state_dict(), buf)
    buf.seek(0)
    other = ReplayBuffer(50, OBS, 2, nstep=3, gamma=0.97, seed=99)
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert len(other) == len(rb) and other.num_episodes == rb.num_episodes
    for _ in range(3):
        a, b = rb.sample(32), other.sample(32)
        for key in a:
            assert torch.equal(a[key], b[key]), key
    with pytest.raises(ValueError, match="nstep"):
        ReplayBuffer(50, OBS, 2, nstep=2, gamma=0.97).load_state_dict(rb.state_dict())


def test_state_dict_is_compact_and_construction_is_lazy():
    tracemalloc.start()
    rb = ReplayBuffer(1_000_000, (3, 64, 64), 4, nstep=3, gamma=0.99)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000  # nothing like the 12 GB of a full buffer is reserved up front
    rb.add_episode(np.zeros((6, 3, 64, 64), np.uint8), np.zeros((5, 4)), np.zeros(5), np.ones(5))
    state = rb.state_dict()  # no store: the arrays are inline
    assert sum(f.numel() for f in state["episodes"]["frames"]) == 6 * 3 * 64 * 64  # each frame once, filled part only


def test_bad_inputs_raise_clear_errors():
    rb = ReplayBuffer(100, OBS, 2, nstep=3, gamma=0.99)
    with pytest.raises(ValueError, match="nothing to sample"):
        rb.sample(4)
    frames, actions, rewards, discounts = tagged_episode(0, 5)
    with pytest.raises(ValueError, match="uint8"):
        rb.add_episode(frames.astype(np.float32), actions, rewards, discounts)
    with pytest.raises(ValueError, match="actions"):
        rb.add_episode(frames, actions[:4], rewards, discounts)
    with pytest.raises(ValueError, match="rewards"):
        rb.add_episode(frames, actions, rewards[:, None], discounts)
    with pytest.raises(ValueError, match="NaN"):
        rb.add_episode(frames, actions, np.full(5, np.nan), discounts)
    with pytest.raises(ValueError, match="obs_shape"):
        ReplayBuffer(100, (8, 8), 2)


# ------------------------------------------------------------------------------------- episode store
def _saved(state) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _random_episode(rng, length, obs=OBS):
    return (
        rng.integers(0, 256, (length + 1, *obs), dtype=np.uint8),
        rng.uniform(-1, 1, (length, 2)),
        rng.normal(size=length),
        (rng.random(length) > 0.1).astype(np.float32),
    )


def test_store_writes_each_episode_once_compressed_and_readable(tmp_path):
    old_umask = os.umask(0o022)
    try:
        rb = ReplayBuffer(100, (3, 16, 16), 2, nstep=3, gamma=0.99, seed=0, store=tmp_path / "replay")
        frames = np.zeros((21, 3, 16, 16), np.uint8)  # a blank scene compresses far below its raw size
        frames[:, :, 4:8, 4:8] = 200
        ep = (frames, np.ones((20, 2)), np.arange(20), np.ones(20))
        rb.add_episode(*ep)
        rb.add_episode(*ep)
    finally:
        os.umask(old_umask)
    files = sorted(p.name for p in (tmp_path / "replay").iterdir())
    assert files == ["ep_000000.npz", "ep_000001.npz"]  # no temp file left behind
    path = tmp_path / "replay" / "ep_000001.npz"
    assert path.stat().st_size < frames.nbytes / 4
    assert path.stat().st_mode & 0o777 == 0o644
    with np.load(path) as z:
        np.testing.assert_array_equal(z["frames"], frames)
        assert z["frames"].dtype == np.uint8 and z["rewards"].dtype == np.float32
        np.testing.assert_array_equal(z["rewards"], np.arange(20, dtype=np.float32))
        assert sorted(z.files) == ["actions", "discounts", "frames", "rewards"]


def test_checkpoint_size_does_not_grow_with_the_replay(tmp_path):
    rng = np.random.default_rng(0)
    rb = ReplayBuffer(10_000, OBS, 2, nstep=3, gamma=0.99, seed=0, store=tmp_path)
    rb.add_episode(*_random_episode(rng, 50))
    small = _saved(rb.state_dict())
    for _ in range(40):
        rb.add_episode(*_random_episode(rng, 50))
    big = _saved(rb.state_dict())
    assert len(rb) == 41 * 50
    assert len(big) < 3000 and abs(len(big) - len(small)) < 64, (len(small), len(big))
    assert torch.load(io.BytesIO(big), weights_only=True)["num_added"] == 41


def test_resume_from_the_store_after_a_crash_samples_as_an_uninterrupted_run(tmp_path):
    """Eviction on, a checkpoint mid-run, more episodes written by the 'crashed' process after it: the
    resumed buffer deletes those files, writes them again and draws exactly the uninterrupted samples."""
    rng = np.random.default_rng(1)
    episodes = [_random_episode(rng, int(n)) for n in rng.integers(3, 15, size=16)]
    whole = ReplayBuffer(60, OBS, 2, nstep=3, gamma=0.97, seed=5, store=tmp_path / "whole")
    crashed = ReplayBuffer(60, OBS, 2, nstep=3, gamma=0.97, seed=5, store=tmp_path / "run")
    expected = []
    for ep in episodes:
        whole.add_episode(*ep)
        expected.append(whole.sample(8))
    for i, ep in enumerate(episodes):
        crashed.add_episode(*ep)
        crashed.sample(8)
        if i == 9:
            state = torch.load(io.BytesIO(_saved(crashed.state_dict())), weights_only=True)
        if i == 12:
            break  # killed: files 10..12 exist past the checkpoint, and a torn temp file
    assert state["first_held"] > 0  # eviction happened before the checkpoint
    (tmp_path / "run" / ".ep_000013.npz.abc.tmp").write_bytes(b"torn")
    resumed = ReplayBuffer(60, OBS, 2, nstep=3, gamma=0.97, seed=123, store=tmp_path / "run")
    resumed.load_state_dict(state)
    assert resumed.num_added == 10 and len(resumed) == state["num_transitions"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [f"ep_{i:06d}.npz" for i in range(10)]
    for i, ep in enumerate(episodes[10:], start=10):
        resumed.add_episode(*ep)
        got = resumed.sample(8)
        for key in got:
            assert torch.equal(got[key], expected[i][key]), (i, key)
    assert resumed.first_held == whole.first_held and len(resumed) == len(whole)


def test_prune_and_truncate_only_touch_what_no_checkpoint_needs(tmp_path):
    rng = np.random.default_rng(2)
    rb = ReplayBuffer(20, OBS, 2, nstep=1, gamma=0.99, seed=0, store=tmp_path)
    for _ in range(6):
        rb.add_episode(*_random_episode(rng, 8))
    assert rb.first_held == 4 and rb.num_episodes == 2
    assert rb.prune_store(2) == 2  # episodes 0, 1
    assert rb.prune_store(99) == 2  # clamped to the oldest held: 2, 3 go, 4 and 5 stay
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep_000004.npz", "ep_000005.npz"]
    assert rb.truncate_store(5) == 1 and [p.name for p in tmp_path.iterdir()] == ["ep_000004.npz"]


def test_bad_store_states_raise_clear_errors(tmp_path):
    rng = np.random.default_rng(3)
    rb = ReplayBuffer(100, OBS, 2, nstep=3, gamma=0.99, seed=0, store=tmp_path / "a")
    for _ in range(3):
        rb.add_episode(*_random_episode(rng, 5))
    state = rb.state_dict()
    with pytest.raises(ValueError, match="format 1"):
        ReplayBuffer(100, OBS, 2, nstep=3, gamma=0.99, store=tmp_path / "a").load_state_dict(
            {k: v for k, v in state.items() if k != "format"}
        )
    with pytest.raises(ValueError, match="no store"):
        ReplayBuffer(100, OBS, 2, nstep=3, gamma=0.99).load_state_dict(state)
    with pytest.raises(ValueError, match="rebuild"):  # a smaller capacity cannot hold what the state holds
        ReplayBuffer(9, OBS, 2, nstep=3, gamma=0.99, store=tmp_path / "a").load_state_dict(
            {**state, "num_added": 1, "first_held": 0, "num_transitions": 999}
        )


def test_a_missing_or_truncated_episode_file_costs_that_episode_only(tmp_path):
    """The load names the bad files and holds every other episode; the state it then saves records what it
    lacks, so the next load looks for nothing it cannot find, and sampling goes on from the others."""
    rng = np.random.default_rng(4)
    rb = ReplayBuffer(100, OBS, 2, nstep=3, gamma=0.99, seed=0, store=tmp_path)
    for i in range(4):
        rb.add_episode(*tagged_episode(50 * i, 6))
    state = rb.state_dict()
    (tmp_path / "ep_000000.npz").unlink()
    data = (tmp_path / "ep_000002.npz").read_bytes()
    (tmp_path / "ep_000002.npz").write_bytes(data[: len(data) // 2])
    resumed = ReplayBuffer(100, OBS, 2, nstep=3, gamma=0.99, seed=1, store=tmp_path)
    resumed.load_state_dict(state)
    assert [(p.name, why.split(":")[0]) for p, why in resumed.dropped_files] == [
        ("ep_000000.npz", "missing"),
        ("ep_000002.npz", "BadZipFile"),
    ]
    assert resumed.num_episodes == 2 and len(resumed) == 12 and resumed.first_held == 1 and resumed.dropped == [2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep_000001.npz", "ep_000003.npz"]
    tags = set(resumed.sample(64)["obs"][:, 0, 0, 0].long().numpy().tolist())
    assert tags <= set(range(50, 54)) | set(range(150, 154)) and len(tags) > 2  # episodes 1 and 3 only
    resumed.add_episode(*_random_episode(rng, 6))
    assert resumed.episode_path(4).exists()  # indices go on where the run's episodes are
    again = ReplayBuffer(100, OBS, 2, nstep=3, gamma=0.99, store=tmp_path)
    again.load_state_dict(resumed.state_dict())
    assert again.dropped_files == [] and again.num_episodes == 3 and again.dropped == [2]
