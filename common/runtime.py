"""Process-wide runtime choices: torch device, precision, threads, seeding, version stamps.

One place for each so that a run's config can record exactly what it ran with. Every stage uses these
(the agent, the reward models, the runner, the analysis), so they live in ``common``, which imports
nothing of the project. The off-screen GL backend is the tasks' own business (``tasks/__init__.py``).
"""

from __future__ import annotations

import os
import platform
import random
import sys
import warnings
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from importlib import metadata
from typing import Any, ContextManager, Iterator

import numpy as np


def resolve_device(spec: str = "auto") -> "torch.device":  # noqa: F821
    """``auto`` -> CUDA when present, else CPU; ``cpu``/``cuda``/``cuda:N`` are taken as given."""
    import torch  # local import: common stays torch-free at import

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {spec} was asked for but torch sees no CUDA device; use --device cpu or auto")
    if spec != "cpu" and not spec.startswith("cuda"):
        raise ValueError(f"unknown device {spec!r}; valid: auto, cpu, cuda, cuda:N")
    return torch.device(spec)


#: what ``--precision`` accepts; "auto" is resolved per device (``resolve_precision``) before anything runs
PRECISIONS = ("auto", "bf16", "fp32")
#: what an agent, a model or a statistic is computed in: a resolved precision, recorded in configs and metas
RESOLVED_PRECISIONS = ("fp32", "bf16")
#: what ``--precision`` defaults to: "auto" (bf16 where the hardware does it natively, fp32 elsewhere) since
#: the same-seed fp32 vs bf16 comparisons of docs/precision.md passed: the same learning
#: (dense on reach, 2 seeds each, results/reference/precision-parity) and the same reward ranking (Spearman
#: >= 0.99, docs/precision.md). The benchmarks time this default.
DEFAULT_PRECISION = "auto"


@lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls/convs natively (AVX512-BF16 or AMX-BF16).

    torch's own CPU feature probe (cpuinfo) first; ``/proc/cpuinfo`` flags where torch lacks it.
    ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is not used: it is true on any AVX512 CPU, where
    oneDNN emulates bf16 (slower than fp32).
    """
    import torch  # local import: common stays torch-free at import

    try:
        caps = torch._C._cpu._get_cpu_capability()
        return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
    except (AttributeError, RuntimeError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


@lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``), for run configs.

    Rows are bit-exact only on the same kind of CPU: ``auto`` precision resolves to bf16 on one with
    native bf16 and to fp32 on one without, and float kernels differ between instruction sets, so a run
    says which CPU made it (a project may move between machine kinds, and bf16 results differ across CPUs).
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def native_bf16(device: "torch.device | str") -> bool:  # noqa: F821
    """bf16 runs at native speed on ``device``: CUDA compute capability >= 8.0, or a bf16-capable CPU."""
    import torch  # local import: common stays torch-free at import

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def resolve_precision(name: str, device: "torch.device | str") -> str:  # noqa: F821
    """``auto|bf16|fp32`` -> ``"bf16"`` or ``"fp32"`` for ``device``; record the result in the run's config.

    ``auto`` is bf16 where the hardware does it natively (see ``native_bf16``), fp32 elsewhere. ``bf16``
    asked for on hardware without native bf16 is allowed (the numbers are the same) but warned about:
    emulated bf16 is slower than fp32 there.
    """
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; valid: {', '.join(PRECISIONS)}")
    if name == "fp32":
        return "fp32"
    native = native_bf16(device)
    if name == "auto":
        return "bf16" if native else "fp32"
    if not native:
        warnings.warn(
            f"precision bf16 on {device}, which has no native bf16 (needs a CPU with AVX512-BF16 "
            "or AMX, or CUDA compute capability >= 8.0): it will run emulated, slower than fp32",
            stacklevel=2,
        )
    return "bf16"


def autocast(precision: str, device: "torch.device | str") -> ContextManager:  # noqa: F821
    """``torch.autocast(device_type, torch.bfloat16)`` for ``"bf16"``, a no-op for ``"fp32"``.

    Takes a resolved precision (``auto`` must be resolved first, so a run records what it ran with).
    """
    import torch  # local import: common stays torch-free at import

    if precision == "fp32":
        return nullcontext()
    if precision != "bf16":
        raise ValueError(
            f"autocast takes a resolved precision, 'bf16' or 'fp32'; got {precision!r}"
            + (" (call resolve_precision first)" if precision == "auto" else "")
        )
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block on ``n`` torch intra-op threads and restore the previous count on exit (also on error).

    The thread count is process-wide state: acting, timing and test fixtures that need a different count
    for a while must give the old one back, or whatever runs next is silently slower or faster.
    """
    import torch  # local import: common stays torch-free at import

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's global RNG and torch (CPU and CUDA)."""
    import torch  # local import: common stays torch-free at import

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


PACKAGES = (
    "video-reward-bench",
    "torch",
    "numpy",
    "gymnasium",
    "metaworld",
    "gymnasium-robotics",
    "mujoco",
    "rliable",
    "pandas",
)


def versions() -> dict[str, Any]:
    """Versions of Python, the platform, the CPU and the packages that decide results, for run configs."""
    out: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["MUJOCO_GL"] = os.environ.get("MUJOCO_GL")
    out["cpu"] = cpu_name()
    out["cpu_native_bf16"] = cpu_has_native_bf16()
    return out
