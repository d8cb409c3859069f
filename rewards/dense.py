"""``dense``: the env's own shaped reward in place of the sparse one (docs/protocol.md#dense-reward-the-oracle).

An oracle upper reference, not a method: the MetaWorld v3 reward and the Adroit dense reward are
hand-written from the simulator state (distances to handles and goals), information no
reward-from-video method may use. Figures and aggregates draw it apart (``analysis.oracles``).

How the dense reward reaches the provider: the pixel env reports ``info["dense_reward"]``, the shaped
reward summed over the action-repeat sub-steps, next to the sparse step reward it returns. The
training loop collects that series and, because this class sets ``env_reward = "dense"``, hands it
to ``label_episode`` instead of the sparse one (:func:`env_reward_series`). ``train.csv`` keeps the
sparse episode return in ``episode_return``; ``learned_return`` is the dense return the agent
learned from.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rewards.base import RewardProvider, validate_episode

#: info key of the pixel env's shaped reward (summed over the action-repeat sub-steps)
DENSE_INFO_KEY = "dense_reward"


def env_reward_series(kind: str, sparse: Sequence[float], dense: Sequence[Any], where: str = "") -> np.ndarray:
    """The per-step env rewards a provider with ``env_reward == kind`` is given, float32 ``[T]``.

    ``sparse``: the rewards ``env.step`` returned; ``dense``: ``info.get("dense_reward")`` of each step
    (None where the env did not report it). A dense provider on an env without the key is an error,
    never a silent fall-back to the sparse reward (the run would be mislabelled as the oracle).
    """
    if kind == "sparse":
        return np.asarray(sparse, np.float32)
    if kind == "dense":
        if len(dense) != len(sparse) or any(d is None for d in dense):
            raise ValueError(
                f"reward 'dense' needs info[{DENSE_INFO_KEY!r}] at every env step, but the env"
                f"{' of ' + where if where else ''} did not report it; the pixel env "
                f"(tasks/pixel_env.py) must add the shaped reward summed over the action repeat"
            )
        return np.asarray(dense, np.float32)
    raise ValueError(f"env_reward: expected 'sparse' or 'dense', got {kind!r}")


class DenseReward(RewardProvider):
    """The env's shaped reward, passed through: ``label_episode`` returns the rewards it is given.

    ``env_reward = "dense"`` tells the training loop to give it the dense series; no bonus, nothing
    learned, no state.
    """

    env_reward = "dense"

    def __init__(self, *, task: str, domain: str, device: Any = "cpu", data_root: Any = None, seed: int = 0) -> None:
        super().__init__(task=task, domain=domain, device=device, data_root=data_root, seed=seed)
        self.params = {"env_reward": self.env_reward}

    def label_episode(self, frames: np.ndarray, env_rewards: np.ndarray) -> np.ndarray:
        return validate_episode(frames, env_rewards)[1]
