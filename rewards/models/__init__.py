"""The video models behind the learned rewards, and what trains, stores and scores them.

- ``codec``: the VQGAN that turns a 64x64 frame into 64 tokens;
- ``videogpt`` and ``vqdiffusion``: the two video models over those tokens, behind the shared contract of
  ``video_model`` (build, score an episode's tokens, presets);
- ``store``: where a trained model lives on disk and how it is loaded;
- ``pretrain`` (``python -m rewards.models.pretrain``): trains the codec and a video model on a domain's
  expert videos; ``quality`` (``python -m rewards.models.quality``): the model-quality report;
- ``reward_stats``: per-task score statistics on the expert videos, for standardised rewards.

The providers that use them (``rewards.video_reward``) stay one level up, beside the provider interface.
"""

#: the size presets every model has: "small" for a CPU, "paper" for the paper's sizes (design section 6).
#: Defined here, in a module that imports nothing, so the command lines can list them cheaply.
PRESETS = ("small", "paper")
