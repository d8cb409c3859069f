"""Small argparse helpers shared by the suite's command-line tools."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from tasks.datasets import check_tail


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


def expert_tail_arg(text: str) -> int | str:
    """argparse type of ``--expert-tail``: a number of steps >= 0 or ``full`` (``tasks.datasets.check_tail``)."""
    try:
        return check_tail(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("expert_tail: ")) from None


def run_reporting_user_errors(action: Callable[[], object], errors: tuple[type[BaseException], ...]) -> int:
    """Run ``action()`` as a command's body: the user errors in ``errors`` (a missing dataset or model, a
    bad value) print one ``error: ...`` line on stderr and give exit code 2, as argparse does for a bad
    flag; a traceback would bury the one sentence (and the command that fixes it) the user needs.
    Anything else is a bug and keeps its traceback. Returns the exit code (0 on success)."""
    try:
        action()
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
