"""One colour and one position per method, the same in every figure of every suite.

Figures are compared side by side (aggregates, learning curves, reward analysis), so a method's colour
must depend on its name only, never on which other methods happen to be in a suite. Known methods
(docs/models-and-rewards.md#rewards) have fixed colours from seaborn's colour-blind palette and a fixed order;
methods added later get a colour from a second palette chosen by a stable hash of the name and sort
after the known ones, alphabetically.
"""

from __future__ import annotations

import zlib
from typing import Iterable

import seaborn as sns

# Display order: the oracle first (a reference, drawn apart), baselines, then the video-model rewards,
# the proposed method and its ablations, then GenReward and its levels.
KNOWN_METHODS = (
    "dense",
    "sparse",
    "rnd",
    "amp",
    "viper",
    "viper_std",
    "viper_ce",
    "diffusion_reward",
    "diffusion_ll",
    "diffusion_reward_nonoise",
    "genreward",
    "genreward_video",
    "genreward_frame",
)
# Index into seaborn's "colorblind" palette (blue, orange, green, red, purple, brown, pink, grey,
# yellow, cyan). The proposed method gets the strongest contrast (orange) against the VIPER blues.
_KNOWN_COLOUR = {
    "sparse": 7,
    "rnd": 5,
    "amp": 6,
    "viper": 0,
    "viper_std": 9,
    "viper_ce": 4,
    "diffusion_reward": 1,
    "diffusion_ll": 2,
    "diffusion_reward_nonoise": 8,
    "genreward": 3,
}
# The oracle (analysis.oracles) is black: neutral, never mistaken for a method.
_FIXED_RGB = {"dense": (0.0, 0.0, 0.0)}
_BASE = sns.color_palette("colorblind", 10)
_EXTRA = sns.color_palette("dark", 10)


def method_order(methods: Iterable[str]) -> list[str]:
    """The methods, deduplicated, in the suite-wide display order."""
    rank = {m: i for i, m in enumerate(KNOWN_METHODS)}
    return sorted(set(methods), key=lambda m: (rank.get(m, len(rank)), m))


def method_color(method: str) -> tuple[float, float, float]:
    """RGB colour of one method, a function of its name only."""
    if method in _FIXED_RGB:
        return _FIXED_RGB[method]
    if method in _KNOWN_COLOUR:
        return tuple(_BASE[_KNOWN_COLOUR[method]])
    return tuple(_EXTRA[zlib.crc32(method.encode("utf-8")) % len(_EXTRA)])


def method_colors(methods: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """``{method: colour}`` in display order, for seaborn ``palette=`` and rliable ``colors=``."""
    return {m: method_color(m) for m in method_order(methods)}
