"""DrQ-v2 agent: acting, updates, same math as the reference update, checkpoint round trip, augmentation."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import agents.drqv2 as drqv2
from agents import DrQV2Agent, DrQV2Config, ReplayBuffer
from agents.augment import grid_sample_shift, random_shift
from agents.networks import Encoder
from common import runtime
from common.runtime import autocast, torch_threads
from tests.reference_drqv2 import ReferenceDrQV2

OBS = (3, 64, 64)
SMALL = DrQV2Config(hidden_dim=64, batch_size=16)


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors on a shared 2-core machine run faster (and steadier) on one thread."""
    with torch_threads(1):
        yield


def make_batch(b: int, action_dim: int = 4, seed: int = 0, obs_shape=OBS) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return dict(
        obs=torch.randint(0, 256, (b, *obs_shape), dtype=torch.uint8, generator=g),
        next_obs=torch.randint(0, 256, (b, *obs_shape), dtype=torch.uint8, generator=g),
        action=torch.rand(b, action_dim, generator=g) * 2 - 1,
        reward=torch.rand(b, generator=g),
        discount=torch.full((b,), 0.97),
    )


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
    for a, b in zip(
        params(agent.encoder, agent.actor, agent.critic, agent.critic_target),
        params(clone.encoder, clone.actor, clone.critic, clone.critic_target),
    ):
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


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_learns_a_one_step_bandit(precision):
    """Critic and actor together find the best action of r = -|a - 0.5| (discount 0), in a few seconds."""
    obs_shape = (3, 16, 16)
    cfg = DrQV2Config(hidden_dim=64, feature_dim=16, lr=1e-3, aug_pad=1, num_expl_steps=0, seed=0, precision=precision)
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
    rng = np.random.default_rng(0)
    rb = ReplayBuffer(SMALL.replay_capacity, OBS, 4, SMALL.nstep, SMALL.discount, seed=0)
    rb.add_episode(
        rng.integers(0, 256, (11, *OBS), dtype=np.uint8), rng.uniform(-1, 1, (10, 4)), rng.random(10), np.ones(10)
    )
    batch = rb.sample(16)
    batch["reward"] = batch["reward"] + 0.5 * torch.rand(16)
    metrics = DrQV2Agent(OBS, 4, SMALL).update(batch, 3000)
    assert metrics["batch_reward"] == pytest.approx(batch["reward"].mean().item(), rel=1e-6)


# ------------------------------------------------------------------------------- precision (bf16)
BF16 = DrQV2Config(hidden_dim=64, batch_size=16, precision="bf16")


def test_bf16_same_seed_gives_identical_updates():
    """Same seed, same machine, bf16: bit-identical metrics and parameters after several updates; and the
    bf16 run is not the fp32 run (autocast really engaged) but stays close to it."""
    runs = []
    for cfg in (BF16, BF16, SMALL):
        agent = DrQV2Agent(OBS, 4, cfg)
        metrics = [agent.update(make_batch(16, seed=i), 3000 + i) for i in range(3)]
        runs.append((metrics, params(agent.encoder, agent.actor, agent.critic, agent.critic_target)))
    (m1, p1), (m2, p2), (m32, p32) = runs
    assert m1 == m2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))
    assert any(not torch.equal(a, b) for a, b in zip(p1, p32))
    # first update, same weights: only bf16 rounding in the passes separates the two (~1e-3 here)
    for key in ("critic_loss", "critic_q1", "critic_q2", "critic_target_q", "actor_loss"):
        assert m1[0][key] == pytest.approx(m32[0][key], abs=2e-2), key
    assert m1[0]["actor_logprob"] == pytest.approx(m32[0]["actor_logprob"], rel=1e-5)  # same random draws
    assert all(p.dtype == torch.float32 for p in p1)


def test_bf16_state_dict_round_trip_continues_identically():
    agent = DrQV2Agent(OBS, 4, BF16)
    batch = make_batch(16, seed=2)
    agent.update(batch, 5000)
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["config"]["precision"] == "bf16"
    clone = DrQV2Agent(OBS, 4, DrQV2Config(hidden_dim=64, batch_size=16, seed=123, precision="bf16"))
    clone.load_state_dict(state)
    obs = np.random.default_rng(1).integers(0, 256, OBS, dtype=np.uint8)
    assert np.array_equal(agent.act(obs, 5000, False), clone.act(obs, 5000, False))
    assert np.array_equal(agent.act(obs, 5000, True), clone.act(obs, 5000, True))
    for step in (5001, 5002):
        assert agent.update(batch, step) == clone.update(batch, step)
    for a, b in zip(
        params(agent.encoder, agent.actor, agent.critic, agent.critic_target),
        params(clone.encoder, clone.actor, clone.critic, clone.critic_target),
    ):
        assert torch.equal(a, b)
    with pytest.warns(UserWarning, match="precision bf16"):  # loading into an fp32 agent is flagged
        DrQV2Agent(OBS, 4, SMALL).load_state_dict(agent.state_dict())


def test_bf16_runs_the_networks_in_bf16_and_keeps_losses_targets_optimiser_fp32(monkeypatch):
    agent = DrQV2Agent(OBS, 4, BF16)
    seen = {"conv": [], "trunk": [], "mse": []}
    agent.encoder.convnet[2].register_forward_hook(lambda m, i, o: seen["conv"].append(o.dtype))
    agent.critic.trunk[0].register_forward_hook(lambda m, i, o: seen["trunk"].append(o.dtype))
    real_mse = drqv2.F.mse_loss

    def mse(q, target):
        seen["mse"].append((q.dtype, target.dtype))
        return real_mse(q, target)

    monkeypatch.setattr(drqv2.F, "mse_loss", mse)
    metrics = agent.update(make_batch(16, seed=3), 3000)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    assert seen["conv"] == [torch.bfloat16, torch.bfloat16]  # obs and next_obs
    assert set(seen["trunk"]) == {torch.bfloat16}
    assert seen["mse"] == [(torch.float32, torch.float32)] * 2  # Q1 and Q2 against the fp32 TD target
    for opt in (agent.encoder_opt, agent.actor_opt, agent.critic_opt):
        for state in opt.state.values():
            assert all(v.dtype == torch.float32 for k, v in state.items() if k != "step")
    obs = np.random.default_rng(0).integers(0, 256, OBS, dtype=np.uint8)
    seen["conv"].clear()
    action = agent.act(obs, 5000, eval_mode=True)
    assert seen["conv"] == [torch.bfloat16] and action.dtype == np.float32 and np.all(np.abs(action) < 1)


def test_fp32_agent_never_touches_bf16():
    agent = DrQV2Agent(OBS, 4, SMALL)
    dtypes = []
    for m in (agent.encoder.convnet[2], agent.critic.trunk[0], agent.actor.trunk[0]):
        m.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    agent.update(make_batch(16), 3000)
    agent.act(np.zeros(OBS, np.uint8), 5000, eval_mode=True)
    assert dtypes and set(dtypes) == {torch.float32}


def test_precision_config_field_is_validated_and_recorded():
    assert DrQV2Config().precision == "fp32"  # the agent alone stays fp32; suites resolve --precision (default auto)
    assert DrQV2Config.from_dict({"precision": "bf16"}).to_dict()["precision"] == "bf16"
    with pytest.raises(ValueError, match="resolve_precision"):
        DrQV2Config(precision="auto")
    with pytest.raises(ValueError, match="fp32, bf16"):
        DrQV2Config(precision="fp16")


def _cpuinfo_bf16() -> bool | None:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), None)
    except OSError:
        return None
    return None if flags is None else bool({"avx512_bf16", "amx_bf16"} & set(flags))


def test_resolve_precision_on_this_machine_and_bad_names():
    native = _cpuinfo_bf16()
    if native is not None:  # torch's probe agrees with the kernel's flags
        assert runtime.cpu_has_native_bf16() == native
    assert runtime.resolve_precision("auto", "cpu") == ("bf16" if runtime.cpu_has_native_bf16() else "fp32")
    assert runtime.resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ValueError, match="auto, bf16, fp32"):
        runtime.resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="auto, bf16, fp32"):
        runtime.resolve_precision("BF16", torch.device("cpu"))


def test_resolve_precision_auto_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert runtime.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    assert runtime.resolve_precision("auto", "cpu") == "fp32"
    with pytest.warns(UserWarning, match="slower than fp32"):
        assert runtime.resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for capability, want in (((8, 0), "bf16"), ((9, 0), "bf16"), ((7, 5), "fp32")):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert runtime.resolve_precision("auto", "cuda") == want


def test_autocast_helper():
    with autocast("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="resolve_precision"):
        autocast("auto", "cpu")


def test_act_runs_on_one_thread_and_restores_the_thread_count():
    """One-frame acting is too small to split across threads (see DrQV2Agent._one_thread); the update that
    follows must get the caller's thread count back."""
    agent = DrQV2Agent(OBS, 4, BF16)
    inside = []
    agent.encoder.register_forward_hook(lambda m, i, o: inside.append(torch.get_num_threads()))
    torch.set_num_threads(2)  # the autouse fixture restores the original afterwards
    action = agent.act(np.zeros(OBS, np.uint8), 5000, eval_mode=True)
    assert inside == [1] and torch.get_num_threads() == 2 and action.shape == (4,)
