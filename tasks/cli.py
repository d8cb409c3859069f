"""Small argparse helpers shared by the suite's command-line tools."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type of counts: an explicit 0 or a negative count is an error, never a silent default
    (``--steps -5`` would otherwise "train" nothing and report success)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
