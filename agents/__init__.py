"""DrQ-v2 agent and its replay buffer (docs/protocol.md#agent-drq-v2; contracts in docs/interfaces.md)."""

from .config import DrQV2Config
from .drqv2 import DrQV2Agent
from .replay import ReplayBuffer

__all__ = ["DrQV2Config", "DrQV2Agent", "ReplayBuffer"]
