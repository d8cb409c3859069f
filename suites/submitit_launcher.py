"""Runs as Slurm jobs through submitit (or as submitit's local subprocess jobs, for trying it here).

Each run is the same self-contained call the local pool makes, ``suites.train.run(config, run_dir)``,
submitted as one job. Why it is safe on a cluster:

- the job reads and writes nothing but its run directory (and the data root for datasets and models),
  so any node that sees the results directory can run it;
- jobs are requeueable (they have submitit's ``checkpoint`` hook): on a Slurm time limit or preemption
  submitit requeues the same call, which resumes from the run's newest checkpoint (the CSVs are trimmed
  back to it, so no row is duplicated or lost);
- the per-run lock keeps a requeued job and a second launch from running one run twice;
- on Slurm all runs go in one job array, at most ``jobs`` at a time (``--jobs``; default: all), so the
  scheduler queues them and they keep running if the launching shell goes away (re-run the same command
  later to collect scores and figures); submitit's local executor has no such throttle, so there the
  launcher submits a new job only when one ends.

The heavy one-off work before the runs (expert videos, video-model pretraining) also goes through
``call``, i.e. it is one job on the cluster rather than work on the login node.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from common.faults import environment_fault
from common.runs import RunConfig
from suites import train
from suites.gpus import gpu_slots
from suites.plan import RunSpec

CLUSTERS = ("slurm", "local")


def _import_submitit():
    try:
        import submitit  # local import: submitit is an optional dependency
    except ImportError:
        raise RuntimeError("the slurm launchers need submitit: pip install 'video-reward-bench[slurm]'") from None
    return submitit


class Requeueable:
    """submitit requeues a timed-out or preempted job whose callable has ``checkpoint`` (duck typing, as
    ``submitit.helpers.Checkpointable``): we resubmit the same call, and what it calls resumes itself."""

    def checkpoint(self, *args: Any, **kwargs: Any):
        return _import_submitit().helpers.DelayedSubmission(self, *args, **kwargs)


class RunJob(Requeueable):
    """``train.run(config, run_dir)`` as a job: a requeued run resumes from its newest checkpoint. A failure of
    the machine (full disk, GL) is raised as ``common.faults.EnvironmentFault``, told apart here, since the
    exception submitit hands back has lost its chain and traceback."""

    def __call__(self, config: RunConfig, run_dir: str) -> dict:
        try:
            return train.run(config, run_dir)
        except Exception as e:
            fault = environment_fault(e, run_dir)
            if fault is None:
                raise
            raise fault from e


class CallJob(Requeueable):
    """A one-off function as a job (what it calls must be resumable: dataset collection and pretraining are)."""

    def __init__(self, fn: Callable, args: tuple, kwargs: dict):
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def __call__(self) -> Any:
        return self.fn(*self.args, **self.kwargs)


class SubmititLauncher:
    """Submit runs through ``submitit.AutoExecutor``.

    ``cluster``: "slurm" (refuses to start where there is no ``sbatch``) or "local" (submitit's
    executor that runs each job as a local subprocess: the same pickling, job folders and logs).
    ``slurm`` holds extra sbatch settings by submitit name (``partition``, ``account``, ``qos``,
    ``constraint``, ...); an unknown one is an error that lists the valid names.
    """

    def __init__(
        self,
        jobs: int | None = None,
        on_poll: Callable[[], None] | None = None,
        poll_seconds: float | None = None,
        *,
        cluster: str = "slurm",
        folder: str | Path = "slurm_logs",
        timeout_min: int = 24 * 60,
        gpus: int = 1,
        cpus: int = 8,
        mem_gb: float = 32,
        slurm: Mapping[str, Any] | None = None,
        log: Callable[[str], None] = print,
    ):
        if cluster not in CLUSTERS:
            raise ValueError(f"unknown submitit cluster {cluster!r}; valid: {', '.join(CLUSTERS)}")
        if jobs is not None and jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {jobs}")
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise RuntimeError(
                "--launcher slurm needs Slurm, but there is no sbatch on this machine; "
                "use --launcher local here (or submitit-local to try the job path)"
            )
        submitit = _import_submitit()
        self.cluster, self.jobs, self.on_poll, self.log = cluster, jobs, on_poll, log
        # asking Slurm about job states costs the scheduler; a local process is cheap to poll
        self.poll_seconds = poll_seconds if poll_seconds is not None else (30.0 if cluster == "slurm" else 1.0)
        self.folder = Path(folder)
        self.cpus = cpus
        # one folder for all jobs' pickles and logs: <job id>_<task>_log.out / .err
        self.executor = submitit.AutoExecutor(folder=str(self.folder), cluster=cluster)
        params: dict[str, Any] = dict(
            timeout_min=int(timeout_min),
            cpus_per_task=int(cpus),
            mem_gb=mem_gb,
            name="video-reward-bench",
            # the local executor hands out the GPUs this machine has
            gpus_per_node=min(int(gpus), gpu_slots()),
            slurm_gpus_per_node=int(gpus),
        )
        # submitit checks slurm_* names against sbatch's whatever the cluster, and uses them only on Slurm
        params.update({f"slurm_{k}": v for k, v in (slurm or {}).items()})
        try:
            self.executor.update_parameters(**params)
        except NameError as e:  # submitit's text lists the valid parameter names
            raise ValueError(f"bad --slurm-param: {str(e).splitlines()[0]}") from None  # the rest is submitit's aside

    # ------------------------------------------------------------------------------------ runs
    def _placed(self, run: RunSpec) -> RunConfig:
        if not run.config.torch_threads:
            return dataclasses.replace(run.config, torch_threads=self.cpus)
        return run.config  # device "auto": each job sees only its own GPU(s)

    def launch(self, runs: Sequence[RunSpec]) -> Iterator[tuple[RunSpec, dict | BaseException]]:
        queue = list(runs)
        pending: dict[Any, RunSpec] = {}
        if self.cluster == "slurm" and queue:
            # one array; Slurm keeps at most `jobs` of it running
            self.executor.update_parameters(slurm_array_parallelism=self.jobs or len(queue))
            with self.executor.batch():
                submitted = [(self.executor.submit(RunJob(), self._placed(r), str(r.run_dir)), r) for r in queue]
            pending.update({job: r for job, r in submitted})
            queue = []
            self.log(
                f"submitted {len(submitted)} runs as Slurm array {submitted[0][0].job_id.split('_')[0]}; "
                f"logs: {self.folder}"
            )
        in_flight = self.jobs or len(queue) or 1
        while queue or pending:
            while queue and len(pending) < in_flight:
                run = queue.pop(0)
                pending[self.executor.submit(RunJob(), self._placed(run), str(run.run_dir))] = run
            if self.on_poll is not None:
                self.on_poll()
            finished = [job for job in pending if job.done()]
            if not finished:
                time.sleep(self.poll_seconds)
                continue
            for job in finished:
                run = pending.pop(job)
                exc = job.exception()
                yield run, (exc if exc is not None else job.result())

    # ------------------------------------------------------------------------------------ one-off work
    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` as one job and wait for it (its output goes to the job's log)."""
        job = self.executor.submit(CallJob(fn, args, kwargs))
        self.log(f"{getattr(fn, '__name__', 'call')} runs as job {job.job_id} (log: {job.paths.stdout})")
        while not job.done():
            time.sleep(self.poll_seconds)
        return job.result()  # re-raises the job's exception, with its traceback
