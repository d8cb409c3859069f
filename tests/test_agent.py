"""DrQ-v2 agent: acting, updates, same math as the reference update, checkpoint round trip, augmentation."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from agents import DrQV2Agent, DrQV2Config
from agents.augment import grid_sample_shift, random_shift
from agents.networks import Encoder
from agents.reference import ReferenceDrQV2

OBS = (3, 64, 64)
SMALL = DrQV2Config(hidden_dim=64, batch_size=16)


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors on a shared 2-core machine run faster (and steadier) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_batch(b: int, action_dim: int = 4, seed: int = 0, obs_shape=OBS) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return dict(obs=torch.randint(0, 256, (b, *obs_shape), dtype=torch.uint8, generator=g),
                next_obs=torch.randint(0, 256, (b, *obs_shape), dtype=torch.uint8, generator=g),
                action=torch.rand(b, action_dim, generator=g) * 2 - 1,
                reward=torch.rand(b, generator=g), discount=torch.full((b,), 0.97))


def params(*modules) -> list[torch.Tensor]:
    return [p.detach().clone() for m in modules for p in m.parameters()]


def test_encoder_feature_size_matches_design():
    enc = Encoder(OBS)
    assert enc.repr_dim == 32 * 25 * 25 == 20000
    assert enc(torch.zeros(2, *OBS, dtype=torch.uint8)).shape == (2, 20000)
    with pytest.raises(ValueError, match="too small"):
        Encoder((3, 8, 8))


def test_act_range_exploration_and_eval_determinism():
    agent = DrQV2Agent(OBS, 4, SMALL)
    obs = np.random.default_rng(0).integers(0, 256, OBS, dtype=np.uint8)
    explore = np.stack([agent.act(obs, 0, eval_mode=False) for _ in range(20)])
    assert explore.dtype == np.float32 and explore.shape == (20, 4)
    assert np.all(np.abs(explore) <= 1) and explore.std() > 0.3  # uniform in [-1, 1]: std ~ 0.58
    a1, a2 = agent.act(obs, 10**6, eval_mode=True), agent.act(obs, 10**6, eval_mode=True)
    assert a1.shape == (4,) and np.array_equal(a1, a2) and np.all(np.abs(a1) < 1)
    noisy = np.stack([agent.act(obs, SMALL.num_expl_steps, eval_mode=False) for _ in range(20)])
    assert np.all(np.abs(noisy) < 1) and noisy.std(axis=0).min() > 0.05  # std 1.0 early on
    with pytest.raises(ValueError, match="uint8"):
        agent.act(obs.astype(np.float32), 0, eval_mode=True)
    with pytest.raises(ValueError, match="shape"):
        agent.act(obs[:, :32], 0, eval_mode=True)


def test_updates_change_parameters_and_keep_losses_finite():
    agent = DrQV2Agent(OBS, 4, SMALL)
    before = params(agent.encoder, agent.actor, agent.critic, agent.critic_target)
    batch = make_batch(16)
    for step in range(3):
        metrics = agent.update(batch, 3000 + step)
        assert all(np.isfinite(v) for v in metrics.values()), metrics
    for key in ("critic_loss", "actor_loss", "critic_q1", "critic_q2", "critic_target_q", "actor_std"):
        assert key in metrics
    assert metrics["actor_std"] == pytest.approx(SMALL.stddev(3002))
    after = params(agent.encoder, agent.actor, agent.critic, agent.critic_target)
    changed = [not torch.equal(a, b) for a, b in zip(before, after)]
    assert all(changed)  # encoder, actor, critic and (Polyak) target all moved


def test_fast_update_matches_reference_drqv2_update():
    """Same weights and the same random draws: the fast update and the plain DrQ-v2 one agree."""
    agent = DrQV2Agent(OBS, 4, SMALL)
    ref = ReferenceDrQV2(agent)
    start = params(agent.encoder, agent.actor, agent.critic, agent.critic_target)
    batch = make_batch(16, seed=1)
    for step in (2500, 2501):
        gen = torch.Generator().set_state(agent.generator.get_state())
        fast, plain = agent.update(batch, step), ref.update(batch, step, generator=gen)
        for key in plain:
            assert fast[key] == pytest.approx(plain[key], rel=1e-4, abs=1e-5), key
    mine = params(agent.encoder, agent.actor, agent.critic, agent.critic_target)
    theirs = params(ref.convnet, ref.actor, ref.critic, ref.critic_target)
    # Adam's first steps move a weight by ~lr whatever the size of its gradient, so a weight whose
    # gradient is ~0 may move differently under float rounding; the updates as a whole agree.
    for s, a, b in zip(start, mine, theirs):
        assert (a - b).abs().max() <= 3 * SMALL.lr
        assert (a - b).norm() <= 0.05 * (b - s).norm()


def test_update_does_the_minimum_encoder_work():
    """Two encoder forwards (obs with gradient, next_obs without) and one backward per update, nothing more:
    the convolutions are ~80% of an update's FLOPs, so a redundant pass would cost a third of its time."""
    from torch.utils.flop_counter import FlopCounterMode

    agent = DrQV2Agent(OBS, 4, SMALL)
    batch = make_batch(8, seed=2)
    with FlopCounterMode(display=False) as one_pass:
        with torch.no_grad():
            agent.encoder(batch["obs"])
    with FlopCounterMode(display=False) as update:
        agent.update(batch, 2500)
    with FlopCounterMode(display=False) as reference:
        ReferenceDrQV2(agent).update(batch, 2501)
    aten = torch.ops.aten
    conv = one_pass.get_flop_counts()["Global"][aten.convolution]
    counts = update.get_flop_counts()["Global"]
    assert counts[aten.convolution] == 2 * conv
    # one backward: input gradients of conv layers 2-4 and weight gradients of all four (~2x a forward)
    assert conv < counts[aten.convolution_backward] < 2 * conv
    assert update.get_total_flops() < reference.get_total_flops()


def test_state_dict_round_trip_continues_identically():
    agent = DrQV2Agent(OBS, 4, SMALL)
    batch = make_batch(16, seed=2)
    agent.update(batch, 5000)
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    clone = DrQV2Agent(OBS, 4, DrQV2Config(hidden_dim=64, batch_size=16, seed=123))
    clone.load_state_dict(torch.load(buf, weights_only=True))
    obs = np.random.default_rng(1).integers(0, 256, OBS, dtype=np.uint8)
    assert np.array_equal(agent.act(obs, 5000, False), clone.act(obs, 5000, False))  # noise too
    assert np.array_equal(agent.act(obs, 5000, True), clone.act(obs, 5000, True))
    assert agent.update(batch, 5001) == clone.update(batch, 5001)
    for a, b in zip(params(agent.encoder, agent.actor, agent.critic, agent.critic_target),
                    params(clone.encoder, clone.actor, clone.critic, clone.critic_target)):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="action_dim"):
        DrQV2Agent(OBS, 3, SMALL).load_state_dict(agent.state_dict())


def test_fast_shift_equals_grid_sample_integer_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (81, 3, 64, 64), dtype=torch.uint8, generator=g)
    shifts = torch.cartesian_prod(torch.arange(9), torch.arange(9))  # every (dx, dy) for pad 4
    fast = random_shift(x, 4, shifts)
    assert fast.dtype == torch.uint8
    ref = grid_sample_shift(x.float(), 4, shifts)
    assert (fast.float() - ref).abs().max() < 1e-2  # bilinear at pixel centres: exact up to rounding
    centre = shifts.tolist().index([4, 4])
    assert torch.equal(fast[centre], x[centre])  # shift (4, 4) is the identity
    corner = shifts.tolist().index([0, 0])  # content moves right/down, border replicated
    assert torch.equal(fast[corner, :, 4:, 4:], x[corner, :, :60, :60])
    assert torch.equal(fast[corner, :, 0, :4], x[corner, :, 0, :1].expand(3, 4))


def test_bad_batch_and_config_raise_clear_errors():
    agent = DrQV2Agent(OBS, 4, SMALL)
    batch = make_batch(8)
    with pytest.raises(ValueError, match="missing"):
        agent.update({k: v for k, v in batch.items() if k != "discount"}, 0)
    with pytest.raises(ValueError, match="reward"):
        agent.update({**batch, "reward": torch.zeros(8, 8)}, 0)  # e.g. a [B] bonus broadcast onto [B, 1]
    with pytest.raises(ValueError, match="action"):
        agent.update({**batch, "action": torch.zeros(8, 3)}, 0)
    with pytest.raises(ValueError, match="valid keys"):
        DrQV2Config.from_dict({"lr": 1e-4, "learning_rate": 1e-3})
    with pytest.raises(ValueError, match="nstep"):
        DrQV2Config(nstep=0)
    cfg = DrQV2Config()
    assert (cfg.stddev(0), cfg.stddev(1_500_000), cfg.stddev(10**8)) == pytest.approx((1.0, 0.55, 0.1))


def test_learns_a_one_step_bandit():
    """Critic and actor together find the best action of r = -|a - 0.5| (discount 0), in a few seconds."""
    obs_shape = (3, 16, 16)
    cfg = DrQV2Config(hidden_dim=64, feature_dim=16, lr=1e-3, aug_pad=1, num_expl_steps=0, seed=0)
    agent = DrQV2Agent(obs_shape, 1, cfg)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        obs = torch.randint(0, 256, (64, *obs_shape), dtype=torch.uint8, generator=g)
        action = torch.rand(64, 1, generator=g) * 2 - 1
        reward = -(action[:, 0] - 0.5).abs()
        agent.update(dict(obs=obs, next_obs=obs, action=action, reward=reward, discount=torch.zeros(64)), 10**7)
    probe = np.full(obs_shape, 128, np.uint8)
    assert abs(float(agent.act(probe, 10**7, eval_mode=True)[0]) - 0.5) < 0.2


def test_replay_batch_feeds_update_with_a_bonus_added():
    """The loop's path: sample from the replay, add a [B] bonus to the reward, update."""
    from agents import ReplayBuffer

    rng = np.random.default_rng(0)
    rb = ReplayBuffer(SMALL.replay_capacity, OBS, 4, SMALL.nstep, SMALL.discount, seed=0)
    rb.add_episode(rng.integers(0, 256, (11, *OBS), dtype=np.uint8), rng.uniform(-1, 1, (10, 4)),
                   rng.random(10), np.ones(10))
    batch = rb.sample(16)
    batch["reward"] = batch["reward"] + 0.5 * torch.rand(16)
    metrics = DrQV2Agent(OBS, 4, SMALL).update(batch, 3000)
    assert metrics["batch_reward"] == pytest.approx(batch["reward"].mean().item(), rel=1e-6)
