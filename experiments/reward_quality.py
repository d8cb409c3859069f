"""Offline reward quality: score every learned reward on held-out episodes before RL spends hours on it.

    python -m experiments.reward_quality --domain metaworld|adroit [--task-set seen|genreward]
        [--expert-tail N|full] [--providers ...] [--tasks ...] [--preset small|paper] [--epsilons 0,0.25,0.5,0.75,1]
        [--eps-episodes N] [--expert-episodes N] [--pretrain-steps N | --no-pretrain]
        [--model-file PATH | --budget-study DIR] [--goal-frames N] [--goal-steps N]
        [--data-root DIR] [--out DIR] [--device auto|cpu|cuda] [--precision auto|bf16|fp32] [--seed S]

The paper's Figs. 2-3 and the gate of design section 6b. Held-out episodes of the seen and unseen tasks are
scored by each provider with its ``score_only`` overrides (the video rewards: ``alpha = beta = 0``, the
standardised model score alone): epsilon-greedy versions of the expert at full horizon (epsilon 0, 0.25, ...,
1; epsilon 0 is the expert itself, recorded with env seeds no training clip uses) — full horizon so that every
episode has the same length, whole-episode returns are comparable and the frames after a success exist to be
measured. The expert test split (clips ending at the first success) gives each task's pre-success window
``K``, its median first-success step. The numbers, the gate and the figure are ``analysis.reward_quality``.

``--expert-tail N`` scores the video models trained on expert clips that keep N steps after the first success
(``rewards.models.store.ModelRef.expert_tail``; trained if missing, unless ``--no-pretrain``), beside the default
models of the release's clips. It changes the models' training clips (and the expert clips their statistics are
taken over) and nothing else: the scored episodes are the same epsilon-greedy files and ``K`` comes from the same
release test clips, so a tail scoring and the default one rank identical episodes. Its outputs go to a folder of
their own (``<domain>_tail<N>``).

Providers. Every provider that can label a recorded episode without an agent:

- the video rewards (``diffusion_reward``, ``viper``, ``viper_std``, ``viper_ce``, ``diffusion_ll``,
  ``diffusion_reward_nonoise``) and GenReward's video level (``genreward_video``; ``genreward`` is scored by
  its video level alone, ``w_frame = 0``, its rows equal ``genreward_video``'s and the outputs say so);
- ``dense``, the env's shaped reward, as the reference line (an oracle, not a method; the episodes hold its
  per-step series, and epsilon-greedy files recorded before they did are re-recorded, the same episodes);
- ``sparse`` (the env success reward) on request;
- ``noise``: i.i.d. standard-normal per-step rewards from a fixed seed, the control a useless reward must look
  like (not a registered provider: nothing trains on it).

Left out, and why: ``rnd`` and ``amp`` are learned online from an agent's replay (a recorded episode would be
labelled by their env reward alone, i.e. ``sparse``, under their name); ``genreward_frame`` and GenReward's
frame level are the forward-backward bonus, learned online too. They are refused with that reason.

Steps (each skips what exists, so a re-run only relabels):

1. record the expert (train + test) and epsilon-greedy episodes (``tasks.collect``, with the dense reward), and
   with ``--expert-tail`` the tail's expert clips (the tail models' statistics);
2. ``prepare`` each provider (pretrain its models on the task set's tasks, per-task statistics); with
   ``--no-pretrain``, ``--model-file`` or ``--budget-study`` nothing is trained (a missing model is an error
   naming the command that makes it);
3. label every episode per step; ``K`` per task from the expert test clips;
4. tables, gate, figure (``analysis.reward_quality``).

``--model-file PATH`` scores one checkpoint of the providers' video model (e.g. a budget-study snapshot) in a
scoring root of its own (``<data-root>/reward_quality/scoring/``: links to the datasets and the other models,
the checkpoint in its model's place, so its statistics never overwrite the model on disk's).
``--budget-study DIR`` (``experiments.budget_study``'s ``<data-root>/budget_study``) scores every
``<model>/step_<N>/model.pt`` snapshot of each provider's model into ``<out>/budgets/<provider>/step_<N>/``,
skipping snapshots already scored (same checkpoint fingerprint), writes ``<out>/budgets.csv`` and, once a
budget passes the gate, ``<out>/gate_passed_<model>`` naming the smallest passing budget (the budget study
then trains no larger budget; give ``--out`` the budget study's ``--out``, where it looks for that file).

Writes into ``--out`` (default ``results/reward_quality/<domain>[_<task set>][_tail<N>]``, atomically): ``steps.csv.gz``
(every labelled step), ``episodes.csv`` (per episode: returns whole and over ``[0, K)``, z-scored per task),
``tasks.csv`` (per provider, split, task: ``K``, Spearman whole / window with p and CI, per-step Spearman with
the dense reward, standardised reward before / after the first success for the expert and epsilon 1),
``splits.csv`` (tasks pooled), ``summary.csv`` (per epsilon, the figure's points), ``gate.json``,
``reward_quality.md``, ``reward_quality_<domain>[_<task set>].png`` / ``.pdf`` and ``config.json``.

For the suite launcher: :func:`evaluate_model_gate` gives one provider's gate verdict on the models on disk (or
a given checkpoint), cached under ``<data-root>/reward_quality/gate_cache/`` by the checkpoints' fingerprints
and the scoring settings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import rewards
import tasks as task_registry
from analysis import reward_quality as rq
from analysis.plots import save
from common.io import atomic_write_json, atomic_write_text
from common.io import data_root as resolve_root
from common.runtime import DEFAULT_PRECISION, PRECISIONS, resolve_device, resolve_precision, seed_everything, versions
from rewards.genreward import GenRewardBase
from rewards.genreward import load_models as genreward_models
from rewards.genreward import model_ref as genreward_ref
from rewards.goal_video import GoalVideoCache
from rewards.models import PRESETS
from rewards.models.store import ModelMissingError, ModelRef, fingerprint
from rewards.registry import parameters
from tasks import datasets as ds
from tasks.cli import expert_tail_arg
from tasks.collect import collect
from tasks.registry import DEFAULT_TASK_SET, TASK_SETS
from tasks.registry import task_set as task_set_tasks

#: the video-model rewards (design section 5)
VIDEO_PROVIDERS = ("diffusion_reward", "viper", "viper_std", "diffusion_ll", "viper_ce", "diffusion_reward_nonoise")
#: scored by default: the rewards the suites train with (``viper`` ranks episodes exactly as ``viper_std``
#: does once returns are z-scored per task, so it would only double the cost) and the oracle's reference line
DEFAULT_PROVIDERS = ("diffusion_reward", "viper_std", "dense")
#: the control: i.i.d. standard-normal per-step rewards (not a registered provider)
NOISE = "noise"
#: refused, with the reason (they need an agent)
LEFT_OUT = {
    "rnd": "learned online from an agent's replay; a recorded episode would be labelled by its env reward alone",
    "amp": "its discriminator is learned online from an agent's replay; a recorded episode would be labelled by "
    "its env reward alone",
    "genreward_frame": "the forward-backward bonus is learned online from an agent's replay; score "
    "genreward_video (GenReward's video level) instead",
}
DEFAULT_EPSILONS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: episodes per epsilon level and task. Why 5: labelling a 100-step MetaWorld episode costs ~5 CPU-seconds with
#: the small VQ-Diffusion (10 denoising steps) and ~1.3 with the small VideoGPT on one thread of this machine, so
#: 11 tasks x 5 levels x 5 episodes (275) keep a default scoring near the 30-minute target; the pooled seen split
#: still has 175 episodes (p < 1e-6 at rho = 0.4), the unseen one 100
DEFAULT_EPS_EPISODES = 5
#: unseen MetaWorld tasks scored by default beside the seen ones (the timing target's scope: 7 seen + 4 unseen)
DEFAULT_UNSEEN = 4
#: task-registry split -> quality split (the seen-task models never saw GenReward's five tasks)
_SPLIT_OF_REGISTRY = {"metaworld": "seen", "adroit": "seen", "metaworld_unseen": "unseen", "genreward": "unseen"}
DOMAIN_TITLES = {"metaworld": "MetaWorld", "adroit": "Adroit"}
#: constructor parameters naming the task set of a provider's video model
TASK_SET_PARAMS = ("task_set", "pretrained_on")
_FIXED_PARAMS = ("preset", *TASK_SET_PARAMS)
GENREWARD_NOTE = (
    "video level only: the frame-level forward-backward bonus is learned online from an agent's "
    "replay and cannot score a recorded episode, so it is absent (w_frame=0); these rows equal "
    "genreward_video's"
)
NOISE_NOTE = "control: i.i.d. standard-normal per-step rewards from a fixed seed (what a useless reward looks like)"
_SNAPSHOT = re.compile(r"step_(\d+)$")


@dataclass
class QualityResult:
    """What :func:`score` made: the tables (also on disk), the gate verdict and the paths written."""

    steps: pd.DataFrame
    episodes: pd.DataFrame
    tasks: pd.DataFrame
    splits: pd.DataFrame
    summary: pd.DataFrame
    gate: dict[str, Any]
    windows: dict[str, int]
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- inputs


def _suffix(task_set: str, expert_tail: Any = 0) -> str:
    """``""`` for the default task set and tail, ``"_<set>"`` and ``"_tail<N>"`` otherwise (as ``ModelRef.name``)."""
    return ("" if task_set == DEFAULT_TASK_SET else f"_{task_set}") + ds.tail_suffix(expert_tail)


def expert_tail_of(overrides: Mapping[str, Any] | None) -> int | str:
    """The expert tail of the video models a scoring uses: its ``expert_tail`` override, 0 (the release's clips)
    without one. It is an override like any provider parameter, so the launcher's gate passes it on as it is."""
    return ds.check_tail(dict(overrides or {}).get("expert_tail", 0))


def default_out_dir(
    domain: str, results_dir: str | Path = "results", task_set: str = DEFAULT_TASK_SET, expert_tail: Any = 0
) -> Path:
    return Path(results_dir) / "reward_quality" / f"{domain}{_suffix(task_set, expert_tail)}"


def default_tasks(domain: str, task_set: str = DEFAULT_TASK_SET) -> list[str]:
    """The default set ``seen``: the domain's seen tasks and its first ``DEFAULT_UNSEEN`` unseen ones (MetaWorld 7
    + 4; Adroit door, hammer, pen). Another set: its own tasks, the tasks its models know."""
    if task_set != DEFAULT_TASK_SET:
        return task_set_tasks(task_set, domain)
    seen = task_registry.seen_tasks(domain)
    unseen = [t for t in task_registry.names(domain=domain) if t not in seen]
    return seen + unseen[:DEFAULT_UNSEEN]


def split_of(task: str, task_set: str = DEFAULT_TASK_SET) -> str:
    """``"seen"`` for the tasks the video models are trained on, ``"unseen"`` for the others."""
    spec = task_registry.spec(task)
    if task_set == DEFAULT_TASK_SET:
        return _SPLIT_OF_REGISTRY[spec.split]
    return "seen" if task in task_set_tasks(task_set, spec.domain) else "unseen"


def _init_params(cls: type) -> set[str]:
    """The named constructor parameters of a provider class (what an override may set)."""
    return set(parameters(cls))


def _genreward_level(cls: type) -> str | None:
    """``"both"``, ``"video"`` or ``"frame"`` for a GenReward provider class, None for any other."""
    if not (isinstance(cls, type) and issubclass(cls, GenRewardBase)):
        return None
    return "both" if cls.use_video and cls.use_frame else "video" if cls.use_video else "frame"


def _provider_class(name: str) -> type | None:
    """The registered class of a provider, None for the ``noise`` control."""
    return None if name == NOISE else rewards.get(name)


def provider_notes(providers: Sequence[str]) -> dict[str, str]:
    """What a provider's rows mean where that differs from its training-time reward."""
    notes = {}
    for name in providers:
        if name == NOISE:
            notes[name] = NOISE_NOTE
        elif _genreward_level(_provider_class(name)) == "both":
            notes[name] = GENREWARD_NOTE
    return notes


def check_count(name: str, value: int | None) -> None:
    """``None`` (the default of the step it sizes) or a positive int."""
    if value is not None and not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{name}: expected an int >= 1 or None (the default), got {value!r}")


def check_inputs(
    domain: str,
    providers: Sequence[str],
    task_list: Sequence[str],
    epsilons: Sequence[float],
    eps_episodes: int,
    preset: str,
    task_set: str = DEFAULT_TASK_SET,
    overrides: Mapping[str, Any] | None = None,
) -> None:
    """Fail before any recording or training: unknown names list the valid ones."""
    if domain not in task_registry.DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; valid: {', '.join(task_registry.DOMAINS)}")
    task_set_tasks(task_set, domain)
    if not providers:
        raise ValueError("providers: expected at least one reward provider name")
    if len(set(providers)) != len(providers):
        raise ValueError(f"providers: each at most once, got {list(providers)}")
    for name in providers:
        if name in LEFT_OUT:
            raise ValueError(f"{name}: cannot be scored offline ({LEFT_OUT[name]})")
        if name == NOISE:
            continue
        try:
            cls = rewards.get(name)
        except ValueError as e:  # UnknownRewardError lists the registered names; add the control
            raise ValueError(f"{e} (or {NOISE}, the control)") from None
        if _genreward_level(cls) == "frame":
            raise ValueError(f"{name}: cannot be scored offline ({LEFT_OUT['genreward_frame']})")
        if cls.uses_video_model and task_set != DEFAULT_TASK_SET and not _init_params(cls) & set(TASK_SET_PARAMS):
            raise ValueError(
                f"{name}: its video model cannot be pointed at the {task_set!r} task set (it takes "
                f"none of {', '.join(TASK_SET_PARAMS)}); score it with --task-set {DEFAULT_TASK_SET}"
            )
    classes = [c for c in map(_provider_class, providers) if c is not None]
    overrides = dict(overrides or {})
    if expert_tail_of(overrides) != 0:  # a provider that ignored it would score its default model under the tail
        blind = [
            n
            for n, c in zip(providers, map(_provider_class, providers))
            if c is not None and c.uses_video_model and "expert_tail" not in _init_params(c)
        ]
        if blind:
            raise ValueError(
                f"{', '.join(blind)}: its video model has no expert-tail variant (it takes no expert_tail); "
                f"score it without --expert-tail"
            )
    fixed = sorted(set(overrides) & {*_FIXED_PARAMS, *(k for c in classes for k in c.score_only)})
    if fixed:
        raise ValueError(
            f"overrides: {', '.join(fixed)} are set by the scoring (--preset, --task-set, the "
            f"providers' score-only settings), not by an override"
        )
    for key in overrides:
        if not any(key in _init_params(c) for c in classes):
            raise ValueError(f"override {key!r}: none of the providers {', '.join(providers)} takes it")
    for key in ("goal_frames", "goal_steps"):
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
    check_count("eps_episodes", eps_episodes)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")


def make_kwargs(
    cls: type, preset: str, task_set: str = DEFAULT_TASK_SET, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Constructor overrides for scoring: the provider's ``score_only`` overrides, the model preset and task set
    of a video-model provider, then the ``overrides`` it takes (e.g. GenReward's ``goal_frames``)."""
    takes = _init_params(cls)
    kwargs = {**cls.score_only, **({"preset": preset} if cls.uses_video_model else {})}
    kwargs.update({p: task_set for p in TASK_SET_PARAMS if p in takes})
    kwargs.update({k: v for k, v in (overrides or {}).items() if k in takes})
    return kwargs


def model_ref(name: str, kwargs: Mapping[str, Any], domain: str, root: Any) -> ModelRef | None:
    """The video model a provider scores with (its codec is ``.codec``), None for a provider without one."""
    cls = _provider_class(name)
    if cls is None or not cls.uses_video_model:
        return None
    if _genreward_level(cls) is not None:
        return genreward_ref(domain, kwargs["preset"], kwargs.get("context", 2), root, kwargs["pretrained_on"])
    return ModelRef(
        domain,
        cls.model_name,
        kwargs["preset"],
        kwargs.get("context", 2),
        root,
        kwargs.get("task_set", DEFAULT_TASK_SET),
        kwargs.get("expert_tail", 0),
    )


def check_models(domain: str, providers: Sequence[str], kwargs: Mapping[str, Mapping[str, Any]], root: Any) -> None:
    """Every model the providers will load is on disk, else ``ModelMissingError`` naming the command that makes
    it (before anything is recorded)."""
    for name in providers:
        ref = model_ref(name, kwargs.get(name, {}), domain, root)  # the noise control has no kwargs (nor model)
        if ref is None:
            continue
        if _genreward_level(_provider_class(name)) is not None:
            genreward_models(domain, ref.preset, ref.context, "cpu", root, ref.task_set)  # names both commands
            continue
        for r in (ref.codec, ref):
            if not r.exists():
                raise r.missing()


# ------------------------------------------------------------------------------------- a checkpoint's root


def scoring_root(ref: ModelRef, model_file: str | Path) -> Path:
    """A data root in which ``ref``'s model is ``model_file``: the datasets and every other model of the domain
    are symbolic links to the real root's, ``ref``'s directory is its own (its ``stats.json`` is computed for
    this checkpoint), holding a link to the checkpoint. One per (model, checkpoint fingerprint), so a
    re-scoring reuses its statistics and a rewritten checkpoint gets a fresh one."""
    model_file = Path(model_file).resolve()
    if not model_file.is_file():
        raise ModelMissingError(
            f"no checkpoint at {model_file}; the budget study (python -m experiments.budget_study) "
            f"or python -m rewards.models.pretrain makes one"
        )
    real = resolve_root(ref.data_root)
    key = hashlib.sha1(f"{model_file}:{fingerprint(model_file)}".encode()).hexdigest()[:12]
    root = real / "reward_quality" / "scoring" / ref.name / key
    models = root / "models" / ref.domain
    models.mkdir(parents=True, exist_ok=True)
    (real / "datasets").mkdir(parents=True, exist_ok=True)  # recorded into through the link
    _link(root / "datasets", real / "datasets")
    source = real / "models" / ref.domain
    for entry in sorted(source.iterdir()) if source.is_dir() else []:
        if entry.name != ref.name:
            _link(models / entry.name, entry)
    (models / ref.name).mkdir(exist_ok=True)
    _link(models / ref.name / "model.pt", model_file)
    return root


def _link(path: Path, target: Path) -> None:
    """``path`` -> ``target`` (absolute), replacing a stale link; a real file or folder there is an error."""
    target = Path(target).resolve()
    if path.is_symlink():
        if path.resolve() == target:
            return
        path.unlink()
    elif path.exists():
        raise FileExistsError(f"{path} exists and is not a link; a scoring root is made of links only")
    path.symlink_to(target, target_is_directory=target.is_dir())


# ------------------------------------------------------------------------------------- labelling


def _share_goal_videos(provider: Any, shared: dict, capacity: int) -> None:
    """Give ``provider`` the goal-video cache of an earlier provider of the same task with the same model and
    rollout settings (``genreward`` after ``genreward_video``): the videos are a pure function of those, so they
    are rolled out once per scoring instead of once per provider."""
    cache, ref = getattr(provider, "goals", None), getattr(getattr(provider, "model", None), "ref", None)
    if not isinstance(cache, GoalVideoCache) or ref is None:
        return
    key = (
        str(ref.checkpoint),
        fingerprint(ref.checkpoint),
        str(provider.device),
        cache.seed,
        cache.steps,
        cache.noise,
        cache.precision,
    )
    if key in shared:
        provider.goals = shared[key]
    else:
        cache.capacity = max(cache.capacity, int(capacity))
        shared[key] = cache


def noise_rewards(seed: int, task: str, epsilon: float, episode: int, length: int) -> np.ndarray:
    """The control's rewards of one episode: standard normal, seeded by (seed, task, epsilon, episode) alone,
    so every scoring of the same episode gets the same series."""
    key = int.from_bytes(hashlib.sha1(f"{seed}/{task}/{epsilon:.4f}/{episode}".encode()).digest()[:8], "little")
    return np.random.default_rng(key).standard_normal(length)


def success_windows(domain: str, task_list: Sequence[str], root: Any) -> dict[str, int]:
    """``K`` per task: the median first-success step of its expert test clips (held out from training)."""
    windows = {}
    for task in task_list:
        clips = ds.load_episodes(domain, [task], ds.EXPERT, "test", root)  # missing: names tasks.collect
        windows[task] = rq.success_window(int(ep.meta.get("first_success", ep.length)) for ep in clips)
    return windows


def label_steps(
    domain: str,
    providers: Sequence[str],
    task_list: Sequence[str],
    epsilons: Sequence[float],
    eps_episodes: int,
    *,
    preset: str = "small",
    data_root: Any = None,
    device: Any = "cpu",
    seed: int = 0,
    progress: bool = False,
    precision: str = "fp32",
    task_set: str = DEFAULT_TASK_SET,
    overrides: Mapping[str, Any] | None = None,
    record: dict[str, Any] | None = None,
    jobs: int = 1,
) -> pd.DataFrame:
    """The steps table (``analysis.reward_quality.STEP_COLUMNS``): every step of the first ``eps_episodes``
    episodes of each epsilon level, labelled by each provider. Episodes must exist (with their dense reward) and
    providers be prepared; tasks are the outer loop so one task's episodes are in memory at a time. ``record``
    receives per provider and task its ``params`` and, for goal-video providers, the goal videos rolled out.

    ``jobs`` > 1 labels tasks in that many worker processes, one torch thread each (scoring is CPU-bound and a
    task is independent of the others). Every provider is seeded afresh for each task, so the table is the same
    for any ``jobs``; the rows keep the order of ``task_list``."""
    check_count("jobs", jobs)
    record = {} if record is None else record
    bar = tqdm(
        total=len(task_list) * len(providers), desc=f"score {domain}", unit="provider-task", disable=not progress
    )
    settings = dict(
        domain=domain,
        providers=list(providers),
        epsilons=[float(e) for e in epsilons],
        eps_episodes=eps_episodes,
        preset=preset,
        data_root=data_root,
        device=str(device),
        seed=seed,
        precision=precision,
        task_set=task_set,
        overrides=dict(overrides or {}),
    )
    parts: dict[str, tuple[pd.DataFrame, dict[str, Any]]] = {}
    if jobs <= 1 or len(task_list) <= 1:
        for task in task_list:
            parts[task] = _label_task(task, settings, bar)
    else:
        # spawn, not fork: the parent has torch's thread pools (and perhaps CUDA) initialised already
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(task_list)), mp_context=get_context("spawn"), initializer=_one_thread
        ) as pool:
            futures = {pool.submit(_label_task, task, settings): task for task in task_list}
            for done in as_completed(futures):
                parts[futures[done]] = done.result()
                bar.set_postfix_str(futures[done])
                bar.update(len(providers))
    bar.close()
    for task in task_list:
        for name, entry in parts[task][1].items():
            record.setdefault(name, {})[task] = entry
    return pd.concat([parts[t][0] for t in task_list], ignore_index=True)[list(rq.STEP_COLUMNS)]


def _one_thread() -> None:
    """Worker initialiser of the parallel scoring: one torch thread per process (two jobs on two cores)."""
    import torch  # local import: only the worker processes set their thread count

    torch.set_num_threads(1)


def _label_task(task: str, settings: Mapping[str, Any], bar: Any = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One task's steps table and its ``{provider: {"params": ..., "goal_videos": ...}}`` record (a worker's
    unit in :func:`label_steps`)."""
    s = settings
    domain, providers, data_root, seed = s["domain"], s["providers"], s["data_root"], s["seed"]
    split = split_of(task, s["task_set"])
    episodes = {
        float(e): ds.load_episodes(domain, [task], kind=ds.eps_kind(e), root=data_root)[: s["eps_episodes"]]
        for e in s["epsilons"]
    }
    dense = {
        (e, i): ds.require_dense(ep, f"{task} epsilon {e:g} episode {i}", data_root)
        for e, eps_list in episodes.items()
        for i, ep in enumerate(eps_list)
    }
    shared: dict = {}
    parts = []
    record: dict[str, Any] = {}
    for name in providers:
        if bar is not None:
            bar.set_postfix_str(f"{name} / {task}")
        cls = _provider_class(name)
        provider = goals = misses = None
        if cls is not None:
            seed_everything(seed)
            provider = rewards.make(
                name,
                task=task,
                domain=domain,
                device=s["device"],
                data_root=data_root,
                seed=seed,
                precision=s["precision"],
                **make_kwargs(cls, s["preset"], s["task_set"], s["overrides"]),
            )
            _share_goal_videos(provider, shared, sum(map(len, episodes.values())))
            goals = getattr(provider, "goals", None)
            misses = getattr(goals, "misses", None)
        for eps, eps_list in episodes.items():
            for i, ep in enumerate(eps_list):
                if provider is None:
                    r = noise_rewards(seed, task, eps, i, ep.length)
                else:
                    given = dense[(eps, i)] if cls.env_reward == "dense" else ep.rewards
                    r = np.asarray(provider.label_episode(ep.frames, given), dtype=np.float64)
                if r.shape != ep.rewards.shape or not np.all(np.isfinite(r)):
                    raise ValueError(
                        f"reward {name!r} on {task} (epsilon {eps}, episode {i}): expected finite "
                        f"rewards of shape {ep.rewards.shape}, got shape {r.shape}"
                    )
                hits = np.flatnonzero(ep.successes)
                parts.append(
                    pd.DataFrame(
                        {
                            "provider": name,
                            "task": task,
                            "split": split,
                            "epsilon": eps,
                            "episode": i,
                            "step": np.arange(ep.length),
                            "reward": r,
                            "dense": dense[(eps, i)].astype(np.float64),
                            "first_success": int(hits[0]) + 1 if hits.size else -1,
                        }
                    )
                )
        entry = record.setdefault(name, {})
        entry["params"] = (
            dict(provider.params) if provider is not None else {"control": "standard normal", "seed": int(seed)}
        )
        if misses is not None:
            entry["goal_videos"] = int(goals.misses - misses)
        del provider
        if bar is not None:
            bar.update(1)
    return pd.concat(parts, ignore_index=True), record


# ------------------------------------------------------------------------------------- tables and files


def tabulate(
    steps: pd.DataFrame, windows: Mapping[str, int], seed: int = 0, n_boot: int = rq.N_BOOT
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """(episodes, tasks, splits, summary, gate) from a steps table: what every output is made of."""
    episodes = rq.episode_returns(steps, windows)
    tasks = rq.task_table(episodes, steps, windows, seed, n_boot)
    splits = rq.split_table(episodes, seed, n_boot)
    summary = rq.summary_table(episodes, seed, n_boot)
    return episodes, tasks, splits, summary, rq.gate(splits)


def write_outputs(
    out: Path,
    title: str,
    stem: str,
    steps: pd.DataFrame,
    windows: Mapping[str, int],
    notes: Mapping[str, str],
    config: Mapping[str, Any],
    seed: int = 0,
    n_boot: int = rq.N_BOOT,
) -> tuple[dict[str, Path], tuple]:
    """Every output file of one scoring (atomically); returns the paths and :func:`tabulate`'s tables."""
    tables = tabulate(steps, windows, seed, n_boot)
    episodes, tasks, splits, summary, verdict = tables
    paths = {
        k: out / f
        for k, f in (
            ("steps", "steps.csv.gz"),
            ("episodes", "episodes.csv"),
            ("tasks", "tasks.csv"),
            ("splits", "splits.csv"),
            ("summary", "summary.csv"),
            ("gate", "gate.json"),
            ("markdown", "reward_quality.md"),
            ("config", "config.json"),
        )
    }
    out.mkdir(parents=True, exist_ok=True)
    tmp = paths["steps"].with_name(f".{paths['steps'].name}.tmp")
    steps.to_csv(tmp, index=False, float_format="%.6g", compression="gzip")
    tmp.replace(paths["steps"])
    for key, table in (("episodes", episodes), ("tasks", tasks), ("splits", splits), ("summary", summary)):
        atomic_write_text(paths[key], table.to_csv(index=False, float_format="%.6g"))
    atomic_write_json(paths["gate"], {"thresholds": rq.thresholds(), "windows": dict(windows), "providers": verdict})
    notes_md = "".join(f"- `{name}`: {note}\n" for name, note in notes.items())
    left_out = "".join(f"- `{name}`: {why}\n" for name, why in LEFT_OUT.items())
    atomic_write_text(
        paths["markdown"],
        (
            f"# Reward quality, {title}\n\nHeld-out episodes: epsilon-greedy experts at full horizon (epsilon 0 is the "
            f"expert); pre-success window K per task = median first-success step of the expert test clips "
            f"({', '.join(f'{t} {k}' for t, k in windows.items())}).\n\n## Gate\n\n{rq.gate_markdown(verdict)}\n"
            f"## Per task\n\nStep rho with dense: Spearman of the per-step reward with the dense oracle's over all "
            f"(episode, step) pairs; z: per-step reward z-scored per task, mean before / after the first success "
            f"(expert: its own first success; epsilon 1: K).\n\n{rq.task_markdown(tasks)}"
            + (f"\n## Notes\n\n{notes_md}" if notes_md else "")
            + f"\n## Left out\n\n{left_out}"
        ),
    )
    fig = rq.plot(summary, title)
    paths["figure"], paths["figure_pdf"] = save(fig, out, stem)
    atomic_write_json(
        paths["config"],
        {**config, "windows": dict(windows), "notes": dict(notes), "left_out": LEFT_OUT, "versions": versions()},
    )
    return paths, tables


# ------------------------------------------------------------------------------------- pipeline


def score(
    domain: str,
    providers: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    *,
    preset: str = "small",
    epsilons: Sequence[float] = DEFAULT_EPSILONS,
    eps_episodes: int = DEFAULT_EPS_EPISODES,
    expert_episodes: int | None = None,
    pretrain_steps: int | None = None,
    data_root: Any = None,
    out_dir: Any = None,
    device: str = "auto",
    seed: int = 0,
    log: Callable[[str], Any] = print,
    progress: bool = True,
    precision: str | None = None,
    task_set: str = DEFAULT_TASK_SET,
    overrides: Mapping[str, Any] | None = None,
    pretrain: bool = True,
    model_file: str | Path | None = None,
    n_boot: int = rq.N_BOOT,
    jobs: int = 1,
) -> QualityResult:
    """Record, prepare, label, tabulate, gate and plot; returns the tables and the paths written.

    ``providers`` default to ``DEFAULT_PROVIDERS``, ``tasks`` to :func:`default_tasks`. ``expert_episodes`` and
    ``pretrain_steps`` (None: the defaults of ``tasks.collect`` and of the preset) size the upstream steps;
    ``pretrain=False`` uses the models on disk as they are. ``model_file``: score that checkpoint of the
    providers' video model instead (every video provider must use the same model), in :func:`scoring_root`;
    implies ``pretrain=False``. ``precision`` (default ``common.runtime.DEFAULT_PRECISION``) is resolved for the
    device and used for pretraining, statistics and scoring. ``overrides["expert_tail"]``: score the video models of
    that expert tail (:func:`expert_tail_of`); the scored episodes and ``K`` are the default scoring's. ``jobs``:
    tasks labelled in that many processes (:func:`label_steps`); the tables are the same for any ``jobs``."""
    check_count("jobs", jobs)
    providers = list(DEFAULT_PROVIDERS if providers is None else providers)
    task_list = list(tasks) if tasks is not None else default_tasks(domain, task_set)
    epsilons = [float(e) for e in epsilons]
    overrides = dict(overrides or {})
    check_inputs(domain, providers, task_list, epsilons, eps_episodes, preset, task_set, overrides)
    check_count("expert_episodes", expert_episodes)
    check_count("pretrain_steps", pretrain_steps)
    if expert_episodes is not None and expert_episodes < 2:
        raise ValueError("expert_episodes: expected >= 2 (one test clip at least, for the pre-success window)")
    real_root = resolve_root(data_root)
    kwargs = {
        name: make_kwargs(_provider_class(name), preset, task_set, overrides) for name in providers if name != NOISE
    }
    root = real_root
    model_info = None
    if model_file is not None:
        refs = {n: model_ref(n, kw, domain, real_root) for n, kw in kwargs.items()}
        models = {r for r in refs.values() if r is not None}
        if len(models) != 1:
            raise ValueError(
                f"model_file: expected the providers to score with one video model, got "
                f"{sorted(r.name for r in models) or 'none'} ({', '.join(providers)})"
            )
        (ref,) = models
        root = scoring_root(ref, model_file)
        pretrain = False
        model_info = {
            "model": ref.name,
            "model_file": str(Path(model_file).resolve()),
            "fingerprint": fingerprint(model_file),
        }
    tail = expert_tail_of(overrides)
    out = Path(out_dir) if out_dir is not None else default_out_dir(domain, task_set=task_set, expert_tail=tail)
    dev = resolve_device(device)
    requested = DEFAULT_PRECISION if precision is None else precision
    resolved = resolve_precision(requested, dev)
    notes = provider_notes(providers)
    start = time.time()
    log(
        f"reward quality of {', '.join(providers)} on {domain} ({task_set} task-set models"
        f"{f', expert tail {tail}' if tail != 0 else ''}"
        f"{', checkpoint ' + str(model_file) if model_file else ''}): {len(task_list)} task(s), epsilons "
        f"{', '.join(f'{e:g}' for e in epsilons)}, {eps_episodes} episode(s) each, device {dev}"
    )
    if not pretrain:
        check_models(domain, providers, kwargs, str(root))
    collect(
        domain,
        task_list,
        episodes=expert_episodes,
        epsilons=epsilons,
        eps_episodes=eps_episodes,
        root=real_root,
        show_progress=progress,
        dense_eps=True,
    )
    if tail != 0:  # the tail's clips of every scored task: the statistics of the tail models are taken over them
        collect(domain, task_list, episodes=expert_episodes, root=real_root, show_progress=progress, expert_tail=tail)
    for name in providers if pretrain else ():
        cls = _provider_class(name)
        if cls is not None:
            cls.prepare(
                rewards.PrepareRequest.make(
                    cls,
                    overrides=kwargs[name],
                    domain=domain,
                    tasks=tuple(task_list),
                    data_root=str(root),
                    preset=preset,
                    pretrain_steps=pretrain_steps,
                    expert_episodes=expert_episodes,
                    device=str(dev),
                    precision=resolved,
                ),
                log=log,
            )
    windows = success_windows(domain, task_list, real_root)  # the release's test clips, whatever the tail
    record: dict[str, Any] = {}
    steps = label_steps(
        domain,
        providers,
        task_list,
        epsilons,
        eps_episodes,
        preset=preset,
        data_root=root,
        device=dev,
        seed=seed,
        progress=progress,
        precision=resolved,
        task_set=task_set,
        overrides=overrides,
        record=record,
        jobs=jobs,
    )
    models = ("" if task_set == DEFAULT_TASK_SET else f" ({task_set} task-set models)") + (
        f" (models of expert clips with tail {tail})" if tail != 0 else ""
    )
    title = f"{DOMAIN_TITLES.get(domain, domain)}{models}" + (
        f", {model_info['model']} {Path(model_file).parent.name}" if model_info else ""
    )
    config = {
        "domain": domain,
        "task_set": task_set,
        "task_set_tasks": task_set_tasks(task_set, domain),
        "expert_tail": tail,
        "providers": providers,
        "tasks": task_list,
        "splits": {t: split_of(t, task_set) for t in task_list},
        "preset": preset,
        "epsilons": epsilons,
        "eps_episodes": int(eps_episodes),
        "expert_episodes": expert_episodes,
        "pretrain_steps": pretrain_steps,
        "pretrain": bool(pretrain),
        "overrides": overrides,
        "score_overrides": kwargs,
        "model_file": model_info,
        "provider_params": {n: {t: v["params"] for t, v in by.items()} for n, by in record.items()},
        "goal_videos": {
            n: {t: v["goal_videos"] for t, v in by.items()}
            for n, by in record.items()
            if any("goal_videos" in v for v in by.values())
        },
        "device": str(dev),
        "seed": int(seed),
        "data_root": str(real_root),
        "scoring_root": str(root),
        "precision": resolved,
        "precision_requested": requested,
        "n_boot": int(n_boot),
        "jobs": int(jobs),
        "seconds": round(time.time() - start, 1),
    }
    paths, (episodes, task_rows, splits, summary, verdict) = write_outputs(
        out, title, f"reward_quality_{domain}{_suffix(task_set, tail)}", steps, windows, notes, config, seed, n_boot
    )
    log(
        f"gate ({rq.thresholds()['seen']} on seen tasks; {rq.thresholds()['unseen']} on unseen):\n"
        f"{rq.gate_markdown(verdict)}"
    )
    log(f"reward quality written to {out} in {time.time() - start:.0f}s (figure: {paths['figure']})")
    return QualityResult(steps, episodes, task_rows, splits, summary, verdict, windows, out, paths)


# ------------------------------------------------------------------------------------- the launcher's gate


def gate_settings(
    provider: str,
    domain: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    preset: str = "small",
    task_set: str = DEFAULT_TASK_SET,
    tasks: Sequence[str] | None = None,
    epsilons: Sequence[float] = DEFAULT_EPSILONS,
    eps_episodes: int = DEFAULT_EPS_EPISODES,
    expert_episodes: int | None = None,
    seed: int = 0,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Everything a gate verdict depends on besides the checkpoints (the cache key's settings part)."""
    return {
        "provider": provider,
        "domain": domain,
        "overrides": dict(overrides or {}),
        "preset": preset,
        "task_set": task_set,
        "tasks": list(tasks) if tasks is not None else default_tasks(domain, task_set),
        "epsilons": [float(e) for e in epsilons],
        "eps_episodes": int(eps_episodes),
        "expert_episodes": expert_episodes,
        "seed": int(seed),
        "precision": precision,
        "thresholds": rq.thresholds(),
    }


def evaluate_model_gate(
    provider: str,
    domain: str,
    data_root: Any = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    preset: str = "small",
    task_set: str = DEFAULT_TASK_SET,
    tasks: Sequence[str] | None = None,
    epsilons: Sequence[float] = DEFAULT_EPSILONS,
    eps_episodes: int = DEFAULT_EPS_EPISODES,
    expert_episodes: int | None = None,
    model_file: str | Path | None = None,
    device: str = "auto",
    precision: str | None = None,
    seed: int = 0,
    out_dir: Any = None,
    log: Callable[[str], Any] = print,
    jobs: int = 1,
) -> dict[str, Any]:
    """One provider's gate verdict (``analysis.reward_quality.gate``'s entry, plus ``cached`` and ``out_dir``) on
    the models on disk, or on ``model_file``. Never trains: a missing model raises ``ModelMissingError`` naming
    the command that makes it. Cached in ``<data-root>/reward_quality/gate_cache/<provider>_<key>.json`` by the
    checkpoints' fingerprints (model and codec) and :func:`gate_settings`, so the launcher can ask before every
    run at no cost once a model has been scored; a retrained model is scored again. ``jobs`` scores tasks in
    parallel processes (not part of the key: the verdict does not depend on it)."""
    overrides = dict(overrides or {})
    root = resolve_root(data_root)
    dev = resolve_device(device)
    resolved = resolve_precision(DEFAULT_PRECISION if precision is None else precision, dev)
    settings = gate_settings(
        provider,
        domain,
        overrides=overrides,
        preset=preset,
        task_set=task_set,
        tasks=tasks,
        epsilons=epsilons,
        eps_episodes=eps_episodes,
        expert_episodes=expert_episodes,
        seed=seed,
        precision=resolved,
    )
    check_inputs(domain, [provider], settings["tasks"], settings["epsilons"], eps_episodes, preset, task_set, overrides)
    prints = {}
    if provider != NOISE:
        ref = model_ref(provider, make_kwargs(_provider_class(provider), preset, task_set, overrides), domain, root)
        if ref is not None:
            if model_file is None and not ref.exists():
                raise ref.missing()
            if not ref.codec.exists():
                raise ref.codec.missing()
            prints = {
                "model": fingerprint(model_file if model_file is not None else ref.checkpoint),
                "model_file": str(Path(model_file).resolve()) if model_file is not None else str(ref.checkpoint),
                "codec": fingerprint(ref.codec.checkpoint),
            }
    key = hashlib.sha1(json.dumps({"settings": settings, "checkpoints": prints}, sort_keys=True).encode()).hexdigest()
    cache = root / "reward_quality" / "gate_cache" / f"{provider}_{key[:16]}.json"
    if cache.is_file():
        entry = json.loads(cache.read_text())
        log(f"{provider}: gate {'passed' if entry['verdict']['pass'] else 'failed'} (cached, {cache})")
        return {**entry["verdict"], "cached": True, "out_dir": entry["out_dir"]}
    out = Path(out_dir) if out_dir is not None else root / "reward_quality" / "gate" / f"{provider}_{key[:16]}"
    result = score(
        domain,
        [provider],
        settings["tasks"],
        preset=preset,
        epsilons=epsilons,
        eps_episodes=eps_episodes,
        expert_episodes=expert_episodes,
        data_root=root,
        out_dir=out,
        device=str(dev),
        seed=seed,
        log=log,
        progress=False,
        precision=resolved,
        task_set=task_set,
        overrides=overrides,
        pretrain=False,
        model_file=model_file,
        jobs=jobs,
    )
    verdict = result.gate[provider]
    atomic_write_json(cache, {"settings": settings, "checkpoints": prints, "verdict": verdict, "out_dir": str(out)})
    return {**verdict, "cached": False, "out_dir": str(out)}


# ------------------------------------------------------------------------------------- budget study

BUDGET_COLUMNS = (
    "provider",
    "model",
    "budget",
    "fingerprint",
    "seen_rho",
    "seen_p",
    "seen_n",
    "seen_pass",
    "unseen_rho",
    "unseen_p",
    "unseen_n",
    "unseen_pass",
    "pass",
    "out_dir",
)


def snapshots(study_dir: Path, ref: ModelRef) -> list[tuple[int, Path]]:
    """(budget, model.pt) of every snapshot ``experiments.budget_study`` kept of ``ref``'s model, smallest first."""
    base = Path(study_dir) / ref.name
    found = []
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        m = _SNAPSHOT.match(d.name)
        if m and (d / "model.pt").is_file():
            found.append((int(m.group(1)), d / "model.pt"))
    return sorted(found)


def score_budgets(
    domain: str,
    providers: Sequence[str],
    study_dir: str | Path,
    out_dir: str | Path,
    *,
    log: Callable[[str], Any] = print,
    **kwargs: Any,
) -> pd.DataFrame:
    """Score every budget-study snapshot of each provider's video model (:func:`score` with ``model_file``) into
    ``<out>/budgets/<provider>/step_<N>/``; a snapshot whose ``gate.json`` records the same checkpoint
    fingerprint is not scored again. Writes ``<out>/budgets.csv`` and, when a budget passes, ``<out>/
    gate_passed_<model kind>`` naming the smallest passing one. Returns the budgets table."""
    study_dir, out = Path(study_dir), Path(out_dir)
    root = resolve_root(kwargs.get("data_root"))
    preset, task_set = kwargs.get("preset", "small"), kwargs.get("task_set", DEFAULT_TASK_SET)
    rows = []
    for name in providers:
        cls = _provider_class(name)
        ref = (
            None
            if cls is None
            else model_ref(name, make_kwargs(cls, preset, task_set, kwargs.get("overrides")), domain, root)
        )
        if ref is None:
            raise ValueError(
                f"{name}: no video model, nothing to score per budget; the budget study scores "
                f"providers of a video model ({', '.join(VIDEO_PROVIDERS)})"
            )
        found = snapshots(study_dir, ref)
        if not found:
            raise ModelMissingError(
                f"no snapshots of {ref.name} under {study_dir / ref.name}; make them with: "
                f"python -m experiments.budget_study --domain {domain} --models {ref.kind} "
                f"--data-root {root}"
            )
        for budget, path in found:
            where = out / "budgets" / name / f"step_{budget}"
            fp = fingerprint(path)
            done = where / "gate.json"
            config = where / "config.json"
            if (
                done.is_file()
                and config.is_file()
                and (json.loads(config.read_text()).get("model_file") or {}).get("fingerprint") == fp
            ):
                log(f"{name} at {budget} steps: scored already ({where})")
                verdict = json.loads(done.read_text())["providers"][name]
            else:
                log(f"{name} at {budget} steps: scoring {path}")
                verdict = score(domain, [name], out_dir=where, model_file=path, log=log, **kwargs).gate[name]
            row = {
                "provider": name,
                "model": ref.kind,
                "budget": budget,
                "fingerprint": fp,
                "pass": verdict["pass"],
                "out_dir": str(where),
            }
            for split in ("seen", "unseen"):
                e = verdict.get(split) or {}
                row.update(
                    {
                        f"{split}_rho": e.get("rho"),
                        f"{split}_p": e.get("p"),
                        f"{split}_n": e.get("n"),
                        f"{split}_pass": e.get("pass"),
                    }
                )
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(BUDGET_COLUMNS))
    atomic_write_text(out / "budgets.csv", table.to_csv(index=False, float_format="%.6g"))
    for model, g in table.groupby("model"):
        passed = g[g["pass"].astype(bool)].sort_values("budget")
        if not passed.empty:
            first = passed.iloc[0]
            atomic_write_json(
                out / f"gate_passed_{model}",
                {
                    "model": model,
                    "budget": int(first["budget"]),
                    "provider": first["provider"],
                    "seen_rho": first["seen_rho"],
                    "seen_p": first["seen_p"],
                    "unseen_rho": first["unseen_rho"],
                    "unseen_p": first["unseen_p"],
                    "out_dir": first["out_dir"],
                    "thresholds": rq.thresholds(),
                },
            )
            log(
                f"{model}: passes the gate at {int(first['budget'])} steps ({first['provider']}); "
                f"wrote {out / f'gate_passed_{model}'}"
            )
    return table


# ------------------------------------------------------------------------------------- CLI


def _epsilons(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in [0, 1], got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:

    p = argparse.ArgumentParser(prog="python -m experiments.reward_quality", description=__doc__.split("\n\n")[0])
    p.add_argument("--domain", required=True, choices=task_registry.DOMAINS)
    p.add_argument(
        "--task-set",
        default=DEFAULT_TASK_SET,
        choices=list(TASK_SETS),
        help="the tasks the video models are pretrained on, as rewards.models.pretrain --task-set",
    )
    p.add_argument(
        "--expert-tail",
        type=expert_tail_arg,
        default=0,
        help="score the video models trained on expert clips that keep this many steps after the first success "
        "(rewards.models.pretrain --expert-tail; 'full': up to the horizon), on the same episodes as the default "
        "(0: the release's clips); outputs in <domain>_tail<N>",
    )
    p.add_argument(
        "--providers",
        nargs="+",
        default=list(DEFAULT_PROVIDERS),
        help=f"providers to score (default: {' '.join(DEFAULT_PROVIDERS)}); also the other video "
        f"rewards, genreward_video, sparse and {NOISE} (the control)",
    )
    p.add_argument(
        "--tasks",
        nargs="+",
        help=f"default: the seen tasks and the first {DEFAULT_UNSEEN} unseen ones "
        f"(--task-set other than seen: the set's tasks)",
    )
    p.add_argument("--preset", default="small", choices=PRESETS, help="video-model size (default small)")
    p.add_argument(
        "--epsilons",
        type=_epsilons,
        default=list(DEFAULT_EPSILONS),
        help="comma-separated epsilon levels (default 0,0.25,0.5,0.75,1)",
    )
    p.add_argument("--eps-episodes", type=int, default=DEFAULT_EPS_EPISODES, help="episodes per epsilon and task")
    p.add_argument(
        "--expert-episodes",
        type=int,
        help="expert episodes per task, train + test (default 20 MetaWorld, 50 Adroit; a fifth are the test clips)",
    )
    p.add_argument("--pretrain-steps", type=int, help="training steps of missing models (default: the preset's)")
    p.add_argument("--no-pretrain", action="store_true", help="use the models on disk as they are")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model-file", help="score this checkpoint of the providers' video model")
    which.add_argument(
        "--budget-study",
        help="score every <model>/step_<N>/model.pt snapshot under this folder "
        "(experiments.budget_study's <data-root>/budget_study); give --out "
        "the budget study's --out, where it looks for gate_passed_<model>",
    )
    p.add_argument("--goal-frames", type=int, help="GenReward: goal-video length (default: the episode's)")
    p.add_argument("--goal-steps", type=int, help="GenReward: denoising steps per goal frame (default 10)")
    p.add_argument("--data-root", help="datasets and models (default: $VRB_DATA_ROOT or ./data)")
    p.add_argument("--out", help="output folder (default: results/reward_quality/<domain>)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default=DEFAULT_PRECISION, choices=list(PRECISIONS))
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="tasks scored in parallel processes, one torch thread each (default 1; the tables do not depend on it)",
    )
    a = p.parse_args(argv)
    overrides = {k: v for k, v in (("goal_frames", a.goal_frames), ("goal_steps", a.goal_steps)) if v is not None}
    if a.expert_tail != 0:  # 0 is the default model: no override, the same outputs as without the flag
        overrides["expert_tail"] = a.expert_tail
    try:  # bad names and sizes are usage errors; failures further down keep their traceback
        task_list = a.tasks if a.tasks is not None else default_tasks(a.domain, a.task_set)
        check_inputs(a.domain, a.providers, task_list, a.epsilons, a.eps_episodes, a.preset, a.task_set, overrides)
        check_count("expert_episodes", a.expert_episodes)
        check_count("pretrain_steps", a.pretrain_steps)
        check_count("jobs", a.jobs)
        resolve_device(a.device)
        resolve_root(a.data_root)  # an empty $VRB_DATA_ROOT is a usage error too, said before any work
    except (ValueError, RuntimeError) as e:
        p.error(str(e))
    common = dict(
        preset=a.preset,
        epsilons=a.epsilons,
        eps_episodes=a.eps_episodes,
        expert_episodes=a.expert_episodes,
        data_root=a.data_root,
        device=a.device,
        seed=a.seed,
        precision=a.precision,
        task_set=a.task_set,
        overrides=overrides,
        jobs=a.jobs,
    )
    try:
        if a.budget_study:
            out = a.out or default_out_dir(a.domain, task_set=a.task_set, expert_tail=a.expert_tail)
            score_budgets(a.domain, a.providers, a.budget_study, out, tasks=task_list, **common)
        else:
            score(
                a.domain,
                a.providers,
                task_list,
                pretrain_steps=a.pretrain_steps,
                out_dir=a.out,
                pretrain=not a.no_pretrain,
                model_file=a.model_file,
                **common,
            )
    except (ModelMissingError, ds.DatasetMissingError, ds.OutdatedEpisodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
