"""Small argparse helpers shared by the suite's command-line tools."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from common.faults import environment_fault

#: the project's packages: a process whose ``__main__`` is one of their modules is one of its commands
PACKAGES = ("agents", "analysis", "common", "experiments", "rewards", "suites", "tasks")


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


def _main_module() -> str | None:
    """The module this process runs as ``__main__``, if any. While ``python -m pkg.mod`` imports ``pkg``
    (before ``mod`` itself), ``__main__`` has no spec yet and ``sys.argv[0]`` is ``-m``: the name is then
    only on the command line (``sys.orig_argv``: ``-m pkg.mod`` or ``-mpkg.mod``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None:
        return spec.name
    if sys.argv[:1] != ["-m"]:
        return None
    args = sys.orig_argv[1:]
    for i, arg in enumerate(args):
        if arg.startswith("-m"):
            return arg[2:] or (args[i + 1] if i + 1 < len(args) else None)
    return None


def running_a_command() -> bool:
    """Whether this process is one of the project's commands (``python -m suites.run``, ``python -m
    tasks.collect``, ...): its ``__main__`` is a module of the project's packages."""
    name = _main_module()
    return name is not None and name.partition(".")[0] in PACKAGES


def refuse_in_commands(e: BaseException) -> None:
    """For a fault found while the modules are imported (``MUJOCO_GL``, ``tasks``): a command of the project
    prints one ``error: ...`` line and exits 2, as argparse does for a bad flag, since its own error
    handling (``main``) has not started yet and a traceback would bury the one sentence that says what
    to set. Anywhere else (a library import, a test) it returns and the caller raises ``e``."""
    if running_a_command():
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)


def expert_tail_arg(text: str) -> int | str:
    """argparse type of ``--expert-tail``: a number of steps >= 0 or ``full`` (``tasks.datasets.check_tail``)."""
    from tasks.datasets import check_tail  # local import: loads MuJoCo; tasks/__init__ imports cli before MUJOCO_GL

    try:
        return check_tail(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("expert_tail: ")) from None


def run_reporting_user_errors(action: Callable[[], object], errors: tuple[type[BaseException], ...]) -> int:
    """Run ``action()`` as a command's body: the user errors in ``errors`` (a missing dataset or model, a
    bad value) and the machine's faults (a GL back end that cannot render, a full disk:
    ``common.faults.environment_fault``) print one ``error: ...`` line on stderr and give exit code 2, as
    argparse does for a bad flag; a traceback would bury the one sentence (and the command that fixes it)
    the user needs. Anything else is a bug and keeps its traceback. Returns the exit code (0 on success)."""
    try:
        action()
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        fault = environment_fault(e)
        if fault is None:
            raise
        print(f"error: {fault}", file=sys.stderr)
        return 2
    return 0
