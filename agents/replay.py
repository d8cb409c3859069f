"""Episode replay buffer with n-step returns, storing each frame once.

Episodes are added whole, when they end (learned rewards are computed on the finished episode), so the
buffer keeps one record per episode: its T+1 frames (uint8, each frame once: obs and next_obs are two
indices into the same array), actions, final rewards, discounts, and the n-step reward and discount of
every window, computed once at insertion. Memory grows with what is stored (nothing is pre-allocated),
and eviction of the oldest episodes (FIFO, by transition count) is dropping records from a deque.

Sampling is uniform over all valid windows ``t`` with ``t + n <= T`` (windows never cross an episode's
end, as in DrQ-v2, whose last n-1 transitions of an episode are never window starts). DrQ-v2 samples an
episode uniformly and then a step; with the suite's fixed-length episodes the two are the same, and with
variable lengths (Adroit pen) uniform-over-transitions is the unbiased one.

Checkpoints do not copy the replay. Given a ``store`` directory, every added episode is also written once,
as DrQ-v2 stores its episode files: ``store/ep_<index>.npz`` (index = episodes added since the start, 6+
digits), compressed, atomically, never rewritten, holding exactly what was added (frames uint8, actions,
rewards as stored, i.e. the learned ones, discounts). ``state_dict()`` then holds no arrays, only how many
episodes were added, which of them are still held (FIFO eviction is a pure function of the sequence of
episode lengths and the capacity) and the sampling RNG state: a few hundred bytes, whatever the replay holds.
``load_state_dict()`` reads the held episodes back from their files, in order, and deletes the files past
the checkpoint (written by the process that crashed after it), so the buffer samples exactly what an
uninterrupted one would. Files of evicted episodes stay until ``prune_store`` is told no checkpoint needs
them. Without a store the state keeps the arrays inline (small buffers, tests).

A held episode whose file is missing or unreadable (truncated, corrupted) costs that episode only: the load
drops it, deletes the bad file and names it in ``dropped_files``, and the buffer holds the others (the
state records which indices it lacks, ``dropped``, so later checkpoints never look for them). Such a buffer
is no longer the uninterrupted one: it holds fewer windows, so the same sampler state draws other batches
from then on. Its episode indices, and everything that does not sample it, stay as they were.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from common.io import atomic_save_npz

EPISODE_FILE = re.compile(r"^ep_(\d{6,})\.npz$")
STATE_FORMAT = 2  # 1: arrays inside the state; 2: episode files in the store, counts and RNG in the state
#: what reading a truncated or corrupted episode file raises (a missing one raises FileNotFoundError); any
#: other OSError is the disk's, not the file's, and is left to the caller: a re-run may read the file fine
BAD_EPISODE_ERRORS = (FileNotFoundError, zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError)


@dataclass
class _Episode:
    frames: np.ndarray  # uint8 [T+1, C, H, W]
    actions: np.ndarray  # float32 [T, A]
    rewards: np.ndarray  # float32 [T]
    discounts: np.ndarray  # float32 [T]
    nstep_reward: np.ndarray  # float32 [max(T - n + 1, 0)]
    nstep_discount: np.ndarray  # float32 [max(T - n + 1, 0)]
    index: int  # in adding order since the start: its file is ep_<index>.npz

    @property
    def length(self) -> int:
        return len(self.actions)


def nstep_returns(
    rewards: np.ndarray, discounts: np.ndarray, nstep: int, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """For every window start t with t + n <= T:

    reward_t = sum_{k<n} gamma^k r_{t+k} prod_{j<k} d_{t+j},   discount_t = gamma^n prod_{j<n} d_{t+j}

    (DrQ-v2's accumulation: a terminal discount 0 zeroes every later reward and the bootstrap).
    """
    starts = len(rewards) - nstep + 1
    if starts <= 0:
        empty = np.zeros(0, np.float32)
        return empty, empty.copy()
    reward = np.zeros(starts, np.float64)
    discount = np.ones(starts, np.float64)
    for k in range(nstep):
        reward += discount * rewards[k : k + starts]
        discount *= discounts[k : k + starts] * gamma
    return reward.astype(np.float32), discount.astype(np.float32)


class ReplayBuffer:
    """``add_episode`` whole episodes, ``sample`` n-step batches; ``len()`` counts stored transitions."""

    def __init__(
        self,
        capacity: int,
        obs_shape: Sequence[int],
        action_dim: int,
        nstep: int = 3,
        gamma: float = 0.99,
        seed: int = 0,
        store: str | os.PathLike | None = None,
    ):
        if int(capacity) < 1:
            raise ValueError(f"capacity must be >= 1 transition, got {capacity}")
        obs_shape = tuple(int(s) for s in obs_shape)
        if len(obs_shape) != 3 or min(obs_shape) < 1:
            raise ValueError(f"obs_shape must be (C, H, W) with positive sizes, got {obs_shape}")
        if int(action_dim) < 1 or int(nstep) < 1:
            raise ValueError(f"action_dim and nstep must be >= 1, got {action_dim}, {nstep}")
        if not 0 <= gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self.capacity = int(capacity)
        self.obs_shape = obs_shape
        self.action_dim = int(action_dim)
        self.nstep = int(nstep)
        self.gamma = float(gamma)
        self._rng = np.random.default_rng(seed)
        self._episodes: deque[_Episode] = deque()
        self._num_transitions = 0
        self._window_ends = np.zeros(0, np.int64)  # cumulative count of window starts per episode
        self._added = 0  # episodes added since the start (evicted ones included): the next file's index
        self.store = None if store is None else Path(store)
        self.dropped_files: list[tuple[Path, str]] = []  # (file, why) of the episodes the last load dropped

    def __len__(self) -> int:
        return self._num_transitions

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    @property
    def num_added(self) -> int:
        """Episodes added since the start, evicted ones included."""
        return self._added

    @property
    def first_held(self) -> int:
        """Index (in adding order) of the oldest episode still held (``num_added`` when none is)."""
        return self._episodes[0].index if self._episodes else self._added

    @property
    def dropped(self) -> list[int]:
        """Indices from ``first_held`` on that the buffer lacks: episodes a load found unreadable."""
        held = {e.index for e in self._episodes}
        return [i for i in range(self.first_held, self._added) if i not in held]

    def episode_path(self, index: int) -> Path:
        if self.store is None:
            raise ValueError("this replay buffer has no store directory")
        return self.store / f"ep_{int(index):06d}.npz"

    @property
    def num_windows(self) -> int:
        """How many n-step windows can be sampled."""
        return int(self._window_ends[-1]) if len(self._window_ends) else 0

    # ------------------------------------------------------------------ adding
    def add_episode(self, frames: np.ndarray, actions: np.ndarray, rewards: np.ndarray, discounts: np.ndarray) -> None:
        """Store a finished episode (copied). Evicts the oldest episodes to stay within capacity.

        An episode shorter than ``nstep`` transitions is stored (it counts in ``len``) but yields no
        window to sample.
        """
        frames, actions, rewards, discounts = self._check_episode(frames, actions, rewards, discounts)
        if len(actions) > self.capacity:
            raise ValueError(
                f"episode of {len(actions)} transitions does not fit in a buffer of capacity {self.capacity}"
            )
        if self.store is not None:  # on disk first: a checkpoint never counts an episode that has no file
            atomic_save_npz(
                self.episode_path(self._added), frames=frames, actions=actions, rewards=rewards, discounts=discounts
            )
        self._insert(frames, actions, rewards, discounts, self._added)

    def _insert(self, frames, actions, rewards, discounts, index: int) -> None:
        t = len(actions)
        while self._num_transitions + t > self.capacity:
            self._num_transitions -= self._episodes.popleft().length
        nr, nd = nstep_returns(rewards, discounts, self.nstep, self.gamma)
        self._episodes.append(_Episode(frames, actions, rewards, discounts, nr, nd, index))
        self._num_transitions += t
        self._added = index + 1
        self._window_ends = np.cumsum([len(e.nstep_reward) for e in self._episodes], dtype=np.int64)

    def _check_episode(self, frames, actions, rewards, discounts):
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != self.obs_shape:
            raise ValueError(
                f"frames must be uint8 [T+1, {', '.join(map(str, self.obs_shape))}], got {frames.dtype} {frames.shape}"
            )
        t = frames.shape[0] - 1
        if t < 1:
            raise ValueError(f"an episode needs at least one transition (2 frames), got {frames.shape[0]} frames")
        actions = np.asarray(actions, dtype=np.float32)
        rewards = np.asarray(rewards, dtype=np.float32)
        discounts = np.asarray(discounts, dtype=np.float32)
        for name, arr, shape in (
            ("actions", actions, (t, self.action_dim)),
            ("rewards", rewards, (t,)),
            ("discounts", discounts, (t,)),
        ):
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {shape} for {t + 1} frames, got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or inf")
        return (
            np.array(frames, copy=True),
            np.array(actions, copy=True),
            np.array(rewards, copy=True),
            np.array(discounts, copy=True),
        )

    # ---------------------------------------------------------------- sampling
    def sample(self, batch_size: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """``obs``/``next_obs`` uint8 ``[B, C, H, W]`` (o_t, o_{t+n}), ``action [B, A]`` (a_t), and the
        n-step ``reward [B]`` and ``discount [B]``, all float32 except the frames."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        total = self.num_windows
        if total == 0:
            raise ValueError(f"nothing to sample: the buffer holds no episode with >= {self.nstep} transitions")
        idx = self._rng.integers(0, total, size=int(batch_size))
        ep_idx = np.searchsorted(self._window_ends, idx, side="right")
        starts = idx - np.concatenate([[0], self._window_ends[:-1]])[ep_idx]

        obs = np.empty((batch_size, *self.obs_shape), np.uint8)
        next_obs = np.empty_like(obs)
        action = np.empty((batch_size, self.action_dim), np.float32)
        reward = np.empty(batch_size, np.float32)
        discount = np.empty(batch_size, np.float32)
        episodes, n = self._episodes, self.nstep
        for i, (e, t) in enumerate(zip(ep_idx.tolist(), starts.tolist())):
            ep = episodes[e]
            obs[i] = ep.frames[t]
            next_obs[i] = ep.frames[t + n]
            action[i] = ep.actions[t]
            reward[i] = ep.nstep_reward[t]
            discount[i] = ep.nstep_discount[t]
        arrays = dict(obs=obs, action=action, reward=reward, discount=discount, next_obs=next_obs)
        return {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}

    # --------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        """What sampling depends on besides the episodes' contents: the episode counts and the RNG state.

        With a store, the episodes themselves are the files ``ep_<first_held>`` .. ``ep_<num_added - 1>``,
        already on disk (``add_episode`` writes before it returns), so the state's size does not grow with
        the replay. Without one, the arrays are inline (as tensors sharing memory with the buffer). Either
        way ``torch.save`` it; it loads with ``torch.load(..., weights_only=True)``.
        """
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "capacity": self.capacity,
            "obs_shape": self.obs_shape,
            "action_dim": self.action_dim,
            "nstep": self.nstep,
            "gamma": self.gamma,
            "num_added": self._added,
            "first_held": self.first_held,
            "num_transitions": self._num_transitions,
            "dropped": self.dropped,
            "rng": self._rng.bit_generator.state,
        }
        if self.store is None:
            eps = self._episodes
            state["episodes"] = {
                key: [torch.from_numpy(getattr(e, key)) for e in eps]
                for key in ("frames", "actions", "rewards", "discounts")
            }
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the contents and RNG state with a saved ``state_dict()``.

        With a store: reads the held episodes back from their files and deletes every episode file past
        ``num_added`` (and stray temp files): they come from a process that went on after this checkpoint
        and crashed, and the resumed run writes them again, identically. A held episode whose file is
        missing or unreadable is dropped (its file deleted) and listed in ``dropped_files``: losing one
        episode beats losing the checkpoint, and the caller says so. Raises ``ValueError`` when the
        episodes do not rebuild the saved state (another capacity), and lets an ``OSError`` of the disk
        (not of one file's contents) through.
        """
        fmt = state.get("format", 1)
        if fmt != STATE_FORMAT:
            raise ValueError(
                f"replay state format {fmt} is not {STATE_FORMAT} (format 1 kept the arrays inside "
                "the checkpoint); start the run over in a fresh directory"
            )
        for key in ("obs_shape", "action_dim", "nstep", "gamma"):
            mine, theirs = getattr(self, key), state[key]
            if (tuple(theirs) if key == "obs_shape" else theirs) != mine:
                raise ValueError(f"replay state has {key}={theirs!r}, this buffer has {mine!r}")
        added, first = int(state["num_added"]), int(state["first_held"])
        if not 0 <= first <= added:
            raise ValueError(f"replay state holds episodes {first}..{added - 1}: not a valid range")
        inline = state.get("episodes")
        if (inline is None) != (self.store is not None):
            raise ValueError(
                "replay state "
                + (
                    "has no episodes and this buffer no store to read them from"
                    if inline is None
                    else "holds its episodes inline but this "
                    "buffer has a store; build it without one to load this state"
                )
            )
        skipped = {int(i) for i in state.get("dropped", ())}  # lost before this checkpoint: never looked for
        wanted = [i for i in range(first, added) if i not in skipped]
        self._episodes.clear()
        self._num_transitions = 0
        self._window_ends = np.zeros(0, np.int64)
        self._added = first
        self.dropped_files = []
        if inline is not None:
            arrays = zip(*(inline[k] for k in ("frames", "actions", "rewards", "discounts")))
            for i, (f, a, r, d) in zip(wanted, arrays):
                self._insert(*self._check_episode(np.asarray(f), np.asarray(a), np.asarray(r), np.asarray(d)), i)
        else:
            for i in wanted:
                self._load_episode(i)
        self._added = added
        if self.num_episodes != len(wanted) - len(self.dropped_files) or (
            not self.dropped_files and self._num_transitions != state["num_transitions"]
        ):
            raise ValueError(
                f"replay episodes {first}..{added - 1} rebuild a buffer of {self.num_episodes} "
                f"episodes / {self._num_transitions} transitions, the state says "
                f"{len(wanted)} / {state['num_transitions']} (capacity {self.capacity}, "
                f"saved with {state['capacity']})"
            )
        self._rng.bit_generator.state = state["rng"]
        if self.store is not None:
            self.truncate_store(added)

    def _load_episode(self, index: int) -> None:
        """Read episode ``index`` back from its file into the buffer; a missing or unreadable file is
        deleted and listed in ``dropped_files`` with why, instead of failing the whole load."""
        path = self.episode_path(index)
        try:
            episode = self._check_episode(*self._read_episode(index))
        except BAD_EPISODE_ERRORS as e:
            why = "missing" if isinstance(e, FileNotFoundError) else f"{type(e).__name__}: {e}"
            self.dropped_files.append((path, why))
            path.unlink(missing_ok=True)
            return
        self._insert(*episode, index)

    def _read_episode(self, index: int) -> tuple[np.ndarray, ...]:
        """The four arrays of episode ``index``'s file, read whole (a truncated file fails here, not later)."""
        with np.load(self.episode_path(index), allow_pickle=False) as z:
            return z["frames"], z["actions"], z["rewards"], z["discounts"]

    def _stored(self) -> dict[int, Path]:
        if self.store is None or not self.store.is_dir():
            return {}
        out = {}
        for p in self.store.iterdir():
            m = EPISODE_FILE.match(p.name)
            if m:
                out[int(m.group(1))] = p
        return out

    def truncate_store(self, num_added: int) -> int:
        """Delete episode files with index >= ``num_added`` and leftover temp files; returns files deleted.

        A fresh start calls it with 0; ``load_state_dict`` with the checkpoint's count.
        """
        doomed = [p for i, p in self._stored().items() if i >= num_added]
        if self.store is not None and self.store.is_dir():
            doomed += [p for p in self.store.iterdir() if p.name.startswith(".ep_") and p.name.endswith(".tmp")]
        for p in doomed:
            p.unlink(missing_ok=True)
        return len(doomed)

    def prune_store(self, before: int) -> int:
        """Delete the files of evicted episodes with index < ``before`` (the oldest episode any kept
        checkpoint still holds); never one this buffer still holds. Returns files deleted."""
        before = min(int(before), self.first_held)
        doomed = [p for i, p in self._stored().items() if i < before]
        for p in doomed:
            p.unlink(missing_ok=True)
        return len(doomed)
