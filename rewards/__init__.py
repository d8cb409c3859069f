"""Reward providers: the interface, the registry, and the built-in rewards.

    import rewards
    rewards.available()                       # ['amp', 'rnd', 'sparse', ...]
    r = rewards.make("rnd", task="door-close", domain="metaworld", device="cuda")
    r.label_episode(frames, env_rewards)      # float32 [T], frozen in replay
    r.bonus_scale * r.bonus(batch)            # [B], added to the n-step reward at update time
    r.update(batch, step)                     # online learning (RND predictor, AMP discriminator)

Kept light on purpose: importing this package imports neither torch nor any provider module;
``rewards.make`` imports a provider's module when it is first asked for (see ``rewards.registry``).
"""

from rewards.base import DOMAINS, RewardProvider, batch_next_obs, validate_episode, validate_frames, validate_obs_batch
from rewards.prepare import PrepareRequest
from rewards.registry import (
    BUILTINS,
    ENTRY_POINT_GROUP,
    UnknownRewardError,
    available,
    clear_cache,
    get,
    make,
    register,
    unregister,
)

__all__ = [
    "DOMAINS",
    "PrepareRequest",
    "RewardProvider",
    "batch_next_obs",
    "validate_episode",
    "validate_frames",
    "validate_obs_batch",
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "UnknownRewardError",
    "available",
    "clear_cache",
    "get",
    "make",
    "register",
    "unregister",
]
