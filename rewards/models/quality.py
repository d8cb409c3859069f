"""Model-quality report: how well the codec reconstructs and the video models predict.

    python -m rewards.models.quality --domain metaworld --preset small [--context 2]
    python -m rewards.models.quality --domain metaworld --diagnostics --model-file PATH [PATH ...] [--csv OUT]

Written beside the checkpoints (also at the end of pretraining), each as ``quality/report.csv``,
``quality/report.md`` and PNGs:

- codec (``codec_<preset>/quality/``): reconstruction PSNR and SSIM on test-split frames, and a PNG of
  originals (top) over reconstructions (bottom).
- each trained video model (``<model>_<preset>_l<L>/quality/``): next-frame prediction PSNR/SSIM on
  test windows (greedy sample, ``noise=False``, decoded by the codec, compared with the codec's
  reconstruction of the true next frame, so codec error is not counted twice), the mean test
  log-likelihood of the true next frame, and generative diversity: the mean pairwise RMSE
  (pixels in [0, 1]) between ``n_samples`` noisy samples of the next frame from the same context,
  conditioned on expert windows and on each epsilon-greedy level present in the dataset (``eps_<e>/``).
  An informative model is more certain (less diverse) on expert windows.

Each video model's report also holds its diagnostics (``rewards.models.diagnostics``: VQ-Diffusion's
copy accuracy, VideoGPT's NLL per token, the sample's token persistence beside the data's), the numbers its
pretraining history records at every evaluation. ``--diagnostics`` computes those for any saved
``model.pt`` (a budget study's snapshots, ``<data-root>/budget_study/<model>_<preset>_l<L>/step_<N>/``),
writing ``diagnostics.json`` beside each file and, with ``--csv``, one table of them all.

SSIM is the usual gaussian-window SSIM (11x11, sigma 1.5, K1 0.01, K2 0.03, per channel, averaged),
implemented here in torch. LPIPS is left out: it needs pretrained network weights, which cannot be
downloaded here.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F

from common.io import atomic_write, atomic_write_text
from common.runtime import resolve_device
from rewards.models import PRESETS, store
from rewards.models.diagnostics import diagnostics, heldout_data, model_file_diagnostics, psnr, summary
from rewards.models.video_model import ll_windows
from tasks.cli import run_reporting_user_errors
from tasks.datasets import DatasetMissingError, domain_dir, load_episodes
from tasks.registry import DOMAINS
from tasks.registry import seen_tasks as seen

# ---------------------------------------------------------------- metrics


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM of uint8 images [N, C, H, W] (Wang et al. 2004, gaussian window, valid region)."""
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(
            f"ssim needs two [N, C, H, W] batches of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    x, y = a.float(), b.float()
    c = x.shape[1]
    g = _gaussian(size, sigma).to(x.device)
    w = (g[:, None] * g[None, :]).expand(c, 1, size, size).contiguous()

    def filt(z):
        return F.conv2d(z, w, groups=c)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def pairwise_diversity(samples: torch.Tensor) -> torch.Tensor:
    """Mean pairwise RMSE (pixels in [0, 1]) between K samples of each item: [B, K, C, H, W] -> [B]."""
    b, k = samples.shape[:2]
    if k < 2:
        raise ValueError(f"diversity needs at least 2 samples per context, got {k}")
    x = samples.float().flatten(2) / 255.0
    d = torch.cdist(x, x) / x.shape[-1] ** 0.5
    return d.sum((1, 2)) / (k * (k - 1))


# ---------------------------------------------------------------- images


def save_grid(path: Path, rows: Sequence[torch.Tensor], scale: int = 2) -> Path:
    """Save rows of uint8 frames [N, 3, H, W] as one PNG (rows stacked vertically)."""
    n = max(r.shape[0] for r in rows)
    lines = []
    for r in rows:
        r = r.cpu().numpy().transpose(0, 2, 3, 1)
        if r.shape[0] < n:
            r = np.concatenate([r, np.zeros((n - r.shape[0], *r.shape[1:]), np.uint8)])
        lines.append(np.concatenate(list(r), axis=1))
    img = np.concatenate(lines, axis=0).repeat(scale, 0).repeat(scale, 1)
    buf = io.BytesIO()
    iio.imwrite(buf, img, extension=".png")
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def _write_table(directory: Path, rows: list[dict], title: str) -> None:
    cols = list(rows[0])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(directory / "report.csv", buf.getvalue())
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    md = [f"# {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    md += ["", "LPIPS is not reported: it needs pretrained network weights, which cannot be loaded here.", ""]
    atomic_write_text(directory / "report.md", "\n".join(md))


# ---------------------------------------------------------------- reports


def _test_frames(domain, tasks, root, limit: int) -> torch.Tensor:
    frames = np.concatenate([ep.frames for ep in load_episodes(domain, tasks, split="test", root=root)])
    idx = np.linspace(0, len(frames) - 1, min(limit, len(frames))).astype(int)
    return torch.from_numpy(frames[idx])


@torch.no_grad()
def codec_report(codec, ref: store.ModelRef, tasks=None, n_frames: int = 256) -> list[dict]:
    """Reconstruction quality of the codec ``ref`` (loaded as ``codec``) on test frames of ``tasks``."""
    frames = _test_frames(ref.domain, tasks, ref.data_root, n_frames)
    recon = codec.reconstruct(frames).cpu()
    rows = [
        {"model": ref.name, "metric": "recon_psnr", "value": float(psnr(frames, recon).mean())},
        {"model": ref.name, "metric": "recon_ssim", "value": float(ssim(frames, recon).mean())},
        {"model": ref.name, "metric": "codes_used", "value": float(codec.encode(frames).unique().numel())},
    ]
    out = ref.dir / "quality"
    _write_table(out, rows, f"Codec quality: {ref.domain} {ref.preset} ({len(frames)} test frames)")
    save_grid(out / "reconstructions.png", [frames[:12], recon[:12]])
    return rows


def _eps_levels(domain, tasks, root) -> list[str]:
    kinds = set()
    for t in tasks:
        d = domain_dir(domain, root) / t
        kinds |= {p.name for p in d.glob("eps_*") if p.is_dir() and any(p.glob("ep_*.npz"))}
    return sorted(kinds)


def _sample_windows(tokens_by_task: dict, context: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    ctx, tgt = zip(*(ll_windows(ep.long(), context) for eps in tokens_by_task.values() for ep in eps))
    ctx, tgt = torch.cat(ctx), torch.cat(tgt)
    idx = torch.linspace(0, len(ctx) - 1, min(n, len(ctx))).long()
    return ctx[idx], tgt[idx]


@torch.no_grad()
def video_model_report(
    codec, net, ref: store.ModelRef, tasks, n_windows: int = 64, n_div: int = 8, n_samples: int = 4, seed: int = 0
) -> list[dict]:
    """Prediction quality and diversity of the video model ``ref`` (loaded as ``net``, with its codec)."""
    device = next(net.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    domain, context, root, label = ref.domain, ref.context, ref.data_root, ref.name
    test = store.episode_tokens(codec, domain, tasks, ref.expert_kind, "test", root)  # its own clips' test split
    ctx, tgt = _sample_windows(test, context, n_windows)
    pred = codec.decode(net.sample(ctx.to(device), noise=False, generator=gen)).cpu()
    real = codec.decode(tgt.to(device)).cpu()  # the true next frames as the codec renders them
    rows = [
        {"model": label, "metric": "pred_psnr_vs_codec", "value": float(psnr(pred, real).mean())},
        {"model": label, "metric": "pred_ssim_vs_codec", "value": float(ssim(pred, real).mean())},
    ]
    rows.append(
        {"model": label, "metric": "test_ll", "value": float(net.score_ll(ctx.to(device), tgt.to(device)).mean())}
    )
    rows += [{"model": label, "metric": k, "value": v} for k, v in heldout_diagnostics(codec, net, ref, tasks).items()]

    def diversity(tokens_by_task) -> float:
        c, _ = _sample_windows(tokens_by_task, context, n_div)
        c = c.to(device).repeat_interleave(n_samples, 0)
        s = codec.decode(net.sample(c, noise=True, generator=gen)).cpu()
        return float(pairwise_diversity(s.view(-1, n_samples, *s.shape[1:])).mean())

    rows.append({"model": label, "metric": "diversity_expert", "value": diversity(test)})
    for kind in _eps_levels(domain, tasks, root):
        try:
            toks = store.episode_tokens(codec, domain, tasks, kind, "train", root)
        except FileNotFoundError:
            continue
        rows.append({"model": label, "metric": f"diversity_{kind}", "value": diversity(toks)})
    out = ref.dir / "quality"
    _write_table(out, rows, f"{ref.kind} quality: {domain} {ref.preset}, context {context}")
    # rows: last context frame, true next frame, predicted next frame
    save_grid(out / "predictions.png", [codec.decode(ctx[:8, -1].to(device)).cpu(), real[:8], pred[:8]])
    return rows


def heldout_diagnostics(codec, net, ref: store.ModelRef, tasks) -> dict[str, float]:
    """The video model's diagnostics (``rewards.models.diagnostics``) on the held-out windows pretraining
    evaluates on, in the precision it was trained in: its history's numbers for these weights."""
    precision = getattr(net, "meta", {}).get("precision", "fp32")
    data = heldout_data(ref.kind, codec, ref.domain, tasks, ref.context, ref.data_root, precision, ref.expert_kind)
    return diagnostics(ref.kind, net, data, precision)


def write_diagnostics(
    files: Sequence[str | Path],
    domain: str,
    data_root=None,
    device="cpu",
    csv_path: str | Path | None = None,
    log: Callable = print,
) -> list[dict]:
    """``rewards.models.diagnostics.model_file_diagnostics`` of each saved model in ``files`` (all of
    ``domain``): ``diagnostics.json`` beside each, and one CSV of them all at ``csv_path`` if given."""
    rows = []
    for f in files:
        row = model_file_diagnostics(f, data_root, device)
        if row["domain"] != domain:
            raise ValueError(f"{f} is a {row['domain']} model, not {domain}")
        atomic_write_text(Path(f).parent / "diagnostics.json", json.dumps(row, indent=1) + "\n")
        log(f"{f}: {summary(row)}")
        rows.append(row)
    if csv_path is not None and rows:
        cols = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(Path(csv_path), buf.getvalue())
    return rows


def write_report(
    refs: Sequence[store.ModelRef],
    device="cpu",
    tasks: Sequence[str] | None = None,
    log: Callable = print,
    n_frames: int = 256,
    n_windows: int = 64,
    n_div: int = 8,
    n_samples: int = 4,
) -> list[dict]:
    """Write the report of each model in ``refs`` (codec or video model); return its rows.

    Every reference must name a trained model (``ModelMissingError`` names the command that makes it);
    a video model is reported with the codec it was trained on, on the tasks it was trained on.
    """
    rows = []
    for ref in refs:
        task_list = list(tasks) if tasks else seen_tasks(ref.domain)
        if ref.is_codec:
            rows += codec_report(ref.load(device), ref, task_list, n_frames)
        else:
            codec, net = ref.load_with_codec(device)
            rows += video_model_report(codec, net, ref, net.meta.get("tasks", task_list), n_windows, n_div, n_samples)
    for r in rows:
        log(f"{r['model']:>24s}  {r['metric']:<22s} {r['value']:.4g}")
    return rows


def trained_refs(
    domain: str, preset: str = "small", context: int = 2, models: Sequence[str] | None = None, root=None
) -> list[store.ModelRef]:
    """The references the command reports on: ``models`` if given (each must exist), else the codec and
    every video model of that preset and context that has been trained."""
    refs = [store.ModelRef(domain, m, preset, context, root) for m in (models or store.model_kinds())]
    if models:
        return refs
    return [r for r in refs if r.is_codec or r.exists()]


def seen_tasks(domain: str) -> list[str]:
    return seen(domain)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rewards.models.quality", description=__doc__.split("\n")[0])
    p.add_argument("--domain", required=True, choices=list(DOMAINS))
    p.add_argument("--preset", default="small", choices=list(PRESETS))
    p.add_argument("--context", type=int, default=2)
    p.add_argument("--models", nargs="+", default=None, help="codec and/or video models (default: all trained)")
    p.add_argument("--tasks", nargs="+", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--diagnostics",
        action="store_true",
        help="only the diagnostics of the saved models of --model-file (copy accuracy, NLL per token, "
        "persistence, codec PSNR), written as diagnostics.json beside each",
    )
    p.add_argument("--model-file", nargs="+", default=None, help="model.pt files, with --diagnostics")
    p.add_argument("--csv", default=None, help="with --diagnostics: also one CSV of every file's diagnostics")
    a = p.parse_args(argv)
    if a.diagnostics != bool(a.model_file):
        p.error("--diagnostics and --model-file go together")

    def action():
        if a.diagnostics:
            write_diagnostics(a.model_file, a.domain, a.data_root, resolve_device(a.device), a.csv)
            return
        write_report(
            trained_refs(a.domain, a.preset, a.context, a.models, a.data_root), resolve_device(a.device), a.tasks
        )

    return run_reporting_user_errors(
        action, (store.ModelMissingError, DatasetMissingError, ValueError, FileNotFoundError)
    )


if __name__ == "__main__":
    sys.exit(main())
