"""How many GPUs this machine gives runs: the one helper both launchers need.

It lives apart from ``suites.launch`` so that the submitit launcher (which ``suites.launch`` builds on
demand) can use it without importing ``suites.launch`` back: the launchers form no import cycle.
"""

from __future__ import annotations


def gpu_slots() -> int:
    """Visible CUDA devices (0 without CUDA): local runs are placed one per slot, round robin."""
    try:
        import torch  # local import: suites stay torch-free at import

        return torch.cuda.device_count()
    except Exception:  # pragma: no cover - torch always imports here
        return 0
