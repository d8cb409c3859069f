"""ReplayBuffer: n-step targets by hand, episode boundaries, FIFO eviction, checkpoint round trip."""
from __future__ import annotations

import io
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
    np.testing.assert_allclose(reward, [1 + 0.9 * 2 + 0.81 * 3, 2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4 + 0.81 * 5],
                               rtol=1e-6)
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
    state = rb.state_dict()
    assert sum(f.numel() for f in state["frames"]) == 6 * 3 * 64 * 64  # each frame once, filled part only


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
