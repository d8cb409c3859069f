"""Process-wide runtime choices: off-screen GL backend, torch device, seeding, version stamps.

One place for each so that a run's config can record exactly what it ran with.
"""
from __future__ import annotations

import os
import platform
import random
import sys
from importlib import metadata
from typing import Any

import numpy as np


def default_gl() -> str:
    """Pick the off-screen GL backend before MuJoCo is imported.

    EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0) is the default; set
    ``MUJOCO_GL=osmesa`` (libosmesa6) where EGL is unavailable. An explicit setting is kept.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    # PyOpenGL must agree with MuJoCo on the platform, or context creation fails.
    if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    return os.environ["MUJOCO_GL"]


def resolve_device(spec: str = "auto") -> "torch.device":  # noqa: F821
    """``auto`` -> CUDA when present, else CPU; ``cpu``/``cuda``/``cuda:N`` are taken as given."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {spec} was asked for but torch sees no CUDA device; use --device cpu or auto")
    if spec != "cpu" and not spec.startswith("cuda"):
        raise ValueError(f"unknown device {spec!r}; valid: auto, cpu, cuda, cuda:N")
    return torch.device(spec)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's global RNG and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


PACKAGES = ("video-reward-bench", "torch", "numpy", "gymnasium", "metaworld", "gymnasium-robotics",
            "mujoco", "rliable", "pandas")


def versions() -> dict[str, Any]:
    """Versions of Python, the platform and the packages that decide results, for run configs."""
    out: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["MUJOCO_GL"] = os.environ.get("MUJOCO_GL")
    return out
