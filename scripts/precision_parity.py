"""fp32 vs bf16 reward parity: ``python -m scripts.precision_parity --data-root /tmp/parity``.

The gate for making bf16 the default (``common.runtime.DEFAULT_PRECISION``): the same episodes
scored by each video reward in fp32 and in bf16 must rank alike (Spearman >= 0.95 per provider). Not a test
(it records videos and pretrains models: minutes to hours); docs/precision.md records its output.

1. record expert and epsilon-greedy episodes of ``--tasks`` (seen MetaWorld tasks) under ``--data-root``;
2. pretrain the codec, VQ-Diffusion and VideoGPT (``--preset``, ``--steps``) on those tasks in fp32: the
   comparison is of *scoring* precision on one set of weights;
3. build each provider score-only (alpha = beta = 0: its standardised model score) in fp32 and in bf16
   (each with the statistics of its own precision) and label every episode;
4. print, per provider, the Spearman correlation of the episode returns (sum of rewards) and of the
   per-transition rewards between the two precisions, and write them to ``--out`` (JSON) if given.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Sequence

import numpy as np
import pandas as pd
import torch

import rewards
from common.runtime import cpu_has_native_bf16
from rewards.models.pretrain import pretrain
from rewards.models.store import ModelRef
from tasks import datasets as ds
from tasks.collect import collect

DEFAULT_PROVIDERS = ("diffusion_reward", "viper_std")
DEFAULT_TASKS = ("reach", "door-close")
EPSILONS = (0.25, 0.5, 0.75, 1.0)


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    return float(pd.Series(np.asarray(a, float)).corr(pd.Series(np.asarray(b, float)), method="spearman"))


def run(
    providers: Sequence[str],
    tasks: Sequence[str],
    data_root: str,
    preset: str = "small",
    steps: int = 300,
    expert: int = 5,
    eps_episodes: int = 5,
    device: str = "cpu",
    log=print,
) -> dict:

    start = time.time()
    # expert episodes: `expert` test ones are scored, as many train ones make the models and statistics
    collect(
        "metaworld",
        list(tasks),
        episodes=2 * expert,
        epsilons=EPSILONS,
        eps_episodes=eps_episodes,
        root=data_root,
        show_progress=False,
    )
    episodes = []
    for task in tasks:
        episodes += [
            (task, "expert", e) for e in ds.load_episodes("metaworld", [task], split="test", root=data_root)[:expert]
        ]
        for eps in EPSILONS:
            episodes += [
                (task, f"eps_{eps:g}", e)
                for e in ds.load_episodes("metaworld", [task], kind=ds.eps_kind(eps), root=data_root)[:eps_episodes]
            ]
    log(f"{len(episodes)} episodes of {', '.join(tasks)} recorded ({time.time() - start:.0f}s)")
    for kind in ("codec", *sorted({rewards.get(p).model_name for p in providers})):
        pretrain(
            ModelRef("metaworld", kind, preset, 2, data_root),
            steps=steps,
            tasks=list(tasks),
            device=device,
            quality=False,
            progress=False,
            log=lambda m: None,
        )
    log(f"models pretrained ({time.time() - start:.0f}s)")
    out = {}
    for name in providers:
        returns, per_step, seconds = {}, {}, {}
        for precision in ("fp32", "bf16"):
            t0 = time.time()
            rs, steps_r = [], []
            made = {}
            for task, _, ep in episodes:
                if task not in made:
                    torch.manual_seed(0)
                    made[task] = rewards.make(
                        name,
                        task=task,
                        domain="metaworld",
                        device=device,
                        data_root=data_root,
                        precision=precision,
                        **rewards.get(name).score_only,
                    )
                r = made[task].label_episode(ep.frames, ep.rewards)
                rs.append(float(r.sum()))
                steps_r.append(r)
            returns[precision], per_step[precision] = rs, np.concatenate(steps_r)
            seconds[precision] = round(time.time() - t0, 1)
        out[name] = {
            "spearman_returns": spearman(returns["fp32"], returns["bf16"]),
            "spearman_transitions": spearman(per_step["fp32"], per_step["bf16"]),
            "max_abs_return_diff": float(np.max(np.abs(np.subtract(returns["fp32"], returns["bf16"])))),
            "return_spread": float(np.ptp(returns["fp32"])),
            "episodes": len(episodes),
            "seconds": seconds,
        }
        log(
            f"{name}: Spearman(fp32, bf16) of {len(episodes)} episode returns {out[name]['spearman_returns']:.4f}, "
            f"of {per_step['fp32'].size} transition rewards {out[name]['spearman_transitions']:.4f}; "
            f"labelling took {seconds['fp32']}s fp32, {seconds['bf16']}s bf16"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.precision_parity", description=__doc__.split("\n")[0])
    p.add_argument("--data-root", required=True, help="a scratch data root (episodes and models are made there)")
    p.add_argument("--providers", nargs="+", default=list(DEFAULT_PROVIDERS))
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), help="seen MetaWorld tasks")
    p.add_argument("--preset", default="small")
    p.add_argument("--steps", type=int, default=300, help="pretraining steps of each model (default 300)")
    p.add_argument("--expert", type=int, default=5, help="expert test episodes scored per task (default 5)")
    p.add_argument("--eps-episodes", type=int, default=5, help="episodes per epsilon level and task (default 5)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="write the numbers here as JSON")
    a = p.parse_args(argv)
    res = run(a.providers, a.tasks, a.data_root, a.preset, a.steps, a.expert, a.eps_episodes, a.device)
    res["_machine"] = {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "native_bf16": cpu_has_native_bf16(),
        "args": vars(a),
    }
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
