"""VideoGPT, VIPER's video model: a causal transformer over codec tokens
(docs/models-and-rewards.md#videogpt-vipers-model).

A window of l context frames plus one target frame is the sequence of its (l+1) * 64 codec tokens,
frame by frame, row-major inside a frame. The input is the sequence shifted right by one behind a
learned BOS token; the embedding of position p is token embedding + learned in-frame position
embedding (p mod 64) + learned frame embedding (p // 64). Pre-LayerNorm GPT blocks follow.

- ``loss``: teacher-forced cross-entropy on the target frame's 64 tokens only (the context frames are
  given at scoring time, so the model is trained on exactly the conditional it scores; set
  ``loss_all_frames=True`` to add the context tokens' cross-entropy as well).
- ``score_ll(context, target)``: teacher-forced sum of log p of the target frame's 64 tokens.
- ``score_ce(context, steps=None, noise=True, generator=None)``: minus the summed entropy of the 64
  per-token predictive distributions of the next frame. The protocol says "under teacher forcing"; with
  no observed next frame, the model is teacher-forced on its own sample: it samples the next frame
  token by token (``noise=False``: greedy argmax) and sums the entropy of each token's predictive
  distribution along the way. ``steps`` has no meaning for an autoregressive model and is ignored
  (it is in the signature so VideoGPT and VQ-Diffusion are called the same way).
- ``sample(context, ...)``: next-frame prediction, the same pass returning the sampled tokens.

The 64-token autoregressive pass uses a key/value cache, so it costs one context pass plus 64
one-token steps. Everything is batched over windows.

Presets: ``paper`` = 8 layers, width 512, 8 heads; ``small`` = 4 layers, width 128, 4 heads (CPU).
Optimiser: Adam (AdamW with weight decay 0.01 on all weights) lr 3e-4, betas (0.9, 0.95), linear
warm-up over 100 steps (small) / 1000 steps (paper): a standard GPT recipe; VIPER's exact schedule is
not in the spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from rewards.models.codec import TOKENS_PER_FRAME  # noqa: E402  (the codec decides the token grid)
from rewards.models.config import ModelConfig


@dataclass
class VideoGPTOptim(ModelConfig):
    """AdamW with linear warm-up from ``warmup_start_lr`` to ``lr`` over ``warmup_steps`` and the gradient
    norm clipped to ``grad_clip``; every field is read by ``rewards.models.pretrain.VideoModelTrainer``."""

    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.01
    warmup_steps: int = 100
    warmup_start_lr: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float | None = 0.99  # the same EMA as VQ-Diffusion's, so the two models are scored alike
    ema_every: int = 25


@dataclass
class VideoGPTConfig(ModelConfig):
    context: int = 2  # l context frames; the window has l + 1 frames
    vocab_size: int = 1024  # codec codebook size
    n_layers: int = 4
    width: int = 128
    n_heads: int = 4
    dropout: float = 0.1
    loss_all_frames: bool = False
    optim: VideoGPTOptim = field(default_factory=VideoGPTOptim)

    @classmethod
    def preset(cls, name: str, context: int = 2) -> "VideoGPTConfig":
        if name not in VIDEOGPT_PRESETS:
            raise ValueError(f"unknown VideoGPT preset {name!r}; valid: {', '.join(sorted(VIDEOGPT_PRESETS))}")
        if context < 1:
            raise ValueError(f"context must be >= 1 frame, got {context}")
        return cls(context=context, **VIDEOGPT_PRESETS[name]())


VIDEOGPT_PRESETS = {
    "small": lambda: dict(n_layers=4, width=128, n_heads=4, optim=VideoGPTOptim(warmup_steps=100)),
    "paper": lambda: dict(n_layers=8, width=512, n_heads=8, optim=VideoGPTOptim(warmup_steps=1000)),
}


class KVCache:
    """Per-layer keys and values of the positions seen so far ([B, heads, T, head_dim])."""

    def __init__(self, n_layers: int):
        self.k: list[torch.Tensor | None] = [None] * n_layers
        self.v: list[torch.Tensor | None] = [None] * n_layers

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        if self.k[layer] is not None:
            k = torch.cat([self.k[layer], k], dim=2)
            v = torch.cat([self.v[layer], v], dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v


class Block(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)
        self.dropout = dropout

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (y.view(b, t, self.heads, c // self.heads).transpose(1, 2) for y in (q, k, v))
        if cache is not None:
            past = 0 if cache.k[layer] is None else cache.k[layer].shape[2]
            k, v = cache.extend(layer, k, v)
        else:
            past = 0
        if past == 0:
            a = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
            )
        else:
            # new queries attend to every cached position and causally among themselves
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(diagonal=past)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, c)))
        return x + self.drop(self.mlp(self.ln2(x)))


class VideoGPT(nn.Module):
    def __init__(self, config: VideoGPTConfig):
        super().__init__()
        if config.width % config.n_heads:
            raise ValueError(f"width {config.width} must be divisible by n_heads {config.n_heads}")
        self.config = config
        self.frames = config.context + 1
        self.seq_len = self.frames * TOKENS_PER_FRAME
        self.bos = config.vocab_size
        self.tok = nn.Embedding(config.vocab_size + 1, config.width)
        self.pos = nn.Parameter(torch.zeros(TOKENS_PER_FRAME, config.width))
        self.frame = nn.Parameter(torch.zeros(self.frames, config.width))
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config.width, config.n_heads, config.dropout) for _ in range(config.n_layers))
        self.ln = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, config.vocab_size, bias=False)
        self.apply(self._init)
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.frame, std=0.02)
        for blk in self.blocks:  # GPT-2 scaled init of residual projections
            nn.init.normal_(blk.proj.weight, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    @classmethod
    def from_config(cls, config: VideoGPTConfig) -> "VideoGPT":
        return cls(config)

    # ------------------------------------------------------------ checks
    def _check(self, context: torch.Tensor, target: torch.Tensor | None = None) -> None:
        l = self.config.context  # noqa: E741 (the paper's context length)
        if context.ndim != 3 or context.shape[1] != l or context.shape[2] != TOKENS_PER_FRAME:
            raise ValueError(
                f"context must be LongTensor [B, {l}, {TOKENS_PER_FRAME}] (l={l}), got {tuple(context.shape)}"
            )
        if context.dtype != torch.long:
            raise ValueError(f"context must be int64 token ids, got {context.dtype}")
        if target is not None:
            if target.shape != (context.shape[0], TOKENS_PER_FRAME) or target.dtype != torch.long:
                raise ValueError(
                    f"target must be LongTensor [B={context.shape[0]}, {TOKENS_PER_FRAME}], "
                    f"got {target.dtype} {tuple(target.shape)}"
                )

    # ------------------------------------------------------------ core
    def _embed(self, inputs: torch.Tensor, start: int) -> torch.Tensor:
        pos = torch.arange(start, start + inputs.shape[1], device=inputs.device)
        x = self.tok(inputs) + self.pos[pos % TOKENS_PER_FRAME] + self.frame[pos // TOKENS_PER_FRAME]
        return self.drop(x)

    def _forward(self, inputs: torch.Tensor, start: int = 0, cache: KVCache | None = None) -> torch.Tensor:
        x = self._embed(inputs, start)
        for i, blk in enumerate(self.blocks):
            x = blk(x, cache, i)
        return self.head(self.ln(x))

    def _logits(self, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits of every position of the (l+1)-frame sequence: [B, (l+1)*64, V]."""
        seq = torch.cat([context.flatten(1), target], dim=1)
        bos = torch.full((seq.shape[0], 1), self.bos, dtype=torch.long, device=seq.device)
        return self._forward(torch.cat([bos, seq[:, :-1]], dim=1))

    # ------------------------------------------------------------ contract
    def loss(self, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check(context, target)
        logits = self._logits(context, target).float()  # the loss in fp32 under bf16 autocast
        if self.config.loss_all_frames:
            seq = torch.cat([context.flatten(1), target], dim=1)
            return F.cross_entropy(logits.flatten(0, 1), seq.flatten())
        tl = logits[:, -TOKENS_PER_FRAME:]
        return F.cross_entropy(tl.flatten(0, 1), target.flatten())

    @torch.no_grad()
    def score_ll(
        self,
        context: torch.Tensor,
        target: torch.Tensor,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sum over the target frame's 64 tokens of log p(token | context, previous tokens): [B]."""
        self._check(context, target)
        logp = self._logits(context, target)[:, -TOKENS_PER_FRAME:].float().log_softmax(-1)
        return logp.gather(-1, target[..., None]).squeeze(-1).sum(1)

    @torch.no_grad()
    def _rollout(self, context: torch.Tensor, noise: bool, generator: torch.Generator | None):
        """Sample the next frame token by token with a KV cache; return (tokens [B,64], entropy sum [B])."""
        self._check(context)
        b = context.shape[0]
        bos = torch.full((b, 1), self.bos, dtype=torch.long, device=context.device)
        cache = KVCache(len(self.blocks))
        logits = self._forward(torch.cat([bos, context.flatten(1)], dim=1), 0, cache)[:, -1]
        start = 1 + context.shape[1] * TOKENS_PER_FRAME
        tokens, entropy = [], torch.zeros(b, device=context.device)
        for j in range(TOKENS_PER_FRAME):
            logp = logits.float().log_softmax(-1)
            entropy -= (logp.exp() * logp).sum(-1)
            if noise:
                nxt = torch.multinomial(logp.exp(), 1, generator=generator)
            else:
                nxt = logp.argmax(-1, keepdim=True)
            tokens.append(nxt)
            if j < TOKENS_PER_FRAME - 1:
                logits = self._forward(nxt, start + j, cache)[:, -1]
        return torch.cat(tokens, dim=1), entropy

    @torch.no_grad()
    def score_ce(
        self,
        context: torch.Tensor,
        steps: int | None = None,
        noise: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Minus the summed per-token entropy of the next frame, forced on the model's own sample: [B]."""
        return -self._rollout(context, noise, generator)[1]

    @torch.no_grad()
    def sample(
        self,
        context: torch.Tensor,
        steps: int | None = None,
        noise: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Next-frame tokens [B, 64] given the context [B, l, 64]."""
        return self._rollout(context, noise, generator)[0]
