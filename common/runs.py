"""The run folder: where a run's files live, what they are called, what their CSVs hold, how to read them.

``suites`` writes run folders (``suites.plan`` places them, ``suites.train`` fills them) and ``analysis``
reads them back (scores, reports, shipping, reproduction checks), often on another machine and months
later. Both sides take every name from here, so a file or column renamed here is renamed for the writer
and every reader at once; a test (tests/test_runs.py) refuses these names spelled anywhere else.

Layout (docs/interfaces.md)::

    <results>/<suite>/<method>/<task>/seed_<n>/
        config.json     the resolved run config (suites.plan), written before the run starts
        eval.csv        one row per evaluation (EVAL_COLUMNS), append-only
        train.csv       one row per training episode (TRAIN_COLUMNS), append-only
        done.json       written once the frame budget is reached: the run is finished
        error.log       the traceback of a run that failed unexpectedly (suites.run)
        .lock           held by the one process running it (host and pid inside)
        checkpoints/    ckpt_<frame>.pt, for a resume only; deleted when the run finishes
        replay/         the replay's episodes, for a resume only; deleted when the run finishes

Every run file is read through here too (``read_config_json``, ``read_done``, ``read_run_csv``), so that a
file that is there but cannot be read as written (emptied, truncated, an ``eval.csv`` row repeated or not a
number) is the same ``RunFileError`` everywhere, naming the file and what to do, and a reader of a whole
folder reads only ``readable_runs`` and names the others (``unreadable_runs``).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from common.io import as_written, atomic_write_json

#: the layout below a results folder, for messages and help texts
LAYOUT = "<suite>/<method>/<task>/seed_<s>"
SEED_PREFIX = "seed_"
CONFIG_FILE = "config.json"
DONE_FILE = "done.json"
EVAL_FILE = "eval.csv"
TRAIN_FILE = "train.csv"
CSV_FILES = (EVAL_FILE, TRAIN_FILE)
ERROR_LOG = "error.log"
LOCK_FILE = ".lock"
CHECKPOINT_DIR = "checkpoints"
REPLAY_DIR = "replay"  # the run's replay episodes, ep_<index>.npz, written once each (agents.replay)
#: what a finished run's results are (shipped to results/reference/, compared by analysis.same_runs);
#: done.json last, so a copy in this order is complete once its done.json is there
RESULT_FILES = (CONFIG_FILE, EVAL_FILE, TRAIN_FILE, DONE_FILE)
#: what exists only to resume an unfinished run
RESUME_DIRS = (CHECKPOINT_DIR, REPLAY_DIR)
_CHECKPOINT_PREFIX = "ckpt_"
_SEED_DIR = re.compile(rf"^{SEED_PREFIX}(\d+)$")


# ------------------------------------------------------------------------------------- unreadable files
class RunFileError(ValueError):
    """A run file that is there but cannot be read as this schema says: an empty or truncated JSON, an
    ``eval.csv`` row that is not a finite number, a frame evaluated twice. Nothing can tell which of the
    run's numbers are still right, so no reader repairs it: the message names the file and what to do, a
    reader of one run raises it, and a reader of a whole folder leaves that run out and says so
    (``unreadable_runs``) instead of stopping at it.

    ``path`` and ``problem`` are its arguments (so it survives the pickling that brings a worker's
    exception back to the launcher)."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(str(path), problem)
        self.path, self.problem = Path(path), problem

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.problem}; delete {self.path.parent} to re-run that run, "
            "or restore the file from a copy"
        )


def _read_text(path: Path) -> str:
    """A run file's text; ``FileNotFoundError`` as it is (a file not written yet), any other failure to read
    it (not text, a directory, no permission) as ``RunFileError``."""
    try:
        return path.read_text()
    except FileNotFoundError:
        raise
    except UnicodeDecodeError:
        raise RunFileError(path, "not text (binary bytes in it)") from None
    except OSError as e:
        raise RunFileError(path, f"cannot be read ({e.strerror or e})") from None


def _read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in a run's ``config.json`` or ``done.json``; ``RunFileError`` when it is empty, cut
    short or not an object. Both are written atomically, so such a file was damaged after it was written."""
    text = _read_text(path)
    if not text.strip():
        raise RunFileError(path, "the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RunFileError(path, f"not valid JSON ({e.msg}: line {e.lineno} column {e.colno}; cut short?)") from None
    if not isinstance(data, dict):
        raise RunFileError(path, f"holds a JSON {type(data).__name__}, not an object")
    return data


# ------------------------------------------------------------------------------------------- CSV rows
@dataclass(frozen=True)
class EvalRow:
    """One evaluation: the mean over ``eval_episodes`` episodes at ``frame`` (a row of ``eval.csv``)."""

    frame: int
    step: int
    episode: int
    success_rate: float
    episode_return: float
    time: float  # training seconds so far, over resumes


@dataclass(frozen=True)
class TrainRow:
    """One training episode (a row of ``train.csv``); ``""`` where a value does not exist yet (losses
    before the first update, the bonus of a provider without one)."""

    frame: int
    step: int
    episode: int
    episode_return: float  # the env's (sparse) return
    learned_return: float  # the return of the reward the agent learned from
    success: int
    fps: float
    critic_loss: float | str
    actor_loss: float | str
    bonus: float | str
    time: float


EVAL_COLUMNS = [f.name for f in fields(EvalRow)]
TRAIN_COLUMNS = [f.name for f in fields(TrainRow)]
#: the coordinate both CSVs are indexed by (their first column), and the columns readers pick by name
FRAME = "frame"
SUCCESS_RATE = "success_rate"
EVAL_TIME = "time"  # eval.csv's training seconds so far (a coordinate: sample efficiency against hours)
LEARNED_RETURN = "learned_return"
TRAIN_SUCCESS = "success"
#: bookkeeping columns of eval.csv that are coordinates, not metrics
NON_METRIC_COLUMNS = ("frame", "step", "time")
#: columns that measure the machine's speed, not the run: two otherwise identical runs differ only there
WALL_CLOCK_COLUMNS = ("fps", "time")
assert EVAL_COLUMNS[0] == TRAIN_COLUMNS[0] == FRAME and {SUCCESS_RATE, EVAL_TIME} <= set(EVAL_COLUMNS)
assert {LEARNED_RETURN, TRAIN_SUCCESS} <= set(TRAIN_COLUMNS)
assert set(NON_METRIC_COLUMNS) <= set(EVAL_COLUMNS) and set(WALL_CLOCK_COLUMNS) <= set(TRAIN_COLUMNS)


# ------------------------------------------------------------------------------------------ done.json
@dataclass(frozen=True)
class Done:
    """What ``done.json`` records of a finished run. ``seconds`` is the training time summed over resumes
    (None in a done.json written before it was recorded)."""

    frame: int
    episodes: int
    eval_rows: int
    final_success_rate: float | None
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def read_done(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """A run's ``done.json`` as written; None while the run is unfinished (no such file).

    A done.json that is there but unreadable raises ``RunFileError``: counting that run as finished would
    aggregate a run nobody can vouch for, and counting it as unfinished would hide that its results were
    damaged."""
    try:
        return _read_json_object(Path(run_dir) / DONE_FILE)
    except FileNotFoundError:
        return None


def is_done(run_dir: str | os.PathLike) -> bool:
    """Whether a run has finished its frame budget: its ``done.json`` is there and readable (``RunFileError``
    when it is there but unreadable, see ``read_done``)."""
    return read_done(run_dir) is not None


def read_config_json(run_dir: str | os.PathLike) -> dict[str, Any]:
    """A run's ``config.json`` as written, a plain dict (``RunConfig.load`` gives it typed and upgraded);
    ``FileNotFoundError`` before it is written, ``RunFileError`` when it is there but not a JSON object."""
    return _read_json_object(Path(run_dir) / CONFIG_FILE)


# ---------------------------------------------------------------------------------------- the run config
#: keys added to run configs since runs were first recorded, with the value every run recorded before them
#: ran with (not today's default): no zero-shot suite existed before ``zero_shot``; no video model was
#: pretrained before ``pretrain_steps``/``expert_episodes`` (None: the defaults); model-quality reports were
#: always written before ``model_reports``; every run was fp32 before ``precision``. ``precision_requested``
#: came with ``auto``: a config without it asked for what it ran (``_upgrade``); no run was gated on its
#: video model's reward quality before ``reward_quality``.
ADDED_KEYS: Mapping[str, Any] = {
    "zero_shot": False,
    "pretrain_steps": None,
    "expert_episodes": None,
    "model_reports": True,
    "precision": "fp32",
    "reward_quality": None,
}
ADDED_AGENT_KEYS: Mapping[str, Any] = {"precision": "fp32"}
#: the dense-reward rule of a run recorded before runs named theirs (``dense_reward``): gymnasium-robotics
#: 1.4.2's own v1 reward, whose hand-to-object term has the wrong sign on these Adroit tasks (their
#: ``tasks.registry.TaskSpec.dense_reward`` is now the release's rule); every other task's rule is unchanged
UNRECORDED_DENSE_REWARD = "gymnasium_robotics_v1"
DENSE_RULE_CHANGED_TASKS = frozenset({"door", "hammer", "relocate"})


def uses_video_model(config: Mapping[str, Any]) -> bool:
    """Whether a run's reward learns from a pretrained video model. The planner gives exactly those providers
    the profile's model size (``provider_overrides["preset"]``), so the config says it without loading the
    provider."""
    return "preset" in (config.get("provider_overrides") or {})


def _upgrade(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run config of any age with the keys of today's (``ADDED_KEYS``), as plain JSON values. A run without a
    video model records no pretraining budget (None); runs recorded before that rule carry their profile's,
    which their numbers never depended on, so it reads as None too: a sparse run of a 1,000-step launch is the
    same run under a 10,000-step one."""
    old = as_written(dict(config))
    out = {**ADDED_KEYS, **old}
    if not uses_video_model(out):
        out["pretrain_steps"] = None
    out.setdefault("precision_requested", out["precision"])
    if "task" in out:  # so an old Adroit run never passes for one of today's rule
        out.setdefault("dense_reward", UNRECORDED_DENSE_REWARD if out["task"] in DENSE_RULE_CHANGED_TASKS else "env")
    if isinstance(old.get("agent"), dict):
        out["agent"] = {**ADDED_AGENT_KEYS, **old["agent"]}
    return out


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs and records (its full config, versions and seed;
    docs/interfaces.md#runs-and-results), built by
    ``suites.plan`` and written to ``config.json`` before the run starts; ``suites.train`` reads nothing else.

    ``config.json`` holds exactly these keys (``as_dict``); :meth:`from_dict` reads a config of any age
    (missing keys get the value in force before they existed, ``ADDED_KEYS``) and refuses unknown or
    missing ones naming the valid keys. ``agent`` is ``agents.DrQV2Config`` as a dict (without its seed).
    """

    suite: str
    zero_shot: bool
    method: str
    provider: str
    provider_overrides: Mapping[str, Any]
    task: str
    domain: str
    seed: int
    profile: str
    frames: int
    action_repeat: int
    horizon: int
    camera: str
    dense_reward: str  # the rule of the shaped reward the dense oracle learns from (TaskSpec.dense_reward)
    image_size: int
    eval_every_frames: int
    eval_episodes: int
    checkpoint_every_frames: int
    # what the provider's models and data were made with (a record; prepare reads the request)
    model_preset: str
    pretrain_steps: int | Mapping[str, int] | None  # one budget, or {model kind: steps} (PrepareRequest.budget)
    expert_episodes: int | None
    model_reports: bool
    agent: Mapping[str, Any]
    precision: str  # resolved: "fp32" | "bf16"
    precision_requested: str  # as asked: "auto" | "bf16" | "fp32"
    # where and how it executes (suites.train.LAUNCH_KEYS: may change between launches of one run), except
    # torch_threads: the thread count changes a CPU run's numbers, so a resume keeps it (None: not asked)
    device: str
    wandb: str
    data_root: str | None
    torch_threads: int | None
    versions: Mapping[str, Any]
    # the reward-quality gate's verdict on the method's video model at launch (suites.quality_gate; None:
    # no video model, or recorded before the gate): a record, not part of what the run is
    reward_quality: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        """Refuse budgets and seeds no run can have (a budget of 0 frames would make a finished, empty run);
        a data root given as a path is kept as ``config.json`` holds it, a string."""
        if self.data_root is not None:
            object.__setattr__(self, "data_root", str(self.data_root))
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or self.frames <= 0:
            raise ValueError(f"config 'frames' must be a positive whole number of frames, got {self.frames!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"config 'seed' must be a whole number >= 0, got {self.seed!r}")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "RunConfig":
        """A config as ``config.json`` holds it (of any age: see ``ADDED_KEYS``), typed."""
        d = _upgrade(config)
        unknown, missing = sorted(set(d) - set(cls.keys())), sorted(set(cls.keys()) - set(d))
        if unknown or missing:
            raise ValueError(
                f"not a run config: {'unknown keys ' + ', '.join(unknown) if unknown else ''}"
                f"{'; ' if unknown and missing else ''}"
                f"{'missing keys ' + ', '.join(missing) if missing else ''}; "
                f"valid keys: {', '.join(cls.keys())}"
            )
        return cls(**d)

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> "RunConfig":
        """The config ``run_dir`` was started with, upgraded to today's keys; ``RunFileError`` naming the file
        when it is not a run config (unreadable, keys missing, a budget of no frames)."""
        config = read_config_json(run_dir)
        try:
            return cls.from_dict(config)
        except (ValueError, TypeError) as e:
            raise RunFileError(Path(run_dir) / CONFIG_FILE, str(e)) from None

    @staticmethod
    def upgraded(config: Mapping[str, Any]) -> dict[str, Any]:
        """A recorded config as a dict with today's keys (for comparing it key by key with a new one)."""
        return _upgrade(config)

    def as_dict(self) -> dict[str, Any]:
        """What ``config.json`` holds: the fields as plain JSON values (mappings as dicts)."""
        return as_written({f.name: getattr(self, f.name) for f in fields(self)})

    def write(self, run_dir: str | os.PathLike) -> Path:
        """Write ``config.json`` (atomically)."""
        return atomic_write_json(Path(run_dir) / CONFIG_FILE, self.as_dict())

    @property
    def key(self) -> str:
        return run_key(self.method, self.task, self.seed)


# ----------------------------------------------------------------------------------------- the layout
def run_key(method: str, task: str, seed: int, suite: str | None = None) -> str:
    """``<method>/<task>/seed_<n>`` (``<suite>/...`` with ``suite``): a run's name, its path below the
    suite (or results) folder."""
    key = f"{method}/{task}/{SEED_PREFIX}{int(seed)}"
    return key if suite is None else f"{suite}/{key}"


def run_dir(results: str | os.PathLike, suite: str, method: str, task: str, seed: int) -> Path:
    """Where a run lives: ``<results>/<suite>/<method>/<task>/seed_<n>``."""
    return Path(results) / run_key(method, task, seed, suite)


@dataclass(frozen=True)
class RunDir:
    """One run directory, identified by its place in the layout."""

    method: str
    task: str
    seed: int
    path: Path

    @property
    def key(self) -> str:
        return run_key(self.method, self.task, self.seed)


def find_runs(suite_dir: str | os.PathLike) -> list[RunDir]:
    """Every ``<method>/<task>/seed_<n>/`` directory under ``suite_dir``, in a stable order.

    The path names are the identity of a run (they always exist, even before ``config.json`` is
    written); directories that do not follow the layout (``figures/``, hidden ones) are ignored.
    """
    suite_dir = Path(suite_dir)
    runs = []
    for path in suite_dir.glob(f"*/*/{SEED_PREFIX}*"):
        m = _SEED_DIR.match(path.name)
        method, task = path.parent.parent.name, path.parent.name
        if not m or not path.is_dir() or method.startswith(".") or task.startswith("."):
            continue
        runs.append(RunDir(method, task, int(m.group(1)), path))
    return sorted(runs, key=lambda r: (r.method, r.task, r.seed))


def find_results(root: str | os.PathLike, configured: bool = True) -> dict[str, Path]:
    """``<suite>/<method>/<task>/seed_<n>`` -> run directory for every run below a results folder ``root``
    (only those with a ``config.json`` unless ``configured`` is False), sorted by key."""
    root = Path(root)
    return {
        run_key(r.method, r.task, r.seed, suite.name): r.path
        for suite in sorted(p for p in root.iterdir() if p.is_dir())
        for r in find_runs(suite)
        if not configured or (r.path / CONFIG_FILE).is_file()
    }


def checkpoint_path(run_dir: str | os.PathLike, frame: int) -> Path:
    """The checkpoint of ``run_dir`` at ``frame`` (zero-padded, so names sort as frames do)."""
    return Path(run_dir) / CHECKPOINT_DIR / f"{_CHECKPOINT_PREFIX}{int(frame):010d}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """A run's checkpoints, oldest first."""
    ckpts = (Path(run_dir) / CHECKPOINT_DIR).glob(f"{_CHECKPOINT_PREFIX}*.pt")
    return sorted(ckpts, key=lambda p: int(p.stem.split("_")[1]))


# ------------------------------------------------------------------------------------------ reading CSVs
def _complete_lines(path: Path) -> str:
    """A run CSV's text up to its last newline ("" for a missing file): a last line without its newline
    is a row still being written (or torn by a crash), not a row yet."""
    try:
        text = _read_text(path)
    except FileNotFoundError:
        return ""
    return text[: text.rfind("\n") + 1]


def read_run_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a run's append-only ``eval.csv`` or ``train.csv``, which another process may be writing now.

    A last line without its newline is a row still being written: it is dropped rather than parsed
    into a wrong (truncated) number. Returns an empty frame for a missing or header-only file.

    ``eval.csv`` is what every score is computed from, so it is checked row by row (``_eval_table``) and
    a file that breaks the schema raises ``RunFileError`` naming the line, never a repaired table. In
    ``train.csv`` (a record of training, not scored) values are coerced to numbers where the column is
    numeric and rows without a frame are dropped; a file that is not a CSV with a frame column raises.
    """
    path = Path(path)
    text = _complete_lines(path)
    if path.name == EVAL_FILE:
        return _eval_table(path, text)
    if not text.strip():
        return pd.DataFrame()
    try:
        df = pd.read_csv(io.StringIO(text), on_bad_lines="skip")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise RunFileError(path, f"not a CSV ({e})") from None
    if FRAME not in df.columns:
        raise RunFileError(path, f"no {FRAME!r} column (columns: {', '.join(map(str, df.columns))})")
    df[FRAME] = pd.to_numeric(df[FRAME], errors="coerce")
    return df.dropna(subset=[FRAME]).astype({FRAME: "int64"})


#: eval.csv columns that count things (whole numbers >= 0); the others are measurements (finite floats)
_EVAL_COUNTS = ("frame", "step", "episode")
assert set(_EVAL_COUNTS) <= set(EVAL_COLUMNS)


def _eval_table(path: Path, text: str) -> pd.DataFrame:
    """``eval.csv``'s complete rows as a typed table, each checked: the header holds ``EVAL_COLUMNS`` (and
    maybe more metrics), every value is a finite number (counts whole, the success rate within 0-1; another
    metric may be blank where it was not measured), frames strictly increase. The runner writes it so; a
    file that differs was edited or damaged, and its last-3 score would be wrong without a sign (a repeated
    row counts twice, a NaN one shifts the window), so it raises ``RunFileError`` naming the first bad line."""
    lines = text.splitlines()
    if not lines:
        return pd.DataFrame(columns=EVAL_COLUMNS)
    header = next(csv.reader(lines[:1]))
    problem = _header_problem(header)
    if problem:
        raise RunFileError(path, problem)
    at = header.index(FRAME)
    rows: list[list[float]] = []
    for number, cells in enumerate(csv.reader(lines[1:]), start=2):
        rows.append(_eval_values(path, number, header, cells))
        if len(rows) > 1 and rows[-1][at] <= rows[-2][at]:
            frame, before = int(rows[-1][at]), int(rows[-2][at])
            raise RunFileError(
                path,
                f"line {number}: frame {frame} "
                + ("is evaluated twice" if frame == before else f"comes after frame {before}")
                + " (the runner appends one row per evaluation, frames increasing)",
            )
    table = pd.DataFrame(rows, columns=header, dtype="float64")
    return table.astype({c: "int64" for c in _EVAL_COUNTS})


def _header_problem(header: list[str]) -> str | None:
    """What is wrong with an ``eval.csv`` header (None: nothing): a column of ``EVAL_COLUMNS`` it lacks, or a
    column named twice (which would make one of them unreadable by name)."""
    missing = [c for c in EVAL_COLUMNS if c not in header]
    twice = sorted({c for c in header if header.count(c) > 1})
    why = [f"no {', '.join(missing)} column"] if missing else []
    why += [f"{', '.join(twice)} named twice"] if twice else []
    return f"{'; '.join(why)} (its header: {','.join(header)}; expected {','.join(EVAL_COLUMNS)})" if why else None


def _eval_values(path: Path, number: int, header: list[str], cells: list[str]) -> list[float]:
    """The numbers of ``eval.csv``'s line ``number``, or ``RunFileError`` naming the line and the value."""
    if len(cells) != len(header):
        raise RunFileError(path, f"line {number} has {len(cells)} values, not {len(header)} ({','.join(cells)})")
    values = []
    for column, cell in zip(header, cells):
        if column not in EVAL_COLUMNS and not cell.strip():
            values.append(math.nan)  # a metric of its own that this evaluation did not measure
            continue
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise RunFileError(path, f"line {number}: {column} is {cell!r}, not a finite number")
        if column in _EVAL_COUNTS and (value < 0 or value != int(value)):
            raise RunFileError(path, f"line {number}: {column} is {cell!r}, not a whole number >= 0")
        if column == SUCCESS_RATE and not 0 <= value <= 1:
            raise RunFileError(path, f"line {number}: {column} is {cell!r}, not a rate between 0 and 1")
        values.append(value)
    return values


# ------------------------------------------------------------------------------------ a folder's runs
def run_problem(run_dir: str | os.PathLike) -> RunFileError | None:
    """The error of the first of a run's result files that is there but unreadable (``config.json`` or
    ``done.json`` not a JSON object, ``eval.csv`` off its schema, ``train.csv`` not a CSV); None when every
    one reads. The config is read as the analysis reads it, a dict (``RunConfig.load`` refuses as well one
    that is not a run config). Files not written yet are no problem: an unfinished run is not a damaged one.

    A figure or a launch reads a folder's runs several times (settings, scores, status, captions); each run
    is checked once per change of its files (their size and time stamp), not once per reader."""
    run_dir = Path(run_dir)
    return _checked(run_dir, tuple(_stamp(run_dir / name) for name in RESULT_FILES))


def _stamp(path: Path) -> tuple[int, int] | None:
    """(size, modification time) of a file, None when it is not there: what changes when it is written."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=4096)
def _checked(run_dir: Path, stamps: tuple) -> RunFileError | None:
    """``run_problem`` of ``run_dir`` as its files were when stamped ``stamps`` (the cache key)."""
    try:
        if (run_dir / CONFIG_FILE).exists():
            read_config_json(run_dir)
        read_done(run_dir)
        for name in CSV_FILES:
            read_run_csv(run_dir / name)
    except RunFileError as e:
        return e
    return None


def readable_runs(suite_dir: str | os.PathLike) -> list[RunDir]:
    """``find_runs`` less the runs with an unreadable file: what every reader of a whole suite folder reads,
    so that one damaged run never stops the others' scores, figures or launch checks (``unreadable_runs``
    names the ones left out)."""
    return [r for r in find_runs(suite_dir) if run_problem(r.path) is None]


def unreadable_runs(suite_dir: str | os.PathLike) -> list[RunFileError]:
    """The errors of the runs ``readable_runs`` leaves out, one per run, for the one line each that a
    reader of the folder prints."""
    return [e for e in map(run_problem, (r.path for r in find_runs(suite_dir))) if e is not None]


def last_row(path: str | os.PathLike) -> dict[str, str] | None:
    """The newest complete row of a run CSV as ``{column: text}``, None when there is none yet.

    Cheap enough to poll (a progress bar reads it every second): the file is not parsed into a table. A
    last line with another number of cells than the header (torn by a crash) gives None.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 2:
        return None
    header, last = lines[0].split(","), lines[-1].split(",")
    return dict(zip(header, last)) if len(last) == len(header) else None
