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
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch


@dataclass
class _Episode:
    frames: np.ndarray      # uint8 [T+1, C, H, W]
    actions: np.ndarray     # float32 [T, A]
    rewards: np.ndarray     # float32 [T]
    discounts: np.ndarray   # float32 [T]
    nstep_reward: np.ndarray    # float32 [max(T - n + 1, 0)]
    nstep_discount: np.ndarray  # float32 [max(T - n + 1, 0)]

    @property
    def length(self) -> int:
        return len(self.actions)


def nstep_returns(rewards: np.ndarray, discounts: np.ndarray, nstep: int, gamma: float
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
        reward += discount * rewards[k:k + starts]
        discount *= discounts[k:k + starts] * gamma
    return reward.astype(np.float32), discount.astype(np.float32)


class ReplayBuffer:
    """``add_episode`` whole episodes, ``sample`` n-step batches; ``len()`` counts stored transitions."""

    def __init__(self, capacity: int, obs_shape: Sequence[int], action_dim: int, nstep: int = 3,
                 gamma: float = 0.99, seed: int = 0):
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

    def __len__(self) -> int:
        return self._num_transitions

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    @property
    def num_windows(self) -> int:
        """How many n-step windows can be sampled."""
        return int(self._window_ends[-1]) if len(self._window_ends) else 0

    # ------------------------------------------------------------------ adding
    def add_episode(self, frames: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                    discounts: np.ndarray) -> None:
        """Store a finished episode (copied). Evicts the oldest episodes to stay within capacity.

        An episode shorter than ``nstep`` transitions is stored (it counts in ``len``) but yields no
        window to sample.
        """
        frames, actions, rewards, discounts = self._check_episode(frames, actions, rewards, discounts)
        t = len(actions)
        if t > self.capacity:
            raise ValueError(f"episode of {t} transitions does not fit in a buffer of capacity {self.capacity}")
        while self._num_transitions + t > self.capacity:
            self._num_transitions -= self._episodes.popleft().length
        nr, nd = nstep_returns(rewards, discounts, self.nstep, self.gamma)
        self._episodes.append(_Episode(frames, actions, rewards, discounts, nr, nd))
        self._num_transitions += t
        self._window_ends = np.cumsum([len(e.nstep_reward) for e in self._episodes], dtype=np.int64)

    def _check_episode(self, frames, actions, rewards, discounts):
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != self.obs_shape:
            raise ValueError(f"frames must be uint8 [T+1, {', '.join(map(str, self.obs_shape))}], "
                             f"got {frames.dtype} {frames.shape}")
        t = frames.shape[0] - 1
        if t < 1:
            raise ValueError(f"an episode needs at least one transition (2 frames), got {frames.shape[0]} frames")
        actions = np.asarray(actions, dtype=np.float32)
        rewards = np.asarray(rewards, dtype=np.float32)
        discounts = np.asarray(discounts, dtype=np.float32)
        for name, arr, shape in (("actions", actions, (t, self.action_dim)), ("rewards", rewards, (t,)),
                                 ("discounts", discounts, (t,))):
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {shape} for {t + 1} frames, got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or inf")
        return (np.array(frames, copy=True), np.array(actions, copy=True), np.array(rewards, copy=True),
                np.array(discounts, copy=True))

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
        """Contents (only what is stored, as tensors sharing memory with the buffer) and the RNG state.

        ``torch.save`` it; it loads with ``torch.load(..., weights_only=True)``.
        """
        eps = self._episodes
        return {
            "capacity": self.capacity, "obs_shape": self.obs_shape, "action_dim": self.action_dim,
            "nstep": self.nstep, "gamma": self.gamma,
            "frames": [torch.from_numpy(e.frames) for e in eps],
            "actions": [torch.from_numpy(e.actions) for e in eps],
            "rewards": [torch.from_numpy(e.rewards) for e in eps],
            "discounts": [torch.from_numpy(e.discounts) for e in eps],
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the contents and RNG state with a saved ``state_dict()``."""
        for key in ("obs_shape", "action_dim", "nstep", "gamma"):
            mine, theirs = getattr(self, key), state[key]
            if (tuple(theirs) if key == "obs_shape" else theirs) != mine:
                raise ValueError(f"replay state has {key}={theirs!r}, this buffer has {mine!r}")
        self._episodes.clear()
        self._num_transitions = 0
        self._window_ends = np.zeros(0, np.int64)
        for f, a, r, d in zip(state["frames"], state["actions"], state["rewards"], state["discounts"]):
            self.add_episode(np.asarray(f), np.asarray(a), np.asarray(r), np.asarray(d))
        self._rng.bit_generator.state = state["rng"]
