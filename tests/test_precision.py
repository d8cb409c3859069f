"""bf16 mixed precision of the video models and its wiring (docs/precision.md).

What must hold whatever the speed: bf16 scoring is deterministic under a seed, ranks windows as fp32 does,
keeps the VQ-Diffusion posteriors' log-space sums in fp32, never mixes fp32 and bf16 statistics, and a run
records its precision so that a run directory never mixes two.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import rewards
from common.runtime import DEFAULT_PRECISION, resolve_precision, torch_threads
from rewards.models import vqdiffusion as vqd
from rewards.models.precision import autocast, check
from rewards.models.pretrain import VideoModelTrainer
from rewards.models.store import ModelRef
from rewards.models.video_model import score_episode_tokens
from rewards.models.videogpt import VideoGPT, VideoGPTConfig
from rewards.models.vqdiffusion import VQDiffusion, VQDiffusionConfig
from suites import run
from suites.plan import expand
from suites.train import ConfigMismatch, check_config
from tasks.datasets import load_episodes
from tests.conftest import frames_of

K = 1024
VOCAB = 16


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def tiny_vqd(**kw) -> VQDiffusion:
    torch.manual_seed(0)
    return VQDiffusion.from_config(VQDiffusionConfig.preset("small", context=2, depth=1, **kw)).eval()


def episode_tokens(n: int = 9, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, K, (n, 64), generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- names


def test_unresolved_or_unknown_precision_is_refused_naming_the_valid_ones():
    assert check("bf16") == "bf16"
    with pytest.raises(ValueError, match="valid: fp32, bf16.*resolve"):
        check("auto")
    with pytest.raises(ValueError, match="valid: fp32, bf16"):
        score_episode_tokens(tiny_vqd(), episode_tokens(3), "ce", precision="fp16")


# ----------------------------------------------------------------------------- models


@pytest.mark.parametrize("kind", ["ce", "ll"])
@pytest.mark.parametrize("model", ["vqdiffusion", "videogpt"])
def test_bf16_scoring_is_deterministic_under_a_seed(model, kind):
    torch.manual_seed(0)
    m = tiny_vqd() if model == "vqdiffusion" else VideoGPT(VideoGPTConfig.preset("small", context=2)).eval()
    tokens = episode_tokens()

    def run(precision):
        return score_episode_tokens(
            m, tokens, kind, steps=10, noise=True, precision=precision, generator=torch.Generator().manual_seed(3)
        )

    a, b, f = run("bf16"), run("bf16"), run("fp32")
    assert a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, f)  # bf16 did run: the network's numbers differ in the last bits at least


def test_posterior_log_space_sums_stay_fp32_under_bf16(monkeypatch):
    m = tiny_vqd()
    seen = []
    real_kl, real_post = vqd._kl, vqd.MaskReplaceSchedule.posterior

    def kl_spy(p, q):
        out = real_kl(p, q)
        seen.append(("kl", p.dtype, q.dtype, out.dtype))
        return out

    def post_spy(self, log_x0, z, u, v):
        out = real_post(self, log_x0, z, u, v)
        seen.append(("posterior", log_x0.dtype, out.dtype))
        return out

    monkeypatch.setattr(vqd, "_kl", kl_spy)
    monkeypatch.setattr(vqd.MaskReplaceSchedule, "posterior", post_spy)
    ctx = episode_tokens(8).view(4, 2, 64)
    with autocast("bf16", "cpu"):
        m.score_ce(ctx, steps=5, generator=torch.Generator().manual_seed(0))
        # a bf16 distribution handed to the posterior is computed in fp32 all the same
        log_x0 = torch.log_softmax(torch.randn(2, 64, K + 1), -1).to(torch.bfloat16)
        z = torch.full((2, 64), K)
        out = m.schedule.posterior(log_x0, z, torch.full((2,), 3), torch.full((2,), 10))
        assert out.dtype == torch.float32
        logits = m.denoiser(z, torch.full((2,), 9), m.denoiser.condition_cache(ctx[:2]))
        assert logits.dtype == torch.bfloat16  # the network itself did run in bf16
    assert seen and all(d == torch.float32 for entry in seen if entry[0] == "kl" for d in entry[1:])
    assert all(entry[2] == torch.float32 for entry in seen if entry[0] == "posterior")


def toy_batch(task, n, g):
    codes, perm = task
    f0 = torch.randint(0, VOCAB, (n, 64), generator=g)
    return torch.stack([codes[f0], codes[perm[f0]]], 1), codes[perm[perm[f0]]]


@pytest.fixture(scope="module")
def bf16_trained():
    """A one-block VQ-Diffusion trained 120 steps in bf16 (the pretraining path) on a toy video."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    task = torch.randperm(K, generator=g)[:VOCAB], torch.randperm(VOCAB, generator=g)
    cfg = VQDiffusionConfig.preset(
        "small",
        context=2,
        depth=1,
        time_sampling="uniform",
        optim=vqd.VQDiffusionOptim(lr=2e-3, warmup_steps=0, grad_clip=1.0),
    )
    trainer = VideoModelTrainer("vqdiffusion", cfg, torch.device("cpu"), precision="bf16")
    held = toy_batch(task, 32, torch.Generator().manual_seed(9))
    before = trainer.validate(held)
    for step in range(120):
        trainer.step(toy_batch(task, 32, g), step)
    return dict(trainer=trainer, task=task, before=before, after=trainer.validate(held))


def test_bf16_pretraining_learns_and_keeps_fp32_parameters_and_optimiser_state(bf16_trained):
    trainer = bf16_trained["trainer"]
    assert bf16_trained["after"] < 0.8 * bf16_trained["before"]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    states = [t for s in trainer.opt.state.values() for t in s.values() if torch.is_tensor(t) and t.is_floating_point()]
    assert states and all(t.dtype == torch.float32 for t in states)


@pytest.mark.parametrize("kind", ["ce", "ll"])
def test_bf16_and_fp32_scores_of_a_trained_model_agree_in_rank(bf16_trained, kind):
    """Half the windows come from the toy video, half are random: the model is far more certain on the
    first. fp32 and bf16 must rank the 24 windows alike and differ by little next to their spread."""
    m = bf16_trained["trainer"].model.eval()
    g = torch.Generator().manual_seed(5)
    ctx, tgt = toy_batch(bf16_trained["task"], 12, g)
    ctx = torch.cat([ctx, torch.randint(0, K, (12, 2, 64), generator=g)])
    tgt = torch.cat([tgt, torch.randint(0, K, (12, 64), generator=g)])
    scores = {}
    for p in ("fp32", "bf16"):
        with torch.no_grad(), autocast(p, "cpu"):
            gen = torch.Generator().manual_seed(1)
            scores[p] = (
                m.score_ce(ctx, steps=10, noise=False, generator=gen)
                if kind == "ce"
                else m.score_ll(ctx, tgt, steps=10, generator=gen)
            ).numpy()
    assert spearman(scores["fp32"], scores["bf16"]) >= 0.9
    assert np.abs(scores["fp32"] - scores["bf16"]).max() <= 0.1 * np.ptp(scores["fp32"])


def test_codec_bf16_encoding_is_deterministic_and_picks_codes_in_fp32(trained_codec, tiny_dataset):
    frames = frames_of(tiny_dataset, "test")[:32]
    a = trained_codec.encode(frames, precision="bf16")
    assert torch.equal(a, trained_codec.encode(frames, precision="bf16"))
    f = trained_codec.encode(frames)
    assert (a == f).float().mean() >= 0.8  # a bf16 encoder moves few patches to another code
    lat = trained_codec.latents(frames[:4], precision="bf16")
    assert lat.dtype == torch.float32
    with autocast("bf16", "cpu"):  # the nearest-code search itself never runs in bf16
        z = torch.randn(10, trained_codec.config.code_dim)
        assert torch.equal(trained_codec.quantizer.codes(z), trained_codec.quantizer.codes(z.double().float()))


# ----------------------------------------------------------------------------- providers and statistics


def test_video_reward_statistics_are_kept_per_precision(video_model_root):
    providers = {
        p: rewards.make(
            "diffusion_reward",
            task="reach",
            domain="metaworld",
            device="cpu",
            data_root=video_model_root,
            alpha=0.0,
            beta=0.0,
            precision=p,
        )
        for p in ("fp32", "bf16")
    }
    assert providers["bf16"].precision == "bf16" and "precision" not in providers["bf16"].params
    stats = json.loads(
        (ModelRef("metaworld", "vqdiffusion", "small", 2, video_model_root).dir / "stats.json").read_text()
    )
    # VQ-Diffusion's bf16 key names its scoring path (its own bf16 forward): statistics cached by the
    # autocast path before it, under "..._bf16", are not read
    assert "ce_s10_noise_seed0" in stats and "ce_s10_noise_seed0_bf16_lowp" in stats
    assert "ce_s10_noise_seed0_bf16" not in stats
    assert providers["fp32"].mu == stats["ce_s10_noise_seed0"]["tasks"]["reach"]["mean"]
    assert providers["bf16"].mu == stats["ce_s10_noise_seed0_bf16_lowp"]["tasks"]["reach"]["mean"]
    ep = load_episodes("metaworld", ["reach"], split="test", root=video_model_root)[0]
    r = {p: prov.label_episode(ep.frames, ep.rewards) for p, prov in providers.items()}
    assert all(np.isfinite(v).all() and v.dtype == np.float32 for v in r.values())


def test_providers_without_networks_take_the_precision_keyword_and_stay_fp32():
    p = rewards.make("sparse", task="reach", domain="metaworld", precision="bf16")
    assert p.precision == "fp32" and p.params == {}
    with pytest.raises(ValueError, match="valid: auto, bf16, fp32"):
        rewards.make("sparse", task="reach", domain="metaworld", precision="half")


# ----------------------------------------------------------------------------- run configs


def test_suites_run_lists_the_valid_precisions(capsys):
    with pytest.raises(SystemExit):
        run.main(["--suite", "metaworld7", "--precision", "bogus"])
    err = capsys.readouterr().err
    assert "bogus" in err and all(name in err for name in ("auto", "bf16", "fp32"))


def test_every_run_config_records_its_precision():
    default = expand("metaworld7", "smoke", methods=["sparse", "diffusion_reward"], seeds=[0], device="cpu")
    assert all(r.config.precision_requested == DEFAULT_PRECISION for r in default)
    auto = expand(
        "metaworld7", "smoke", methods=["sparse", "diffusion_reward"], seeds=[0], device="cpu", precision="auto"
    )
    want = resolve_precision("auto", "cpu")
    for r in auto:
        assert r.config.precision == r.config.agent["precision"] == r.prepare.precision == want
        assert r.config.precision_requested == "auto"


def test_an_fp32_run_refuses_a_relaunch_in_bf16(tmp_path):

    fp32 = expand(
        "metaworld7",
        "smoke",
        methods=["sparse"],
        tasks=["reach"],
        seeds=[0],
        device="cpu",
        precision="fp32",
        results=tmp_path,
    )[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 on a CPU without it warns (emulated): beside the point here
        bf16 = expand(
            "metaworld7",
            "smoke",
            methods=["sparse"],
            tasks=["reach"],
            seeds=[0],
            device="cpu",
            precision="bf16",
            results=tmp_path,
        )[0]
    fp32.run_dir.mkdir(parents=True)
    (fp32.run_dir / "config.json").write_text(json.dumps(fp32.config.as_dict(), default=str))
    check_config(fp32.config, fp32.run_dir)  # the same config: fine
    with pytest.raises(ConfigMismatch, match=r"precision") as e:
        check_config(bf16.config, fp32.run_dir)
    assert "agent.precision" in str(e.value) and "'fp32' there, 'bf16' now" in str(e.value)
    # a run recorded before precision existed ran fp32: it resumes in fp32 and refuses bf16
    old = {k: v for k, v in fp32.config.as_dict().items() if k not in ("precision", "precision_requested")}
    old["agent"] = {k: v for k, v in old["agent"].items() if k != "precision"}
    (fp32.run_dir / "config.json").write_text(json.dumps(old, default=str))
    check_config(fp32.config, fp32.run_dir)
    with pytest.raises(ConfigMismatch, match=r"precision"):
        check_config(bf16.config, fp32.run_dir)


# ----------------------------------------------------------------------------- the bf16 scoring path


def test_bf16_scoring_runs_on_bf16_weight_copies_made_per_call_and_never_saved():
    """Under bf16 autocast with autograd off (scoring, sampling) the denoiser runs on bf16 copies of its
    weights made by each ``condition_cache`` call: not under fp32, not while training (autograd on), never in
    the state_dict, and never stale: new weights loaded in place are what the next score uses."""
    m = tiny_vqd()
    keys = set(m.state_dict())
    ctx = episode_tokens(8).view(4, 2, 64)
    with torch.no_grad():
        assert m.denoiser.condition_cache(ctx).weights is None
        with autocast("bf16", "cpu"):
            cache = m.denoiser.condition_cache(ctx)
    assert cache.weights is not None and cache.weights.dtype == torch.bfloat16
    assert all(w.dtype == torch.bfloat16 for w in cache.weights.copies.values())
    assert {id(p) for p in cache.weights.copies} == {id(p) for p in m.parameters()}
    with autocast("bf16", "cpu"):
        assert m.denoiser.condition_cache(ctx).weights is None  # autograd on: the autocast path

    def score(model):
        with torch.no_grad(), autocast("bf16", "cpu"):
            return model.score_ce(ctx, steps=5, generator=torch.Generator().manual_seed(0))

    before = score(m)
    assert set(m.state_dict()) == keys
    other = tiny_vqd()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    m.load_state_dict(other.state_dict())
    after = score(m)
    assert not torch.equal(after, before) and torch.equal(after, score(other))


def test_bf16_scoring_path_logits_are_as_close_to_fp32_as_the_autocast_paths(bf16_trained):
    """The bf16 scoring path (bf16 residual stream, LayerNorms and attention) against the autocast path that
    training takes, both against fp32, on the trained model: its x0 log-probabilities stay within a few
    times the autocast path's error and a small fraction of their spread."""
    m = bf16_trained["trainer"].model.eval()
    g = torch.Generator().manual_seed(5)
    ctx, _ = toy_batch(bf16_trained["task"], 12, g)
    ctx = torch.cat([ctx, torch.randint(0, K, (12, 2, 64), generator=g)])
    z = torch.where(torch.rand(24, 64, generator=g) < 0.5, torch.randint(0, K, (24, 64), generator=g), K)
    level = torch.randint(1, 101, (24,), generator=g)

    def log_x0(precision, lowp=True):
        vqd.LOWP_SCORING = lowp
        try:
            with torch.no_grad(), autocast(precision, "cpu"):
                return m._predict_x0(z, level, m.denoiser.condition_cache(ctx))[..., :K]
        finally:
            vqd.LOWP_SCORING = True

    ref, fast, slow = log_x0("fp32"), log_x0("bf16"), log_x0("bf16", lowp=False)
    err_fast, err_slow = (fast - ref).abs().max().item(), (slow - ref).abs().max().item()
    spread = (ref.amax(-1) - ref.amin(-1)).mean().item()
    assert err_fast <= max(3 * err_slow, 1e-3) and err_fast <= 0.05 * spread, (err_fast, err_slow, spread)


def test_in_place_scoring_arithmetic_gives_the_training_forms_numbers_bit_for_bit():
    """Scoring and sampling compute the posterior, the KL and the Gumbel noise in place (fewer [B, 64, K+1]
    buffers); training keeps the out-of-place form for autograd. Both must give the same numbers, bit
    for bit, so that fp32 scores are what they were."""
    m = tiny_vqd()
    g = torch.Generator().manual_seed(0)
    log_x0 = torch.log_softmax(3 * torch.randn(6, 64, K + 1, generator=g), -1)
    z = torch.where(torch.rand(6, 64, generator=g) < 0.4, K, torch.randint(0, K, (6, 64), generator=g))
    u, v = torch.tensor([0, 3, 9, 40, 89, 1]), torch.tensor([1, 10, 10, 50, 100, 2])
    with torch.no_grad():
        scoring = m.schedule.posterior(log_x0, z, u, v)
        scoring_kl = vqd._kl(scoring, log_x0)
    grad_in = log_x0.clone().requires_grad_(True)
    training = m.schedule.posterior(grad_in, z, u, v)
    assert training.requires_grad and torch.equal(scoring, training.detach())
    assert torch.equal(scoring_kl, vqd._kl(training, grad_in).detach())
    noise = vqd._gumbel_argmax(log_x0, torch.Generator().manual_seed(1))
    uniform = torch.rand(log_x0.shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(noise, (log_x0 + -torch.log(-torch.log(uniform + 1e-30) + 1e-30)).argmax(-1))


def test_torch_threads_sets_the_count_and_restores_it_also_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="inside"):
        with torch_threads(before + 1):
            assert torch.get_num_threads() == before + 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
