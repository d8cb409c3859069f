"""Expand a suite into resolved run configs (methods x tasks x seeds) for a profile.

A resolved config (``common.runs.RunConfig``) holds everything a run needs and records (every run records
its full config, versions and seed: docs/interfaces.md#runs-and-results), so
``suites.train.run(config, run_dir)`` needs nothing else. Each run also
carries the ``rewards.PrepareRequest`` of its method, built here once per method: ``suites.run`` groups
runs by (provider, request) and prepares each group once before any run starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

import rewards
import tasks as task_registry
from common.runs import RunConfig, run_dir
from common.runtime import DEFAULT_PRECISION, resolve_device, resolve_precision, versions
from suites import definitions, profiles


@dataclass(frozen=True)
class RunSpec:
    config: RunConfig
    run_dir: Path
    prepare: rewards.PrepareRequest | None = None  # what its provider must make first (None: nothing asked)

    @property
    def key(self) -> str:
        return self.config.key


def _unique(values: Iterable[Any], key: Callable[[Any], Hashable] = lambda v: v) -> list[Any]:
    """``values`` without repeats (by ``key``), the first of each kept in order: a value given twice would plan
    its runs twice, and the twins would race for one run directory (one reported busy by the other)."""
    seen: set[Hashable] = set()
    out = []
    for v in values:
        k = key(v)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def _suite(suite_name: str | definitions.Suite) -> definitions.Suite:
    return suite_name if isinstance(suite_name, definitions.Suite) else definitions.get(suite_name)


def duplicate_notes(
    suite_name: str | definitions.Suite,
    *,
    methods: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[str]:
    """One line per flag given a value twice, as ``expand`` plans it (each once, the first kept), e.g.
    ``--seeds 0 0: duplicates dropped, running 0``; two method specs of one label (``rnd:lr=0.1`` and
    ``rnd:lr=1e-1``) are one method. ``suites.run`` prints them, so a typo is seen, not silently fixed."""
    suite = _suite(suite_name)
    given = (
        ("--methods", methods, lambda spec: suite.method(spec).label),
        ("--tasks", tasks, str),
        ("--seeds", seeds, int),
    )
    notes = []
    for flag, values, key in given:
        kept = _unique(values or (), key)
        if len(kept) < len(values or ()):
            notes.append(f"{flag} {' '.join(map(str, values))}: duplicates dropped, running {' '.join(map(str, kept))}")
    return notes


def _recorded_budget(provider: type, request: rewards.PrepareRequest) -> int | dict[str, int] | None:
    """The pretraining budget a run records: its reward's models' (the codec and the provider's ``model_name``;
    every model's for a provider that names none), None for a reward without a video model, so that another
    model's budget never makes it another run."""
    if not provider.uses_video_model:
        return None
    name = getattr(provider, "model_name", None)
    return request.budget(("codec", name) if name else None)


def expand(
    suite_name: str | definitions.Suite,
    profile_name: str | None = None,
    *,
    methods: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    results: str | Path = "results",
    device: str = "auto",
    wandb: str = "off",
    data_root: str | None = None,
    frames: int | None = None,
    torch_threads: int | None = None,
    image_size: int = 64,
    precision: str | None = None,
    agent: Mapping[str, Any] | None = None,
) -> list[RunSpec]:
    """The runs of ``suite_name`` under ``profile_name``; ``precision`` (``auto|bf16|fp32``, default
    ``common.runtime.DEFAULT_PRECISION``) is resolved here for ``device`` (``auto`` -> bf16 where it is native),
    so every config records what it runs with (``precision``) and what was asked (``precision_requested``),
    and the agent, the provider and the preparation (pretraining, statistics) all use the same one.

    ``suite_name`` is a suite of ``suites.definitions.SUITES`` or a ``Suite`` (e.g. read from a TOML file by
    ``suites.suite_file``); each of ``methods`` is a label of the suite or any registered reward provider,
    with optional parameters (``NAME:key=value,...``, see ``Suite.method``). A method, task or seed given twice
    is planned once (``duplicate_notes`` says so). ``agent`` overrides DrQ-v2 settings over the profile's
    (``--agent batch_size=256``: a pilot of one agent change); they are part of each run's config, so such a
    run never mixes with the profile's own in one results folder."""
    from agents import DrQV2Config  # local import: agents imports torch; planning a suite stays torch-free

    requested = DEFAULT_PRECISION if precision is None else precision
    resolved = resolve_precision(requested, resolve_device(device))  # unknown names list the valid ones

    suite = _suite(suite_name)
    profile = profiles.get(profile_name or suite.default_profile)
    _check_agent_types(agent or {}, DrQV2Config())
    chosen_methods = list(suite.select(methods)) if methods else list(suite.methods)
    if tasks:
        for t in tasks:
            task_registry.spec(t)  # unknown names list the valid ones
            if t not in suite.tasks:
                raise ValueError(f"task {t!r} is not in suite {suite.name!r}; its tasks: {', '.join(suite.tasks)}")
        chosen_tasks = _unique(tasks)
    else:
        chosen_tasks = list(suite.quick_tasks if profile.few_tasks else suite.tasks)[: profile.max_tasks]
    n_seeds = suite.seeds.get(profile.name, profile.seeds)
    chosen_seeds = _unique(int(s) for s in seeds) if seeds is not None else list(range(n_seeds))
    stamp = versions()
    out = []
    for m in chosen_methods:
        provider = rewards.get(m.provider)
        overrides = dict(m.overrides)
        if provider.uses_video_model:
            overrides.setdefault("preset", profile.model_preset)  # video models: the profile picks the size
            tail = profile.expert_tail.get(getattr(provider, "model_name", None))
            if tail and "expert_tail" in rewards.registry.parameters(provider):  # and the clips it trains on
                overrides.setdefault("expert_tail", tail)
        request = rewards.PrepareRequest.make(
            provider,
            overrides=overrides,
            domain=suite.domain,
            tasks=tuple(chosen_tasks),
            data_root=data_root,
            preset=overrides.get("preset", profile.model_preset),
            pretrain_steps=profile.pretrain_steps,
            expert_episodes=profile.expert_episodes,
            reports=profile.model_reports,
            device=device,
            precision=resolved,
        )
        for t in chosen_tasks:
            spec = task_registry.spec(t)
            budget = int(spec.budget(profile.name) if frames is None else frames)
            settings = {**profile.agent_overrides(budget, spec.action_repeat), **dict(agent or {})}
            agent_config = dataclasses.asdict(DrQV2Config.from_dict(settings))  # unknown keys list the valid ones
            agent_config.pop("seed")
            agent_config["precision"] = resolved
            for s in chosen_seeds:
                config = RunConfig(
                    suite=suite.name,
                    zero_shot=suite.zero_shot,
                    method=m.label,
                    provider=m.provider,
                    provider_overrides=dict(overrides),
                    task=t,
                    domain=spec.domain,
                    seed=int(s),
                    profile=profile.name,
                    frames=budget,
                    action_repeat=spec.action_repeat,
                    horizon=spec.horizon,
                    camera=spec.camera,
                    dense_reward=spec.dense_reward,
                    image_size=image_size,
                    eval_every_frames=profile.eval_every_frames,
                    eval_episodes=profile.eval_episodes,
                    checkpoint_every_frames=profile.checkpoint_every_frames,
                    # what the provider's models and data were made with (a record; prepare reads the request)
                    model_preset=request.preset,
                    pretrain_steps=_recorded_budget(provider, request),
                    expert_episodes=request.expert_episodes,
                    model_reports=request.reports,
                    agent=dict(agent_config),
                    precision=resolved,
                    precision_requested=requested,
                    device=device,
                    wandb=wandb,
                    data_root=data_root,
                    torch_threads=torch_threads,
                    versions=stamp,
                )
                out.append(RunSpec(config, run_dir(Path(results), suite.name, m.label, t, int(s)), request))
    return out


def _check_agent_types(agent: Mapping[str, Any], defaults: Any) -> None:
    """Refuse an agent override whose value is not of its setting's kind (``batch_size=abc``), before any run
    starts; a float setting takes a whole number. Unknown keys are left to ``DrQV2Config.from_dict``."""
    for key, value in agent.items():
        if not hasattr(defaults, key):
            continue
        kind = type(getattr(defaults, key))
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        ok = ok or (kind is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            default = getattr(defaults, key)
            raise ValueError(f"agent setting {key}={value!r}: expected {kind.__name__} (default {default!r})")


def budget_warnings(runs: Sequence[RunSpec]) -> list[str]:
    """One line per task whose runs have no more frames than a pilot in which the ``dense`` oracle never
    reached an evaluation success (``TaskSpec.oracle_fails_within``): such runs would likely score every
    method 0, hours spent on figures of noise. ``suites.run`` prints these before launching."""
    budgets: dict[str, int] = {}
    for r in runs:
        task = r.config.task
        budgets[task] = max(budgets.get(task, 0), r.config.frames)
    out = []
    for task, frames in sorted(budgets.items()):
        pilot = task_registry.spec(task).oracle_fails_within
        if frames <= pilot:
            out.append(
                f"{task}: the dense oracle reached no evaluation success in a {pilot:,}-frame pilot "
                f"and these runs have {frames:,} frames, so every method will likely score 0 there "
                f"(pilots: docs/reference-experiment.md; --frames sets a longer budget)"
            )
    return out


def min_frames(config: RunConfig) -> int:
    """The smallest frame budget a run can have: the agent's seed frames (``agent.num_seed_frames``: it does
    not update before them) and one whole episode (``horizon`` x ``action_repeat``; a run stops at an episode
    boundary). A shorter run would finish, be scored and drawn, and hold an agent that never learned."""
    return max(int(config.agent["num_seed_frames"]), config.horizon * config.action_repeat)


def check_budgets(runs: Sequence[RunSpec]) -> None:
    """Refuse, in one line stating the minimum, runs whose budget is below ``min_frames`` (``suites.run``
    calls it before preparing anything)."""
    short = [r for r in runs if r.config.frames < min_frames(r.config)]
    if not short:
        return
    worst = max(short, key=lambda r: min_frames(r.config))
    c = worst.config
    raise ValueError(
        f"a budget of {c.frames:,} frames is below the minimum of {min_frames(c):,} for {c.task} "
        f"({c.profile} profile): the agent does not update before its {int(c.agent['num_seed_frames']):,} seed "
        f"frames (num_seed_frames) and a run is whole episodes of {c.horizon * c.action_repeat:,} frames; "
        f"pass --frames {min_frames(c)} or more"
    )
