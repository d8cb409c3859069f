"""Which results are oracles: references drawn apart, never a method among methods (docs/models-and-rewards.md#rewards).

``dense`` learns from the env's own shaped reward (distances read off the simulator state), which no
reward-from-video method may see. It bounds what a good reward could give, so the figures show it
apart (dashed, labelled "dense (oracle)") and the aggregates, probabilities of improvement and any
ranking leave it out. This tuple is the one place that says so; a new oracle is one more name here.
"""

from __future__ import annotations

from typing import Iterable

ORACLES: tuple[str, ...] = ("dense",)


def is_oracle(method: str) -> bool:
    return method in ORACLES


def split_oracles(methods: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(methods, oracles)``, each in the given order."""
    methods = list(methods)
    return [m for m in methods if m not in ORACLES], [m for m in methods if m in ORACLES]


def display_name(method: str) -> str:
    """The legend label: ``"dense (oracle)"`` for an oracle, the method's own name otherwise."""
    return f"{method} (oracle)" if method in ORACLES else method
