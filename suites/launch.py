"""Launchers: where runs execute. Each run is ``suites.train.run(config, run_dir)``, self-contained.

- ``local``: ``LocalLauncher``, a pool of local worker processes (``--jobs`` at a time, one GPU slot per
  run when GPUs exist); one-off work (``call``) runs in this process.
- ``slurm``: one Slurm job per run through submitit (``suites.submitit_launcher``), requeued and resumed
  on time limits and preemption; one-off work is a job too.
- ``submitit-local``: the same submitit path with submitit's local executor (jobs are local
  subprocesses), to try a cluster launch on a workstation.

``make_launcher(name, ...)`` builds one from ``LAUNCHERS``; a new backend is one more entry there.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from suites.gpus import gpu_slots
from suites.plan import RunSpec


class Launcher(Protocol):
    def launch(self, runs: Sequence[RunSpec]) -> Iterator[tuple[RunSpec, dict | BaseException]]:
        """Start the runs; yield (run, result or exception) as each one ends."""

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Do one-off work (datasets, pretraining) where the runs will run, and return its result."""


def _worker(config: dict, run_dir: str) -> dict:
    from suites import train

    return train.run(config, run_dir)


class LocalLauncher:
    def __init__(self, jobs: int | None = 1, on_poll: Callable[[], None] | None = None, poll_seconds: float = 2.0):
        jobs = 1 if jobs is None else jobs
        if jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {jobs}")
        self.jobs, self.on_poll, self.poll_seconds = jobs, on_poll, poll_seconds

    def _placed(self, run: RunSpec, slot: int) -> dict:
        config = dict(run.config)
        n_gpu = gpu_slots() if config.get("device", "auto") in ("auto", "cuda") else 0
        if n_gpu:
            config["device"] = f"cuda:{slot % n_gpu}"
        if not config.get("torch_threads"):
            config["torch_threads"] = max(1, (os.cpu_count() or 1) // self.jobs)
        return config

    def launch(self, runs: Sequence[RunSpec]) -> Iterator[tuple[RunSpec, dict | BaseException]]:
        # spawn: a fresh interpreter per worker, so no GL context or CUDA state is inherited by fork
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx) as pool:
            pending: dict[Future, RunSpec] = {}
            queue = list(runs)
            free_slots = list(range(self.jobs))
            slot_of: dict[Future, int] = {}
            while queue or pending:
                while queue and free_slots:
                    run, slot = queue.pop(0), free_slots.pop(0)
                    fut = pool.submit(_worker, self._placed(run, slot), str(run.run_dir))
                    pending[fut], slot_of[fut] = run, slot
                done, _ = wait(list(pending), timeout=self.poll_seconds, return_when=FIRST_COMPLETED)
                if self.on_poll is not None:
                    self.on_poll()
                for fut in done:
                    run = pending.pop(fut)
                    free_slots.append(slot_of.pop(fut))
                    exc = fut.exception()
                    yield run, (exc if exc is not None else fut.result())

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


def _local(jobs: int | None, on_poll: Callable[[], None] | None, options: Mapping[str, Any]) -> LocalLauncher:
    # the Slurm options (partition, time, ...) mean nothing to a local pool
    return LocalLauncher(jobs, on_poll)


def _submitit(cluster: str) -> Callable[..., Launcher]:
    def make(jobs: int | None, on_poll: Callable[[], None] | None, options: Mapping[str, Any]) -> Launcher:
        from suites.submitit_launcher import SubmititLauncher  # submitit is an optional dependency

        return SubmititLauncher(jobs, on_poll, cluster=cluster, **options)

    return make


LAUNCHERS: Mapping[str, Callable[..., Launcher]] = {
    "local": _local,
    "slurm": _submitit("slurm"),
    "submitit-local": _submitit("local"),
}


def make_launcher(name: str, jobs: int | None = None, on_poll: Callable[[], None] | None = None,
                  **options: Any) -> Launcher:
    """The launcher ``name`` (see ``LAUNCHERS``); ``options`` are the submitit launchers' settings."""
    try:
        factory = LAUNCHERS[name]
    except KeyError:
        raise ValueError(f"unknown launcher {name!r}; valid launchers: {', '.join(LAUNCHERS)}") from None
    return factory(jobs, on_poll, options)
