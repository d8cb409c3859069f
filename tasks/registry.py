"""The task registry: every pixel task the suite knows, as data.

A task spec holds what design.md section 2 fixes for a task (env id, camera, action repeat, horizon) and
the frame budget of each profile, so suites, datasets and the env all read the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

SPLITS = ("metaworld", "metaworld_unseen", "adroit")
PROFILES = ("paper", "quick", "smoke")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    domain: str  # "metaworld" | "adroit"
    env_id: str
    split: str  # one of SPLITS
    camera: str  # a camera name of the model, or "free" (MuJoCo free camera set by `free_camera`)
    action_repeat: int
    horizon: int  # agent steps per episode
    frames: Mapping[str, int]  # frame budget (env frames = agent steps * action_repeat) per profile
    free_camera: Mapping[str, float] = field(default_factory=dict)
    optional: bool = False  # not part of any default suite (relocate)

    def budget(self, profile: str) -> int:
        if profile not in self.frames:
            raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        return self.frames[profile]


_TASKS: dict[str, TaskSpec] = {}


def _add(spec: TaskSpec) -> None:
    assert spec.name not in _TASKS, spec.name
    assert spec.split in SPLITS, spec.split
    _TASKS[spec.name] = spec


def _metaworld(name: str, split: str, action_repeat: int = 2, paper_frames: int = 1_000_000) -> None:
    _add(TaskSpec(
        name=name, domain="metaworld", env_id=f"{name}-v3", split=split, camera="corner2",
        action_repeat=action_repeat, horizon=100,
        frames=MappingProxyType({"paper": paper_frames, "quick": 30_000, "smoke": 2_000}),
    ))


for _name in ("assembly", "coffee-push", "dial-turn", "door-close", "lever-pull", "peg-unplug-side", "reach"):
    if _name == "assembly":
        _metaworld(_name, "metaworld", action_repeat=3, paper_frames=3_000_000)
    else:
        _metaworld(_name, "metaworld")
for _name in ("coffee-button", "faucet-open", "drawer-open", "window-open", "button-press", "door-lock",
              "handle-press", "reach-wall"):
    _metaworld(_name, "metaworld_unseen")


def _adroit(name: str, env_id: str, camera: str, horizon: int, optional: bool = False, **free) -> None:
    _add(TaskSpec(
        name=name, domain="adroit", env_id=env_id, split="adroit", camera=camera, action_repeat=2,
        horizon=horizon, frames=MappingProxyType({"paper": 3_000_000, "quick": 50_000, "smoke": 2_000}),
        free_camera=MappingProxyType(free), optional=optional,
    ))


# Door: the env's default free camera (distance 1.5, azimuth 90) keeps the door in view; `fixed` crops it.
_adroit("door", "AdroitHandDoor-v1", "free", 100, distance=1.5, azimuth=90.0)
_adroit("hammer", "AdroitHandHammer-v1", "fixed", 100)
_adroit("pen", "AdroitHandPen-v1", "fixed", 50)
_adroit("relocate", "AdroitHandRelocate-v1", "fixed", 100, optional=True)

TASKS: Mapping[str, TaskSpec] = MappingProxyType(_TASKS)
DOMAINS = ("metaworld", "adroit")


def spec(name: str) -> TaskSpec:
    """The spec of a task; an unknown name lists the valid ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}") from None


def names(split: str | None = None, domain: str | None = None, include_optional: bool = False) -> list[str]:
    """Task names in registry order, filtered by split and/or domain."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if domain is not None and domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; valid domains: {', '.join(DOMAINS)}")
    return [t.name for t in TASKS.values()
            if (split is None or t.split == split) and (domain is None or t.domain == domain)
            and (include_optional or not t.optional)]


def seen_tasks(domain: str) -> list[str]:
    """The tasks a domain's video models are pretrained on (MetaWorld's 7 seen tasks; Adroit's 3)."""
    return names(split="metaworld" if domain == "metaworld" else "adroit", domain=domain)
