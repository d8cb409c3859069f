"""Suites as data: which methods, on which tasks, with how many seeds.

A method of a suite is a label (the results folder name) bound to a reward provider and its overrides,
so an ablation such as ``steps_5`` is ``diffusion_reward`` with ``steps=5`` and needs no code. Adding a
suite is adding an entry to ``SUITES``, or writing a TOML file (``suites.suite_file``).

A launch is not limited to a suite's own methods: ``Suite.method`` also takes any registered reward
provider (built-in or from a package's entry point) by name, and either one with parameters,
``NAME:key=value[,key=value...]``, so a new provider or a new setting is benchmarked without editing a
suite. Such a method's label is ``NAME-key=value[-key=value...]`` (keys sorted): readable, one label per
setting, and a valid folder name on every common file system (no ``:`` or ``/``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import rewards
import tasks as task_registry
from rewards.registry import COMMON_KEYWORDS, parameters, takes_any_keyword

#: what a method label may hold: it is the name of the method's results folder
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")
#: what a parameter value may hold to be written into a label
_LABEL_VALUE = re.compile(r"[A-Za-z0-9._+-]+")
METHOD_SYNTAX = "NAME or NAME:key=value[,key=value...]"


@dataclass(frozen=True)
class Method:
    label: str
    provider: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


def parse_value(text: str) -> bool | int | float | str:
    """A parameter value from the command line: ``true``/``false`` (any case), else an int, else a float,
    else the text itself (``5`` -> 5, ``0.5`` -> 0.5, ``seen`` -> "seen")."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_method(spec: str) -> tuple[str, dict[str, Any]]:
    """``"NAME"`` -> (NAME, {}); ``"NAME:key=value,key=value"`` -> (NAME, {key: parsed value}).
    A ValueError names what is wrong and shows the syntax."""
    name, colon, rest = spec.partition(":")
    if not LABEL.fullmatch(name):
        raise ValueError(
            f"method {spec!r}: expected {METHOD_SYNTAX}, with NAME a method label or a reward "
            f"provider (letters, digits, . _ + = -)"
        )
    params: dict[str, Any] = {}
    if not colon:
        return name, params
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier() or not value.strip():
            raise ValueError(f"method {spec!r}: parameter {item!r} is not key=value; expected {METHOD_SYNTAX}")
        if key in params:
            raise ValueError(f"method {spec!r}: parameter {key!r} is given twice")
        params[key] = parse_value(value.strip())
    return name, params


def method_label(name: str, params: Mapping[str, Any]) -> str:
    """The label of method ``name`` with ``params``: ``diffusion_reward-steps=5``, keys sorted, so one
    setting has one label (and one results folder) however its parameters were ordered."""
    parts = [name]
    for key in sorted(params):
        value = params[key]
        text = (
            ("true" if value else "false")
            if isinstance(value, bool)
            else (repr(value) if isinstance(value, float) else str(value))
        )
        if not isinstance(value, (bool, int, float, str)) or not _LABEL_VALUE.fullmatch(text):
            raise ValueError(
                f"{key}={value!r} cannot be part of a method label (a folder name: a number, true, "
                f"false or text of letters, digits and . _ + -); give the method a label in a "
                f"suite file"
            )
        parts.append(f"{key}={text}")
    return "-".join(parts)


def check_overrides(provider: str, overrides: Mapping[str, Any], where: str) -> None:
    """Refuse, before anything runs, overrides that ``rewards.make`` would refuse only once a run starts
    (after the preparation, possibly hours of pretraining): a key the provider does not take, or one
    the runner sets for every run. Imports the provider's module."""
    cls = rewards.get(provider)  # unknown names list the valid ones
    common = sorted(set(overrides) & set(COMMON_KEYWORDS))
    if common:
        raise ValueError(f"{where}: {', '.join(common)} is set by the runner for every run, not by a method")
    if takes_any_keyword(cls):
        return
    takes = [p for p in parameters(cls) if p not in COMMON_KEYWORDS]
    unknown = sorted(set(overrides) - set(takes))
    if unknown:
        raise ValueError(
            f"{where}: reward {provider!r} has no parameter {', '.join(unknown)}; it takes: "
            f"{', '.join(takes) or 'none'}"
        )


def _methods(*names: str) -> tuple[Method, ...]:
    return tuple(Method(n, n) for n in names)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    domain: str
    tasks: tuple[str, ...]
    methods: tuple[Method, ...]
    quick_tasks: tuple[str, ...]  # the "few tasks" of the quick and smoke profiles
    seeds: Mapping[str, int] = field(default_factory=dict)  # per-profile seed counts overriding the profile's
    default_profile: str = "quick"
    zero_shot: bool = False  # video models must not have seen the suite's tasks

    def method(self, spec: str) -> Method:
        """The method ``spec`` names: a label of this suite, else a registered reward provider, either one
        optionally followed by parameters (``NAME:key=value[,key=value...]``) that override its own. The
        suite's label wins over a provider of the same name, so ``diffusion_reward:steps=5`` on a suite whose
        ``diffusion_reward`` method sets ``task_set`` keeps that setting and adds ``steps=5``."""
        name, params = parse_method(spec)
        base = next((m for m in self.methods if m.label == name), None)
        if base is None:
            if name not in rewards.available():
                raise ValueError(
                    f"suite {self.name!r} has no method {name!r} and no reward provider has that "
                    f"name; the suite's methods: {', '.join(m.label for m in self.methods)}; "
                    f"registered providers: {', '.join(rewards.available())} "
                    f"(either runs as {METHOD_SYNTAX})"
                )
            base = Method(name, name)
        if not params:
            return base
        check_overrides(base.provider, params, f"method {spec!r}")
        try:
            label = method_label(base.label, params)
        except ValueError as e:
            raise ValueError(f"method {spec!r}: {e}") from None
        return Method(label, base.provider, MappingProxyType({**base.overrides, **params}))

    def select(self, specs: Iterable[str]) -> tuple[Method, ...]:
        """``method(spec)`` of each, once per label: specs that resolve to one label (``sparse sparse``,
        ``rnd:lr=0.1 rnd:lr=1e-1``) are one method, the first kept, since their runs would share (and
        fight over) one results folder."""
        chosen: dict[str, Method] = {}
        for spec in specs:
            m = self.method(spec)
            chosen.setdefault(m.label, m)
        return tuple(chosen.values())


BASELINES = _methods("sparse", "rnd", "amp")
MAIN = _methods("sparse", "rnd", "amp", "viper", "viper_std", "diffusion_reward")
# AMP needs expert frames of the target task, so the zero-shot suite leaves it out (as the paper does).
ZERO_SHOT = _methods("sparse", "rnd", "viper", "viper_std", "diffusion_reward")
# Strict zero-shot (docs/models-and-rewards.md#rewards, "Zero-shot statistics"): the paper standardises an unseen task's
# scores with that task's own expert videos; these variants use the pooled statistics of the seen tasks,
# so the run touches no data of its task at all.
STRICT_ZERO_SHOT = (
    Method("diffusion_reward_strict", "diffusion_reward", MappingProxyType({"zero_shot_stats": "seen"})),
    Method("viper_std_strict", "viper_std", MappingProxyType({"zero_shot_stats": "seen"})),
)
# GenReward's setting: the video models of the genreward5 suite are pretrained on its five tasks (the
# `genreward` task set), as GenReward's own; on the seen-task models they would be silently zero-shot.
GENREWARD_SET = MappingProxyType({"task_set": "genreward"})
ABLATION_TASKS = ("door", "hammer")  # the paper's Figure 11
# The env's shaped reward: an oracle upper reference run beside the methods, drawn apart in figures and
# never aggregated or ranked with them (analysis.oracles).
ORACLE = _methods("dense")


def _variants(provider: str, key: str, values, label) -> tuple[Method, ...]:
    return tuple(Method(label(v), provider, MappingProxyType({key: v})) for v in values)


SUITES: Mapping[str, Suite] = MappingProxyType(
    {
        s.name: s
        for s in (
            Suite(
                "metaworld7",
                "MetaWorld, the 7 seen tasks (paper Fig. 4)",
                "metaworld",
                tuple(task_registry.names("metaworld")),
                MAIN + ORACLE,
                quick_tasks=("reach", "door-close"),
            ),
            Suite(
                "adroit3",
                "Adroit door, hammer, pen (paper Fig. 4)",
                "adroit",
                tuple(task_registry.names("adroit")),
                MAIN + ORACLE,
                quick_tasks=("door", "hammer"),
            ),
            # quick tasks by pilot (docs/reference-experiment.md): the dense oracle reaches 1.0 on coffee-button and
            # window-open within 60k frames and sparse stays at 0; drawer-open was dropped (dense never succeeded there)
            Suite(
                "metaworld_unseen",
                "zero-shot: models pretrained on the 7 seen tasks, RL on the 8 unseen (Fig. 5)",
                "metaworld",
                tuple(task_registry.names("metaworld_unseen")),
                ZERO_SHOT + STRICT_ZERO_SHOT + ORACLE,
                quick_tasks=("coffee-button", "window-open"),
                seeds=MappingProxyType({"paper": 4}),
                zero_shot=True,
            ),
            Suite(
                "ablate_ce_ll",
                "conditional entropy vs log-likelihood, VQ-Diffusion vs VideoGPT (Fig. 11)",
                "adroit",
                ABLATION_TASKS,
                _methods("diffusion_reward", "diffusion_ll", "viper_ce", "viper_std"),
                quick_tasks=ABLATION_TASKS,
            ),
            Suite(
                "ablate_steps",
                "denoising steps of the entropy estimate (Fig. 11)",
                "adroit",
                ABLATION_TASKS,
                _variants("diffusion_reward", "steps", (2, 5, 10, 20), lambda v: f"steps_{v}"),
                quick_tasks=ABLATION_TASKS,
            ),
            Suite(
                "ablate_noise",
                "Gumbel noise in the entropy estimate on / off (Fig. 11)",
                "adroit",
                ABLATION_TASKS,
                _methods("diffusion_reward", "diffusion_reward_nonoise"),
                quick_tasks=ABLATION_TASKS,
            ),
            Suite(
                "ablate_alpha",
                "weight of the RND bonus against the video reward (Fig. 11)",
                "adroit",
                ABLATION_TASKS,
                _variants("diffusion_reward", "alpha", (1.0, 0.95, 0.5, 0.0), lambda v: f"alpha_{v:g}"),
                quick_tasks=ABLATION_TASKS,
            ),
            Suite(
                "ablate_context",
                "context length l of the video model (Fig. 11)",
                "adroit",
                ABLATION_TASKS,
                _variants("diffusion_reward", "context", (1, 2, 4, 8), lambda v: f"context_{v}"),
                quick_tasks=ABLATION_TASKS,
            ),
            Suite(
                "genreward5",
                "GenReward's setting: 5 MetaWorld tasks, 256-step episodes, video model pretrained on "
                "their expert videos (genreward: pretrained_on='seen' for the zero-shot variant)",
                "metaworld",
                tuple(task_registry.names("genreward", include_optional=True)),
                _methods("sparse", "rnd")
                + (
                    Method("viper_std", "viper_std", GENREWARD_SET),
                    Method("diffusion_reward", "diffusion_reward", GENREWARD_SET),
                )
                + _methods("genreward"),
                quick_tasks=("pick-place", "shelf-place"),
            ),
            Suite(
                "smoke",
                "sparse, rnd, amp on reach for a few thousand frames (tests)",
                "metaworld",
                ("reach",),
                BASELINES,
                quick_tasks=("reach",),
                default_profile="smoke",
            ),
        )
    }
)


def get(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(f"unknown suite {name!r}; valid suites: {', '.join(SUITES)}") from None
