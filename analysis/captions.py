"""The caption line printed under every figure: what its interval is, how a run's score is defined, the
budget and how many runs it rests on.

A figure travels without its report (a slide, a paper, an issue), and the suite's figures mix two kinds of
spread: the aggregates carry 95% stratified-bootstrap CIs over runs, the per-task learning curves a standard
error over seeds. A reader who cannot tell which is which, or what a "score" is, or on how many runs and
frames it rests, reads more into a gap than the numbers carry, so each figure says it in its own pixels.
The texts are built here, from the same facts for every figure, so that two figures never describe the same
statistic in two ways; the plotting functions add what only they know (a CI too narrow to draw, a left-out
panel, methods whose curves coincide).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from analysis.aggregate import LAST_N_EVALS, Selection
from analysis.consistency import folder_configs
from common.runs import CONFIG_FILE, EVAL_FILE

#: the aggregate figures' interval, in one wording
BOOTSTRAP_CI = "95% stratified-bootstrap CIs (rliable; {reps:,} resamples of the runs within each task)"
#: the per-task learning curves' band, in one wording: it is not a CI, and the caption says so
STANDARD_ERROR = (
    "shaded band: \u00b11 standard error of the mean over seeds (not a CI; the aggregate figures "
    "use 95% stratified-bootstrap CIs)"
)


@dataclass(frozen=True)
class Facts:
    """What every caption states, read once from the suite's runs."""

    frames: str  # "60,000 frames per run"
    seeds: str  # "3 seeds per task" (every run, oracles and unfinished ones included)
    runs: str  # "6 runs per method (2 tasks x 3 seeds)" (the aggregated runs)
    reps: int  # bootstrap resamples
    eval_episodes: str  # "5 evaluation episodes" ("" when the configs do not say)
    machine: str  # "AMD EPYC, CPU-only torch 2.13.0+cpu, 1 torch thread per run (<config file>; ...)"
    machine_short: str = f"machine as recorded in {CONFIG_FILE}"  # "AMD EPYC, 1 torch thread per run"
    last_n: int = LAST_N_EVALS

    @property
    def score(self) -> str:
        episodes = f" over {self.eval_episodes}" if self.eval_episodes else ""
        return f"Score of a run: its evaluation success rate{episodes}, mean of its last {self.last_n} evaluations"

    @property
    def ci(self) -> str:
        return BOOTSTRAP_CI.format(reps=self.reps)


def aggregates(f: Facts) -> str:
    return f"Bars: {f.ci}; black tick: point estimate. {f.score}. {f.frames}; {f.runs}. Oracles are not aggregated."


def improvement(f: Facts) -> str:
    return (
        f"P(X > Y): probability that a run of X scores above a run of Y on the same task (ties count 1/2), "
        f"averaged over tasks. Bars: {f.ci}; black tick: point estimate. {f.score}. {f.frames}; {f.runs}."
    )


def improvement_matrix(f: Facts) -> str:
    return (
        f"Point estimates of P(X > Y) only, no CIs (the probability-of-improvement figures carry them). "
        f"{f.score}. {f.frames}; {f.runs}."
    )


def profile(f: Facts) -> str:
    return f"Fraction of runs whose score exceeds \u03c4; shaded: {f.ci}. {f.score}. {f.frames}; {f.runs}."


def sample_efficiency(f: Facts) -> str:
    return (
        f"IQM over runs of each run's score at that frame (success rate, mean of its last {f.last_n} "
        f"evaluations at or before it); shaded: {f.ci}. {f.frames}; {f.runs}."
    )


def wall_clock(f: Facts) -> str:
    return (
        sample_efficiency(f) + " Right: the same curves against training time: x is the median over the "
        f"method's runs of the hours each took to reach that frame ({EVAL_FILE} time: the training loop with "
        "its reward labelling and evaluations, summed over resumes; reward-model pretraining not included; "
        "a run's time also depends on what else its machine ran); whisker at the last point: fastest to "
        "slowest run. "
        f"Machine: {f.machine}."
    )


def learning_curves(f: Facts) -> str:
    episodes = f" ({f.eval_episodes})" if f.eval_episodes else ""
    return (
        f"Line: mean over seeds of the success rate at each evaluation{episodes}; {STANDARD_ERROR}. "
        f"Solid: finished runs; dotted: runs still under way; dashed: oracles. {f.frames}; {f.seeds}."
    )


def runs_per_method(selection: Selection) -> str:
    """``"6 runs per method (2 tasks x 3 seeds)"``, or the count of each method when they differ."""
    if selection.empty:
        return "no aggregated runs"
    tasks = len(selection.tasks)
    per = selection.runs.groupby("method").size().reindex(selection.methods)
    if per.nunique() == 1:
        n = int(per.iloc[0])
        seeds = n // tasks
        plural = lambda k, word: f"{k} {word}{'s' if k != 1 else ''}"  # noqa: E731
        return f"{n} runs per method ({plural(tasks, 'task')} x {plural(seeds, 'seed')})"
    return f"{tasks} tasks; runs per method: " + ", ".join(f"{m} {int(n)}" for m, n in per.items())


def _configs(suite_dir: Path) -> list[dict]:
    """The configs of the suite's readable runs: a run with a damaged file is named and left out by the
    figures' command, so its config must not describe the runs drawn."""
    return [config for _, config in folder_configs(suite_dir)]


def eval_episodes(suite_dir: Path) -> str:
    """``"5 evaluation episodes"`` when every run's config says the same count, else ``""``."""
    counts = {cfg.get("eval_episodes") for cfg in _configs(suite_dir)}
    if len(counts) == 1 and isinstance(next(iter(counts)), int):
        n = next(iter(counts))
        return f"{n} evaluation episode{'s' if n != 1 else ''}"
    return ""


def _machine_parts(configs: list[dict]) -> tuple[Counter, list[str], list[int]]:
    versions = [cfg.get("versions") if isinstance(cfg.get("versions"), dict) else {} for cfg in configs]
    cpus = Counter(v.get("cpu") for v in versions if v.get("cpu"))
    torches = sorted({str(v["torch"]) for v in versions if v.get("torch")})
    threads = sorted({int(c["torch_threads"]) for c in configs if isinstance(c.get("torch_threads"), int)})
    return cpus, torches, threads


def _threads(threads: list[int]) -> str:
    return f"{'/'.join(map(str, threads))} torch thread{'s' if threads != [1] else ''} per run"


def machine_name(suite_dir: Path) -> str:
    """Short form for a panel title: ``"AMD EPYC, 1 torch thread per run"``, or, when no run recorded its
    CPU, ``"machine as recorded in config.json"``."""
    cpus, _, threads = _machine_parts(_configs(suite_dir))
    if not cpus:
        return f"machine as recorded in {CONFIG_FILE}"
    return " / ".join(sorted(cpus)) + (f", {_threads(threads)}" if threads else "")


def recorded_machine(suite_dir: Path) -> str:
    """The machine the runs recorded (``config.json``: ``versions.cpu``, the torch build, ``torch_threads``).

    Wall-clock hours mean nothing without the machine, and the runs are the only witness of it: the CPU
    name when any run recorded one (saying how many did not), whether torch was a CPU-only build, and the
    thread count. With nothing recorded the caption says so instead of guessing.
    """
    configs = _configs(suite_dir)
    cpus, torches, threads = _machine_parts(configs)
    parts = []
    if cpus:
        parts.append(" / ".join(sorted(cpus)))
    if torches:
        cpu_only = all(t.endswith("+cpu") for t in torches)
        parts.append(("CPU-only torch " if cpu_only else "torch ") + ", ".join(torches))
    if threads:
        parts.append(_threads(threads))
    if not parts:
        return f"machine as recorded in {CONFIG_FILE} (no CPU or torch build recorded)"
    missing = len(configs) - sum(cpus.values())
    note = (
        f" ({CONFIG_FILE}; {missing} of {len(configs)} runs did not record their CPU)"
        if cpus and missing
        else (f" ({CONFIG_FILE})" if cpus else f" ({CONFIG_FILE}; no run recorded its CPU)")
    )
    return ", ".join(parts) + note


def suite_facts(suite_dir: Path, frames: str, seeds: str, selection: Selection, reps: int) -> Facts:
    return Facts(
        frames=frames,
        seeds=seeds,
        runs=runs_per_method(selection),
        reps=reps,
        eval_episodes=eval_episodes(suite_dir),
        machine=recorded_machine(suite_dir),
        machine_short=machine_name(suite_dir),
    )
