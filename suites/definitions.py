"""Suites as data: which methods, on which tasks, with how many seeds.

A method of a suite is a label (the results folder name) bound to a reward provider and its overrides,
so an ablation such as ``steps_5`` is ``diffusion_reward`` with ``steps=5`` and needs no code. Adding a
suite is adding an entry to ``SUITES``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import tasks as task_registry


@dataclass(frozen=True)
class Method:
    label: str
    provider: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


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

    def method(self, label: str) -> Method:
        for m in self.methods:
            if m.label == label:
                return m
        raise ValueError(f"suite {self.name!r} has no method {label!r}; valid methods: "
                         f"{', '.join(m.label for m in self.methods)}")


BASELINES = _methods("sparse", "rnd", "amp")

SUITES: Mapping[str, Suite] = MappingProxyType({s.name: s for s in (
    Suite("metaworld7", "MetaWorld, the 7 seen tasks (paper Fig. 4)", "metaworld",
          tuple(task_registry.names("metaworld")), BASELINES, quick_tasks=("reach", "door-close")),
    Suite("adroit3", "Adroit door, hammer, pen (paper Fig. 4)", "adroit",
          tuple(task_registry.names("adroit")), BASELINES, quick_tasks=("door", "hammer")),
    Suite("smoke", "sparse, rnd, amp on reach for a few thousand frames (tests)", "metaworld",
          ("reach",), BASELINES, quick_tasks=("reach",), default_profile="smoke"),
)})


def get(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(f"unknown suite {name!r}; valid suites: {', '.join(SUITES)}") from None
