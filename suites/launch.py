"""Launchers: where runs execute. Each run is ``suites.train.run(config, run_dir)``, self-contained.

``LocalLauncher`` runs them in a pool of local worker processes (``--jobs`` at a time, one GPU slot per
run when GPUs exist). A Slurm launcher only needs to submit the same function (submitit's
``executor.submit(train.run, config, run_dir)``) and is the next one to add to ``LAUNCHERS``.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Callable, Iterator, Protocol, Sequence

from suites.plan import RunSpec


class Launcher(Protocol):
    def launch(self, runs: Sequence[RunSpec]) -> Iterator[tuple[RunSpec, dict | BaseException]]:
        """Start the runs; yield (run, result or exception) as each one ends."""


def _worker(config: dict, run_dir: str) -> dict:
    from suites import train

    return train.run(config, run_dir)


def gpu_slots() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # pragma: no cover - torch always imports here
        return 0


class LocalLauncher:
    def __init__(self, jobs: int = 1, on_poll: Callable[[], None] | None = None, poll_seconds: float = 2.0):
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


LAUNCHERS = {"local": LocalLauncher}
