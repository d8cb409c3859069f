"""Pixel tasks (MetaWorld, Adroit), their expert policies and recorded video datasets."""
from tasks.runtime import default_gl as _default_gl

_default_gl()  # before anything imports mujoco
