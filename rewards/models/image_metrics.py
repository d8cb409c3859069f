"""Image-quality metrics of uint8 images [N, C, H, W]: PSNR and SSIM (used by the quality report and the
pretraining diagnostics; SSIM is written here in torch, LPIPS is left out: it needs pretrained weights)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of uint8 images [N, C, H, W] (identical images give +inf)."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0 ** 2 / mse)


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM of uint8 images [N, C, H, W] (Wang et al. 2004, gaussian window, valid region)."""
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"ssim needs two [N, C, H, W] batches of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    x, y = a.float(), b.float()
    c = x.shape[1]
    g = _gaussian(size, sigma).to(x.device)
    w = (g[:, None] * g[None, :]).expand(c, 1, size, size).contiguous()

    def filt(z):
        return F.conv2d(z, w, groups=c)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2, filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)
