"""Frame-conditioned VQ-Diffusion over codec tokens: the video model behind the Diffusion Reward.

A discrete diffusion model (Gu et al., VQ-Diffusion, CVPR 2022) over the 64 codec tokens (8x8 grid,
codebook K = 1024) of the next frame, conditioned on the tokens of the ``l`` previous frames
(docs/models-and-rewards.md#vq-diffusion). It follows the video-model contract of ``rewards/models/video_model.py``:
``loss``, ``score_ce``, ``score_ll`` and ``sample``, all batched over many windows at once.

Diffusion process (mask-and-replace)
------------------------------------
Levels ``s = 0..T`` (T = 100): level 0 is the clean frame ``x0``, level ``s`` the state after ``s``
corruption steps. The network's timestep index is ``t = s - 1`` (so ``t = 99`` is the all-noise end
and ``t = 0`` the last denoising step, as in VQ-Diffusion's code). ``q(z_s | x0)`` keeps a token with
probability ``A_s``, masks it with probability ``C_s`` and otherwise replaces it by a uniform token
(``B_s = (1 - A_s - C_s) / K`` each); ``A_s`` runs linearly from 0.99999 to 0.000009 and ``C_s``
from 0.000009 to 0.99999 (VQ-Diffusion's ``alpha_schedule``), with ``A_0 = 1, C_0 = 0``.

Skipping steps: the transition between any two levels ``u < v`` is again mask-and-replace, with
``a_{u..v} = A_v / A_u`` and ``1 - c_{u..v} = (1 - C_v) / (1 - C_u)``, ``b_{u..v} = (1 - a - c) / K``:
this is exactly the product ``Q_{u+1} ... Q_v`` of the one-step matrices (mask is absorbing and the
uniform part is closed under products), so the tables below hold every pair. The posterior between
visited levels is then exact Bayes::

    q(z_u | z_v, x0) = q(z_v | z_u) q(z_u | x0) / q(z_v | x0)            (q(z_v | z_u) uses Q_{u..v})
    p(z_u | z_v)     = sum_x0 q(z_u | z_v, x0) p_theta(x0 | z_v)
                     = q(z_v | z_u) * sum_x0 [p_theta(x0 | z_v) / q(z_v | x0)] q(z_u | x0)

which VQ-Diffusion's ``q_posterior`` computes for ``u = v - 1``; here ``u`` is the next visited level.
(The public ``sample_fast`` instead reuses one-step matrices at a shifted ``t``; we use the exact
composition, so a skipped chain is a proper Markov model whose bound is a true variational bound.)

All distributions are kept as log-probabilities ``[B, 64, K + 1]`` (class last; class ``K`` is the
mask token), clamped to ``[-70, 0]`` as in VQ-Diffusion, and combined with ``logaddexp``/``logsumexp``.

Scores
------
``score_ce`` (the Diffusion Reward): start from all-mask tokens, denoise over the visited levels, for
``steps = 10``: t = 99, 89, ..., 9, 0 (levels 100, 90, ..., 10, 1 and finally x0; 11 network calls,
the release's ``skip_step = 9``), sampling each step with Gumbel noise (``noise=False``: argmax). The
score is the variational bound of the model's own sample ``x0_hat``: the sum over visited steps of
``-KL(q(z_u | z_v, x0_hat) || p(z_u | z_v))`` plus ``log p(x0_hat | z_1)``, summed over the 64 tokens
(M = 1 sample). Larger = more certain.

``score_ll``: the negative variational bound (ELBO) of the observed target over the same visited levels:
``-KL(q(z_T|x0) || p(z_T)) - sum_v E_{z_v ~ q(z_v|x0)} KL(q(z_u|z_v,x0) || p(z_u|z_v)) + E log p(x0|z_1)``
with one sample of ``z_v`` per visited level. The target is never fed into the condition.

Speed: the condition's cross-attention keys and values do not depend on the diffusion step, so they
are computed once per call (``ConditionCache``) and reused by every denoising step. Under bf16 autocast
with autograd off (scoring, sampling) the denoiser runs its own bf16 forward (``Denoiser._forward_lowp``:
bf16 weight copies made once per call, bf16 residual stream, bf16 math attention); training under autocast
keeps the autocast forward. Outside the network everything stays fp32 (``_log_space_fp32``), and scoring
reuses its large ``[B, 64, K+1]`` buffers in place, with the same numbers as the out-of-place form that
training keeps for autograd (docs/precision.md, "Speed").
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rewards.models.config import ModelConfig
from rewards.models.precision import fp32_region

LOG_EPS = -70.0  # log-probability floor, as in VQ-Diffusion (exp(-70) ~ 4e-31)


# ----------------------------------------------------------------------------- config


@dataclass
class VQDiffusionOptim(ModelConfig):
    """Trainer settings, every one read by ``rewards.models.pretrain.VideoModelTrainer``: AdamW with a
    linear warm-up from ``warmup_start_lr`` to ``lr`` over ``warmup_steps``, as the release."""

    lr: float = 4.5e-4  # learning rate reached after warm-up
    betas: tuple[float, float] = (0.9, 0.96)
    weight_decay: float = 4.5e-2
    warmup_steps: int = 5000
    warmup_start_lr: float = 3.0e-6
    grad_clip: float | None = 0.5  # gradient-norm clip of the release (applied at every step here)
    ema_decay: float | None = 0.99  # EMA of the weights, as the release; None: score the raw weights
    ema_every: int = 25  # EMA update every this many steps, as the release


@dataclass
class VQDiffusionConfig(ModelConfig):
    """Everything that fixes a VQ-Diffusion model; saved with its weights (``to_dict``)."""

    context: int = 2  # l, number of condition frames
    num_classes: int = 1024  # codebook size K (the mask token is class K)
    grid: int = 8  # tokens per frame = grid * grid
    diffusion_steps: int = 100  # T
    depth: int = 4
    width: int = 64
    heads: int = 4
    mlp_ratio: int = 4
    att_1: float = 0.99999  # keep probability at the first level
    att_T: float = 0.000009  # ... at the last level
    ctt_1: float = 0.000009  # mask probability at the first level
    ctt_T: float = 0.99999  # ... at the last level
    aux_weight: float = 5.0e-4  # VQ-Diffusion's auxiliary x0 cross-entropy weight
    adaptive_aux: bool = True  # weight the auxiliary term by (1 - t/T) + 1, as VQ-Diffusion
    time_sampling: str = "importance"  # "importance" (VQ-Diffusion) or "uniform"
    optim: VQDiffusionOptim = field(default_factory=VQDiffusionOptim)

    @property
    def tokens(self) -> int:
        return self.grid * self.grid

    @classmethod
    def preset(cls, name: str, context: int = 2, **overrides: Any) -> "VQDiffusionConfig":
        """``small`` (CPU-friendly) or ``paper`` (16 blocks, width 128, 16 heads) for ``context`` frames."""
        if name not in PRESETS:
            raise ValueError(f"unknown VQ-Diffusion preset {name!r}; valid: {', '.join(sorted(PRESETS))}")
        base = dict(PRESETS[name])
        optim = VQDiffusionOptim(**base.pop("optim", {}))
        cfg = cls(context=context, optim=optim, **base)
        return dataclasses.replace(cfg, **overrides) if overrides else cfg

    def validate(self) -> None:
        if self.context < 1:
            raise ValueError(f"context must be >= 1 frame, got {self.context}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if self.diffusion_steps < 2:
            raise ValueError(f"diffusion_steps must be >= 2, got {self.diffusion_steps}")
        if self.time_sampling not in TIME_SAMPLERS:
            raise ValueError(f"unknown time_sampling {self.time_sampling!r}; valid: {', '.join(TIME_SAMPLERS)}")


PRESETS: dict[str, dict[str, Any]] = {
    "small": dict(depth=4, width=64, heads=4, optim=dict(warmup_steps=500)),
    "paper": dict(depth=16, width=128, heads=16, optim=dict(warmup_steps=5000)),
}

TIME_SAMPLERS = ("importance", "uniform")


# ----------------------------------------------------------------------------- schedule


def _log_space_fp32(fn):
    """Run a posterior / marginal computation in fp32 whatever the caller's autocast.

    Its ``logsumexp``/``logaddexp`` over 1025 classes and the differences of near-equal logs that follow
    lose the reward's signal in bf16 (8 mantissa bits), and they are elementwise (cheap next to the
    network), so they never run in bf16: the distribution argument is cast to float and autocast is off.
    """

    @functools.wraps(fn)
    def wrapper(self, log_x: torch.Tensor, *args, **kwargs):
        with fp32_region(log_x.device):
            return fn(self, log_x.float(), *args, **kwargs)

    return wrapper


class MaskReplaceSchedule(nn.Module):
    """Log-space tables of the mask-and-replace transitions between every pair of levels ``u <= v``.

    ``log_a[u, v]``, ``log_b[u, v]``, ``log_c[u, v]`` are the keep, per-class replace and mask
    probabilities of ``q(z_v | z_u)`` (identity for ``u == v``); row ``u = 0`` gives the marginals
    ``q(z_v | x0)``. Computed in float64 then stored as float32 logs (non-persistent buffers: they are
    a pure function of the config, so checkpoints hold only weights).
    """

    def __init__(self, num_classes: int, steps: int, att_1: float, att_T: float, ctt_1: float, ctt_T: float):
        super().__init__()
        self.num_classes, self.steps = num_classes, steps
        lin = np.arange(steps, dtype=np.float64) / (steps - 1)
        A = np.concatenate([[1.0], att_1 + lin * (att_T - att_1)])  # A_s, s = 0..T
        C = np.concatenate([[0.0], ctt_1 + lin * (ctt_T - ctt_1)])  # C_s
        if np.any(A + C > 1.0) or np.any(A <= 0) or np.any(C >= 1):
            raise ValueError("schedule needs 0 < keep, mask < 1 and keep + mask <= 1 at every level")
        u, v = np.meshgrid(np.arange(steps + 1), np.arange(steps + 1), indexing="ij")
        a = np.where(u < v, A[v] / A[u], 1.0)
        one_minus_c = np.where(u < v, (1 - C[v]) / (1 - C[u]), 1.0)
        c = 1.0 - one_minus_c
        b = np.clip(one_minus_c - a, 0.0, None) / num_classes
        floor = math.exp(LOG_EPS)
        log = lambda x: torch.from_numpy(np.log(np.maximum(x, floor))).float()  # noqa: E731
        self.register_buffer("log_a", log(a), persistent=False)
        self.register_buffer("log_b", log(b), persistent=False)
        self.register_buffer("log_c", log(c), persistent=False)
        self.register_buffer("log_a_plus_b", log(a + b), persistent=False)
        self.register_buffer("log_1mc", log(one_minus_c), persistent=False)

    def coefficients(self, u: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """The log coefficients of ``Q_{u..v}`` per batch element, shaped ``[B, 1, 1]``."""
        return {
            name: getattr(self, name)[u, v].view(-1, 1, 1)
            for name in ("log_a", "log_b", "log_c", "log_a_plus_b", "log_1mc")
        }

    @_log_space_fp32
    def propagate(self, log_x: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``log sum_x exp(log_x[x]) Q_{u..v}(x -> .)`` for a (possibly unnormalised) ``[B, N, K+1]``.

        With a normalised distribution over ``z_u`` this is the distribution of ``z_v``; with ``u = 0``
        and a one-hot ``x0`` it is the marginal ``q(z_v | x0)``.
        """
        k = self.num_classes
        co = self.coefficients(u, v)
        real, mask = log_x[..., :k], log_x[..., k:]
        total_real = torch.logsumexp(real, dim=-1, keepdim=True)
        out_real = torch.logaddexp(real + co["log_a"], total_real + co["log_b"])
        out_mask = torch.logaddexp(total_real + co["log_c"], mask)
        return torch.cat([out_real, out_mask], dim=-1)

    def likelihood(self, z_v: torch.Tensor, u: torch.Tensor, v: torch.Tensor, classes: int) -> torch.Tensor:
        """``log q(z_v | z_u = j)`` for every ``j < classes`` as ``[B, N, classes]``, ``z_v`` observed.

        Observed mask: ``c`` for a real ``j``, 1 for the mask. Observed token ``k``: ``a + b`` for
        ``j = k``, ``b`` for another real ``j``, 0 for the mask (mask is absorbing).
        """
        k = self.num_classes
        co = self.coefficients(u, v)
        is_mask = (z_v == k).unsqueeze(-1)  # [B, N, 1]
        j = torch.arange(classes, device=z_v.device)
        same = z_v.unsqueeze(-1) == j  # [B, N, classes]
        real = torch.where(same, co["log_a_plus_b"], co["log_b"])
        masked = co["log_c"].expand_as(real)
        out = torch.where(is_mask, masked, real)
        if classes > k:  # the mask column
            col = torch.where(is_mask[..., 0], 0.0, LOG_EPS).unsqueeze(-1)
            out = torch.cat([out[..., :k], col], dim=-1)
        return out

    @_log_space_fp32
    def posterior_bayes(
        self, log_x0: torch.Tensor, z_v: torch.Tensor, u: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """``log p(z_u | z_v) = log sum_x0 q(z_u | z_v, x0) p(x0)`` by the generic Bayes formula.

        ``q(z_v | z_u) * sum_x0 [p(x0) / q(z_v | x0)] q(z_u | x0)``. The reference implementation
        (several passes over ``[B, 64, K+1]``); ``posterior`` is the same in closed form.
        """
        k = self.num_classes
        zeros = torch.zeros_like(u)
        log_q_zv_x0 = self.likelihood(z_v, zeros, v, k)  # q(z_v | x0) over x0
        log_w = log_x0[..., :k] - log_q_zv_x0
        log_w = torch.cat([log_w, torch.full_like(log_w[..., :1], 2 * LOG_EPS)], dim=-1)
        out = self.likelihood(z_v, u, v, k + 1) + self.propagate(log_w, zeros, u)
        return out.clamp(LOG_EPS, 0.0)

    @_log_space_fp32
    def posterior(self, log_x0: torch.Tensor, z_v: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``log p(z_u | z_v) = log sum_x0 q(z_u | z_v, x0) p(x0)`` for ``p(x0) = exp(log_x0)``, ``[B,64,K+1]``.

        ``log_x0`` is ``[B, 64, K+1]`` (mask column ignored); a one-hot gives the true posterior
        ``q(z_u | z_v, x0)``, the network's prediction the model's ``p_theta(z_u | z_v)``. Closed form
        of ``posterior_bayes`` (mask-and-replace makes every term a per-token affine map of p):

        - ``z_v`` = mask: ``p(z_u=j) = c_uv (A_u p_j + B_u) / C_v``, ``p(z_u=mask) = C_u / C_v``
        - ``z_v = k``: with ``W = (1 - p_k) / B_v + p_k / (A_v + B_v)``,
          ``p(z_u=j) = b_uv (A_u p_j / B_v + B_u W)`` for ``j != k``,
          ``p(z_u=k) = (a_uv + b_uv) (A_u p_k / (A_v + B_v) + B_u W)``, ``p(z_u=mask) = 0``
        """
        k = self.num_classes
        zeros = torch.zeros_like(u)
        cu, cv, tr = self.coefficients(zeros, u), self.coefficients(zeros, v), self.coefficients(u, v)
        log_p = log_x0[..., :k]
        is_mask = (z_v == k).unsqueeze(-1)  # [B, N, 1]
        idx = z_v.clamp(max=k - 1).unsqueeze(-1)
        log_pk = log_p.gather(-1, idx)
        rest = log_p.scatter(-1, idx, -math.inf)
        log_rest = torch.logsumexp(rest, dim=-1, keepdim=True)  # log(1 - p_k)
        log_w = torch.logaddexp(log_rest - cv["log_b"], log_pk - cv["log_a_plus_b"])
        s1 = torch.where(is_mask, tr["log_c"] - cv["log_c"], tr["log_b"])
        s2 = torch.where(is_mask, cu["log_a"], cu["log_a"] - cv["log_b"])
        s3 = torch.where(is_mask, cu["log_b"], cu["log_b"] + log_w)
        at_k = tr["log_a_plus_b"] + torch.logaddexp(cu["log_a"] + log_pk - cv["log_a_plus_b"], cu["log_b"] + log_w)
        mask_col = torch.where(is_mask, cu["log_c"] - cv["log_c"], LOG_EPS)
        if _needs_grad(log_x0):  # training: out-of-place, for autograd
            out = s1 + torch.logaddexp(log_p + s2, s3)
            out = out.scatter(-1, idx, torch.where(is_mask, out.gather(-1, idx), at_k))
            return torch.cat([out, mask_col], dim=-1).clamp(LOG_EPS, 0.0)
        # scoring and sampling: the same operations element for element (x + s1 == s1 + x), so the same
        # numbers, in place in the buffer of `rest` (done with): two [B, 64, K] allocations fewer, each of
        # which costs page faults (this runs 21 times per score_ce call)
        out = torch.add(log_p, s2, out=rest)
        torch.logaddexp(out, s3, out=out).add_(s1)
        out.scatter_(-1, idx, torch.where(is_mask, out.gather(-1, idx), at_k))
        return torch.cat([out, mask_col], dim=-1).clamp_(LOG_EPS, 0.0)

    def sample_marginal(self, x0: torch.Tensor, v: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Draw ``z_v ~ q(z_v | x0)`` directly (keep / uniform replace / mask), exactly, per token."""
        k = self.num_classes
        keep = self.log_a[0, v].exp().view(-1, 1)
        mask = self.log_c[0, v].exp().view(-1, 1)
        r = _uniform(x0.shape, generator, x0.device)
        rand_tok = _randint(k, x0.shape, generator, x0.device)
        z = torch.where(r < keep, x0, rand_tok)
        return torch.where(r >= 1.0 - mask, torch.full_like(x0, k), z)


# ----------------------------------------------------------------------------- random helpers


def _uniform(shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) drawn from ``generator`` on its own device (deterministic), moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def _randint(high: int, shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.randint(high, shape, generator=generator, device=gen_device).to(device)


def _gumbel_argmax(log_probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gumbel-max sampling, ``argmax(log p - log(-log U))`` (``Tensor.exponential_`` would save a
    log but is ~2x slower than ``rand`` + two logs on CPU)."""
    u = _uniform(log_probs.shape, generator, log_probs.device)
    # -log(-log(u + 1e-30) + 1e-30) + log_probs, in place on the fresh u: the same operations element for
    # element as the out-of-place expression (the same numbers), ~40% less time (no new [B, 64, K+1] buffers)
    gumbel = u.add_(1e-30).log_().neg_().add_(1e-30).log_().neg_()
    return gumbel.add_(log_probs).argmax(dim=-1)


def _argmax(log_probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return log_probs.argmax(dim=-1)


SAMPLERS = {True: _gumbel_argmax, False: _argmax}


def _needs_grad(*tensors: torch.Tensor) -> bool:
    """Whether autograd records these tensors' operations (training): the hot paths below then keep their
    out-of-place form; scoring and sampling (no grad) reuse buffers in place, with the same numbers."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _log_onehot(x: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.where(F.one_hot(x, classes).bool(), 0.0, LOG_EPS)


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) over the last (class) axis, summed over tokens: ``[B]`` (always fp32)."""
    log_p, log_q = log_p.float(), log_q.float()
    if _needs_grad(log_p, log_q):
        return (log_p.exp() * (log_p - log_q)).sum(dim=(-1, -2))
    return (log_p - log_q).mul_(log_p.exp()).sum(dim=(-1, -2))  # the same numbers, one buffer fewer


def _log_prob_of(log_p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_tokens log p[x]``: ``[B]``."""
    return log_p.gather(-1, x.unsqueeze(-1)).squeeze(-1).sum(dim=-1)


# ----------------------------------------------------------------------------- network


class TimestepEmbedding(nn.Module):
    """Sinusoidal embedding of the diffusion step, rescaled to 4000 positions as VQ-Diffusion does."""

    def __init__(self, width: int, steps: int, rescale: float = 4000.0):
        super().__init__()
        self.width, self.scale = width, rescale / steps

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.width // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000.0) / max(half - 1, 1)))
        arg = (t.float() * self.scale)[:, None] * freqs[None, :]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class AdaLayerNorm(nn.Module):
    """LayerNorm whose scale and shift come from the timestep embedding (VQ-Diffusion's AdaLayerNorm)."""

    def __init__(self, width: int):
        super().__init__()
        self.proj = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.norm = nn.LayerNorm(width, elementwise_affine=False)

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.proj(t_emb).unsqueeze(1).chunk(2, dim=-1)
        return self.norm(x) * (1 + scale) + shift

    def forward_lowp(self, x: torch.Tensor, t_emb: torch.Tensor, w: "LowPrecisionWeights") -> torch.Tensor:
        """``forward`` for the bf16 scoring path: scale and shift from the fp32 weights (a ``[B, 2D]`` product,
        no cost), the normalisation in ``x``'s dtype (the CPU kernel accumulates bf16 in fp32)."""
        scale, shift = self.proj(t_emb).unsqueeze(1).to(w.dtype).chunk(2, dim=-1)
        return torch.addcmul(shift, F.layer_norm(x, x.shape[-1:], eps=self.norm.eps), 1 + scale)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``scaled_dot_product_attention``, in fp32 when training under CPU autocast.

    Measured on a 2-core Xeon with AVX512-BF16 (torch 2.13): the CPU flash-attention backward takes ~62 ms a
    call in bf16 against ~9 ms in fp32, 44% of a small-preset training step, so bf16 pretraining ran 1.6x
    slower than fp32. The attention of a training step therefore runs in fp32 (the linear layers around it
    stay in bf16): a bf16 step then costs 0.30 CPU-s against fp32's 0.32, with the same losses to 4
    decimals. Scoring (no grad) keeps its own bf16 path (``forward_lowp``); CUDA keeps bf16 attention.
    """
    if q.device.type == "cpu" and torch.is_grad_enabled() and torch.is_autocast_enabled("cpu"):
        with fp32_region(q.device):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    return F.scaled_dot_product_attention(q, k, v)


class SelfAttention(nn.Module):
    """Full (non-causal) self-attention over the 64 target tokens."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_split_heads(y, self.heads) for y in self.qkv(x).chunk(3, dim=-1))
        return self.out(_merge_heads(_attend(q, k, v)))

    def forward_lowp(self, x: torch.Tensor, w: "LowPrecisionWeights") -> torch.Tensor:
        q, k, v = (_split_heads(y, self.heads) for y in w.linear(self.qkv, x).chunk(3, dim=-1))
        return w.linear(self.out, _attention_lowp(q, k, v.transpose(-1, -2)))


class CrossAttention(nn.Module):
    """Attention from the target tokens to the condition; keys/values come precomputed (``kv``)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def keys_values(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(cond).chunk(2, dim=-1)
        return _split_heads(k, self.heads), _split_heads(v, self.heads)

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        q = _split_heads(self.q(x), self.heads)
        return self.out(_merge_heads(_attend(q, kv[0], kv[1])))

    def forward_lowp(
        self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], w: "LowPrecisionWeights"
    ) -> torch.Tensor:
        """``kv``: keys ``[B, H, Nk, d]`` and transposed values ``[B, H, d, Nk]``, bf16 and contiguous
        (``Denoiser.condition_cache`` lays them out so once per call)."""
        q = _split_heads(w.linear(self.q, x), self.heads)
        return w.linear(self.out, _attention_lowp(q, kv[0], kv[1]))


class Block(nn.Module):
    """AdaLN self-attention, AdaLN cross-attention to the condition, LayerNorm MLP (pre-norm residual)."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm_self, self.attn_self = AdaLayerNorm(width), SelfAttention(width, heads)
        self.norm_cross, self.attn_cross = AdaLayerNorm(width), CrossAttention(width, heads)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))

    def forward(self, x, t_emb, kv):
        x = x + self.attn_self(self.norm_self(x, t_emb))
        x = x + self.attn_cross(self.norm_cross(x, t_emb), kv)
        return x + self.mlp(self.norm_mlp(x))

    def forward_lowp(self, x, t_emb, kv, w: "LowPrecisionWeights"):
        """``forward`` with the residual stream ``x`` and every matmul in ``w.dtype`` (bf16 scoring path)."""
        x = x + self.attn_self.forward_lowp(self.norm_self.forward_lowp(x, t_emb, w), w)
        x = x + self.attn_cross.forward_lowp(self.norm_cross.forward_lowp(x, t_emb, w), kv, w)
        fc1, _, fc2 = self.mlp
        h = w.linear(fc1, w.layer_norm(self.norm_mlp, x))
        return x + w.linear(fc2, F.gelu(h))


class ConditionEmbedding(nn.Module):
    """Context-frame tokens -> ``[B, l*64, D]``: token + frame-index + 2D position embeddings."""

    def __init__(self, cfg: VQDiffusionConfig, position: "GridPosition"):
        super().__init__()
        self.token = nn.Embedding(cfg.num_classes, cfg.width)
        self.frame = nn.Embedding(cfg.context, cfg.width)
        self.position = position
        self.norm = nn.LayerNorm(cfg.width)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        b, l, n = context.shape  # noqa: E741 (the paper's context length)
        emb = (
            self.token(context)
            + self.frame(torch.arange(l, device=context.device))[None, :, None, :]
            + self.position(n, context.device)[None, None]
        )
        return self.norm(emb.reshape(b, l * n, -1))


class GridPosition(nn.Module):
    """Row + column embeddings of the 8x8 token grid.

    One instance is shared by the target tokens and the condition tokens: a token and the context
    tokens at the same grid cell start with the same position code, so attending to "the same place
    in the previous frames" (most of what a video model needs) is easy to learn.
    """

    def __init__(self, grid: int, width: int):
        super().__init__()
        self.grid = grid
        self.row = nn.Embedding(grid, width)
        self.col = nn.Embedding(grid, width)

    def forward(self, n: int, device: torch.device) -> torch.Tensor:
        pos = torch.arange(n, device=device)
        return self.row(pos // self.grid) + self.col(pos % self.grid)


#: ``_attention_lowp``: windows per chunk on one torch thread, and chunks per call on more (see there)
ATTENTION_CHUNK, MT_CHUNKS = 8, 4


def _attention_lowp(q: torch.Tensor, k: torch.Tensor, v_t: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` of the bf16 scoring path, heads merged: ``[B, N, H*d]``.

    ``q`` is ``[B, H, N, d]``, ``k`` ``[B, H, Nk, d]`` and ``v_t`` the values transposed, ``[B, H, d, Nk]``.
    Why not ``F.scaled_dot_product_attention``: at the paper width its heads are 8 wide (16 heads of 128), and
    the CPU flash kernel's per-row work then costs more than the arithmetic: it took over half the bf16
    scoring time, as slow in bf16 as in fp32. Plain bf16 matmuls and a softmax take ~0.65x its time at 100
    windows on one thread (docs/precision.md, "Speed"). Computed transposed (``k q^T``, softmax over the keys
    axis, then ``v^T p``): both matmuls then have a wide output, which the bf16 GEMM handles better than an
    8-column one. The matmuls accumulate in fp32; the scores are rounded to bf16 before the softmax (which
    computes in fp32), as in any bf16 math attention.

    ``chunk`` windows at a time (default: ``ATTENTION_CHUNK`` = 8 on one torch thread, so that a chunk's
    scores stay in cache; ``MT_CHUNKS`` = 4 chunks on more threads): with several threads every op is a
    parallel region whose threads must all arrive, and on a machine whose cores other jobs share each
    such barrier can wait a scheduler slice. Measured at 2 threads, 100 windows: idle, 4 chunks as fast as
    13 and ~10% faster than 1; under heavy load (load average ~4), 13 chunks took 3-4x as long as 1 and
    2 chunks ~1.3x (docs/precision.md, "Speed").
    """
    b, h, n, d = q.shape
    if chunk is None:
        chunk = ATTENTION_CHUNK if torch.get_num_threads() == 1 else max(ATTENTION_CHUNK, -(-b // MT_CHUNKS))
    q_t = (q * d**-0.5).transpose(-1, -2)  # [B, H, d, N]
    out = torch.empty(b, h, d, n, dtype=q.dtype, device=q.device)
    for i in range(0, b, chunk):
        p_t = torch.softmax(torch.matmul(k[i : i + chunk], q_t[i : i + chunk]), dim=-2)  # [c, H, Nk, N]
        torch.matmul(v_t[i : i + chunk], p_t, out=out[i : i + chunk])
    return out.permute(0, 3, 1, 2).reshape(b, n, h * d)


class ConditionCache(list):
    """Per-block cross-attention ``(keys, values)`` of one batch of contexts (``Denoiser.condition_cache``),
    plus ``weights``: the bf16 weight copies of the bf16 scoring path, or None (every other forward)."""

    def __init__(self, kv: list, weights: "LowPrecisionWeights | None"):
        super().__init__(kv)
        self.weights = weights


#: False sends bf16 scoring back through the autocast path that the training forward takes (how it ran
#: before it had its own): only for measuring one against the other in one process
#: (tests/benchmarks/test_bench_vqdiffusion.py); the numbers differ in the last bf16 bits, not in kind
LOWP_SCORING = True


class LowPrecisionWeights:
    """bf16 copies of a denoiser's weights, made for one scoring call and dropped with it.

    Autocast re-casts a weight at every linear whose parameter does not require grad (a frozen, loaded
    model), and keeps the residual stream fp32 so that it casts the activations at every linear as well;
    with these copies the bf16 forward (``Denoiser._forward_lowp``) casts nothing per step. Made anew by every
    ``condition_cache`` call (once per ``score_ce``/``score_ll``/``sample`` call: 5.7M values at the paper
    preset, tens of ms next to seconds of scoring), so they can never be stale after an optimiser step or a
    ``load_state_dict``, are never in a ``state_dict`` or a checkpoint, and the model keeps no precision state.
    """

    def __init__(self, module: nn.Module, dtype: torch.dtype):
        self.dtype = dtype
        self.copies = {p: p.detach().to(dtype) for p in module.parameters()}  # parameter -> its bf16 copy

    @classmethod
    def for_scoring(cls, module: nn.Module, device: torch.device) -> "LowPrecisionWeights | None":
        """Copies for a forward under bf16 autocast with autograd off; None otherwise (fp32, or training
        under autocast, whose gradients must reach the fp32 parameters through autocast's own casts)."""
        kind = torch.device(device).type
        if (
            not LOWP_SCORING
            or torch.is_grad_enabled()
            or not torch.is_autocast_enabled(kind)
            or torch.get_autocast_dtype(kind) != torch.bfloat16
        ):
            return None
        return cls(module, torch.bfloat16)

    def __getitem__(self, p: torch.Tensor | None) -> torch.Tensor | None:
        return None if p is None else self.copies[p]

    def linear(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self[layer.weight], self[layer.bias])

    def layer_norm(self, norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, norm.normalized_shape, self[norm.weight], self[norm.bias], norm.eps)


class Denoiser(nn.Module):
    """Transformer predicting ``log p(x0 | z_t)`` over the K codes for each of the 64 target tokens."""

    def __init__(self, cfg: VQDiffusionConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.token = nn.Embedding(cfg.num_classes + 1, w)  # + mask token
        self.position = GridPosition(cfg.grid, w)
        self.time = TimestepEmbedding(w, cfg.diffusion_steps)
        self.condition = ConditionEmbedding(cfg, self.position)
        self.blocks = nn.ModuleList(Block(w, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.head = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, cfg.num_classes))

    def condition_cache(self, context: torch.Tensor) -> "ConditionCache":
        """Cross-attention keys/values of every block for ``context``: constant across diffusion steps.

        Under bf16 autocast with autograd off (scoring, sampling) it also holds the bf16 copies of the
        weights that ``forward`` then runs on (``LowPrecisionWeights``)."""
        cond = self.condition(context)
        kv = [blk.attn_cross.keys_values(cond) for blk in self.blocks]
        weights = LowPrecisionWeights.for_scoring(self, context.device)
        if weights is not None:  # the layout _attention_lowp reads, made once for every step of the call
            kv = [(k.to(weights.dtype).contiguous(), v.to(weights.dtype).transpose(-1, -2).contiguous()) for k, v in kv]
        return ConditionCache(kv, weights)

    def forward(self, z: torch.Tensor, t: torch.Tensor, kv_cache) -> torch.Tensor:
        """Logits ``[B, 64, K]`` of ``x0`` given ``z`` (``[B, 64]``, mask = K) at timestep index ``t``."""
        lowp = getattr(kv_cache, "weights", None)
        if lowp is not None:
            return self._forward_lowp(z, t, kv_cache, lowp)
        x = self.token(z) + self.position(z.shape[1], z.device)[None]
        t_emb = self.time(t)
        for blk, kv in zip(self.blocks, kv_cache):
            x = blk(x, t_emb, kv)
        return self.head(x)

    def _forward_lowp(self, z: torch.Tensor, t: torch.Tensor, kv_cache, w: "LowPrecisionWeights") -> torch.Tensor:
        """The bf16 scoring forward: one cast at the token embedding, then the residual stream, LayerNorms and
        matmuls all in bf16 on the bf16 weight copies, with autocast off (autocast would cast the stream
        to bf16 again at every linear and, for a frozen model, every weight at every call). The timestep
        embedding and AdaLN scale/shift are computed in fp32 and cast once; the logits come out in bf16
        and ``_predict_x0`` casts them to fp32 before its ``log_softmax`` as on the autocast path."""
        with fp32_region(z.device):
            x = F.embedding(z, w[self.token.weight]) + self.position(z.shape[1], z.device).to(w.dtype)[None]
            t_emb = self.time(t)
            for blk, kv in zip(self.blocks, kv_cache):
                x = blk.forward_lowp(x, t_emb, kv, w)
            norm, head = self.head
            return w.linear(head, w.layer_norm(norm, x))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------- the model


class VQDiffusion(nn.Module):
    """Frame-conditioned VQ-Diffusion: ``loss``, ``score_ce``, ``score_ll``, ``sample`` (see module doc)."""

    def __init__(self, config: VQDiffusionConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.num_classes, self.tokens, self.steps = config.num_classes, config.tokens, config.diffusion_steps
        self.schedule = MaskReplaceSchedule(
            config.num_classes, config.diffusion_steps, config.att_1, config.att_T, config.ctt_1, config.ctt_T
        )
        self.denoiser = Denoiser(config)
        self.apply(_init_weights)
        # importance sampling of t (VQ-Diffusion): running mean of L_t^2 and visit counts
        self.register_buffer("lt_history", torch.zeros(config.diffusion_steps))
        self.register_buffer("lt_count", torch.zeros(config.diffusion_steps))

    @classmethod
    def from_config(cls, config: VQDiffusionConfig | dict) -> "VQDiffusion":
        if isinstance(config, dict):
            config = VQDiffusionConfig.from_dict(config)
        if not isinstance(config, VQDiffusionConfig):
            raise ValueError(f"expected a VQDiffusionConfig or dict, got {type(config).__name__}")
        return cls(config)

    @property
    def device(self) -> torch.device:
        return self.schedule.log_a.device

    # ------------------------------------------------------------------ input checks

    def _check_tokens(self, x: Any, name: str, shape: tuple) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise ValueError(
                f"{name} must be a torch.LongTensor of shape "
                f"{tuple('B' if s is None else s for s in shape)}, got {type(x).__name__}"
            )
        if x.dtype != torch.long:
            raise ValueError(f"{name} must be int64 (LongTensor) codec token ids, got dtype {x.dtype}")
        pretty = tuple("B" if s is None else s for s in shape)
        if (
            x.ndim != len(shape)
            or x.shape[0] == 0
            or any(s is not None and x.shape[i] != s for i, s in enumerate(shape))
        ):
            raise ValueError(f"{name} must have shape {pretty}, got {tuple(x.shape)}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.num_classes):
            raise ValueError(
                f"{name} token ids must lie in [0, {self.num_classes}), got min {int(x.min())} max {int(x.max())}"
            )
        return x.to(self.device)

    def _check_context(self, context: Any) -> torch.Tensor:
        return self._check_tokens(context, "context", (None, self.config.context, self.tokens))

    def _check_target(self, target: Any, batch: int) -> torch.Tensor:
        target = self._check_tokens(target, "target", (None, self.tokens))
        if target.shape[0] != batch:
            raise ValueError(f"target batch {target.shape[0]} does not match context batch {batch}")
        return target

    def visited_levels(self, steps: int | None) -> list[int]:
        """Levels visited by a ``steps``-step chain: t = T-1, T-1-T/steps, ..., then 0 (level = t + 1).

        ``steps=10``: t = 99, 89, ..., 9, 0 -> levels [100, 90, ..., 10, 1]; each level v is followed by
        the next one (or by x0 = level 0 after the last).
        """
        steps = 10 if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= self.steps:
            raise ValueError(f"steps must be an int in [1, {self.steps}], got {steps!r}")
        stride = self.steps / steps
        ts = sorted({int(round(self.steps - 1 - i * stride)) for i in range(steps)} | {0}, reverse=True)
        return [t + 1 for t in ts]

    # ------------------------------------------------------------------ building blocks

    def _predict_x0(self, z: torch.Tensor, level: torch.Tensor, kv_cache) -> torch.Tensor:
        """``log p_theta(x0 | z_level)`` as ``[B, 64, K+1]`` (mask column at the floor)."""
        logits = self.denoiser(z, level - 1, kv_cache)
        log_p = F.log_softmax(logits.float(), dim=-1)
        log_p = torch.cat([log_p, torch.full_like(log_p[..., :1], LOG_EPS)], dim=-1)
        return log_p.clamp(LOG_EPS, 0.0) if _needs_grad(log_p) else log_p.clamp_(LOG_EPS, 0.0)

    def _levels(self, value: int, batch: int) -> torch.Tensor:
        return torch.full((batch,), value, dtype=torch.long, device=self.device)

    def _prior_kl(self, target: torch.Tensor) -> torch.Tensor:
        """KL(q(z_T | x0) || p(z_T)) with the fixed prior p(z_T) = q(z_T | x0 uniform over the codebook)."""
        b, k = target.shape[0], self.num_classes
        top = self._levels(self.steps, b)
        log_q = self.schedule.propagate(_log_onehot(target, k + 1), torch.zeros_like(top), top)
        uniform = torch.full_like(log_q[:1, :1], -math.log(k))
        uniform[..., k] = LOG_EPS
        log_prior = self.schedule.propagate(uniform, torch.zeros_like(top[:1]), top[:1])
        return _kl(log_q.clamp(LOG_EPS, 0.0), log_prior.clamp(LOG_EPS, 0.0))

    # ------------------------------------------------------------------ training loss

    def _sample_time(self, batch: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Timestep indices t and their probabilities: importance ~ sqrt(E[L_t^2]) once every t was seen
        more than 10 times (VQ-Diffusion), uniform before that or with ``time_sampling="uniform"``."""
        if self.config.time_sampling == "importance" and bool((self.lt_count > 10).all()):
            w = torch.sqrt(self.lt_history + 1e-10) + 1e-4
            w[0] = w[1]
            p_all = w / w.sum()
            gen_device = generator.device if generator is not None else self.device
            t = torch.multinomial(p_all.to(gen_device), batch, replacement=True, generator=generator).to(self.device)
            return t, p_all[t]
        t = _randint(self.steps, (batch,), generator, self.device)
        return t, torch.full((batch,), 1.0 / self.steps, device=self.device)

    def loss(
        self, context: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """VQ-Diffusion's training loss for ``target [B,64]`` given ``context [B,l,64]``.

        One t per window: ``L_t / p(t)`` (the KL term, or the decoder NLL at t = 0) plus the auxiliary
        x0 cross-entropy ``aux_weight * (1 + (1 - t/T)) * CE / p(t)``, averaged over windows and divided
        by the 64 tokens (VQ-Diffusion's normalisation: the loss is the bound in nats per token).
        """
        context = self._check_context(context)
        target = self._check_target(target, context.shape[0])
        b, k = target.shape[0], self.num_classes
        t, pt = self._sample_time(b, generator)
        v = t + 1
        z_v = self.schedule.sample_marginal(target, v, generator)
        kv = self.denoiser.condition_cache(context)
        log_x0 = self._predict_x0(z_v, v, kv)
        log_model = self.schedule.posterior(log_x0, z_v, t, v)
        log_true = self.schedule.posterior(_log_onehot(target, k + 1), z_v, t, v)
        decoder_nll = -_log_prob_of(log_model, target)
        is_last = t == 0
        kl = torch.where(is_last, decoder_nll, _kl(log_true, log_model))
        aux = torch.where(is_last, decoder_nll, -_log_prob_of(log_x0, target))
        aux_scale = (1.0 - t.float() / self.steps) + 1.0 if self.config.adaptive_aux else torch.ones_like(pt)
        per_window = (kl + self.config.aux_weight * aux_scale * aux) / pt
        loss = per_window.mean() / self.tokens
        if self.training:
            with torch.no_grad():
                self.lt_history[t] = 0.1 * kl.detach() ** 2 + 0.9 * self.lt_history[t]
                self.lt_count.index_add_(0, t, torch.ones_like(kl))
        with torch.no_grad():
            acc = (log_x0[..., :k].argmax(-1) == target).float().mean()
            info = {
                "loss": float(loss),
                "vb_per_token": float((kl / pt).mean() / self.tokens),
                "x0_ce_per_token": float(aux.mean() / self.tokens),
                "x0_acc": float(acc),
                "t_mean": float(t.float().mean()),
            }
        return loss, info

    # ------------------------------------------------------------------ reverse chain

    def _kv(self, context: torch.Tensor, cache_condition: bool):
        """Keys/values once per call (``cache_condition``) or a callable recomputing them every step."""
        if cache_condition:
            kv = self.denoiser.condition_cache(context)
            return lambda: kv
        return lambda: self.denoiser.condition_cache(context)

    def _reverse_chain(self, context, steps, noise, generator, cache_condition, keep_trace: bool):
        """Run the visited-level chain from all-mask; returns ``x0_hat`` and, if asked, per-step traces."""
        if not isinstance(noise, bool):
            raise ValueError(f"noise must be True or False, got {noise!r}")
        levels = self.visited_levels(steps)
        b = context.shape[0]
        kv = self._kv(context, cache_condition)
        draw = SAMPLERS[noise]
        z = torch.full((b, self.tokens), self.num_classes, dtype=torch.long, device=self.device)
        trace = []
        for i, level in enumerate(levels):
            nxt = levels[i + 1] if i + 1 < len(levels) else 0
            v, u = self._levels(level, b), self._levels(nxt, b)
            log_x0 = self._predict_x0(z, v, kv())
            log_p = self.schedule.posterior(log_x0, z, u, v)
            if nxt == 0:
                log_p = log_x0  # q(z_0 | z_1, x0) = delta(x0): p(z_0 | z_1) = p_theta(x0 | z_1)
                z_next = draw(log_p[..., : self.num_classes], generator)
            else:
                z_next = draw(log_p, generator)
            if keep_trace:
                trace.append((z, v, u, log_p))
            z = z_next
        return z, trace

    @torch.no_grad()
    def predict_x0(self, context: torch.Tensor, z: torch.Tensor, level: int) -> torch.Tensor:
        """``log p_theta(x0 | z_level, context)`` ``[B, 64, K+1]`` for a given noisy frame ``z`` (mask = K).

        For diagnostics (``rewards.models.diagnostics``: does the model copy the visible tokens at the
        lowest noise level?); training and scoring call the network through their own loops."""
        context = self._check_context(context)
        if not 1 <= int(level) <= self.steps:
            raise ValueError(f"level must be in [1, {self.steps}], got {level}")
        return self._predict_x0(
            z.to(self.device), self._levels(int(level), context.shape[0]), self.denoiser.condition_cache(context)
        )

    @torch.no_grad()
    def sample(
        self,
        context: torch.Tensor,
        steps: int | None = 10,
        noise: bool = True,
        generator: torch.Generator | None = None,
        cache_condition: bool = True,
    ) -> torch.Tensor:
        """A next-frame token grid ``[B, 64]`` for each context window (reverse chain from all-mask)."""
        context = self._check_context(context)
        x0, _ = self._reverse_chain(context, steps, noise, generator, cache_condition, keep_trace=False)
        return x0

    @torch.no_grad()
    def score_ce(
        self,
        context: torch.Tensor,
        steps: int | None = 10,
        noise: bool = True,
        generator: torch.Generator | None = None,
        cache_condition: bool = True,
    ) -> torch.Tensor:
        """Diffusion Reward's conditional-entropy estimate ``[B]`` (larger = more certain).

        The variational bound of the model's own sample x0_hat (M = 1): sum over visited steps of
        ``-KL(q(z_u | z_v, x0_hat) || p(z_u | z_v))`` plus ``log p(x0_hat | z_1)``, over 64 tokens.
        ``cache_condition=False`` recomputes the condition every step (only to measure the saving).
        """
        context = self._check_context(context)
        x0_hat, trace = self._reverse_chain(context, steps, noise, generator, cache_condition, keep_trace=True)
        *kl_steps, (_, _, _, log_p_last) = trace
        score = _log_prob_of(log_p_last, x0_hat)
        true_x0 = _log_onehot(x0_hat, self.num_classes + 1)
        for z, v, u, log_p in kl_steps:
            score = score - _kl(self.schedule.posterior(true_x0, z, u, v), log_p)
        return score

    @torch.no_grad()
    def score_ll(
        self,
        context: torch.Tensor,
        target: torch.Tensor,
        steps: int | None = 10,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """ELBO of ``target`` given ``context`` only, ``[B]`` nats (negative variational bound).

        Over the visited levels of a ``steps`` chain (exact skip transitions make it a valid bound;
        ``steps=100`` is the full 100-step bound): prior KL at level T, one ``z_v ~ q(z_v | x0)`` per
        visited level for its KL term, and the decoder term ``log p(x0 | z_1)``.
        """
        context = self._check_context(context)
        target = self._check_target(target, context.shape[0])
        levels = self.visited_levels(steps)
        b, k = target.shape[0], self.num_classes
        kv = self.denoiser.condition_cache(context)
        true_x0 = _log_onehot(target, k + 1)
        elbo = -self._prior_kl(target)
        for i, level in enumerate(levels):
            nxt = levels[i + 1] if i + 1 < len(levels) else 0
            v, u = self._levels(level, b), self._levels(nxt, b)
            z_v = self.schedule.sample_marginal(target, v, generator)
            log_x0 = self._predict_x0(z_v, v, kv)
            if nxt == 0:
                elbo = elbo + _log_prob_of(log_x0, target)
            else:
                log_p = self.schedule.posterior(log_x0, z_v, u, v)
                elbo = elbo - _kl(self.schedule.posterior(true_x0, z_v, u, v), log_p)
        return elbo
