"""One aggregate, one setting: the runs of a suite folder must share what changes their numbers.

A results folder can gather runs from several launches and machines (the reference experiment
took many). Seeds, tasks and methods are meant to differ; the settings below are not: a bf16 run beside
fp32 ones, or a smoke-profile run beside quick ones, would enter the same IQM as if they were samples of
one experiment. ``suites.train`` already refuses to mix configs inside one run directory; this check does
the same across the runs of a suite before anything is aggregated, and names the runs on each side.

Machines (``versions``: CPU, library builds) may differ: runs from two machines of one setting are two
samples of the same experiment, only not bit-identical (``analysis.same_runs`` compares that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from common.io import as_written, flat_keys
from common.runs import CONFIG_FILE, RunConfig, read_config_json, readable_runs

# config keys that every run of one aggregate must share (nested ones dotted, e.g. agent.batch_size) ...
SETTING_KEYS = ("profile", "precision", "agent", "image_size", "model_preset")
# ... and those that every run of one task must share: tasks may differ there (pen's horizon is 50 steps,
# door's 100; the std schedule follows each task's budget), seeds of one task may not
TASK_KEYS = ("frames", "action_repeat", "horizon", "dense_reward", "agent.std_duration")
# ... and those that every run of one method must share: a video model pretrained 1,000 steps and one pretrained
# 10,000, or trained on clips with and without a post-success tail (a provider override), are two rewards whose
# runs must not enter one aggregate (methods without a video model record no budget, ``RunConfig.upgraded``)
METHOD_KEYS = ("pretrain_steps", "provider_overrides")
SHOWN_RUNS = 3  # runs named per value in the error


class MixedSettingsError(ValueError):
    """Runs of one suite folder were made under different settings (precision, profile, agent...)."""


def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The setting keys of one run's config as ``config.json`` holds it, flattened (``"<absent>"`` where a
    key was not recorded); a task key is named with its task, e.g. ``frames (reach)``, a method key with its
    method, e.g. ``pretrain_steps (viper_std)``."""
    written = as_written(dict(config))
    if "task" in written:  # configs from before the key name the rule they ran under by their task
        written["dense_reward"] = RunConfig.upgraded(written)["dense_reward"]
    top = ("task", *SETTING_KEYS, *(k for k in TASK_KEYS if "." not in k))  # nested ones come with agent
    flat = flat_keys({k: written.get(k, "<absent>") for k in top})
    task = flat.pop("task")
    out = {(f"{k} ({task})" if k in TASK_KEYS else k): v for k, v in flat.items()}
    upgraded = RunConfig.upgraded(written)
    for k in METHOD_KEYS:  # one key per method, the value whole: {"codec": 3000, "vqdiffusion": 10000}
        out[f"{k} ({written.get('method', '<absent>')})"] = upgraded.get(k, "<absent>")
    return out


def folder_configs(suite_dir: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``(method/task/seed_k, config)`` of every run with a ``config.json`` under ``suite_dir``, less the runs
    with an unreadable file (``common.runs.readable_runs``: they enter no aggregate, so they cannot mix one;
    the callers' commands name them)."""
    return [
        (run.key, read_config_json(run.path)) for run in readable_runs(suite_dir) if (run.path / CONFIG_FILE).is_file()
    ]


def gather_settings(named_configs: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, dict[str, list[str]]]:
    """``{key: {repr(value): [name, ...]}}`` over ``(name, config)`` pairs."""
    seen: dict[str, dict[str, list[str]]] = {}
    for name, config in named_configs:
        for key, value in settings(config).items():
            seen.setdefault(key, {}).setdefault(repr(value), []).append(name)
    return seen


def folder_settings(suite_dir: str | Path) -> dict[str, dict[str, list[str]]]:
    """``{key: {repr(value): [method/task/seed_k, ...]}}`` over the runs with a ``config.json`` under
    ``suite_dir``."""
    return gather_settings(folder_configs(suite_dir))


def mixed_settings(
    suite_dir: str | Path, extra: Iterable[tuple[str, Mapping[str, Any]]] = ()
) -> dict[str, dict[str, list[str]]]:
    """``folder_settings`` (plus the ``(name, config)`` runs of ``extra``, as if they were in the folder)
    reduced to the keys on which the runs disagree; empty when they all share one setting."""
    seen = gather_settings([*folder_configs(suite_dir), *extra])
    return {k: v for k, v in seen.items() if len(v) > 1}


def _count_and_names(runs: list[str]) -> tuple[str, str]:
    """(``"4 runs"``, ``"a, b, c, ..."``): how both errors name the runs holding one value."""
    shown = ", ".join(runs[:SHOWN_RUNS]) + (", ..." if len(runs) > SHOWN_RUNS else "")
    return f"{len(runs)} run{'s' if len(runs) > 1 else ''}", shown


def check_one_setting(suite_dir: str | Path, extra: Iterable[tuple[str, Mapping[str, Any]]] = ()) -> None:
    """Raise ``MixedSettingsError`` naming the keys, their values and the runs holding each, when the
    runs under ``suite_dir`` (with the ``(name, config)`` runs of ``extra``, e.g. runs about to be copied
    there by ``analysis.ship``) were made under more than one setting."""
    extra = list(extra)
    mixed = mixed_settings(suite_dir, extra)
    if not mixed:
        return
    parts = []
    for key, values in mixed.items():
        groups = []
        for value, runs in sorted(values.items(), key=lambda kv: -len(kv[1])):
            count, shown = _count_and_names(runs)
            groups.append(f"{value} ({count}: {shown})")
        parts.append(f"{key}: " + " vs ".join(groups))
    where = f"{suite_dir} and the runs to add there" if extra else str(suite_dir)
    raise MixedSettingsError(
        f"the runs under {where} were made under different settings, so one aggregate would mix them "
        f"silently: {'; '.join(parts)}. Keep one setting per results folder: move the odd runs to another "
        f"--results folder, or rerun them with the others' setting (e.g. --precision, --profile)"
    )


def check_joins(suite_dir: str | Path, configs: Iterable[Mapping[str, Any]]) -> None:
    """Before a launch adds runs to ``suite_dir``: raise ``MixedSettingsError`` when the planned runs'
    settings differ from those of the runs already there, so that e.g. an fp32 launch on a CPU without
    native bf16 is refused up front beside bf16 runs, not discovered when the figures are drawn."""
    planned: dict[str, set[str]] = {}
    for config in configs:
        for key, value in settings(config).items():
            planned.setdefault(key, set()).add(repr(value))
    there = folder_settings(suite_dir)
    parts = []
    for key, values in planned.items():
        odd = {v: runs for v, runs in there.get(key, {}).items() if v not in values}
        for value, runs in odd.items():
            count, shown = _count_and_names(runs)
            parts.append(f"{key}: {' or '.join(sorted(values))} now, {value} in {count} there ({shown})")
    if parts:
        raise MixedSettingsError(
            f"{suite_dir} holds runs of another setting than this launch ({'; '.join(parts)}), and one "
            f"aggregate must not mix them: launch with the folder's setting (e.g. --precision, --profile) or "
            f"into another --results folder"
        )
