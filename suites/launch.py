"""Launchers: where runs execute. Each run is ``suites.train.run(config, run_dir)``, self-contained.

- ``local``: ``LocalLauncher``, one local process per run (``--jobs`` at a time, one GPU slot per run when
  GPUs exist); a killed worker fails its own run only, and workers die with the launcher; one-off work
  (``call``) runs in this process.
- ``slurm``: one Slurm job per run through submitit (``suites.submitit_launcher``), requeued and resumed
  on time limits and preemption; one-off work is a job too.
- ``submitit-local``: the same submitit path with submitit's local executor (jobs are local
  subprocesses), to try a cluster launch on a workstation.

``make_launcher(name, ...)`` builds one from ``LAUNCHERS``; a new backend is one more entry there.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from common.faults import environment_fault
from common.runs import RunConfig
from suites import train
from suites.gpus import gpu_slots
from suites.plan import RunSpec

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Launcher(Protocol):
    def launch(self, runs: Sequence[RunSpec]) -> Iterator[tuple[RunSpec, dict | BaseException]]:
        """Start the runs; yield (run, result or exception) as each one ends."""

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Do one-off work (datasets, pretraining) where the runs will run, and return its result."""


class WorkerDied(RuntimeError):
    """A run's worker process ended without a result (killed by a signal, out of memory, a crash in C).

    Only that run fails; its last checkpoint is on disk, so a re-run resumes it."""


# ------------------------------------------------------------------------------------ worker side
def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` (the launcher) dies, however it dies (``kill -9`` included).

    On Linux the kernel does it: ``PR_SET_PDEATHSIG`` sends SIGKILL when the parent exits. A thread that
    polls ``os.getppid()`` is the fallback elsewhere (and covers a parent that died before the prctl).
    Why: a run orphaned by a killed launcher would keep training (and holding its lock and ~700 MB) for
    nobody, and a relaunch would find it busy.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - every Linux libc has prctl
            pass
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watcher", daemon=True).start()


def worker_main(job_file: str, result_file: str, parent: int) -> None:
    """A run's process: ``train.run(config, run_dir)``; the result (or the exception, as an
    ``EnvironmentFault`` when the machine is at fault) goes to ``result_file``.

    The launcher reads the result file when this process ends; no file means the process died."""
    die_with_parent(parent)
    with open(job_file, "rb") as f:
        config, run_dir = pickle.load(f)
    try:
        result: Any = train.run(config, run_dir)
    except BaseException as e:  # noqa: BLE001 - handed to the launcher, which reports it
        # a full disk or a GL failure is told apart here: the pickled exception loses its chain and traceback
        result = environment_fault(e, run_dir) or e
        result.remote_traceback = traceback.format_exc()  # type: ignore[attr-defined]
    try:
        payload = pickle.dumps(result)
    except Exception:  # an exception that cannot be pickled still reaches the launcher as its text
        payload = pickle.dumps(RuntimeError(f"{type(result).__name__}: {result}"))
    tmp = result_file + ".tmp"
    with open(tmp, "wb") as f:
        f.write(payload)
    os.replace(tmp, result_file)


_WORKER_CODE = (
    "import sys; from suites.launch import worker_main; worker_main(sys.argv[1], sys.argv[2], int(sys.argv[3]))"
)


# ------------------------------------------------------------------------------------ launcher side
class _Worker:
    """One run in its own process (its own process group, so a Ctrl-C reaches only the launcher, which
    ends the workers itself), with the files its job and result travel through."""

    def __init__(self, run: RunSpec, config: RunConfig, slot: int, tmp: Path):
        self.run, self.slot = run, slot
        self.job_file, self.result_file = tmp / f"job_{id(self)}.pkl", tmp / f"result_{id(self)}.pkl"
        with open(self.job_file, "wb") as f:
            pickle.dump((config, str(run.run_dir)), f)
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE, str(self.job_file), str(self.result_file), str(os.getpid())],
            env=env,
            process_group=0,
        )

    def result(self) -> dict | BaseException:
        code = self.proc.returncode
        try:
            with open(self.result_file, "rb") as f:
                return pickle.load(f)
        except FileNotFoundError:
            pass
        except Exception as e:  # a torn result file: the worker died while writing it
            return WorkerDied(f"the worker's result could not be read ({type(e).__name__}: {e})")
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = f"the worker process was killed by {name}" + (
                " (out of memory, or killed by hand)" if -code == signal.SIGKILL else ""
            )
        else:
            why = f"the worker process exited with code {code} without a result"
        return WorkerDied(f"{why}; the run's last checkpoint is kept")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()


class LocalLauncher:
    """Runs as local processes, ``jobs`` at a time, one process per run.

    A process per run, not a shared pool: a worker that is killed or runs out of memory fails its own run
    only (a ``ProcessPoolExecutor`` fails every running and queued run with ``BrokenProcessPool``). Each
    worker dies with the launcher (``die_with_parent``), and when the launcher stops (Ctrl-C, an error,
    the caller closing the iterator) it terminates its live workers and waits for them, so no run trains
    on for nobody. Workers are fresh interpreters (no GL context or CUDA state inherited by fork).
    """

    def __init__(self, jobs: int | None = None, on_poll: Callable[[], None] | None = None, poll_seconds: float = 2.0):
        if jobs is not None and jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {jobs}")
        self.jobs, self.on_poll, self.poll_seconds = jobs, on_poll, poll_seconds
        self.workers: list[_Worker] = []  # the live ones, for tests and for stop()

    @staticmethod
    def default_jobs(n_runs: int) -> int:
        """Runs at a time when ``--jobs`` is not given: one per GPU where GPUs exist, else one per core,
        never more than there are runs."""
        return max(1, min(gpu_slots() or os.cpu_count() or 1, n_runs))

    def _placed(self, run: RunSpec, slot: int, jobs: int) -> RunConfig:
        """The run's config as this slot runs it: its GPU, and its torch threads when not set.

        On CPU a run gets one thread unless ``--threads`` says otherwise: the thread count changes the
        float reductions (a dense reach run at 6k frames gives other returns with 2 threads than with 1),
        so fixing it makes a run's numbers the same whether it runs alone or beside others, and a
        reference experiment run two at a time is reproduced by the default command."""
        config = run.config
        n_gpu = gpu_slots() if config.device in ("auto", "cuda") else 0
        if n_gpu:
            config = dataclasses.replace(config, device=f"cuda:{slot % n_gpu}")
        if not config.torch_threads:
            config = dataclasses.replace(config, torch_threads=max(1, (os.cpu_count() or 1) // jobs) if n_gpu else 1)
        return config

    def launch(self, runs: Sequence[RunSpec]) -> Iterator[tuple[RunSpec, dict | BaseException]]:
        queue = list(runs)
        jobs = self.jobs or self.default_jobs(len(queue))
        free_slots = list(range(jobs))
        with tempfile.TemporaryDirectory(prefix="vrb-launch-") as tmp:
            try:
                while queue or self.workers:
                    while queue and free_slots:
                        run, slot = queue.pop(0), free_slots.pop(0)
                        self.workers.append(_Worker(run, self._placed(run, slot, jobs), slot, Path(tmp)))
                    ended = self._wait()
                    if self.on_poll is not None:
                        self.on_poll()
                    for w in ended:
                        self.workers.remove(w)
                        free_slots.append(w.slot)
                        yield w.run, w.result()
            finally:
                self.stop()

    def _wait(self) -> list[_Worker]:
        deadline = time.monotonic() + self.poll_seconds
        while True:
            ended = [w for w in self.workers if w.proc.poll() is not None]
            if ended or time.monotonic() >= deadline:
                return ended
            time.sleep(0.05)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Terminate the live workers (SIGTERM, then SIGKILL after ``grace_seconds``) and wait for them.

        A terminated run keeps its last checkpoint, so the next launch resumes it."""
        for w in self.workers:
            w.stop()
        deadline = time.monotonic() + grace_seconds
        for w in self.workers:
            try:
                w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
        self.workers.clear()

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


def _local(jobs: int | None, on_poll: Callable[[], None] | None, options: Mapping[str, Any]) -> LocalLauncher:
    # the Slurm options (partition, time, ...) mean nothing to a local pool
    return LocalLauncher(jobs, on_poll)


def _submitit(cluster: str) -> Callable[..., Launcher]:
    def make(jobs: int | None, on_poll: Callable[[], None] | None, options: Mapping[str, Any]) -> Launcher:
        from suites.submitit_launcher import SubmititLauncher  # local import: submitit is an optional dependency

        return SubmititLauncher(jobs, on_poll, cluster=cluster, **options)

    return make


LAUNCHERS: Mapping[str, Callable[..., Launcher]] = {
    "local": _local,
    "slurm": _submitit("slurm"),
    "submitit-local": _submitit("local"),
}


def make_launcher(
    name: str, jobs: int | None = None, on_poll: Callable[[], None] | None = None, **options: Any
) -> Launcher:
    """The launcher ``name`` (see ``LAUNCHERS``); ``options`` are the submitit launchers' settings."""
    try:
        factory = LAUNCHERS[name]
    except KeyError:
        raise ValueError(f"unknown launcher {name!r}; valid launchers: {', '.join(LAUNCHERS)}") from None
    return factory(jobs, on_poll, options)
