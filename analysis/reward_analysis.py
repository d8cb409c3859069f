"""Reward analysis: does a learned reward rank good behaviour above bad, on seen and unseen tasks?

    python -m analysis.reward_analysis --domain metaworld|adroit [--providers ...] [--tasks ...]
        [--preset small|paper] [--epsilons 0,0.25,0.5,0.75,1] [--eps-episodes N] [--expert-episodes N]
        [--pretrain-steps N] [--data-root DIR] [--out DIR] [--device auto|cpu|cuda] [--seed S]

The paper's Figures 2 and 3: epsilon-greedy versions of the expert (a fraction epsilon of its actions
replaced by uniform random ones, epsilon in 0, 0.25, 0.5, 0.75, 1) are scored by each reward provider;
a useful reward gives a learned episode return that falls as epsilon grows, on the tasks the video model
was trained on (seen) and on tasks it never saw (unseen, MetaWorld only). No RL is involved.

Steps (each skips what already exists, so a re-run only relabels):

1. record the expert and epsilon-greedy episodes (``tasks.collect``);
2. ``prepare`` each provider (pretrain its codec and video model on the domain's seen tasks, compute the
   per-task statistics);
3. label every episode with the provider built with its ``score_only`` overrides (the video rewards:
   ``alpha=0, beta=0``), so the reward is the (standardised) model score alone, not mixed with the env
   reward or an RND bonus; providers without them (``sparse``, ``rnd``, ``amp``) give their replay
   reward, the env reward;
4. z-score the returns within (provider, task), then tables, Spearman correlations and the figure
   (``analysis.reward_tables``).

Writes into ``results/reward_analysis/<domain>/`` (atomically): ``episodes.csv`` (every episode:
provider, task, split, epsilon, episode, raw_return, std_return, env_return, success), ``summary.csv``
(mean and standard error per provider, split, epsilon), ``spearman.csv`` / ``spearman.md`` (rank
correlation of the return with 1 - epsilon per provider and split), ``spearman_by_task.csv``,
``reward_analysis_<domain>.png`` / ``.pdf`` and ``config.json``.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from analysis import reward_tables as rt
from rewards.models import PRESETS
from tasks.runtime import DEFAULT_PRECISION, PRECISIONS

#: the video-model rewards (design section 5), the default providers
VIDEO_PROVIDERS = ("diffusion_reward", "viper", "viper_std", "diffusion_ll", "viper_ce",
                   "diffusion_reward_nonoise")
DEFAULT_EPSILONS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_EPS_EPISODES = 10
#: task-registry split -> analysis split (the registry keeps the zero-shot MetaWorld tasks apart)
_SPLIT_OF_REGISTRY = {"metaworld": "seen", "adroit": "seen", "metaworld_unseen": "unseen"}
DOMAIN_TITLES = {"metaworld": "MetaWorld", "adroit": "Adroit"}


@dataclass
class AnalysisResult:
    """What :func:`analyse` made: the tables (also on disk) and the paths of every file written."""

    episodes: pd.DataFrame
    summary: pd.DataFrame
    spearman: pd.DataFrame
    spearman_by_task: pd.DataFrame
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- inputs

def default_out_dir(domain: str, results_dir: str | Path = "results") -> Path:
    return Path(results_dir) / "reward_analysis" / domain


def default_tasks(domain: str) -> list[str]:
    """Every seen and unseen task of the domain (MetaWorld 7 + 8, Adroit door, hammer, pen)."""
    import tasks as task_registry

    return task_registry.names(domain=domain)


def split_of(task: str) -> str:
    """``"seen"`` for the tasks the video models are trained on, ``"unseen"`` for the zero-shot ones."""
    import tasks as task_registry

    return _SPLIT_OF_REGISTRY[task_registry.spec(task).split]


def check_inputs(domain: str, providers: Sequence[str], task_list: Sequence[str], epsilons: Sequence[float],
                 eps_episodes: int, preset: str) -> None:
    """Fail before any recording or training: unknown names list the valid ones."""
    import rewards
    import tasks as task_registry

    if domain not in task_registry.DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; valid: {', '.join(task_registry.DOMAINS)}")
    if not providers:
        raise ValueError("providers: expected at least one reward provider name")
    for name in providers:
        rewards.get(name)  # UnknownRewardError (a ValueError) lists the valid names
    valid = task_registry.names(domain=domain, include_optional=True)
    if not task_list:
        raise ValueError(f"tasks: expected at least one {domain} task; valid: {', '.join(valid)}")
    bad = [t for t in task_list if t not in valid]
    if bad:
        raise ValueError(f"unknown {domain} task(s) {', '.join(bad)}; valid: {', '.join(valid)}")
    if len(epsilons) < 2 or any(not 0.0 <= float(e) <= 1.0 for e in epsilons) or len(set(epsilons)) != len(epsilons):
        raise ValueError(f"epsilons: expected at least two distinct values in [0, 1], got {list(epsilons)}")
    if int(eps_episodes) < 1:
        raise ValueError(f"eps_episodes: expected an int >= 1, got {eps_episodes}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")


def check_count(name: str, value: int | None) -> None:
    """``None`` (the default of the step it sizes) or a positive int."""
    if value is not None and not (isinstance(value, (int, np.integer)) and value >= 1):
        raise ValueError(f"{name}: expected an int >= 1 or None (the default), got {value!r}")


def _make_kwargs(cls: type, preset: str) -> dict[str, Any]:
    """Constructor overrides for the analysis: the provider's score-only overrides (its class attribute
    ``score_only``; none for the env-reward baselines) and, for video-model providers, the model preset."""
    return {**cls.score_only, **({"preset": preset} if cls.uses_video_model else {})}


# ------------------------------------------------------------------------------------- labelling

def label_returns(domain: str, providers: Sequence[str], task_list: Sequence[str],
                  epsilons: Sequence[float], eps_episodes: int, *, preset: str = "small", data_root=None,
                  device: Any = "cpu", seed: int = 0, progress: bool = False,
                  precision: str = "fp32") -> pd.DataFrame:
    """One row per (provider, task, epsilon, episode): the learned return of a recorded episode.

    Episodes must exist (``tasks.collect``) and providers be prepared. Tasks are the outer loop so only
    one task's episodes are in memory at a time. The first ``eps_episodes`` files of each level are used
    (more may exist from an earlier, larger run).
    """
    import rewards
    from tqdm.auto import tqdm

    from tasks import datasets as ds
    from tasks.runtime import seed_everything

    classes = {name: rewards.get(name) for name in providers}
    rows = []
    bar = tqdm(total=len(task_list) * len(providers), desc=f"label {domain}", unit="provider-task",
               disable=not progress)
    for task in task_list:
        split = split_of(task)
        episodes = {float(e): ds.load_episodes(domain, [task], kind=ds.eps_kind(e), root=data_root)[:eps_episodes]
                    for e in epsilons}
        for name in providers:
            bar.set_postfix_str(f"{name} / {task}")
            seed_everything(seed)
            provider = rewards.make(name, task=task, domain=domain, device=device, data_root=data_root, seed=seed,
                                    precision=precision, **_make_kwargs(classes[name], preset))
            for eps, eps_list in episodes.items():
                for i, ep in enumerate(eps_list):
                    r = np.asarray(provider.label_episode(ep.frames, ep.rewards), dtype=np.float64)
                    if r.shape != ep.rewards.shape or not np.all(np.isfinite(r)):
                        raise ValueError(f"reward {name!r} on {task} (epsilon {eps}, episode {i}): expected "
                                         f"finite rewards of shape {ep.rewards.shape}, got shape {r.shape}")
                    rows.append({"provider": name, "task": task, "split": split, "epsilon": eps, "episode": i,
                                 "raw_return": float(r.sum()), "env_return": float(ep.rewards.sum()),
                                 "success": bool(ep.successes.any())})
            del provider
            bar.update(1)
    bar.close()
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- figure

def plot(summary: pd.DataFrame, domain: str, epsilons: Sequence[float] | None = None):
    """The paper's Figures 2 / 3: standardised learned return against epsilon, mean +- standard error,
    one line per provider (suite colours), one panel per split (seen, unseen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.palette import method_colors

    splits = [s for s in rt.SPLIT_ORDER if s in set(summary["split"])]
    colors = method_colors(summary["provider"])
    eps_ticks = sorted(set(summary["epsilon"])) if epsilons is None else sorted(epsilons)
    fig, axes = plt.subplots(1, len(splits), figsize=(max(6.8, 4.6 * len(splits)), 3.9), sharey=True, squeeze=False)
    for ax, split in zip(axes[0], splits):
        part = summary[summary["split"] == split]
        n_tasks = int(part["n_tasks"].max())
        for provider, color in colors.items():
            rows = part[part["provider"] == provider].sort_values("epsilon")
            if rows.empty:
                continue
            x, y = rows["epsilon"].to_numpy(float), rows["mean"].to_numpy(float)
            se = np.nan_to_num(rows["sem"].to_numpy(float))
            ax.plot(x, y, marker="o", markersize=4, linewidth=1.8, color=color, label=provider)
            ax.fill_between(x, y - se, y + se, color=color, alpha=0.14, linewidth=0)
        ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle="--", zorder=0)
        ax.set_xticks(eps_ticks)
        ax.set_xticklabels([f"{e:g}" for e in eps_ticks])
        ax.set_xlabel("ε (fraction of random actions)")
        low, high = int(part["n_episodes"].min()), int(part["n_episodes"].max())
        per_point = f"{low}" if low == high else f"{low}-{high}"
        ax.set_title(f"{split} tasks ({n_tasks} task{'s' * (n_tasks != 1)}, {per_point} episodes per point)",
                     fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("standardised learned return")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:  # a provider may be missing from the first panel
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.suptitle(f"Reward analysis, {DOMAIN_TITLES.get(domain, domain)}: learned return of ε-greedy experts "
                 f"(mean ± s.e.)", fontsize=11)
    fig.tight_layout()
    # below the panels; savefig(bbox_inches="tight") grows the canvas to hold it
    fig.legend(handles, labels, loc="upper center", ncol=min(3, len(labels)), frameon=False,
               bbox_to_anchor=(0.5, 0.01))
    return fig


# ------------------------------------------------------------------------------------- pipeline

def analyse(domain: str, providers: Sequence[str] | None = None, tasks: Sequence[str] | None = None, *,
            preset: str = "small", epsilons: Sequence[float] = DEFAULT_EPSILONS,
            eps_episodes: int = DEFAULT_EPS_EPISODES, expert_episodes: int | None = None,
            pretrain_steps: int | None = None, data_root=None, out_dir=None, device: str = "auto", seed: int = 0,
            log: Callable[[str], Any] = print, progress: bool = True, precision: str | None = None) -> AnalysisResult:
    """Record, prepare, label, tabulate and plot; returns the tables and the paths written.

    ``providers`` default to the six video rewards, ``tasks`` to every task of the domain. ``expert_episodes``
    and ``pretrain_steps`` (None: the defaults of ``tasks.collect`` and of the model preset) size the
    upstream steps for quick runs and tests. ``precision`` (``auto|bf16|fp32``, default
    ``tasks.runtime.DEFAULT_PRECISION``) is resolved for the device and used for pretraining, statistics and
    scoring; config.json records it.
    """
    import rewards
    from analysis.plots import save
    from tasks.collect import collect
    from tasks.io import atomic_write_json, atomic_write_text
    from tasks.io import data_root as resolve_root
    from tasks.runtime import DEFAULT_PRECISION, resolve_device, resolve_precision, versions

    providers = list(VIDEO_PROVIDERS if providers is None else providers)
    task_list = list(tasks) if tasks is not None else default_tasks(domain)
    epsilons = [float(e) for e in epsilons]
    check_inputs(domain, providers, task_list, epsilons, eps_episodes, preset)
    check_count("expert_episodes", expert_episodes)
    check_count("pretrain_steps", pretrain_steps)
    root = resolve_root(data_root)
    out = Path(out_dir) if out_dir is not None else default_out_dir(domain)
    dev = resolve_device(device)
    requested = DEFAULT_PRECISION if precision is None else precision
    resolved = resolve_precision(requested, dev)
    start = time.time()

    log(f"reward analysis of {', '.join(providers)} on {domain}: {len(task_list)} task(s), epsilons "
        f"{', '.join(f'{e:g}' for e in epsilons)}, {eps_episodes} episode(s) each, device {dev}")
    collect(domain, task_list, episodes=expert_episodes, epsilons=epsilons, eps_episodes=eps_episodes, root=root,
            show_progress=progress)
    for name in providers:
        cls = rewards.get(name)
        cls.prepare(rewards.PrepareRequest.make(
            cls, overrides=_make_kwargs(cls, preset), domain=domain, tasks=tuple(task_list), data_root=str(root),
            preset=preset, pretrain_steps=pretrain_steps, expert_episodes=expert_episodes, device=str(dev),
            precision=resolved), log=log)

    episodes = label_returns(domain, providers, task_list, epsilons, eps_episodes, preset=preset, data_root=root,
                             device=dev, seed=seed, progress=progress, precision=resolved)
    episodes = rt.standardise(episodes)
    episodes = episodes[[*rt.EPISODE_COLUMNS, "env_return", "success"]]
    summary = rt.summarise(episodes)
    rho = rt.spearman(episodes)
    rho_task = rt.spearman(episodes, by=("provider", "split", "task"))

    paths = {
        "episodes": out / "episodes.csv", "summary": out / "summary.csv", "spearman": out / "spearman.csv",
        "spearman_md": out / "spearman.md", "spearman_by_task": out / "spearman_by_task.csv",
        "config": out / "config.json",
    }
    for key, table in (("episodes", episodes), ("summary", summary), ("spearman", rho),
                       ("spearman_by_task", rho_task)):
        atomic_write_text(paths[key], table.to_csv(index=False, float_format="%.6g"))
    markdown = rt.spearman_markdown(rho)
    atomic_write_text(paths["spearman_md"], f"# Reward analysis, {domain}\n\nSpearman rank correlation between "
                      f"the learned episode return (standardised per task) and 1 - epsilon; +1 means the "
                      f"return falls monotonically as the behaviour gets noisier.\n\n{markdown}")
    fig_paths = save(plot(summary, domain, epsilons), out, f"reward_analysis_{domain}")
    paths["figure"], paths["figure_pdf"] = fig_paths
    atomic_write_json(paths["config"], {
        "domain": domain, "providers": providers, "tasks": task_list,
        "splits": {t: split_of(t) for t in task_list}, "preset": preset, "epsilons": epsilons,
        "eps_episodes": int(eps_episodes), "expert_episodes": expert_episodes, "pretrain_steps": pretrain_steps,
        "score_overrides": {name: _make_kwargs(rewards.get(name), preset) for name in providers}, "device": str(dev), "seed": int(seed), "data_root": str(root),
        "precision": resolved, "precision_requested": requested,
        "seconds": round(time.time() - start, 1), "versions": versions(),
    })
    log(f"Spearman(learned return, 1 - epsilon), {domain}:\n{markdown}")
    log(f"reward analysis written to {out} in {time.time() - start:.0f}s (figure: {paths['figure']})")
    return AnalysisResult(episodes, summary, rho, rho_task, out, paths)


# ------------------------------------------------------------------------------------- CLI

def _epsilons(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in [0, 1], got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    import tasks as task_registry

    p = argparse.ArgumentParser(prog="python -m analysis.reward_analysis", description=__doc__.split("\n\n")[0])
    p.add_argument("--domain", required=True, choices=task_registry.DOMAINS)
    p.add_argument("--providers", nargs="+", default=list(VIDEO_PROVIDERS),
                   help=f"reward providers to compare (default: {' '.join(VIDEO_PROVIDERS)})")
    p.add_argument("--tasks", nargs="+", help="default: every seen and unseen task of the domain")
    p.add_argument("--preset", default="small", choices=PRESETS, help="video-model size (default small)")
    p.add_argument("--epsilons", type=_epsilons, default=list(DEFAULT_EPSILONS),
                   help="comma-separated epsilon levels (default 0,0.25,0.5,0.75,1)")
    p.add_argument("--eps-episodes", type=int, default=DEFAULT_EPS_EPISODES, help="episodes per epsilon and task")
    p.add_argument("--expert-episodes", type=int, help="expert episodes per task for pretraining and statistics "
                                                       "(default 20 MetaWorld, 50 Adroit)")
    p.add_argument("--pretrain-steps", type=int, help="training steps of missing models (default: the preset's)")
    p.add_argument("--data-root", help="datasets and models (default: $VRB_DATA_ROOT or ./data)")
    p.add_argument("--out", help="output folder (default: results/reward_analysis/<domain>)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default=DEFAULT_PRECISION, choices=list(PRECISIONS),
                   help=f"auto (bf16 where the hardware does it natively), bf16 or fp32 (default {DEFAULT_PRECISION})")
    a = p.parse_args(argv)
    task_list = a.tasks if a.tasks is not None else default_tasks(a.domain)
    try:  # bad names and sizes are usage errors; failures further down keep their traceback
        check_inputs(a.domain, a.providers, task_list, a.epsilons, a.eps_episodes, a.preset)
        check_count("expert_episodes", a.expert_episodes)
        check_count("pretrain_steps", a.pretrain_steps)
        from tasks.runtime import resolve_device

        resolve_device(a.device)
    except (ValueError, RuntimeError) as e:
        p.error(str(e))
    analyse(a.domain, a.providers, task_list, preset=a.preset, epsilons=a.epsilons, eps_episodes=a.eps_episodes,
            expert_episodes=a.expert_episodes, pretrain_steps=a.pretrain_steps, data_root=a.data_root,
            out_dir=a.out, device=a.device, seed=a.seed, precision=a.precision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
