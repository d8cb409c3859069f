"""VQGAN codec: 64x64 RGB frames <-> 8x8 = 64 discrete tokens (docs/models-and-rewards.md#codec-vqgan).

Both video models (VideoGPT, VQ-Diffusion) work on these tokens, so the codec is trained first and
frozen afterwards.

Architecture: a convolutional encoder (one residual block per level, GroupNorm + SiLU, a strided
downsampling between levels: 64 -> 32 -> 16 -> 8), a vector quantiser, and a mirrored decoder.

Losses (generator side): L1 reconstruction + VQ commitment (beta = 0.25) + patch-GAN hinge loss.
- Quantiser: straight-through estimator; the codebook is learned by an exponential moving average of
  the assigned encoder outputs (EMA, decay 0.99), not by a codebook loss term. EMA codebooks are
  steadier with short training.
- Codebook collapse guard: codes unused for ``dead_after`` training steps are re-initialised to
  random encoder outputs of the current batch (a cheap stand-in for k-means restarts). Training here
  is short, and without this most of the 1024 codes never get used.
- Patch-GAN: a 3-layer conv discriminator with hinge loss; it switches on after ``disc_start`` steps
  (the autoencoder must first reconstruct something), and its weight is balanced adaptively against
  the L1 loss by the ratio of gradient norms at the decoder's last layer, as in VQGAN.
- No LPIPS: the original VQGAN adds a perceptual loss computed by a pretrained VGG, and no pretrained
  weights can be loaded here, so it is left out. Reconstructions are therefore a little blurrier than
  the paper's codec.

Presets: ``paper`` = channels [128, 128, 256, 256], codebook 1024 x 64. ``small`` (CPU) = channels
[32, 64, 64, 64], the same 1024 x 64 codebook, so the video models' vocabulary is 1024 in both presets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rewards.models.config import ModelConfig
from rewards.models.precision import autocast, fp32_region

FRAME_SHAPE = (3, 64, 64)
TOKENS_PER_FRAME = 64


@dataclass
class CodecOptim(ModelConfig):
    """Adam for the autoencoder and for the discriminator (VQGAN uses betas (0.5, 0.9)).

    Every field is read by ``rewards.models.pretrain.CodecTrainer`` (the same optimiser fields as the video
    models' configs): linear warm-up from ``warmup_start_lr`` over ``warmup_steps``, gradient-norm clip
    ``grad_clip`` (None: no clipping, as VQGAN).
    """

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    warmup_start_lr: float = 0.0
    grad_clip: float | None = None


@dataclass
class CodecConfig(ModelConfig):
    channels: tuple[int, ...] = (32, 64, 64, 64)
    codebook_size: int = 1024
    code_dim: int = 64
    beta: float = 0.25  # commitment weight
    ema_decay: float = 0.99
    dead_after: int = 50  # steps without use before a code is re-initialised
    disc_channels: int = 64
    disc_start: int = 2000  # generator steps before the GAN loss switches on
    disc_weight: float = 0.1  # scale on the adaptive GAN weight
    optim: CodecOptim = field(default_factory=CodecOptim)

    @classmethod
    def preset(cls, name: str) -> "CodecConfig":
        if name not in CODEC_PRESETS:
            raise ValueError(f"unknown codec preset {name!r}; valid: {', '.join(sorted(CODEC_PRESETS))}")
        return CODEC_PRESETS[name]()


CODEC_PRESETS = {
    "small": lambda: CodecConfig(
        channels=(32, 64, 64, 64), disc_channels=32, disc_start=1000, optim=CodecOptim(lr=1e-3)
    ),
    "paper": lambda: CodecConfig(
        channels=(128, 128, 256, 256), disc_channels=64, disc_start=10000, optim=CodecOptim(lr=2e-4)
    ),
}


def check_frames(frames) -> torch.Tensor:
    """``frames`` as a tensor; ValueError unless it is uint8 [N, 3, 64, 64] (a numpy array is accepted)."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(frames)
    if not isinstance(frames, torch.Tensor):
        raise ValueError(f"frames must be uint8 [N, 3, 64, 64] (tensor or array), got {type(frames).__name__}")
    if frames.dtype != torch.uint8 or frames.ndim != 4 or tuple(frames.shape[1:]) != FRAME_SHAPE:
        raise ValueError(f"frames must be uint8 [N, 3, 64, 64], got {frames.dtype} {tuple(frames.shape)}")
    return frames


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return frames.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(32 if ch % 32 == 0 else 8, ch)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            _norm(cin),
            nn.SiLU(),
            nn.Conv2d(cin, cout, 3, padding=1),
            _norm(cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.skip(x) + self.body(x)


class Encoder(nn.Module):
    def __init__(self, channels, code_dim):
        super().__init__()
        layers = [nn.Conv2d(3, channels[0], 3, padding=1)]
        for i, ch in enumerate(channels):
            layers.append(ResBlock(channels[max(i - 1, 0)], ch))
            if i < len(channels) - 1:
                layers.append(nn.Conv2d(ch, ch, 4, stride=2, padding=1))
        layers += [
            ResBlock(channels[-1], channels[-1]),
            _norm(channels[-1]),
            nn.SiLU(),
            nn.Conv2d(channels[-1], code_dim, 1),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, channels, code_dim):
        super().__init__()
        rev = list(reversed(channels))
        layers = [nn.Conv2d(code_dim, rev[0], 3, padding=1), ResBlock(rev[0], rev[0])]
        for i, ch in enumerate(rev):
            layers.append(ResBlock(rev[max(i - 1, 0)], ch))
            if i < len(rev) - 1:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1)]
        layers += [_norm(rev[-1]), nn.SiLU()]
        self.net = nn.Sequential(*layers)
        self.out = nn.Conv2d(rev[-1], 3, 3, padding=1)  # last layer: the adaptive GAN weight reads it

    def forward(self, z):
        return self.out(self.net(z))


class EMAQuantizer(nn.Module):
    """Nearest-code quantiser with an EMA codebook and dead-code restarts."""

    def __init__(self, size: int, dim: int, decay: float, dead_after: int):
        super().__init__()
        self.size, self.dim, self.decay, self.dead_after = size, dim, decay, dead_after
        embed = torch.randn(size, dim) * 0.1
        self.register_buffer("embed", embed)
        self.register_buffer("embed_sum", embed.clone())
        self.register_buffer("cluster_size", torch.ones(size))
        self.register_buffer("unused_steps", torch.zeros(size, dtype=torch.long))

    def codes(self, z_flat: torch.Tensor) -> torch.Tensor:
        # fp32 even under bf16 autocast: a bf16 distance would flip the choice between near codes
        with fp32_region(z_flat.device):
            z_flat = z_flat.float()
            d = z_flat.pow(2).sum(1, keepdim=True) - 2 * z_flat @ self.embed.t() + self.embed.pow(2).sum(1)[None, :]
            return d.argmin(1)

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.embed)

    def forward(self, z: torch.Tensor):
        """z [B, D, H, W] -> (straight-through quantised z, commitment MSE, indices [B, H*W])."""
        b, d, h, w = z.shape
        z = z.float()  # the codebook, its EMA and the commitment loss stay fp32 under bf16 autocast
        z_flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        idx = self.codes(z_flat.detach())
        zq = self.lookup(idx)
        if self.training:
            self._ema_update(z_flat.detach(), idx)
        commit = F.mse_loss(z_flat, zq.detach())
        zq = z_flat + (zq - z_flat).detach()
        zq = zq.view(b, h, w, d).permute(0, 3, 1, 2)
        return zq, commit, idx.view(b, h * w)

    @torch.no_grad()
    def _ema_update(self, z_flat: torch.Tensor, idx: torch.Tensor) -> None:
        onehot = F.one_hot(idx, self.size).type(z_flat.dtype)
        counts = onehot.sum(0)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(onehot.t() @ z_flat, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        size = (self.cluster_size + 1e-5) / (n + self.size * 1e-5) * n  # Laplace smoothing
        self.embed.copy_(self.embed_sum / size[:, None])
        used = counts > 0
        self.unused_steps[used] = 0
        self.unused_steps[~used] += 1
        dead = (self.unused_steps >= self.dead_after).nonzero().flatten()
        if dead.numel():
            pick = torch.randint(0, z_flat.shape[0], (dead.numel(),), device=z_flat.device)
            fresh = z_flat[pick] + 0.01 * torch.randn_like(z_flat[pick])
            self.embed[dead] = fresh
            self.embed_sum[dead] = fresh
            self.cluster_size[dead] = 1.0
            self.unused_steps[dead] = 0


class PatchDiscriminator(nn.Module):
    """PatchGAN: 64x64 -> 8x8 realness logits (three stride-2 convs, then a 1-channel conv)."""

    def __init__(self, ch: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ch, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ch, ch * 2, 4, 2, 1),
            nn.GroupNorm(8, ch * 2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ch * 2, ch * 4, 4, 2, 1),
            nn.GroupNorm(8, ch * 4),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ch * 4, 1, 3, 1, 1),
        )

    def forward(self, x):
        return self.net(x)


class VQGAN(nn.Module):
    """Frames uint8 [N, 3, 64, 64] <-> tokens LongTensor [N, 64] (row-major 8x8 grid)."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        if len(config.channels) != 4:
            raise ValueError(
                f"codec channels must list 4 levels (64 -> 8 needs 3 downsamplings), got {config.channels}"
            )
        self.config = config
        self.encoder = Encoder(config.channels, config.code_dim)
        self.quantizer = EMAQuantizer(config.codebook_size, config.code_dim, config.ema_decay, config.dead_after)
        self.decoder = Decoder(config.channels, config.code_dim)
        self.discriminator = PatchDiscriminator(config.disc_channels)

    @classmethod
    def from_config(cls, config: CodecConfig) -> "VQGAN":
        return cls(config)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def autoencoder_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("discriminator.")]

    # ------------------------------------------------------------ inference API
    @torch.no_grad()
    def encode(self, frames: torch.Tensor, batch_size: int = 256, precision: str = "fp32") -> torch.Tensor:
        """uint8 [N, 3, 64, 64] -> LongTensor [N, 64] on the model's device.

        ``precision="bf16"`` runs the encoder under bf16 autocast; the nearest-code search stays fp32
        (``rewards.models.precision``)."""
        frames = check_frames(frames)
        out = []
        for i in range(0, frames.shape[0], batch_size):
            x = to_float(frames[i : i + batch_size].to(self.device))
            with autocast(precision, self.device):
                z = self.encoder(x)
            z_flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
            out.append(self.quantizer.codes(z_flat).view(x.shape[0], -1))
        return torch.cat(out) if out else torch.zeros(0, TOKENS_PER_FRAME, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def latents(self, frames: torch.Tensor, batch_size: int = 256, precision: str = "fp32") -> torch.Tensor:
        """uint8 [N, 3, 64, 64] -> float32 [N, code_dim * 64]: the encoder's output before the VQ lookup.

        A continuous frame embedding (GenReward compares frames by the cosine of these; tokens are too
        coarse for a similarity). ``precision="bf16"``: encoder under bf16 autocast, output cast to fp32."""
        frames = check_frames(frames)
        out = []
        for i in range(0, frames.shape[0], batch_size):
            with autocast(precision, self.device):
                out.append(self.encoder(to_float(frames[i : i + batch_size].to(self.device))).flatten(1).float())
        return torch.cat(out) if out else torch.zeros(0, self.config.code_dim * TOKENS_PER_FRAME, device=self.device)

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """LongTensor [N, 64] -> uint8 [N, 3, 64, 64]."""
        if tokens.ndim != 2 or tokens.shape[1] != TOKENS_PER_FRAME or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be int64 [N, {TOKENS_PER_FRAME}], got {tokens.dtype} {tuple(tokens.shape)}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.config.codebook_size):
            raise ValueError(f"token ids must lie in [0, {self.config.codebook_size})")
        out = []
        for i in range(0, tokens.shape[0], batch_size):
            t = tokens[i : i + batch_size].to(self.device)
            z = self.quantizer.lookup(t).view(t.shape[0], 8, 8, -1).permute(0, 3, 1, 2)
            out.append(to_uint8(self.decoder(z)))
        return torch.cat(out) if out else torch.zeros(0, *FRAME_SHAPE, dtype=torch.uint8, device=self.device)

    @torch.no_grad()
    def reconstruct(self, frames: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(frames))

    # ------------------------------------------------------------ training
    def forward(self, x: torch.Tensor):
        """x float [-1, 1] -> (reconstruction, commitment loss, indices)."""
        zq, commit, idx = self.quantizer(self.encoder(x))
        return self.decoder(zq), commit, idx

    def generator_loss(self, frames: torch.Tensor, step: int):
        """Autoencoder loss on a uint8 batch: L1 + beta * commitment (+ adaptive GAN after warm-up).

        Returns (loss, reconstruction (detached, float), logs).
        """
        frames = check_frames(frames)
        x = to_float(frames.to(self.device))
        recon, commit, idx = self(x)
        rec = (recon - x).abs().mean()
        loss = rec + self.config.beta * commit
        logs = {"l1": rec.item(), "commit": commit.item(), "codes_used": float(idx.unique().numel())}
        if step >= self.config.disc_start:
            for p in self.discriminator.parameters():
                p.requires_grad_(False)
            g = -self.discriminator(recon).mean()
            for p in self.discriminator.parameters():
                p.requires_grad_(True)
            w = self._adaptive_weight(rec, g) * self.config.disc_weight
            loss = loss + w * g
            logs.update(gan_g=g.item(), gan_weight=float(w))
        return loss, recon.detach(), logs

    def _adaptive_weight(self, rec: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        last = self.decoder.out.weight
        gr = torch.autograd.grad(rec, last, retain_graph=True)[0]
        gg = torch.autograd.grad(g, last, retain_graph=True)[0]
        return (gr.norm() / (gg.norm() + 1e-4)).clamp(0, 1e4).detach()

    def discriminator_loss(self, frames: torch.Tensor, recon: torch.Tensor):
        """Hinge loss: real frames above +1, reconstructions below -1."""
        real = self.discriminator(to_float(frames.to(self.device)))
        fake = self.discriminator(recon.detach())
        loss = 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())
        return loss, {"gan_d": loss.item()}

    @torch.no_grad()
    def validation_loss(self, frames: torch.Tensor) -> float:
        """Mean L1 reconstruction error in [-1, 1] units (the quantity the codec minimises)."""
        was_training = self.training
        self.eval()
        try:
            x = to_float(frames.to(self.device))
            recon, _, _ = self(x)
            return (recon.clamp(-1, 1) - x).abs().mean().item()
        finally:
            self.train(was_training)
