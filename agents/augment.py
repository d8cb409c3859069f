"""Random-shift augmentation (DrQ-v2): replicate-pad by ``pad`` pixels, then take a random HxW crop.

DrQ-v2's reference implementation pads and then resamples with a bilinear ``grid_sample`` whose grid is
offset by whole pixels, which is an integer crop done the expensive way (float interpolation of every
pixel, on floats). Here the crop is an index gather on the uint8 frames, and the padding is never
materialised: reading a replicate-padded image at (i + s - pad) is reading the original image at that
index clamped to the border. ``grid_sample_shift`` keeps the reference form, for tests and benchmarks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_shifts(
    n: int, pad: int, device: torch.device | str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Integer shifts ``[n, 2]`` = (dx, dy), each uniform in 0 .. 2 * pad (as DrQ-v2 draws them)."""
    return torch.randint(0, 2 * pad + 1, (n, 2), device=device, generator=generator)


def random_shift(
    x: torch.Tensor, pad: int, shifts: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image of ``x [N, C, H, W]`` (any dtype, uint8 is cheapest) by whole pixels.

    ``out[n, c, i, j] = x[n, c, clamp(i + dy - pad), clamp(j + dx - pad)]`` with ``(dx, dy) = shifts[n]``,
    i.e. the crop at offset (dy, dx) of the replicate-padded image. Returns a contiguous tensor of the
    same dtype.
    """
    if x.dim() != 4:
        raise ValueError(f"random_shift expects [N, C, H, W], got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    if pad == 0:
        return x.contiguous()
    if shifts is None:
        shifts = sample_shifts(n, pad, x.device, generator)
    elif shifts.shape != (n, 2):
        raise ValueError(f"shifts must be [N, 2] = [{n}, 2], got {tuple(shifts.shape)}")
    shifts = shifts.to(device=x.device, dtype=torch.long)
    rows = (torch.arange(h, device=x.device) + (shifts[:, 1:2] - pad)).clamp_(0, h - 1)  # [N, H]
    cols = (torch.arange(w, device=x.device) + (shifts[:, 0:1] - pad)).clamp_(0, w - 1)  # [N, W]
    flat = (rows.unsqueeze(2) * w + cols.unsqueeze(1)).view(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, flat).view(n, c, h, w)


def grid_sample_shift(x: torch.Tensor, pad: int, shifts: torch.Tensor) -> torch.Tensor:
    """The reference DrQ-v2 augmentation (replicate pad + bilinear ``grid_sample``) for given shifts.

    ``x`` is float ``[N, C, H, W]`` with H == W; ``shifts [N, 2]`` are (dx, dy) in pixels.
    """
    n, c, h, w = x.shape
    if h != w:
        raise ValueError(f"grid_sample_shift needs square images, got {h}x{w}")
    x = F.pad(x, (pad,) * 4, mode="replicate")
    eps = 1.0 / (h + 2 * pad)
    arange = torch.linspace(-1.0 + eps, 1.0 - eps, h + 2 * pad, device=x.device, dtype=x.dtype)[:h]
    arange = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
    base_grid = torch.cat([arange, arange.transpose(1, 0)], dim=2).unsqueeze(0).repeat(n, 1, 1, 1)
    shift = shifts.to(device=x.device, dtype=x.dtype).view(n, 1, 1, 2) * (2.0 / (h + 2 * pad))
    return F.grid_sample(x, base_grid + shift, padding_mode="zeros", align_corners=False)
