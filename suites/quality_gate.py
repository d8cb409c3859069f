"""The reward-quality gate at launch: each video reward's model is checked offline before RL spends hours on it.

``suites.run`` calls :func:`check` after the runs' models are prepared. Every method whose provider learns
from a video model (``RewardProvider.uses_video_model``) gets one verdict, computed by
``experiments.reward_quality.evaluate_model_gate`` (held-out expert and epsilon-greedy episodes, Spearman of
the learned return over the pre-success window with 1 - epsilon; docs/models-and-rewards.md#reward-quality-gate)
and cached by the model's fingerprint, so a relaunch pays nothing. One line per method says pass or fail with
its numbers; a failing model only warns, unless ``--require-reward-quality`` refuses the launch. Each run
records its method's verdict in its config (``RunConfig.reward_quality``), so a result is never read apart
from the quality of the model behind it.

How much is scored is the profile's (``suites.profiles.GateScoring``): the gate's own tasks on the quick and
paper profiles, only the launched tasks and a few episodes on the smoke profile, whose models train for a few
steps (there the line checks the pipeline and is no verdict).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import rewards
from analysis.reward_quality import thresholds
from experiments.reward_quality import evaluate_model_gate
from suites.plan import RunSpec
from suites.profiles import GateScoring


def _compact(verdict: Mapping[str, Any], scoring: Mapping[str, Any]) -> dict[str, Any]:
    """What a run records: per split the window rho, p, n and pass, the whole-episode rho, and the verdict."""
    out: dict[str, Any] = {"pass": bool(verdict["pass"]), "scoring": dict(scoring)}
    for split in ("seen", "unseen"):
        e = verdict.get(split)
        out[split] = None if e is None else {k: e[k] for k in ("rho", "p", "n", "n_tasks", "rho_whole", "pass")}
    return out


def _num(v: Any, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def line(method: str, verdict: Mapping[str, Any], note: str = "") -> str:
    """``reward quality <method>: pass|FAIL (seen ...; unseen ...)`` for the launch's output."""
    parts = []
    for split in ("seen", "unseen"):
        e = verdict.get(split)
        if e is None:
            continue
        parts.append(
            f"{split} rho {_num(e['rho'], '+.2f')} (p {_num(e['p'], '.2g')}, {e['n']} episodes, "
            f"whole-episode rho {_num(e['rho_whole'], '+.2f')}) {'pass' if e['pass'] else 'fail'}"
        )
    word = "pass" if verdict["pass"] else "FAIL"
    return f"reward quality {method}: {word} ({'; '.join(parts) or 'no split scored'}){note}"


def video_methods(runs: Sequence[RunSpec]) -> dict[str, RunSpec]:
    """One run per method label whose provider learns from a video model (all runs of a label share it)."""
    out: dict[str, RunSpec] = {}
    for r in runs:
        if r.config.method not in out and rewards.get(r.config.provider).uses_video_model:
            out[r.config.method] = r
    return out


def check(
    runs: Sequence[RunSpec],
    scoring: GateScoring,
    device: str = "auto",
    precision: str | None = None,
    log: Callable[[str], Any] = print,
    jobs: int | None = None,
) -> dict[str, dict[str, Any]]:
    """``{method: verdict as runs record it}`` for every video method of ``runs``; runs the scoring where the
    launcher runs its preparation (``Launcher.call``), after the models exist. Tasks are scored in ``jobs``
    processes (default: the cores this process may use, counted where it runs, so a Slurm job uses its own);
    the verdict does not depend on it."""
    jobs = jobs or len(os.sched_getaffinity(0))
    out: dict[str, dict[str, Any]] = {}
    for method, r in video_methods(runs).items():
        c = r.config
        # the model's size and task set are the scoring's own arguments, not provider overrides
        overrides = {k: v for k, v in c.provider_overrides.items() if k not in ("preset", "task_set")}
        tasks = sorted({x.config.task for x in runs if x.config.method == method}) if scoring.tasks == "runs" else None
        kwargs: dict[str, Any] = {}
        if scoring.epsilons is not None:
            kwargs["epsilons"] = tuple(scoring.epsilons)
        if scoring.eps_episodes is not None:
            kwargs["eps_episodes"] = int(scoring.eps_episodes)
        verdict = evaluate_model_gate(
            c.provider,
            c.domain,
            c.data_root,
            overrides=overrides,
            preset=c.model_preset,
            task_set=str(c.provider_overrides.get("task_set", "seen")),
            tasks=tasks,
            expert_episodes=c.expert_episodes,
            device=device,
            precision=precision or c.precision,
            seed=0,
            log=lambda m: None,
            jobs=jobs,
            **kwargs,
        )
        recorded = {
            "tasks": tasks or "gate",
            "epsilons": kwargs.get("epsilons", "default"),
            "eps_episodes": kwargs.get("eps_episodes", "default"),
            "details": verdict["out_dir"],
        }
        out[method] = _compact(verdict, recorded)
        log(line(method, verdict, " (cached)" if verdict.get("cached") else ""))
    if out:
        rule = thresholds()
        log(f"reward-quality gate: seen tasks {rule['seen']}; unseen tasks {rule['unseen']}")
    return out
