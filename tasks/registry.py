"""The task registry: every pixel task the suite knows, as data.

A task spec holds what docs/protocol.md#tasks fixes for a task (env id, camera, action repeat, horizon) and
the frame budget of each profile, so suites, datasets and the env all read the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import mujoco
import numpy as np

SPLITS = ("metaworld", "metaworld_unseen", "adroit", "genreward")
PROFILES = ("paper", "quick", "smoke")


@dataclass(frozen=True)
class CameraPose:
    """A fixed camera pose that overrides one camera of the loaded model (``slot``) before rendering.

    Why: the release renders Adroit from cameras of its own mj_envs XML; gymnasium-robotics' XML lacks
    some of them, so we move a camera the model does have to the release's pose (physics untouched).
    ``quat`` is MuJoCo's (w, x, y, z) of the camera frame (the camera looks along its -z axis).
    """

    slot: str
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float]


def euler_xyz_quat(x: float, y: float, z: float) -> tuple[float, float, float, float]:
    """MuJoCo XML's default ``euler`` (sequence 'xyz', intrinsic, radians) as a (w, x, y, z) quaternion."""
    q = np.zeros(4)
    mujoco.mju_euler2Quat(q, np.array([x, y, z], dtype=np.float64), "xyz")
    return tuple(float(v) for v in q)


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
    camera_pose: CameraPose | None = None  # move model camera `slot` to this pose (Adroit, as the release)
    # goal marker sites the task's success depends on -> their *visual* radius in metres (sites have no
    # physics). docs/protocol.md#goals-visible-in-the-frame: the goal must be visible in the 64x64 frame.
    goal_markers: Mapping[str, float] = field(default_factory=dict)
    # a pilot's finding: the `dense` oracle reached no evaluation success in a run of this many frames
    # (0: no such pilot). A run of the task with a budget up to it will likely show every method at 0, and
    # suites.run says so at launch (docs/reference-experiment.md has the pilots)
    oracle_fails_within: int = 0
    # the rule of the shaped reward the `dense` oracle learns from: "env", the simulator's own reward;
    # "mj_envs_v0", the release's Adroit reward computed from the simulator state
    # (tasks.simulators.ADROIT_DENSE), where gymnasium-robotics 1.4.2's v1 envs have the hand term's sign
    # wrong. Recorded in every run's config, so runs of two rules are never mixed.
    dense_reward: str = "env"

    def budget(self, profile: str) -> int:
        if profile not in self.frames:
            raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        return self.frames[profile]


_TASKS: dict[str, TaskSpec] = {}


def _add(spec: TaskSpec) -> None:
    assert spec.name not in _TASKS, spec.name
    assert spec.split in SPLITS, spec.split
    _TASKS[spec.name] = spec


# reach / reach-wall: the goal is a free point in space shown only by the `goal` site, a 2 cm sphere that
# covers 0-2 pixels at 64x64. We draw it with the radius of the success region (success = tcp within
# 5 cm of the goal), which makes it 4-7 pixels: the marker then shows exactly where the hand must go.
# The other tasks' goals follow from visible objects (drawer, dial, door, window, mug, coffee machine).
_GOAL_MARKERS: dict[str, dict[str, float]] = {"reach": {"goal": 0.05}, "reach-wall": {"goal": 0.05}}


def _metaworld(
    name: str,
    split: str,
    action_repeat: int = 2,
    paper_frames: int = 1_000_000,
    horizon: int = 100,
    optional: bool = False,
    quick_frames: int = 60_000,
) -> None:
    # quick 60k: the dense oracle reaches 0.8 evaluation success on reach and door-close within it, not
    # within 30k (docs/reference-experiment.md)
    _add(
        TaskSpec(
            name=name,
            domain="metaworld",
            env_id=f"{name}-v3",
            split=split,
            camera="corner2",
            action_repeat=action_repeat,
            horizon=horizon,
            frames=MappingProxyType({"paper": paper_frames, "quick": quick_frames, "smoke": 2_000}),
            optional=optional,
            goal_markers=MappingProxyType(dict(_GOAL_MARKERS.get(name, {}))),
        )
    )


for _name in ("assembly", "coffee-push", "dial-turn", "door-close", "lever-pull", "peg-unplug-side", "reach"):
    if _name == "assembly":
        _metaworld(_name, "metaworld", action_repeat=3, paper_frames=3_000_000)
    else:
        _metaworld(_name, "metaworld")
for _name in (
    "coffee-button",
    "faucet-open",
    "drawer-open",
    "window-open",
    "button-press",
    "door-lock",
    "handle-press",
    "reach-wall",
):
    _metaworld(_name, "metaworld_unseen")
# GenReward's setting (Wang et al. 2025): 256-step episodes, action repeat 2 as the other MetaWorld tasks.
# Optional: only the genreward5 suite names them, so default collection and analysis stay the 15 tasks.
for _name in ("pick-place", "pick-out-of-hole", "bin-picking", "shelf-place", "disassemble"):
    _metaworld(_name, "genreward", horizon=256, optional=True)


def _adroit(
    name: str,
    env_id: str,
    camera: str,
    horizon: int,
    optional: bool = False,
    camera_pose: CameraPose | None = None,
    oracle_fails_within: int = 0,
    dense_reward: str = "env",
    **free,
) -> None:
    _add(
        TaskSpec(
            name=name,
            domain="adroit",
            env_id=env_id,
            split="adroit",
            camera=camera,
            action_repeat=2,
            horizon=horizon,
            frames=MappingProxyType({"paper": 3_000_000, "quick": 50_000, "smoke": 2_000}),
            free_camera=MappingProxyType(free),
            optional=optional,
            camera_pose=camera_pose,
            oracle_fails_within=oracle_fails_within,
            dense_reward=dense_reward,
        )
    )


# Cameras at the poses of the release's mj_envs XML (docs/protocol.md#adroit-as-the-release). Door and
# hammer have no `top` camera in gymnasium-robotics' XML: the world-fixed `fixed` camera is moved there.
# oracle_fails_within: the dense-oracle pilots (seed 0; docs/reference-experiment.md#adroit-pilots): door and
# hammer (the release's reward, bf16) and pen (fp32) reached no evaluation success in 100k-frame runs
_adroit(
    "door",
    "AdroitHandDoor-v1",
    "top",
    100,
    oracle_fails_within=100_000,
    dense_reward="mj_envs_v0",
    camera_pose=CameraPose("fixed", (0.0, 0.0, 1.5), euler_xyz_quat(0.0, 0.0, 3.14)),
)
_adroit(
    "hammer",
    "AdroitHandHammer-v1",
    "top",
    100,
    oracle_fails_within=100_000,
    dense_reward="mj_envs_v0",
    camera_pose=CameraPose("fixed", (0.0, 0.0, 1.1), euler_xyz_quat(0.0, 0.0, 3.14)),
)
_adroit(
    "pen",
    "AdroitHandPen-v1",
    "vil_camera",
    50,
    oracle_fails_within=100_000,
    camera_pose=CameraPose("vil_camera", (0.0, -0.8, 0.8), (0.92388, 0.382683, 0.0, 0.0)),
)
_adroit("relocate", "AdroitHandRelocate-v1", "fixed", 100, optional=True, dense_reward="mj_envs_v0")

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
    return [
        t.name
        for t in TASKS.values()
        if (split is None or t.split == split)
        and (domain is None or t.domain == domain)
        and (include_optional or not t.optional)
    ]


def seen_tasks(domain: str) -> list[str]:
    """The tasks a domain's video models are pretrained on (MetaWorld's 7 seen tasks; Adroit's 3)."""
    return names(split="metaworld" if domain == "metaworld" else "adroit", domain=domain)


#: Named sets of tasks a video model can be pretrained on, per domain (``rewards.models.store.ModelRef``'s
#: ``task_set``; ``python -m rewards.models.pretrain --task-set``). ``seen``: the domain's seen tasks, the
#: models of the main and zero-shot suites. ``genreward``: GenReward's five MetaWorld tasks, the models of
#: the ``genreward5`` suite (GenReward adapts its generator to the tasks it is evaluated on). One table, so
#: the store, the pretrainer and the providers agree on what a set holds.
TASK_SETS: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "seen": MappingProxyType({d: tuple(seen_tasks(d)) for d in DOMAINS}),
        "genreward": MappingProxyType(
            {"metaworld": tuple(sorted(names("genreward", "metaworld", include_optional=True)))}
        ),
    }
)
DEFAULT_TASK_SET = "seen"


def task_set(name: str, domain: str) -> list[str]:
    """The tasks of task set ``name`` in ``domain``; an unknown set or one without tasks there lists the valid ones."""
    if name not in TASK_SETS:
        raise ValueError(f"unknown task set {name!r}; valid: {', '.join(TASK_SETS)}")
    if domain not in TASK_SETS[name]:
        raise ValueError(f"task set {name!r} has no {domain} tasks; it covers: {', '.join(TASK_SETS[name])}")
    return list(TASK_SETS[name][domain])
