"""Run a suite: ``python -m suites.run --suite metaworld7 [--profile quick] [--jobs 2]``.

The suite is a built-in one (``--suite``, see ``--list``) or a TOML file (``--suite-file``,
``suites.suite_file``); ``--methods`` picks among its methods and may add any registered reward provider,
built-in or third-party, optionally with parameters: ``--methods sparse my_reward diffusion_reward:steps=5``.

Expands the suite (methods x tasks x seeds), makes whatever upstream artefacts its providers need
(datasets, pretrained models: each provider class says so through its ``prepare`` hook), runs every run
that is not already complete, then rebuilds ``results/<suite>/scores.csv`` and the figures and prints
where they are. Re-running the same command resumes: finished runs are skipped, interrupted ones continue
from their last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

import rewards
from analysis.consistency import check_joins
from analysis.scores import build_scores
from common.faults import EnvironmentFault, environment_fault
from common.io import atomic_write_text, check_dir, data_root
from common.runs import (
    ERROR_LOG,
    EVAL_FILE,
    FRAME,
    LOCK_FILE,
    SUCCESS_RATE,
    TRAIN_FILE,
    RunFileError,
    is_done,
    last_row,
    unreadable_runs,
)
from common.runtime import DEFAULT_PRECISION, PRECISIONS, resolve_device
from suites import definitions, profiles, quality_gate
from suites.definitions import METHOD_SYNTAX
from suites.launch import LAUNCHERS, WorkerDied, make_launcher
from suites.plan import RunSpec, budget_warnings, check_budgets, duplicate_notes, expand
from suites.suite_file import load as load_suite_file
from suites.train import check_config, launch_config


def prepare(runs: Sequence[RunSpec], log=print) -> None:
    """Let each provider make what it needs (expert videos, pretrained models) before any run starts.

    Runs are grouped by (provider, prepare request): the request (``rewards.PrepareRequest``, built by
    ``suites.plan``) holds exactly what changes the artefacts, so methods that differ only in other
    overrides are prepared once, and each group gets the union of its runs' tasks.
    """
    groups: dict[tuple[str, rewards.PrepareRequest], set[str]] = {}
    for r in runs:
        if r.prepare is None:
            continue
        key = (r.config.provider, r.prepare.with_tasks(()))
        groups.setdefault(key, set()).update(r.prepare.tasks)
    for (provider, request), task_set in groups.items():
        rewards.get(provider).prepare(request.with_tasks(task_set), log=log)


def _finite(text: str | None) -> float | None:
    """A CSV cell as a finite number, None when it is missing or is not one."""
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class Progress:
    """One bar over all frames of the suite; postfix: runs done and the latest mean success rate."""

    def __init__(self, runs: Sequence[RunSpec]):
        self.runs = runs
        self.total = sum(r.config.frames for r in runs)
        self.bar = tqdm(
            total=self.total,
            unit="frame",
            desc=f"suite {runs[0].config.suite}" if runs else "suite",
            dynamic_ncols=True,
        )
        self.done = 0
        self._postfix = ""

    def _frames_and_success(self, r: RunSpec) -> tuple[int, float | None]:
        """A run's newest frame and success rate from the last rows of its CSVs. A value that is not a
        finite number (an edited or damaged file) counts as none: a progress bar must not stop a launch,
        and the file is named, with the run left out, where results are read (scores, figures)."""
        frame, success = 0, None
        for name in (TRAIN_FILE, EVAL_FILE):
            row = last_row(r.run_dir / name) or {}
            frame = max(frame, int(_finite(row.get(FRAME)) or 0))
            if name == EVAL_FILE:
                success = _finite(row.get(SUCCESS_RATE))
        return min(frame, r.config.frames), success

    def poll(self) -> None:
        states = [self._frames_and_success(r) for r in self.runs]
        frames = sum(f for f, _ in states)
        succ = [s for _, s in states if s is not None]
        postfix = f"runs {self.done}/{len(self.runs)} done" + (f", success {sum(succ) / len(succ):.2f}" if succ else "")
        if frames != self.bar.n or postfix != self._postfix:
            self._postfix = postfix
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(frames - self.bar.n)

    def close(self) -> None:
        self.poll()
        self.bar.close()


def _launcher(a: argparse.Namespace, suite_dir: Path):
    if a.launcher == "local":
        return make_launcher("local", a.jobs)
    extra = {}
    for item in a.slurm_param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--slurm-param wants KEY=VALUE, got {item!r}")
        extra[key.strip()] = value
    if a.slurm_partition:
        extra["partition"] = a.slurm_partition
    return make_launcher(
        a.launcher,
        a.jobs,
        folder=a.slurm_logs or suite_dir / "slurm",
        timeout_min=a.slurm_time,
        gpus=a.slurm_gpus,
        cpus=a.slurm_cpus,
        mem_gb=a.slurm_mem_gb,
        slurm=extra,
    )


#: what a re-run needs, by the failure's type (the first entry that matches wins; anything else: "config"):
#: a killed worker, memory or a passing I/O error can pass on a plain re-run; a fault of the machine (GL,
#: a full disk: ``common.faults``) passes once it is fixed; a config error, a missing dataset or model, or a
#: bug does not, and saying "re-run" there only wastes a run
FAILURE_KINDS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((EnvironmentFault,), "environment"),
    ((WorkerDied, MemoryError), "stopped"),
    ((FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError), "config"),
    ((OSError,), "stopped"),
)
#: the summary line of each kind of failure, after the runs
FAILURE_SUMMARIES = {
    "stopped": "{n} run(s) were stopped: {keys}; re-run the same command to resume them from their last checkpoint",
    "environment": "{n} run(s) failed on this machine's setup: {keys}; re-run after fixing the environment as "
    "their FAILED lines say: they resume from their last checkpoint",
    "config": "{n} run(s) failed: {keys}; a re-run will not fix this: change what the FAILED line says, then re-run",
}


def _failure_kind(e: BaseException) -> str:
    """Which of ``FAILURE_SUMMARIES`` a failed run belongs to (see ``FAILURE_KINDS``)."""
    return next((kind for types, kind in FAILURE_KINDS if isinstance(e, types)), "config")


def _failure_line(run: RunSpec, e: BaseException) -> str:
    """One line per failed run, with its cause (a fault of the machine: what to change, not its class); an
    unexpected error's traceback goes to ``<run_dir>/error.log``."""
    cause = str(e) if isinstance(e, EnvironmentFault) else f"{type(e).__name__}: {e}"
    line = f"FAILED {run.key}: {cause}"
    tb = getattr(e, "remote_traceback", None)
    if tb and not isinstance(e, (ValueError, FileNotFoundError)) and run.run_dir.is_dir():  # never make a run dir
        try:
            atomic_write_text(run.run_dir / ERROR_LOG, tb)
            line += f" (traceback: {run.run_dir / ERROR_LOG})"
        except OSError:
            pass
    return line


def _lock_holder(run: RunSpec) -> str:
    """Who holds a run's lock, from what ``suites.train.run_lock`` wrote in it ("host pid N")."""
    try:
        holder = (run.run_dir / LOCK_FILE).read_text().strip()
    except OSError:
        return ""
    return f" ({holder})" if holder else ""


#: agent settings other flags own: the seed is each run's (--seeds), the precision the launch's (--precision)
AGENT_KEYS_OF_OTHER_FLAGS = {"seed": "--seeds", "precision": "--precision"}


def agent_settings(items: Sequence[str]) -> dict[str, Any]:
    """``--agent KEY=VALUE`` items as DrQ-v2 overrides, values parsed as a method's parameters are
    (``definitions.parse_value``); unknown keys are refused by ``DrQV2Config.from_dict``, listing the valid ones."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"--agent wants KEY=VALUE, got {item!r}")
        if key in AGENT_KEYS_OF_OTHER_FLAGS:
            raise ValueError(f"--agent {key}: set it with {AGENT_KEYS_OF_OTHER_FLAGS[key]}")
        out[key] = definitions.parse_value(value.strip())
    return out


def _launch_config(run: RunSpec) -> RunSpec:
    """``run`` with the config this launch gives it (``suites.train.launch_config``: checked against what the
    run recorded). A run whose recorded files cannot be read is left as planned: it fails on its own with the
    file named (a FAILED line), and the folder's other runs go ahead."""
    try:
        return dataclasses.replace(run, config=launch_config(run.config, run.run_dir))
    except RunFileError:
        return run


def _not_finished_in(other: Path, suite: str, runs: Sequence[RunSpec]) -> list[RunSpec]:
    """``runs`` less those finished under the results folder ``other`` (``--skip-finished-in``). A run
    there must have this launch's config (as a relaunch in place must) and the folder this launch's
    setting, since what runs here is meant to join it (``analysis.ship``); otherwise ``ValueError``."""
    if not other.is_dir():
        raise ValueError(f"--skip-finished-in: no results folder {other}")
    check_joins(other / suite, [r.config.as_dict() for r in runs])
    left, finished = [], []
    for r in runs:
        there = other / suite / r.key
        if not is_done(there):  # a damaged done.json there: RunFileError, named (neither finished nor not)
            left.append(r)
            continue
        try:
            check_config(r.config, there)
        except ValueError as e:
            raise ValueError(
                f"--skip-finished-in: {other} holds {r.key} finished under another config, so "
                f"it cannot stand for this launch's run: {e}"
            ) from None
        finished.append(r.key)
    if finished:
        print(f"{len(finished)} run(s) finished under {other} are left out: {', '.join(finished)}", flush=True)
    return left


def _warn_unreadable(suite_dir: Path, runs: Sequence[RunSpec]) -> None:
    """One line per run of the folder, not launched now, whose files cannot be read: the setting check above
    could not read it and the scores will leave it out, which a launch must say rather than stop at (a
    launched one is named by its FAILED line)."""
    launched = {r.run_dir for r in runs}
    for error in unreadable_runs(suite_dir) if suite_dir.is_dir() else []:
        if error.path.parent not in launched:
            print(f"warning: a run of the folder is left out of the scores: {error}", file=sys.stderr, flush=True)


def _execute(a: argparse.Namespace, runs: Sequence[RunSpec], launcher, suite_dir: Path) -> int:
    """Prepare, run, score, draw: the part of ``main`` a Ctrl-C may interrupt (then ``main`` says how to
    resume in one line)."""
    try:
        launcher.call(prepare, runs)
        scoring = profiles.get(runs[0].config.profile).reward_quality
        gates = (
            launcher.call(quality_gate.check, runs, scoring, a.device, a.precision)
            if quality_gate.video_methods(runs)
            else {}
        )
    except Exception as e:  # a missing dataset or model, an unwritable data root, a fault of the machine: one line
        fault = environment_fault(e, data_root(a.data_root))
        if fault is None and not isinstance(e, (ValueError, OSError)):
            raise
        print(f"error: preparing the runs' data and models failed: {fault or e}", file=sys.stderr)
        return 2
    failing = sorted(m for m, g in gates.items() if not g["pass"])
    if failing and a.require_reward_quality:
        print(
            f"error: {', '.join(failing)} failed the reward-quality gate and --require-reward-quality is set: "
            "nothing launched; train the model longer (python -m rewards.models.pretrain ... --steps N) or "
            "drop the flag",
            file=sys.stderr,
        )
        return 2
    if failing:
        print(
            f"warning: {', '.join(failing)} failed the reward-quality gate: their runs go ahead, but read "
            "their results as those of a reward that does not rank expert behaviour first",
            file=sys.stderr,
        )
    runs = [
        dataclasses.replace(r, config=dataclasses.replace(r.config, reward_quality=gates[r.config.method]))
        if r.config.method in gates
        else r
        for r in runs
    ]

    progress = Progress(runs)
    launcher.on_poll = progress.poll
    failures, busy = [], []
    started = time.monotonic()
    outcomes = launcher.launch(runs)
    try:
        for run, result in outcomes:
            if isinstance(result, BaseException):
                failures.append((run, result))
                progress.bar.write(_failure_line(run, result))
            elif "skipped" in result and result["skipped"] != "done":
                busy.append(run)  # another launch holds its lock: it is neither done nor failed
                progress.bar.write(f"BUSY {run.key}: {result['skipped']}{_lock_holder(run)}; left alone")
                continue
            progress.done += 1
    finally:
        outcomes.close()  # on Ctrl-C or an error: the launcher ends its live workers now, not at exit
        progress.close()

    scores = build_scores(suite_dir)
    print(f"scores: {suite_dir / 'scores.csv'} ({len(scores)} rows) after {time.monotonic() - started:.0f}s")
    if not a.no_figures:
        try:
            from analysis.figures import make_figures  # local import: figures only (matplotlib, seaborn, rliable)

            written = make_figures(a.suite, a.results, suite_dir / "figures")
            report = [w for w in written if str(w).endswith(".md")]
            print(f"figures: {suite_dir / 'figures'}" + (f" (report: {report[0]})" if report else ""))
        except Exception as e:  # figures must never cost the results
            print(
                f"figures could not be made ({type(e).__name__}: {e}); "
                f"run: python -m analysis.figures --suite {a.suite} --results {a.results}",
                file=sys.stderr,
            )
    if busy:
        print(
            f"{len(busy)} run(s) are being run by another process and were left alone: "
            f"{', '.join(r.key for r in busy)}; re-run the same command after it ends to include them",
            file=sys.stderr,
        )
    for kind, summary in FAILURE_SUMMARIES.items():
        keys = [r.key for r, e in failures if _failure_kind(e) == kind]
        if keys:
            print(summary.format(n=len(keys), keys=", ".join(keys)), file=sys.stderr)
    return 1 if failures or busy else 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m suites.run", description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("--suite", help="suite name (see --list)")
    p.add_argument(
        "--suite-file",
        metavar="TOML",
        help="a suite defined in a TOML file instead, e.g. suites/examples/my_suite.toml",
    )
    p.add_argument("--list", action="store_true", help="list the suites and the reward providers and exit")
    p.add_argument("--profile", help=f"one of {', '.join(profiles.PROFILES)} (default: the suite's, usually quick)")
    p.add_argument(
        "--methods",
        nargs="+",
        metavar="METHOD",
        help=f"these methods (default: the suite's): each a label of the suite or any registered "
        f"reward provider (see --list), as {METHOD_SYNTAX}, e.g. diffusion_reward:steps=5 "
        f"(label diffusion_reward-steps=5; values parse as int, float, true/false or text)",
    )
    p.add_argument(
        "--tasks",
        nargs="+",
        metavar="TASK",
        help="only these of the suite's tasks (default: the profile's; see --list)",
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        metavar="SEED",
        help="these seeds, e.g. --seeds 0 1 2 (default: 0 .. the profile's seed count - 1)",
    )
    p.add_argument("--frames", type=int, help="override every run's frame budget")
    p.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a DrQ-v2 setting of the profile, e.g. --agent batch_size=256 (repeatable); recorded in each "
        "run's config, so such runs go to their own --results folder",
    )
    p.add_argument(
        "--jobs",
        type=int,
        help="runs at a time (local: default one per GPU, else one per core, at most the number of runs; "
        "slurm: default all)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="torch threads per run (default: local CPU runs 1, so a run gives the same numbers alone or "
        "beside others; local GPU runs cores / jobs; slurm, --slurm-cpus; a resumed run keeps its own, "
        "and refuses another)",
    )
    p.add_argument("--results", default="results", help="results directory (default ./results)")
    p.add_argument("--data-root", help="datasets and models (default $VRB_DATA_ROOT or ./data)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument(
        "--precision",
        default=DEFAULT_PRECISION,
        choices=list(PRECISIONS),
        help=f"auto (bf16 where the hardware does it natively, else fp32), bf16 or fp32 (default "
        f"{DEFAULT_PRECISION}): agent, video models and their pretraining; resolved per device "
        "and recorded in every run's config",
    )
    p.add_argument("--wandb", default="off", choices=["off", "offline", "online"])
    p.add_argument("--no-figures", action="store_true", help="skip the figures at the end")
    p.add_argument(
        "--require-reward-quality",
        action="store_true",
        help="refuse to launch when a video reward's model fails the reward-quality gate (default: "
        "a failing model is reported and the runs go ahead)",
    )
    p.add_argument(
        "--skip-finished-in",
        metavar="DIR",
        help="leave out the runs finished under this other results folder with the same config, "
        "e.g. results/reference/metaworld7-quick: run only what a reference experiment lacks "
        "(then python -m analysis.ship adds them to it)",
    )

    c = p.add_argument_group(
        "launching", "where runs execute; the --slurm-* options are for the submitit launchers (slurm, submitit-local)"
    )
    c.add_argument(
        "--launcher",
        default="local",
        choices=list(LAUNCHERS),
        help="local worker processes (default), Slurm jobs through submitit, or submitit's local "
        "executor (the Slurm job path, run here)",
    )
    c.add_argument("--slurm-partition", help="Slurm partition")
    c.add_argument(
        "--slurm-time",
        type=int,
        default=24 * 60,
        metavar="MIN",
        help="time limit per job in minutes (default 1440); a run that hits it is requeued and resumes",
    )
    c.add_argument("--slurm-gpus", type=int, default=1, help="GPUs per run (default 1)")
    c.add_argument("--slurm-cpus", type=int, default=8, help="CPU cores per run, also its torch threads (default 8)")
    c.add_argument("--slurm-mem-gb", type=float, default=32, help="memory per run in GB (default 32)")
    c.add_argument(
        "--slurm-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sbatch setting by its submitit name, e.g. account=abc, qos=high, constraint=a100 (repeatable)",
    )
    c.add_argument("--slurm-logs", metavar="DIR", help="submitit job folders and logs (default RESULTS/SUITE/slurm)")
    a = p.parse_args(argv)

    if a.list:
        for s in definitions.SUITES.values():  # what --methods and --tasks accept, per suite
            print(
                f"{s.name} ({s.domain}, default profile {s.default_profile}): {s.description}\n"
                f"    methods: {' '.join(m.label for m in s.methods)}\n"
                f"    tasks:   {' '.join(s.tasks)}" + (f" (quick: {' '.join(s.quick_tasks)})" if s.quick_tasks else "")
            )
        print(
            f"reward providers (any suite takes them in --methods, as {METHOD_SYNTAX}):\n"
            f"    {' '.join(rewards.available())}"
        )
        return 0
    if bool(a.suite) == bool(a.suite_file):
        p.error(
            "give one of --suite (see --list) and --suite-file"
            if not a.suite
            else "give --suite or --suite-file, not both"
        )
    if a.threads is not None and a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    if a.frames is not None and a.frames < 1:
        p.error(f"--frames must be a positive number of frames, got {a.frames} (leave it out for the profile's budget)")
    if a.seeds is not None and min(a.seeds, default=0) < 0:
        p.error(f"--seeds must be whole numbers >= 0, got {' '.join(map(str, a.seeds))}")
    try:
        check_dir(a.results, "--results")
        check_dir(data_root(a.data_root), "--data-root" if a.data_root else "the data root", writable=False)
        suite = a.suite
        if a.suite_file:
            suite = load_suite_file(a.suite_file)
            a.suite = suite.name  # its results folder, as a built-in suite's name is
        runs = expand(
            suite,
            a.profile,
            methods=a.methods,
            tasks=a.tasks,
            seeds=a.seeds,
            results=a.results,
            device=a.device,
            wandb=a.wandb,
            data_root=a.data_root,
            frames=a.frames,
            torch_threads=a.threads,
            precision=a.precision,
            agent=agent_settings(a.agent),
        )

        for note in duplicate_notes(suite, methods=a.methods, tasks=a.tasks, seeds=a.seeds):
            print(f"note: {note}", file=sys.stderr, flush=True)  # expand ran each of them once

        check_budgets(runs)
        # before any pretraining: a run directory of another config is refused up front, and a run resumes
        # with the thread count it recorded unless --threads names one
        runs = [_launch_config(r) for r in runs]

        check_joins(Path(a.results) / a.suite, [r.config.as_dict() for r in runs])  # nor runs of another setting
        _warn_unreadable(Path(a.results) / a.suite, runs)
        if a.skip_finished_in:
            runs = _not_finished_in(Path(a.skip_finished_in), a.suite, runs)
        if a.device != "auto":
            resolve_device(a.device)
    except (ValueError, RuntimeError) as e:
        p.error(str(e))
    if not runs and a.skip_finished_in:
        print(f"nothing to run: every selected run is finished under {a.skip_finished_in}")
        return 0
    if not runs:
        p.error("nothing to run: the selection is empty")

    for line in budget_warnings(runs):
        print(f"warning: {line}", file=sys.stderr, flush=True)
    suite_dir = Path(a.results) / a.suite
    try:
        launcher = _launcher(a, suite_dir)
    except (ValueError, RuntimeError) as e:
        p.error(str(e))
    print(
        f"suite {a.suite}: {len(runs)} runs ({runs[0].config.profile} profile, {a.launcher} launcher) -> {suite_dir}",
        flush=True,
    )

    def terminated(signum, frame):  # SIGTERM (kill, a job scheduler) stops the launch as Ctrl-C does
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        before = signal.signal(signal.SIGTERM, terminated)
        # Ctrl-C must stop the launch even when this process inherited SIGINT as ignored (a parent that
        # ignores it, e.g. a shell script's background job or a test runner: Python then installs no
        # KeyboardInterrupt handler of its own, and the launch would run on).
        before_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _execute(a, runs, launcher, suite_dir)
    except KeyboardInterrupt:  # the launcher has ended its workers (their checkpoints stay): no traceback
        print("\ninterrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, before)
            signal.signal(signal.SIGINT, before_int)


if __name__ == "__main__":
    sys.exit(main())
