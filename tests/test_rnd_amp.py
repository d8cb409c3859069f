"""The built-in providers sparse, rnd and amp on real MetaWorld frames: shapes, learning, checkpoints."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch

import rewards
import tasks
from rewards.amp import amp_reward, gradient_penalty
from tasks.datasets import Episode, episode_dir, episode_path, save_episode

DEVICE = "cpu"  # the providers take any torch device; tests stay on the CPU


def render_episode(task: str, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A real episode of random actions: frames uint8 ``[steps+1, 3, 64, 64]``, env rewards ``[steps]``."""
    env = tasks.make(task, seed=seed)
    try:
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        frames, rews = [obs], []
        for _ in range(steps):
            obs, r, *_ = env.step(env.action_space.sample())
            frames.append(obs)
            rews.append(r)
    finally:
        env.close()
    return np.stack(frames), np.asarray(rews, np.float32)


@pytest.fixture(scope="module")
def reach():
    return render_episode("reach", 39, seed=0)  # 40 frames


@pytest.fixture(scope="module")
def door():
    return render_episode("door-close", 39, seed=1)


def as_batch(frames: np.ndarray) -> dict[str, torch.Tensor]:
    """A batch whose o_t and o_{t+n} are the same frames (AMP scores obs, RND next_obs)."""
    x = torch.as_tensor(frames).to(DEVICE)
    return {"obs": x, "next_obs": x}


def roundtrip(state):
    """Through torch.save/torch.load, as a checkpoint file would go."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


# ------------------------------------------------------------------------------------------- sparse


def test_sparse_passes_env_reward_through(reach):
    frames, _ = reach
    env_r = np.linspace(0, 2, len(frames) - 1)  # float64 in, float32 out, values unchanged
    r = rewards.make("sparse", task="reach", domain="metaworld", device=DEVICE)
    out = r.label_episode(frames, env_r)
    assert out.dtype == np.float32 and out.shape == (len(frames) - 1,)
    np.testing.assert_allclose(out, env_r, rtol=1e-6)
    assert r.bonus(as_batch(frames)) is None
    assert r.update(as_batch(frames), 0) == {}
    np.testing.assert_array_equal(r.label_episode(frames, np.arange(len(frames) - 1)), np.arange(len(frames) - 1))


@pytest.mark.parametrize("name", ["sparse", "rnd"])
def test_label_episode_rejects_bad_input(name, reach):
    frames, env_r = reach
    r = rewards.make(name, task="reach", domain="metaworld", device=DEVICE)
    cases = [
        (frames.astype(np.float32), env_r, "uint8"),
        (frames.transpose(0, 2, 3, 1), env_r, "channels first"),
        (frames[0], env_r, "[T+1, 3, H, W]"),
        (frames[:1], env_r[:0], "at least 2 frames"),
        (torch.as_tensor(frames), env_r, "numpy uint8 array"),
        (frames, env_r[:-1], "expected shape [T]"),
        (frames, np.full(len(env_r), np.nan), "finite"),
        (frames, np.array(["a"] * len(env_r)), "float array"),
    ]
    for f, e, msg in cases:
        with pytest.raises(ValueError, match=re.escape(msg)):
            r.label_episode(f, e)
    out = r.label_episode(frames, env_r)  # env reward kept (beta = 1), bonus comes at update time
    np.testing.assert_array_equal(out, env_r)


@pytest.mark.parametrize("name", ["rnd", "amp"])
def test_bonus_rejects_bad_batches(name, reach):
    frames, _ = reach
    kw = {"expert_frames": frames} if name == "amp" else {}
    r = rewards.make(name, task="reach", domain="metaworld", device=DEVICE, **kw)
    obs = torch.as_tensor(frames[:4])
    key = "obs" if name == "amp" else "next_obs"  # AMP scores o_t by default (the release)
    for batch, msg in [
        ({key: obs.float()}, "torch.uint8"),
        ({key: frames[:4]}, "torch uint8 tensor"),
        ({"other": obs}, f"key '{key}'"),
        (obs, "a dict"),
        ({key: obs[:, :, :32, :32]}, "64x64"),
        ({key: obs[:, :1]}, r"\[B, 3, H, W\]"),
    ]:
        with pytest.raises(ValueError, match=msg):
            r.bonus(batch)
        with pytest.raises(ValueError, match=msg):
            r.update(batch, 0)


# ---------------------------------------------------------------------------------------------- rnd


def test_rnd_bonus_decreases_with_training_and_target_stays_frozen(reach, door):
    frames, _ = reach
    r = rewards.make("rnd", task="reach", domain="metaworld", device=DEVICE, seed=3)
    assert r.bonus_scale == 1.0 and r.update_interval == 1 and r.nets.flat_dim == 3136
    batch, unseen = as_batch(frames), as_batch(door[0])
    target_before = {k: v.clone() for k, v in r.target.state_dict().items()}
    b0 = r.bonus(batch)
    assert b0.shape == (len(frames),) and b0.dtype == torch.float32
    assert torch.isfinite(b0).all() and (b0 > 0).all()
    u0 = r.bonus(unseen)

    losses = [r.update(batch, step)["rnd_loss"] for step in range(25)]
    b1 = r.bonus(batch)
    assert b1.mean() < 0.5 * b0.mean(), (b0.mean(), b1.mean())
    assert losses[-1] < losses[0]
    for k, v in r.target.state_dict().items():
        assert torch.equal(v, target_before[k]), f"target parameter {k} changed"
    # the bonus stays larger on frames of a task it never trained on (the novelty signal)
    assert r.bonus(unseen).mean() / u0.mean() > b1.mean() / b0.mean()


def test_rnd_update_reuses_the_bonus_forward_with_the_same_numbers(reach, door):
    """The trainer's order, bonus then update on one batch: the update differentiates the forward the bonus
    made (one forward instead of two) and gives bit for bit what a separate forward gives."""
    fused, separate = (rewards.make("rnd", task="reach", domain="metaworld", device=DEVICE, seed=5) for _ in "ab")
    batches = [as_batch(reach[0][i : i + 16]) for i in (0, 16)] + [as_batch(door[0][:16])]
    calls = {"n": 0}
    fused.nets.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    for step in range(6):
        batch = batches[step % 3]
        b_fused = fused.bonus(batch)
        with torch.no_grad():  # no graph kept: the update below runs its own forward
            b_sep = separate.bonus(batch)
        assert torch.equal(b_fused, b_sep) and not b_fused.requires_grad
        assert fused.update(batch, step) == separate.update(batch, step)
    assert calls["n"] == 6  # one forward per bonus + update
    assert all(torch.equal(a, b) for a, b in zip(fused.predictor.parameters(), separate.predictor.parameters()))
    # an update on another batch than the last bonus's runs its own forward (never a stale one)
    fused.bonus(batches[0])
    before = calls["n"]
    fused.update(batches[2], 6), separate.update(batches[2], 6)
    assert calls["n"] == before + 1
    assert all(torch.equal(a, b) for a, b in zip(fused.predictor.parameters(), separate.predictor.parameters()))


def test_rnd_update_interval_by_domain():
    assert rewards.make("rnd", task="door", domain="adroit").update_interval == 100
    r = rewards.make("rnd", task="door", domain="adroit", update_interval=3)
    assert r.params["update_interval"] == 3
    batch = {"next_obs": torch.zeros(2, 3, 64, 64, dtype=torch.uint8)}
    before = [p.clone() for p in r.predictor.parameters()]
    assert r.update(batch, 4) == {}  # 4 % 3 != 0: nothing learned
    assert all(torch.equal(a, b) for a, b in zip(before, r.predictor.parameters()))
    assert "rnd_loss" in r.update(batch, 6)
    assert not all(torch.equal(a, b) for a, b in zip(before, r.predictor.parameters()))
    with pytest.raises(ValueError, match="update_interval"):
        rewards.make("rnd", task="door", domain="adroit", update_interval=0)
    with pytest.raises(ValueError, match="unknown domain 'dmc'; valid: metaworld, adroit"):
        rewards.make("rnd", task="door", domain="dmc")


def test_rnd_flatten_size_follows_image_size():
    r = rewards.make("rnd", task="door", domain="adroit", image_size=84)
    assert r.nets.flat_dim == 6400
    assert r.bonus({"next_obs": torch.zeros(2, 3, 84, 84, dtype=torch.uint8)}).shape == (2,)


def test_rnd_state_dict_round_trip(reach):
    frames, _ = reach
    batch = as_batch(frames[:16])
    a = rewards.make("rnd", task="reach", domain="metaworld", device=DEVICE, seed=0)
    for step in range(3):
        a.update(batch, step)
    b = rewards.make("rnd", task="reach", domain="metaworld", device=DEVICE, seed=1)
    assert not torch.equal(a.bonus(batch), b.bonus(batch))
    b.load_state_dict(roundtrip(a.state_dict()))
    assert torch.equal(a.bonus(batch), b.bonus(batch))
    a.update(batch, 3), b.update(batch, 3)  # the optimiser state came along too
    assert torch.equal(a.bonus(batch), b.bonus(batch))
    c = rewards.make("rnd", task="reach", domain="metaworld", lr=3e-4)
    with pytest.raises(ValueError, match="lr"):
        c.load_state_dict(a.state_dict())


# ---------------------------------------------------------------------------------------------- amp


def test_amp_discriminator_separates_expert_from_other_task(reach, door):
    expert, other = reach[0], door[0]
    r = rewards.make("amp", task="reach", domain="metaworld", device=DEVICE, expert_frames=expert[:24])
    assert r.params["expert_source"] == "given" and r.params["num_expert_frames"] == 24
    policy = as_batch(other[:24])
    done = [r.update(policy, step) for step in range(100)]
    assert sum(bool(m) for m in done) == 10  # every 10 agent steps
    assert done[0]["amp_d_expert"] < done[-10]["amp_d_expert"]

    held_out_expert = r.bonus(as_batch(expert[24:]))
    held_out_other = r.bonus(as_batch(other[24:]))
    for b in (held_out_expert, held_out_other):
        assert b.shape == (16,) and b.dtype == torch.float32
        assert ((b >= 0) & (b <= 1)).all()
    assert held_out_expert.min() > held_out_other.max(), (held_out_expert, held_out_other)
    assert held_out_expert.mean() - held_out_other.mean() > 0.2
    noise = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert ((r.bonus({"obs": noise}) >= 0) & (r.bonus({"obs": noise}) <= 1)).all()


def test_amp_reward_formula():
    d = torch.tensor([1.0, 0.0, -1.0, -3.0, 3.0, 2.0])
    expected = torch.tensor([1.0, 0.75, 0.0, 0.0, 0.0, 0.75])
    assert torch.allclose(amp_reward(d), expected)


# A linear D(x) = sum(w * x) has input gradient w at every x. Its 2x2 pixels carry channel vectors of
# norm 5, 1, 3 and 0, and ||w|| over all of C*H*W is sqrt(25 + 1 + 9 + 0) = sqrt(35).
_W = torch.tensor([[[3.0, 0.0], [1.0, 0.0]], [[4.0, 0.0], [2.0, 0.0]], [[0.0, 1.0], [2.0, 0.0]]])


def _linear_disc(x: torch.Tensor) -> torch.Tensor:
    return (x * _W).flatten(1).sum(1)


@pytest.mark.parametrize(
    "penalty,expected",
    [
        ("per_pixel", 0.1 * ((5 - 1) ** 2 + (1 - 1) ** 2 + (3 - 1) ** 2 + (0 - 1) ** 2) / 4),  # 0.525
        ("full", 0.1 * (35**0.5 - 1) ** 2),  # 2.4168...
    ],
)
def test_amp_gradient_penalty_by_hand(penalty, expected):
    """Release: mean over pixels of (channel norm - 1)^2; textbook: (norm over C*H*W - 1)^2."""
    x = torch.zeros(4, 3, 2, 2)
    gp = gradient_penalty(_linear_disc, x, x + 1, 0.1, torch.Generator().manual_seed(0), penalty=penalty)
    assert gp.item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="penalty: expected one of per_pixel, full"):
        gradient_penalty(_linear_disc, x, x + 1, 0.1, torch.Generator(), penalty="channels")


def test_amp_defaults_are_the_release_and_variants_are_recorded(reach):
    kw = dict(task="reach", domain="metaworld", device=DEVICE, expert_frames=reach[0])
    r = rewards.make("amp", **kw)
    assert (r.params["penalty"], r.params["reward_on"]) == ("per_pixel", "obs")
    t = rewards.make("amp", penalty="full", reward_on="next_obs", **kw)
    assert (t.params["penalty"], t.params["reward_on"]) == ("full", "next_obs")
    for bad, msg in [({"penalty": "l1"}, "penalty: expected one of"), ({"reward_on": "frame"}, "reward_on: expected")]:
        with pytest.raises(ValueError, match=msg):
            rewards.make("amp", **kw, **bad)


@pytest.mark.parametrize("reward_on", ["obs", "next_obs"])
def test_amp_bonus_scores_the_chosen_frame(reach, door, reward_on):
    """The bonus is D's reward on batch[reward_on]; the other key does not move it."""
    a, b = torch.as_tensor(reach[0][:6]), torch.as_tensor(door[0][:6])
    r = rewards.make(
        "amp", task="reach", domain="metaworld", device=DEVICE, expert_frames=reach[0], reward_on=reward_on
    )
    other = "next_obs" if reward_on == "obs" else "obs"
    bonus = r.bonus({reward_on: a, other: b})
    assert torch.equal(bonus, amp_reward(r.discriminate(a)))
    assert torch.equal(bonus, r.bonus({reward_on: a, other: a}))
    assert not torch.equal(bonus, r.bonus({reward_on: b, other: a}))  # D tells these frames apart
    d_before = r.discriminate(b).mean().item()  # D is trained on the frames it scores
    assert r.update({reward_on: b, other: a}, 0)["amp_d_policy"] == pytest.approx(d_before, abs=1e-5)


def test_amp_state_dict_round_trip(reach, door):
    expert, other = reach[0], door[0]
    batch = as_batch(other[:8])
    kw = dict(task="reach", domain="metaworld", device=DEVICE, expert_frames=expert, batch_size=8)
    a = rewards.make("amp", seed=0, **kw)
    a.update(batch, 0)
    b = rewards.make("amp", seed=1, **kw)
    b.load_state_dict(roundtrip(a.state_dict()))
    assert torch.equal(a.bonus(batch), b.bonus(batch))
    a.update(batch, 10), b.update(batch, 10)  # same expert draws and interpolates: RNG state came along
    assert torch.equal(a.bonus(batch), b.bonus(batch))
    with pytest.raises(ValueError, match="checkpoint is for reward 'rnd'"):
        b.load_state_dict(rewards.make("rnd", task="reach", domain="metaworld").state_dict())


def test_amp_rejects_bad_expert_frames(reach):
    with pytest.raises(ValueError, match="expert_frames: expected dtype uint8"):
        rewards.make("amp", task="reach", domain="metaworld", expert_frames=reach[0].astype(np.float32))
    with pytest.raises(ValueError, match="expert_frames: expected 64x64"):
        rewards.make("amp", task="reach", domain="metaworld", expert_frames=reach[0][:, :, :32, :32])


def _write_expert_dataset(root, domain, task, episodes):
    for i, (frames, env_r) in enumerate(episodes):
        meta = dict(
            task=task, domain=domain, seed=i, epsilon=0.0, camera="corner2", kind="expert", split="train", success=True
        )
        ep = Episode(frames, np.zeros((len(env_r), 4), np.float32), env_r, env_r > 0, meta)
        save_episode(episode_path(episode_dir(domain, task, "expert", "train", root), i), ep)


def test_amp_reads_expert_frames_from_dataset(tmp_path, reach):
    frames, env_r = reach
    _write_expert_dataset(tmp_path, "metaworld", "reach", [(frames[:11], env_r[:10]), (frames[11:], env_r[11:])])
    r = rewards.make("amp", task="reach", domain="metaworld", data_root=tmp_path)
    assert r.params["expert_source"] == "dataset" and r.params["num_expert_frames"] == len(frames)
    assert r.bonus(as_batch(frames[:3])).shape == (3,)
    with pytest.raises(FileNotFoundError, match="python -m tasks.collect"):
        rewards.make("amp", task="door-close", domain="metaworld", data_root=tmp_path)


def test_prepare_hooks(tmp_path, reach):
    """``suites.run`` calls ``prepare(request)`` before runs: sparse needs nothing, AMP records the missing
    expert videos of the request's tasks."""
    request = rewards.PrepareRequest(domain="metaworld", tasks=("reach",), data_root=str(tmp_path), expert_episodes=1)
    assert rewards.get("sparse").prepare(request) is None
    assert not any(tmp_path.iterdir())
    rewards.get("amp").prepare(request)
    assert len(rewards.make("amp", task="reach", domain="metaworld", data_root=tmp_path).expert) > 0
