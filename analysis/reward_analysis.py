"""Reward analysis: does a learned reward rank good behaviour above bad, on seen and unseen tasks?

    python -m analysis.reward_analysis --domain metaworld|adroit [--task-set seen|genreward]
        [--providers ...] [--tasks ...] [--preset small|paper] [--epsilons 0,0.25,0.5,0.75,1]
        [--eps-episodes N] [--expert-episodes N] [--pretrain-steps N | --no-pretrain]
        [--goal-frames N] [--goal-steps N] [--data-root DIR] [--out DIR] [--device auto|cpu|cuda] [--seed S]

The paper's Figures 2 and 3: epsilon-greedy versions of the expert (a fraction epsilon of its actions
replaced by uniform random ones, epsilon in 0, 0.25, 0.5, 0.75, 1) are scored by each reward provider;
a useful reward gives a learned episode return that falls as epsilon grows, on the tasks the video model
was trained on (seen) and on tasks it never saw (unseen, MetaWorld only). No RL is involved.

``--task-set`` (``tasks.registry.TASK_SETS``, as ``rewards.models.pretrain --task-set``) names the tasks the
video models are pretrained on: ``seen`` (default, the domain's seen tasks; the tasks default to every seen and
unseen task of the domain) or ``genreward`` (GenReward's five MetaWorld tasks, 256-step episodes; the tasks
default to those five). Every video provider is pointed at that set's models (its ``task_set`` parameter,
GenReward's ``pretrained_on``), and a task's split is ``seen`` when the set holds it, ``unseen`` otherwise.

GenReward (``genreward``, ``genreward_video``): the goal video of each recorded episode is rolled out from the
episode's first frame through the provider's own goal-video cache (``--goal-frames`` / ``--goal-steps`` shorten
it). Only its video level can score a recorded episode: the frame-level forward-backward bonus is learned
online from an agent's replay, so ``genreward`` is analysed with ``w_frame=0`` (its rows equal
``genreward_video``'s; the outputs say so) and ``genreward_frame``, which has nothing else, is refused.

Steps (each skips what already exists, so a re-run only relabels):

1. record the expert and epsilon-greedy episodes (``tasks.collect``);
2. ``prepare`` each provider (pretrain its codec and video model on the task set's tasks, compute the
   per-task statistics); ``--no-pretrain`` skips this and uses the models on disk as they are (a missing one
   is an error naming the command that makes it), so an analysis never trains a suite's models further;
3. label every episode with the provider built with its ``score_only`` overrides (the video rewards:
   ``alpha=0, beta=0``), so the reward is the (standardised) model score alone, not mixed with the env
   reward or an RND bonus; providers without them (``sparse``, ``rnd``, ``amp``) give their replay
   reward, the env reward;
4. z-score the returns within (provider, task), then tables, Spearman correlations and the figure
   (``analysis.reward_tables``).

Writes into ``results/reward_analysis/<domain>/`` (``<domain>_<task set>/`` for a set other than ``seen``;
atomically): ``episodes.csv`` (every episode:
provider, task, split, epsilon, episode, raw_return, std_return, env_return, success), ``summary.csv``
(mean and standard error per provider, split, epsilon), ``spearman.csv`` / ``spearman.md`` (rank
correlation of the return with 1 - epsilon per provider and split), ``spearman_by_task.csv``,
``reward_analysis_<domain>[_<task set>].png`` / ``.pdf`` and ``config.json`` (settings, each provider's
parameters per task, including the tasks its model was trained on, notes, and the goal videos generated).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import reward_tables as rt
from rewards.models import PRESETS
from tasks.registry import DEFAULT_TASK_SET, TASK_SETS
from common.runtime import DEFAULT_PRECISION, PRECISIONS

#: the video-model rewards (design section 5), the default providers
VIDEO_PROVIDERS = ("diffusion_reward", "viper", "viper_std", "diffusion_ll", "viper_ce",
                   "diffusion_reward_nonoise")
DEFAULT_EPSILONS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_EPS_EPISODES = 10
#: task-registry split -> analysis split (the registry keeps the zero-shot MetaWorld tasks apart)
_SPLIT_OF_REGISTRY = {"metaworld": "seen", "adroit": "seen", "metaworld_unseen": "unseen",
                      "genreward": "unseen"}  # the seen-task models never saw GenReward's five tasks
DOMAIN_TITLES = {"metaworld": "MetaWorld", "adroit": "Adroit"}
#: constructor parameters that name the task set of a provider's video model (``VideoModelReward.task_set``,
#: GenReward's ``pretrained_on``); the analysis sets whichever the provider takes to ``--task-set``
TASK_SET_PARAMS = ("task_set", "pretrained_on")
#: what the analysis itself fixes; ``overrides`` may not change them
_FIXED_PARAMS = ("preset", *TASK_SET_PARAMS)
GENREWARD_NOTE = ("video level only: the frame-level forward-backward bonus is learned online from an agent's "
                  "replay and cannot score a recorded episode, so it is absent (w_frame=0); these rows equal "
                  "genreward_video's")


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

def _suffix(task_set: str) -> str:
    """``""`` for the default task set, ``"_<set>"`` otherwise (as ``ModelRef.name``): the seen-task analysis
    keeps its paths, another set's analysis never overwrites it."""
    return "" if task_set == DEFAULT_TASK_SET else f"_{task_set}"


def default_out_dir(domain: str, results_dir: str | Path = "results", task_set: str = DEFAULT_TASK_SET) -> Path:
    return Path(results_dir) / "reward_analysis" / f"{domain}{_suffix(task_set)}"


def default_tasks(domain: str, task_set: str = DEFAULT_TASK_SET) -> list[str]:
    """The default set ``seen``: every seen and unseen task of the domain (MetaWorld 7 + 8, Adroit door,
    hammer, pen). Another set: its own tasks (``genreward``: GenReward's five), the tasks its models know."""
    import tasks as task_registry
    from tasks.registry import task_set as task_set_tasks

    if task_set == DEFAULT_TASK_SET:
        return task_registry.names(domain=domain)
    return task_set_tasks(task_set, domain)


def split_of(task: str, task_set: str = DEFAULT_TASK_SET) -> str:
    """``"seen"`` for the tasks the video models are trained on, ``"unseen"`` for the zero-shot ones.

    The default set keeps the registry's reading (MetaWorld's seen / unseen splits; GenReward's five tasks are
    unseen by those models); for another set a task is seen when the set holds it."""
    import tasks as task_registry
    from tasks.registry import task_set as task_set_tasks

    spec = task_registry.spec(task)
    if task_set == DEFAULT_TASK_SET:
        return _SPLIT_OF_REGISTRY[spec.split]
    return "seen" if task in task_set_tasks(task_set, spec.domain) else "unseen"


def _init_params(cls: type) -> set[str]:
    """The named constructor parameters of a provider class (what an override may set)."""
    from rewards.registry import parameters

    return set(parameters(cls))


def _genreward_level(cls: type) -> str | None:
    """``"both"``, ``"video"`` or ``"frame"`` for a GenReward provider class, None for any other."""
    from rewards.genreward import GenRewardBase

    if not (isinstance(cls, type) and issubclass(cls, GenRewardBase)):
        return None
    return "both" if cls.use_video and cls.use_frame else "video" if cls.use_video else "frame"


def provider_notes(providers: Sequence[str]) -> dict[str, str]:
    """What a provider's rows mean where that differs from its training-time reward (written to the
    outputs): GenReward with both levels is scored by its video level alone."""
    import rewards

    return {name: GENREWARD_NOTE for name in providers if _genreward_level(rewards.get(name)) == "both"}


def check_task_set(domain: str, task_set: str) -> None:
    """An unknown domain or task set, or a set without tasks in the domain, fails listing the valid ones."""
    import tasks as task_registry
    from tasks.registry import task_set as task_set_tasks

    if domain not in task_registry.DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; valid: {', '.join(task_registry.DOMAINS)}")
    task_set_tasks(task_set, domain)


def check_inputs(domain: str, providers: Sequence[str], task_list: Sequence[str], epsilons: Sequence[float],
                 eps_episodes: int, preset: str, task_set: str = DEFAULT_TASK_SET,
                 overrides: Mapping[str, Any] | None = None) -> None:
    """Fail before any recording or training: unknown names list the valid ones."""
    import rewards
    import tasks as task_registry

    check_task_set(domain, task_set)
    if not providers:
        raise ValueError("providers: expected at least one reward provider name")
    for name in providers:
        cls = rewards.get(name)  # UnknownRewardError (a ValueError) lists the valid names
        if _genreward_level(cls) == "frame":
            raise ValueError(f"{name}: no episode-level score to analyse (its reward is the env reward plus the "
                             f"forward-backward bonus, learned online from an agent's replay); analyse "
                             f"genreward_video (GenReward's video level) instead")
        if cls.uses_video_model and task_set != DEFAULT_TASK_SET and not _init_params(cls) & set(TASK_SET_PARAMS):
            raise ValueError(f"{name}: its video model cannot be pointed at the {task_set!r} task set (it takes "
                             f"none of {', '.join(TASK_SET_PARAMS)}); analyse it with --task-set {DEFAULT_TASK_SET}")
    overrides = dict(overrides or {})
    fixed = sorted(set(overrides) & {*_FIXED_PARAMS, *(k for n in providers for k in rewards.get(n).score_only)})
    if fixed:
        raise ValueError(f"overrides: {', '.join(fixed)} are set by the analysis (--preset, --task-set, the "
                         f"providers' score-only settings), not by an override")
    for key in overrides:
        if not any(key in _init_params(rewards.get(name)) for name in providers):
            raise ValueError(f"override {key!r}: none of the providers {', '.join(providers)} takes it")
    for key in ("goal_frames", "goal_steps"):  # GenReward's goal-video sizes: the CLI's --goal-frames/--goal-steps
        if key in overrides:
            check_count(key, overrides[key])
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


def _make_kwargs(cls: type, preset: str, task_set: str = DEFAULT_TASK_SET,
                 overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Constructor overrides for the analysis: the provider's score-only overrides (its class attribute
    ``score_only``; none for the env-reward baselines), for video-model providers the model preset and the
    task set of its model (whichever of ``TASK_SET_PARAMS`` it takes: every provider of one analysis scores
    with the models of one task set), then those of ``overrides`` it takes (e.g. GenReward's ``goal_frames``)."""
    takes = _init_params(cls)
    kwargs = {**cls.score_only, **({"preset": preset} if cls.uses_video_model else {})}
    kwargs.update({p: task_set for p in TASK_SET_PARAMS if p in takes})
    kwargs.update({k: v for k, v in (overrides or {}).items() if k in takes})
    return kwargs


def check_models(domain: str, providers: Sequence[str], kwargs: Mapping[str, Mapping[str, Any]], data_root) -> None:
    """For ``--no-pretrain``: every video model the providers will load is on disk, else ``ModelMissingError``
    naming the command that makes it (before anything is recorded)."""
    import rewards
    from rewards.models.store import ModelRef

    for name in providers:
        cls, kw = rewards.get(name), kwargs[name]
        if _genreward_level(cls) is not None:
            from rewards.genreward import load_models

            load_models(domain, kw["preset"], kw.get("context", 2), "cpu", data_root, kw["pretrained_on"])
        elif getattr(cls, "model_name", ""):
            ref = ModelRef(domain, cls.model_name, kw["preset"], kw.get("context", 2), data_root,
                           kw.get("task_set", DEFAULT_TASK_SET))
            for r in (ref.codec, ref):
                if not r.exists():
                    raise r.missing()


def _share_goal_videos(provider: Any, shared: dict, capacity: int) -> None:
    """Give ``provider`` the goal-video cache of an earlier provider of the same task with the same model and
    rollout settings (``genreward`` after ``genreward_video``): ``rewards.goal_video.generate`` is a pure
    function of those, so the videos are the ones it would roll out itself, paid once per analysis instead of
    once per provider. The cache holds every episode of the task (``capacity``), so none is rolled out twice."""
    from rewards.goal_video import GoalVideoCache
    from rewards.models.store import fingerprint

    cache, ref = getattr(provider, "goals", None), getattr(getattr(provider, "model", None), "ref", None)
    if not isinstance(cache, GoalVideoCache) or ref is None:
        return
    key = (str(ref.checkpoint), fingerprint(ref.checkpoint), str(provider.device), cache.seed, cache.steps,
           cache.noise, cache.precision)
    if key in shared:
        provider.goals = shared[key]
    else:
        cache.capacity = max(cache.capacity, int(capacity))
        shared[key] = cache


# ------------------------------------------------------------------------------------- labelling

def label_returns(domain: str, providers: Sequence[str], task_list: Sequence[str],
                  epsilons: Sequence[float], eps_episodes: int, *, preset: str = "small", data_root=None,
                  device: Any = "cpu", seed: int = 0, progress: bool = False,
                  precision: str = "fp32", task_set: str = DEFAULT_TASK_SET,
                  overrides: Mapping[str, Any] | None = None,
                  record: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per (provider, task, epsilon, episode): the learned return of a recorded episode.

    Episodes must exist (``tasks.collect``) and providers be prepared. Tasks are the outer loop so only
    one task's episodes are in memory at a time. The first ``eps_episodes`` files of each level are used
    (more may exist from an earlier, larger run). ``record`` (a dict, if given) receives per provider and
    task the provider's ``params`` (``"params"``) and, for goal-video providers, how many goal videos its
    labelling rolled out (``"goal_videos"``; 0 where an earlier provider's videos were reused).
    """
    import rewards
    from tqdm.auto import tqdm

    from tasks import datasets as ds
    from common.runtime import seed_everything

    classes = {name: rewards.get(name) for name in providers}
    record = {} if record is None else record
    rows = []
    bar = tqdm(total=len(task_list) * len(providers), desc=f"label {domain}", unit="provider-task",
               disable=not progress)
    for task in task_list:
        split = split_of(task, task_set)
        episodes = {float(e): ds.load_episodes(domain, [task], kind=ds.eps_kind(e), root=data_root)[:eps_episodes]
                    for e in epsilons}
        shared: dict = {}  # goal-video caches of this task's providers
        for name in providers:
            bar.set_postfix_str(f"{name} / {task}")
            seed_everything(seed)
            provider = rewards.make(name, task=task, domain=domain, device=device, data_root=data_root, seed=seed,
                                    precision=precision, **_make_kwargs(classes[name], preset, task_set, overrides))
            _share_goal_videos(provider, shared, sum(map(len, episodes.values())))
            goals = getattr(provider, "goals", None)
            misses = getattr(goals, "misses", None)
            for eps, eps_list in episodes.items():
                for i, ep in enumerate(eps_list):
                    r = np.asarray(provider.label_episode(ep.frames, ep.rewards), dtype=np.float64)
                    if r.shape != ep.rewards.shape or not np.all(np.isfinite(r)):
                        raise ValueError(f"reward {name!r} on {task} (epsilon {eps}, episode {i}): expected "
                                         f"finite rewards of shape {ep.rewards.shape}, got shape {r.shape}")
                    rows.append({"provider": name, "task": task, "split": split, "epsilon": eps, "episode": i,
                                 "raw_return": float(r.sum()), "env_return": float(ep.rewards.sum()),
                                 "success": bool(ep.successes.any())})
            entry = record.setdefault(name, {}).setdefault(task, {})
            entry["params"] = dict(provider.params)
            if misses is not None:
                entry["goal_videos"] = int(goals.misses - misses)
            del provider
            bar.update(1)
    bar.close()
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- figure

def plot(summary: pd.DataFrame, domain: str, epsilons: Sequence[float] | None = None,
         task_set: str = DEFAULT_TASK_SET):
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
    models = "" if task_set == DEFAULT_TASK_SET else f" ({task_set} task-set models)"
    fig.suptitle(f"Reward analysis, {DOMAIN_TITLES.get(domain, domain)}{models}: learned return of ε-greedy "
                 f"experts (mean ± s.e.)", fontsize=11)
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
            log: Callable[[str], Any] = print, progress: bool = True, precision: str | None = None,
            task_set: str = DEFAULT_TASK_SET, overrides: Mapping[str, Any] | None = None,
            pretrain: bool = True) -> AnalysisResult:
    """Record, prepare, label, tabulate and plot; returns the tables and the paths written.

    ``providers`` default to the six video rewards, ``tasks`` to every task of the domain (``task_set`` other
    than ``seen``: the set's tasks). ``task_set`` picks the models every video provider scores with (the tasks
    they were pretrained on, ``tasks.registry.TASK_SETS``). ``expert_episodes`` and ``pretrain_steps`` (None:
    the defaults of ``tasks.collect`` and of the model preset) size the upstream steps for quick runs and
    tests; ``pretrain=False`` skips the providers' ``prepare`` (models are used as they are on disk; a missing
    one raises ``ModelMissingError`` naming its command before anything is recorded). ``overrides`` are
    constructor parameters for the providers that take them (e.g. GenReward's ``goal_frames`` and
    ``goal_steps``, to keep goal videos short). ``precision`` (``auto|bf16|fp32``, default
    ``common.runtime.DEFAULT_PRECISION``) is resolved for the device and used for pretraining, statistics and
    scoring; config.json records it.
    """
    import rewards
    from analysis.plots import save
    from tasks.collect import collect
    from common.io import atomic_write_json, atomic_write_text
    from common.io import data_root as resolve_root
    from tasks.registry import task_set as task_set_tasks
    from common.runtime import DEFAULT_PRECISION, resolve_device, resolve_precision, versions

    providers = list(VIDEO_PROVIDERS if providers is None else providers)
    check_task_set(domain, task_set)  # before the default tasks are looked up
    task_list = list(tasks) if tasks is not None else default_tasks(domain, task_set)
    epsilons = [float(e) for e in epsilons]
    overrides = dict(overrides or {})
    check_inputs(domain, providers, task_list, epsilons, eps_episodes, preset, task_set, overrides)
    check_count("expert_episodes", expert_episodes)
    check_count("pretrain_steps", pretrain_steps)
    root = resolve_root(data_root)
    out = Path(out_dir) if out_dir is not None else default_out_dir(domain, task_set=task_set)
    dev = resolve_device(device)
    requested = DEFAULT_PRECISION if precision is None else precision
    resolved = resolve_precision(requested, dev)
    kwargs = {name: _make_kwargs(rewards.get(name), preset, task_set, overrides) for name in providers}
    notes = provider_notes(providers)
    start = time.time()

    log(f"reward analysis of {', '.join(providers)} on {domain} ({task_set} task-set models): {len(task_list)} "
        f"task(s), epsilons {', '.join(f'{e:g}' for e in epsilons)}, {eps_episodes} episode(s) each, device {dev}")
    for name, note in notes.items():
        log(f"{name}: {note}")
    if not pretrain:
        check_models(domain, providers, kwargs, str(root))
    collect(domain, task_list, episodes=expert_episodes, epsilons=epsilons, eps_episodes=eps_episodes, root=root,
            show_progress=progress)
    for name in providers if pretrain else ():
        cls = rewards.get(name)
        cls.prepare(rewards.PrepareRequest.make(
            cls, overrides=kwargs[name], domain=domain, tasks=tuple(task_list), data_root=str(root),
            preset=preset, pretrain_steps=pretrain_steps, expert_episodes=expert_episodes, device=str(dev),
            precision=resolved), log=log)

    record: dict[str, Any] = {}
    episodes = label_returns(domain, providers, task_list, epsilons, eps_episodes, preset=preset, data_root=root,
                             device=dev, seed=seed, progress=progress, precision=resolved, task_set=task_set,
                             overrides=overrides, record=record)
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
    models = "" if task_set == DEFAULT_TASK_SET else f" ({task_set} task-set models)"
    notes_md = "".join(f"- `{name}`: {note}\n" for name, note in notes.items())
    trained_on = (f" Video models pretrained on the {task_set} task set "
                  f"({', '.join(task_set_tasks(task_set, domain))})."
                  if any(rewards.get(name).uses_video_model for name in providers) else "")
    atomic_write_text(paths["spearman_md"], f"# Reward analysis, {domain}{models}\n\nSpearman rank correlation "
                      f"between the learned episode return (standardised per task) and 1 - epsilon; +1 means the "
                      f"return falls monotonically as the behaviour gets noisier.{trained_on}\n\n{markdown}"
                      + (f"\nNotes:\n\n{notes_md}" if notes_md else ""))
    fig_paths = save(plot(summary, domain, epsilons, task_set), out, f"reward_analysis_{domain}{_suffix(task_set)}")
    paths["figure"], paths["figure_pdf"] = fig_paths
    atomic_write_json(paths["config"], {
        "domain": domain, "task_set": task_set, "task_set_tasks": task_set_tasks(task_set, domain),
        "providers": providers, "tasks": task_list,
        "splits": {t: split_of(t, task_set) for t in task_list}, "preset": preset, "epsilons": epsilons,
        "eps_episodes": int(eps_episodes), "expert_episodes": expert_episodes, "pretrain_steps": pretrain_steps,
        "pretrain": bool(pretrain), "overrides": overrides, "score_overrides": kwargs, "notes": notes,
        "provider_params": {name: {t: v["params"] for t, v in by_task.items()} for name, by_task in record.items()},
        "goal_videos": {name: {t: v["goal_videos"] for t, v in by_task.items()}
                        for name, by_task in record.items() if any("goal_videos" in v for v in by_task.values())},
        "device": str(dev), "seed": int(seed), "data_root": str(root),
        "precision": resolved, "precision_requested": requested,
        "seconds": round(time.time() - start, 1), "versions": versions(),
    })
    log(f"Spearman(learned return, 1 - epsilon), {domain}{models}:\n{markdown}")
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
    p.add_argument("--task-set", default=DEFAULT_TASK_SET, choices=list(TASK_SETS),
                   help="the tasks the video models are pretrained on, as rewards.models.pretrain --task-set "
                        "(default: seen, the domain's seen tasks; genreward: GenReward's five MetaWorld tasks)")
    p.add_argument("--providers", nargs="+", default=list(VIDEO_PROVIDERS),
                   help=f"reward providers to compare (default: {' '.join(VIDEO_PROVIDERS)})")
    p.add_argument("--tasks", nargs="+", help="default: every seen and unseen task of the domain (--task-set "
                                              "other than seen: the set's tasks)")
    p.add_argument("--preset", default="small", choices=PRESETS, help="video-model size (default small)")
    p.add_argument("--epsilons", type=_epsilons, default=list(DEFAULT_EPSILONS),
                   help="comma-separated epsilon levels (default 0,0.25,0.5,0.75,1)")
    p.add_argument("--eps-episodes", type=int, default=DEFAULT_EPS_EPISODES, help="episodes per epsilon and task")
    p.add_argument("--expert-episodes", type=int, help="expert episodes per task for pretraining and statistics "
                                                       "(default 20 MetaWorld, 50 Adroit)")
    p.add_argument("--pretrain-steps", type=int, help="training steps of missing models (default: the preset's)")
    p.add_argument("--no-pretrain", action="store_true",
                   help="use the models on disk as they are (a missing one is an error naming the command that "
                        "makes it); default: missing models are trained, unfinished ones continued to --pretrain-steps")
    p.add_argument("--goal-frames", type=int, help="GenReward: goal-video length (default: the episode's; step t "
                                                   "is compared with goal frame min(t+1, N))")
    p.add_argument("--goal-steps", type=int, help="GenReward: denoising steps per goal frame (default 10)")
    p.add_argument("--data-root", help="datasets and models (default: $VRB_DATA_ROOT or ./data)")
    p.add_argument("--out", help="output folder (default: results/reward_analysis/<domain>)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default=DEFAULT_PRECISION, choices=list(PRECISIONS),
                   help=f"auto (bf16 where the hardware does it natively), bf16 or fp32 (default {DEFAULT_PRECISION})")
    a = p.parse_args(argv)
    overrides = {k: v for k, v in (("goal_frames", a.goal_frames), ("goal_steps", a.goal_steps)) if v is not None}
    try:  # bad names and sizes are usage errors; failures further down keep their traceback
        task_list = a.tasks if a.tasks is not None else default_tasks(a.domain, a.task_set)
        check_inputs(a.domain, a.providers, task_list, a.epsilons, a.eps_episodes, a.preset, a.task_set, overrides)
        check_count("expert_episodes", a.expert_episodes)
        check_count("pretrain_steps", a.pretrain_steps)
        for name, value in overrides.items():
            check_count(name, value)
        from common.runtime import resolve_device

        resolve_device(a.device)
    except (ValueError, RuntimeError) as e:
        p.error(str(e))
    from rewards.models.store import ModelMissingError

    try:
        analyse(a.domain, a.providers, task_list, preset=a.preset, epsilons=a.epsilons, eps_episodes=a.eps_episodes,
                expert_episodes=a.expert_episodes, pretrain_steps=a.pretrain_steps, data_root=a.data_root,
                out_dir=a.out, device=a.device, seed=a.seed, precision=a.precision, task_set=a.task_set,
                overrides=overrides, pretrain=not a.no_pretrain)
    except ModelMissingError as e:  # --no-pretrain: the message is the command that makes the model
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
