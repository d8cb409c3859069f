"""Recorded video datasets: layout, episode files and loaders (docs/protocol.md#expert-and-epsilon-greedy-videos).

Layout under ``<data_root>/datasets/<domain>/``::

    <task>/expert/train/ep_0000.npz      successful expert episodes, split by episode
    <task>/expert/test/ep_0000.npz
    <task>/expert_tail20/train/ep_0000.npz   the same expert episodes with 20 post-success steps kept
    <task>/eps_0.25/ep_0000.npz          epsilon-greedy episodes (reward analysis), not filtered
    contact_sheet.png                    first / middle / last frame of one episode per task

One file per episode, written atomically: ``frames`` uint8 [T+1, 3, H, W] (reset frame first),
``actions`` float32 [T, A], ``rewards`` float32 [T], ``successes`` bool [T], ``meta`` a JSON string, and
``dense_rewards`` float32 [T] (the env's shaped reward, ``info["dense_reward"]``; the oracle ``dense`` reward
of the reward-quality command). ``dense_rewards`` is optional: files recorded before it was kept lack it and
load with ``Episode.dense_rewards = None``; nothing else about them differs, so they stay format 2, and a
reader that needs it asks for it (:func:`require_dense`; ``tasks.collect`` re-records such files when asked
to, ``Plan.dense_eps``), never mixing a missing series with a recorded one.

Expert clips end at their first success step, as the release's do. ``expert_tail`` (``tasks.collect
--expert-tail``) keeps that many steps after it as well (``FULL_TAIL``: every step up to the env's horizon),
so that a video model can be trained on the arm holding still at the goal, which the post-success frames
of RL episodes show and the release's clips never do. A tail's clips are another dataset, in a folder of
their own (:func:`expert_kind`), so they never mix with the release's; tail 0 is the release's folder.

Format versions (``meta["format"]``): 2 = expert episodes end at their first success step (inclusive),
MetaWorld goals from MT1's 50 train tasks, Adroit success flags and cameras as the release. Files without
it (format 1: full-horizon experts, continuous goals) are refused when loading, with the command that
re-records them, and ``tasks.collect`` re-records them when it resumes: the two rules never mix.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from common.io import atomic_save_npz, data_root
from tasks.registry import seen_tasks
from tasks.registry import spec as task_spec

EXPERT = "expert"
#: the ``expert_tail`` that keeps every step after the first success, up to the env's horizon
FULL_TAIL = "full"
SPLITS = ("train", "test")
KEYS = ("frames", "actions", "rewards", "successes", "meta")
FORMAT = 2  # see the module docstring; bump it whenever what an episode file holds changes meaning


class DatasetMissingError(FileNotFoundError):
    """A dataset the caller needs does not exist; the message names the command that makes it."""


class OutdatedEpisodeError(ValueError):
    """An episode file recorded under an older format; the message names the command that re-records it.

    A ValueError, so ``tasks.collect``'s resume treats it as a file to re-record, like a corrupted one.
    """


@dataclass
class Episode:
    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    successes: np.ndarray
    meta: dict[str, Any]
    #: the env's shaped reward of each transition, float32 [T]; None in files recorded before it was kept
    dense_rewards: np.ndarray | None = None

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])

    @property
    def success(self) -> bool:
        return bool(self.successes.any())


def check_tail(value: Any) -> int | str:
    """An ``expert_tail`` as stored and named: an int >= 0 (steps kept after the first success; 0 = the
    release's clips) or ``FULL_TAIL``. A string of digits (from a command line or ``NAME:key=value``) becomes
    its int, so ``"20"`` and ``20`` name one dataset and one model. Anything else: ValueError."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value == FULL_TAIL:
        return FULL_TAIL
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise ValueError(
        f"expert_tail: expected a number of steps >= 0 kept after the first success, or {FULL_TAIL!r} "
        f"(up to the horizon), got {value!r}"
    )


def tail_suffix(tail: Any) -> str:
    """The name part of an expert tail, the one rule every name follows (expert folders, model
    directories, reward-quality folders): ``""`` for 0, so the release's datasets and the models trained on
    them keep the names they always had; ``"_tail<N>"`` or ``"_tailfull"`` otherwise."""
    tail = check_tail(tail)
    return "" if tail == 0 else f"_tail{tail}"


def expert_kind(tail: Any = 0) -> str:
    """The dataset kind (folder) of expert clips with ``tail``: ``expert``, ``expert_tail20``, ..."""
    return EXPERT + tail_suffix(tail)


def kind_tail(kind: str) -> int | str | None:
    """The tail of an expert kind (``expert`` -> 0, ``expert_tail20`` -> 20), None for any other kind."""
    if kind == EXPERT:
        return 0
    rest = kind.removeprefix(f"{EXPERT}_tail")
    try:
        tail = check_tail(rest) if rest != kind else None
    except ValueError:
        return None
    return tail if tail is not None and expert_kind(tail) == kind else None  # "expert_tail0" names nothing


def is_expert_kind(kind: str) -> bool:
    """Whether ``kind`` holds expert clips (split into train and test), with whatever tail."""
    return kind_tail(kind) is not None


def clip_at_first_success(ep: Episode, tail: Any = 0) -> Episode:
    """The expert clip: the episode up to and including its first success step
    (docs/protocol.md#expert-and-epsilon-greedy-videos), then ``tail`` more steps where the episode has them
    (``FULL_TAIL``: all it has). A tail other than 0 is recorded in the meta (``expert_tail``); tail 0 leaves
    the meta as the release's clips always had it.

    An episode that never succeeds is no expert video: ValueError.
    """
    tail = check_tail(tail)
    hits = np.flatnonzero(ep.successes)
    if hits.size == 0:
        raise ValueError(
            f"expert episode of {ep.meta.get('task', '?')} (seed {ep.meta.get('seed', '?')}) "
            "never succeeds; only successful episodes are expert videos"
        )
    first = int(hits[0]) + 1
    t = ep.length if tail == FULL_TAIL else min(ep.length, first + tail)
    meta = {**ep.meta, "first_success": first, "clipped": True, **({"expert_tail": tail} if tail != 0 else {})}
    return Episode(
        ep.frames[: t + 1],
        ep.actions[:t],
        ep.rewards[:t],
        ep.successes[:t],
        meta,
        None if ep.dense_rewards is None else ep.dense_rewards[:t],
    )


def eps_kind(epsilon: float) -> str:
    """Folder name of an epsilon-greedy level: 0.25 -> 'eps_0.25'."""
    if not 0.0 <= float(epsilon) <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    return f"eps_{float(epsilon):.2f}"


def domain_dir(domain: str, root: str | Path | None = None) -> Path:
    return data_root(root) / "datasets" / domain


def episode_dir(
    domain: str, task: str, kind: str = EXPERT, split: str = "train", root: str | Path | None = None
) -> Path:
    base = domain_dir(domain, root) / task / kind
    if is_expert_kind(kind):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        return base / split
    return base


def episode_path(directory: Path, index: int) -> Path:
    return directory / f"ep_{index:04d}.npz"


def save_episode(path: Path, ep: Episode) -> Path:
    """Write an episode under the current FORMAT (collect clips expert episodes before saving)."""
    meta = {**ep.meta, "format": FORMAT}
    extra = {} if ep.dense_rewards is None else {"dense_rewards": np.asarray(ep.dense_rewards, np.float32)}
    return atomic_save_npz(
        path,
        frames=ep.frames,
        actions=ep.actions.astype(np.float32),
        rewards=ep.rewards.astype(np.float32),
        successes=ep.successes.astype(bool),
        meta=np.array(json.dumps(meta, sort_keys=True)),
        **extra,
    )


def _rerecord_command(path: Path, meta: dict[str, Any], root: str | Path | None) -> str:
    tail = kind_tail(meta.get("kind", EXPERT))
    epsilon = None if tail is not None else float(meta.get("epsilon", 0.0))
    domain = meta.get("domain") or task_spec(meta["task"]).domain
    return collect_command(domain, [meta["task"]] if "task" in meta else None, epsilon, root, tail or 0)


def _rerecord_hint(path: Path, root: str | Path | None) -> str:
    """ "; delete it and re-record with: ..." from the file's place in the layout
    (``datasets/<domain>/<task>/<kind>/...``): an unreadable file has no metadata to read it from."""
    parts = path.parts
    if "datasets" not in parts or len(parts) - parts.index("datasets") < 4:
        return ""
    i = parts.index("datasets")
    domain, task, kind = parts[i + 1], parts[i + 2], parts[i + 3]
    epsilon = float(kind.removeprefix("eps_")) if kind.startswith("eps_") else None
    try:
        command = collect_command(domain, [task], epsilon, root, kind_tail(kind) or 0)
    except ValueError:
        return ""
    return f"; delete it and re-record with: {command}"


def read_episode(path: str | Path, root: str | Path | None = None) -> Episode:
    """Load one episode file; raises ValueError naming the file when it is unreadable or malformed, and
    OutdatedEpisodeError (naming the command that re-records it) when it predates FORMAT."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in KEYS if k not in z.files]
            if missing:
                raise ValueError(f"missing arrays {missing}")
            ep = Episode(
                z["frames"],
                z["actions"],
                z["rewards"],
                z["successes"],
                json.loads(str(z["meta"])),
                z["dense_rewards"] if "dense_rewards" in z.files else None,
            )
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, json.JSONDecodeError, KeyError) as e:
        raise ValueError(f"corrupted episode file {path}: {e}{_rerecord_hint(path, root)}") from e
    t = ep.actions.shape[0]
    if (
        ep.frames.dtype != np.uint8
        or ep.frames.ndim != 4
        or ep.frames.shape[0] != t + 1
        or ep.rewards.shape != (t,)
        or ep.successes.shape != (t,)
        or (ep.dense_rewards is not None and ep.dense_rewards.shape != (t,))
    ):
        raise ValueError(
            f"corrupted episode file {path}: inconsistent shapes "
            f"frames {ep.frames.shape} {ep.frames.dtype}, actions {ep.actions.shape}, "
            f"rewards {ep.rewards.shape}"
        )
    version = ep.meta.get("format", 1)
    if version != FORMAT:
        raise OutdatedEpisodeError(
            f"episode file {path} has format {version}, this code reads format {FORMAT} (expert videos end "
            f"at their first success, MetaWorld goals from MT1); re-record it with: "
            f"{_rerecord_command(path, ep.meta, root)}"
        )
    return ep


def require_dense(ep: Episode, where: str = "", root: str | Path | None = None) -> np.ndarray:
    """The episode's dense (shaped) env reward, float32 [T]; an episode recorded before it was kept raises
    OutdatedEpisodeError naming the command that re-records it (with the series, same seeds, same episode)."""
    if ep.dense_rewards is None:
        raise OutdatedEpisodeError(
            f"episode {where or ep.meta.get('task', '?')} was recorded without the dense env reward; re-record it "
            f"with: {_rerecord_command(Path(where or '.'), ep.meta, root)} (tasks.collect re-records it when asked "
            f"for dense rewards, as python -m experiments.reward_quality does)"
        )
    return np.asarray(ep.dense_rewards, np.float32)


def collect_command(
    domain: str,
    tasks: Sequence[str] | None = None,
    epsilon: float | None = None,
    root: str | Path | None = None,
    expert_tail: Any = 0,
) -> str:
    """The ``python -m tasks.collect`` command that records these episodes (every 'missing' message names it)."""
    cmd = f"python -m tasks.collect --domain {domain}"
    if tasks:
        cmd += " --tasks " + " ".join(tasks)
    if epsilon is not None:
        cmd += f" --epsilon {epsilon:g}"
    if check_tail(expert_tail) != 0:
        cmd += f" --expert-tail {expert_tail}"
    if root is not None:
        cmd += f" --data-root {root}"
    return cmd


def _task_files(domain: str, task: str, kind: str, split: str, root) -> list[Path]:
    d = episode_dir(domain, task, kind, split, root)
    files = sorted(d.glob("ep_*.npz")) if d.is_dir() else []
    if not files:
        tail = kind_tail(kind)
        epsilon = None if tail is not None else float(kind.removeprefix("eps_"))
        what = f"epsilon-greedy ({kind})" if tail is None else "expert" if tail == 0 else f"expert (tail {tail})"
        raise DatasetMissingError(
            f"no {what} episodes for {domain}/{task} ({split}) in {d}; make them with: "
            f"{collect_command(domain, [task], epsilon, root, tail or 0)}"
        )
    return files


def load_episodes(
    domain: str,
    tasks: Iterable[str] | None = None,
    kind: str = EXPERT,
    split: str = "train",
    root: str | Path | None = None,
) -> list[Episode]:
    """Episodes of a domain's tasks (default: its seen tasks), in task then file order."""
    task_list = list(tasks) if tasks is not None else seen_tasks(domain)
    for t in task_list:
        if task_spec(t).domain != domain:
            raise ValueError(f"task {t!r} is not a {domain} task")
    return [read_episode(f, root) for t in task_list for f in _task_files(domain, t, kind, split, root)]


def expert_frames(domain: str, task: str, split: str = "train", root: str | Path | None = None) -> np.ndarray:
    """Every frame of a task's expert episodes, uint8 [N, 3, H, W] (AMP's expert distribution)."""
    return np.concatenate([ep.frames for ep in load_episodes(domain, [task], EXPERT, split, root)])


def frame_windows(episodes: Sequence[Episode], length: int) -> np.ndarray:
    """Every run of ``length`` consecutive frames within an episode, uint8 [N, length, 3, H, W]."""
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    out = [
        np.lib.stride_tricks.sliding_window_view(ep.frames, length, axis=0).transpose(0, 4, 1, 2, 3)
        for ep in episodes
        if ep.frames.shape[0] >= length
    ]
    if not out:
        raise ValueError(f"no episode has {length} frames")
    return np.ascontiguousarray(np.concatenate(out))
