"""One run: DrQ-v2 + a reward provider on one task and seed, resumable (docs/protocol.md,
docs/models-and-rewards.md#rewards).

``run(config, run_dir)`` is a function of its resolved config and its run directory alone, so any
launcher (a local process pool, Slurm through submitit) can start it on any machine that sees the same
results directory. What it guarantees:

- one writer per run: an exclusive lock file (``.lock``); a second launch on the same run skips it;
- append-only ``eval.csv`` / ``train.csv``; a checkpoint (the run's config, agent, optimisers, provider,
  counters, RNG states, and the replay's episode count and sampler state) every ``checkpoint_every_frames``
  at an episode boundary, written atomically, newest two kept; the replay's episodes are written once each,
  as they end, to ``replay/ep_<index>.npz`` (compressed), so a checkpoint's size does not grow with the replay;
- a finished run keeps its CSVs, ``config.json`` and ``done.json`` and deletes its checkpoints and replay
  files, which exist only to resume it (a smoke-run checkpoint is ~30-50 MB of weights and Adam moments);
- a run directory holds one config: a relaunch whose config differs (other than ``LAUNCH_KEYS``) is refused,
  finished or not, naming the keys, so budgets or profiles never mix in one directory. Its checkpoints
  record that config too, so deleting ``config.json`` does not let one resume under another budget; and the
  thread count is part of it (it changes a CPU run's float reductions): a launch without ``--threads``
  keeps the recorded count, one with another count is refused;
- after a crash or ``kill -9`` the run resumes from its newest readable checkpoint and first trims the
  CSVs back to that checkpoint, so no row is duplicated or missing; a corrupted checkpoint is reported
  and the previous one (or a fresh start) is used;
- episode and evaluation resets take seeds derived from (run seed, episode index), so a resumed run
  sees exactly the episodes an uninterrupted one would; on the same kind of CPU, library versions and
  thread count its rows are those of an uninterrupted run, wall-clock columns aside (tests/test_suites.py);
- a replay episode file that is missing or unreadable (truncated, corrupted) costs that episode only: the
  resume warns naming the file, drops it and goes on from the checkpoint. From there the run is no longer
  bit-identical to an uninterrupted one: its replay holds fewer windows, so the same sampler state draws
  other batches, and its weights, actions and later rows differ; the env resets still take the same seeds,
  and every row up to the checkpoint stays as it was.
"""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import io
import json
import os
import random
import shutil
import sys
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

import rewards
import tasks
from common.io import atomic_torch_save, atomic_write_json, atomic_write_text, flat_keys
from common.runs import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    DONE_FILE,
    EVAL_COLUMNS,
    EVAL_FILE,
    LOCK_FILE,
    REPLAY_DIR,
    RESUME_DIRS,
    SUCCESS_RATE,
    TRAIN_COLUMNS,
    TRAIN_FILE,
    Done,
    EvalRow,
    RunConfig,
    RunFileError,
    TrainRow,
    checkpoint_path,
    list_checkpoints,
    read_config_json,
    read_done,
    run_key,
    run_problem,
)
from common.runtime import resolve_device, seed_everything
from rewards.dense import env_reward_series  # the dense oracle is given the env's shaped reward

KEEP_CHECKPOINTS = 2
# config keys that may differ between launches of one run: where and how it executes, not what it computes.
# data_root and versions warn when they change (other models, other library behaviour), the rest is silent.
# torch_threads is not one of them: the thread count changes a CPU run's float reductions, so it is part of
# what the run is (a launch that does not name one keeps the recorded one: ``launch_config``).
LAUNCH_KEYS = frozenset({"device", "wandb", "data_root", "versions", "reward_quality"})
WARN_KEYS = ("data_root", "versions")
# keys whose None in a launch's config means "not asked" (no --threads): the run's recorded value, not a change
UNASKED_KEYS = ("torch_threads",)
# the suites.run flag that sets a config key, for the way out a mismatch names ("relaunch with --frames 3000")
RELAUNCH_FLAGS = {"frames": "--frames", "torch_threads": "--threads"}


class RewardNotFiniteError(RuntimeError):
    """A learned reward came out NaN or infinite: the run stops, its last good checkpoint kept."""


class RunBusy(RuntimeError):
    """Another process holds this run's lock."""


# ------------------------------------------------------------------------------------------ files
@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    fh = open(run_dir / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(f"{run_dir} is being run by another process") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.uname().nodename} pid {os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fh.close()


class CsvLog:
    """An append-only CSV whose every row is flushed and fsync'ed before the run goes on."""

    def __init__(self, path: Path, columns: list[str]):
        self.path, self.columns = path, columns
        if not path.exists():
            atomic_write_text(path, ",".join(columns) + "\n")

    def append(self, row: dict[str, Any]) -> None:
        buf = io.StringIO()
        csv.writer(buf).writerow([_fmt(row.get(c, "")) for c in self.columns])
        with open(self.path, "a") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def trim(self, max_frame: int) -> int:
        """Drop rows after ``max_frame`` (and any torn last line); returns rows kept."""
        kept = []
        with open(self.path, newline="") as f:
            lines = f.read().splitlines()
        for line in lines[1:]:
            cells = next(csv.reader([line]), [])
            if len(cells) != len(self.columns):
                continue
            try:
                frame = int(float(cells[0]))
            except ValueError:
                continue
            if frame <= max_frame:
                kept.append(line)
        atomic_write_text(self.path, "\n".join([",".join(self.columns), *kept]) + "\n")
        return len(kept)

    def rows(self) -> int:
        with open(self.path) as f:
            return max(0, sum(1 for _ in f) - 1)


def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return v


def derived_seed(*parts: Any) -> int:
    """A 31-bit seed that is a pure function of its parts (episode resets, evaluation episodes)."""
    return zlib.crc32(json.dumps(parts).encode()) & 0x7FFFFFFF


# ----------------------------------------------------------------------------------------- the run
class Trainer:
    def __init__(self, config: RunConfig, run_dir: Path, log: Callable[[str], None]):
        import torch  # local import: torch in the training worker only

        from agents import DrQV2Agent, DrQV2Config  # local import: torch in the training worker only

        self.cfg, self.run_dir, self.log = config, Path(run_dir), log
        self.seed = config.seed
        seed_everything(self.seed)
        if config.torch_threads:
            torch.set_num_threads(int(config.torch_threads))
        self.device = resolve_device(config.device)
        self.spec = tasks.spec(config.task)
        self.env = tasks.make(config.task, seed=self.seed, image_size=config.image_size)
        self.eval_env = tasks.make(config.task, seed=self.seed + 1, image_size=config.image_size, goal_seed=self.seed)
        obs_shape = self.env.observation_space.shape
        action_dim = self.env.action_space.shape[0]
        self.agent_cfg = DrQV2Config.from_dict({**config.agent, "seed": self.seed})
        self.agent = DrQV2Agent(obs_shape, action_dim, self.agent_cfg, self.device)
        self.replay = self._new_replay()
        self._replay_first = 0  # oldest episode the newest checkpoint holds: older files are pruned
        self.provider = rewards.make(
            config.provider,
            task=config.task,
            domain=self.spec.domain,
            device=self.device,
            data_root=config.data_root,
            seed=self.seed,
            precision=config.precision,
            **config.provider_overrides,
        )
        trained_on = self.provider.params.get("trained_on") or []
        if config.zero_shot and config.task in trained_on:
            raise ValueError(
                f"zero-shot suite {config.suite!r}: the {config.provider} video model was "
                f"pretrained on {config.task!r} itself (its tasks: {', '.join(trained_on)})"
            )
        self.eval_log = CsvLog(self.run_dir / EVAL_FILE, EVAL_COLUMNS)
        self.train_log = CsvLog(self.run_dir / TRAIN_FILE, TRAIN_COLUMNS)
        # counters (checkpointed)
        self.step = 0  # agent steps
        self.episode = 0
        self.next_eval = 0
        self.next_ckpt = config.checkpoint_every_frames
        self.elapsed = 0.0  # training seconds before this process
        self.last_eval_frame = -1
        self.last_eval: dict[str, Any] | None = None
        self.wandb = _wandb_run(config, self.run_dir)

    def _new_replay(self):
        """An empty replay on the run's episode store: at the start, and again for a fresh start after a
        checkpoint that failed half-way through loading it."""
        from agents import ReplayBuffer  # local import: torch in the training worker only

        return ReplayBuffer(
            self.agent_cfg.replay_capacity,
            self.env.observation_space.shape,
            self.env.action_space.shape[0],
            self.agent_cfg.nstep,
            self.agent_cfg.discount,
            seed=self.seed,
            store=self.run_dir / REPLAY_DIR,
        )

    @property
    def frame(self) -> int:
        return self.step * self.spec.action_repeat

    @property
    def last_eval_success(self) -> float | None:
        """The success rate of the newest evaluation (checkpoints hold that row as ``last_eval``)."""
        return self.last_eval[SUCCESS_RATE] if self.last_eval else None

    # -------------------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        import torch  # local import: torch in the training worker only

        return {
            "format": 2,
            "config": self.cfg.as_dict(),  # what the run is, should its config.json go (recorded_configs)
            "frame": self.frame,
            "step": self.step,
            "episode": self.episode,
            "next_eval": self.next_eval,
            "next_ckpt": self.next_ckpt,
            "elapsed": self.elapsed,
            "last_eval_frame": self.last_eval_frame,
            "last_eval": self.last_eval,
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "provider": self.provider.state_dict(),
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        }

    def save_checkpoint(self) -> Path:
        path = checkpoint_path(self.run_dir, self.frame)
        atomic_torch_save(path, self.state())
        for old in list_checkpoints(self.run_dir)[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
        # the previous checkpoint is now the oldest kept: episode files it does not hold are never read again
        self.replay.prune_store(self._replay_first)
        self._replay_first = self.replay.first_held
        return path

    def resume(self) -> bool:
        """Load the newest checkpoint that loads; returns whether one was loaded.

        A checkpoint that cannot be read, or whose replay state does not rebuild, is reported and the
        previous one is tried; with none left the run starts over (its rows and episode files dropped). A
        checkpoint of another config is never skipped that way: ``ConfigMismatch`` stops the run. A replay
        episode whose file is unreadable costs that episode only (``_load`` warns, naming it).
        """
        import torch  # local import: torch in the training worker only

        for path in reversed(list_checkpoints(self.run_dir)):
            try:
                state = torch.load(path, map_location=self.device, weights_only=False)
            except Exception as e:  # a torn or corrupted file: say so and fall back to the previous one
                self.log(f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); trying the previous one")
                continue
            try:
                self._load(state, path)
            except ConfigMismatch:
                raise
            except (ValueError, KeyError) as e:  # a replay state its episodes do not rebuild
                self.log(f"checkpoint {path} cannot be restored ({type(e).__name__}: {e}); trying the previous one")
                continue
            kept = self.eval_log.trim(self.frame)
            self.train_log.trim(self.frame)
            self.log(f"resumed {self.run_dir} from frame {self.frame} ({kept} eval rows kept)")
            return True
        if list_checkpoints(self.run_dir):
            self.log(f"no readable checkpoint in {self.run_dir}; restarting from scratch")
            self.replay = self._new_replay()  # a failed load may have filled it half-way
        # from scratch: whatever rows a crashed first attempt wrote are dropped
        self.eval_log.trim(-1)
        self.train_log.trim(-1)
        self.replay.truncate_store(0)
        return False

    def _load(self, state: dict[str, Any], path: Path) -> None:
        """Restore a checkpoint's state: its config is checked first and the replay read back before the
        agent is touched, so a checkpoint that fails there leaves the agent as it was for the next try."""
        import torch  # local import: torch in the training worker only

        if state.get("config"):
            differ, old, new = _differences(state["config"], self.cfg)
            if differ:
                raise _refuse(self.run_dir, path, differ, old, new)
        self.replay.load_state_dict(state["replay"])  # reads its episode files, drops those written later
        for bad, why in self.replay.dropped_files:
            self.log(
                f"warning: replay episode {bad} is unreadable ({why}); it is dropped and the run resumes from "
                f"{path} without it, so its numbers from here on differ from an uninterrupted run's "
                f"(delete {self.run_dir} to start the run over instead)"
            )
        self._replay_first = self.replay.first_held
        self.agent.load_state_dict(state["agent"])
        self.provider.load_state_dict(state["provider"])
        self.step, self.episode = int(state["step"]), int(state["episode"])
        self.next_eval, self.next_ckpt = int(state["next_eval"]), int(state["next_ckpt"])
        self.elapsed = float(state["elapsed"])
        self.last_eval_frame, self.last_eval = int(state["last_eval_frame"]), state["last_eval"]
        rng = state["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"].cpu())
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])

    # ------------------------------------------------------------------------------- loop
    def evaluate(self) -> dict[str, Any]:
        successes, returns = [], []
        for i in range(self.cfg.eval_episodes):
            obs, _ = self.eval_env.reset(seed=derived_seed(self.seed, "eval", self.frame, i))
            done, success, ret = False, False, 0.0
            while not done:
                obs, r, terminated, truncated, info = self.eval_env.step(self.agent.act(obs, self.step, True))
                success |= bool(info["is_success"])
                ret += r
                done = terminated or truncated
            successes.append(success)
            returns.append(ret)
        row = dataclasses.asdict(
            EvalRow(
                frame=self.frame,
                step=self.step,
                episode=self.episode,
                success_rate=float(np.mean(successes)),
                episode_return=float(np.mean(returns)),
                time=round(self.elapsed + time.monotonic() - self._t0, 1),
            )
        )
        self.eval_log.append(row)
        if self.wandb is not None:
            self.wandb.log({f"eval/{k}": v for k, v in row.items()}, step=self.frame)
        return row

    def train_episode(self) -> dict[str, Any]:
        cfg = self.agent_cfg
        seed_steps = cfg.num_seed_frames // self.spec.action_repeat
        t_start = time.monotonic()
        obs, _ = self.env.reset(seed=derived_seed(self.seed, "train", self.episode))
        frames, actions, env_rewards, dense_rewards = [obs], [], [], []
        success, terminated, truncated = False, False, False
        metrics: dict[str, float] = {}
        bonuses = []
        while not (terminated or truncated):
            action = self.agent.act(obs, self.step, eval_mode=False)
            obs, r, terminated, truncated, info = self.env.step(action)
            frames.append(obs)
            actions.append(action)
            env_rewards.append(r)
            dense_rewards.append(info.get("dense_reward"))
            success |= bool(info["is_success"])
            self.step += 1
            if self.step >= seed_steps and self.step % cfg.update_every_steps == 0 and self.replay.num_windows > 0:
                batch = self.replay.sample(cfg.batch_size, self.device)
                bonus = self.provider.bonus(batch)
                if bonus is not None:
                    bonus = bonus.reshape(batch["reward"].shape).to(batch["reward"].dtype)
                    batch["reward"] = batch["reward"] + self.provider.bonus_scale * bonus
                    bonuses.append(float(bonus.mean()))
                metrics.update(self.provider.update(batch, self.step) or {})
                metrics.update(self.agent.update(batch, self.step))
        frames_arr = np.stack(frames)
        env_r = np.asarray(env_rewards, np.float32)

        given = env_reward_series(self.provider.env_reward, env_r, dense_rewards, self.cfg.task)
        learned = np.asarray(self.provider.label_episode(frames_arr, given), np.float32)
        if learned.shape != env_r.shape or not np.all(np.isfinite(learned)):
            raise RewardNotFiniteError(
                f"provider {self.cfg.provider!r} gave {'non-finite' if learned.shape == env_r.shape else 'mis-shaped'}"
                f" rewards on task {self.cfg.task!r}, episode {self.episode} (frame {self.frame}); "
                f"the last good checkpoint is kept in {self.run_dir / CHECKPOINT_DIR}"
            )
        discounts = np.ones_like(env_r)
        if terminated:
            discounts[-1] = 0.0
        self.replay.add_episode(frames_arr, np.stack(actions), learned, discounts)
        self.episode += 1
        dt = time.monotonic() - t_start
        row = dataclasses.asdict(
            TrainRow(
                frame=self.frame,
                step=self.step,
                episode=self.episode,
                episode_return=float(env_r.sum()),
                learned_return=float(learned.sum()),
                success=int(success),
                fps=round(len(actions) * self.spec.action_repeat / max(dt, 1e-9), 1),
                critic_loss=metrics.get("critic_loss", ""),
                actor_loss=metrics.get("actor_loss", ""),
                bonus=float(np.mean(bonuses)) if bonuses else "",
                time=round(self.elapsed + time.monotonic() - self._t0, 1),
            )
        )
        self.train_log.append(row)
        if self.wandb is not None:
            self.wandb.log({f"train/{k}": v for k, v in row.items() if v != ""}, step=self.frame)
        return row

    def run(self) -> dict[str, Any]:
        budget = self.cfg.frames
        every_eval, every_ckpt = self.cfg.eval_every_frames, self.cfg.checkpoint_every_frames
        self.resume()
        self._t0 = time.monotonic()
        while True:
            # evaluation first, then the checkpoint that covers it; always one at the final frame
            if self.frame >= self.next_eval or (self.frame >= budget and self.last_eval_frame != self.frame):
                self.last_eval = self.evaluate()
                self.last_eval_frame = self.frame
                while self.next_eval <= self.frame:
                    self.next_eval += every_eval
            if self.frame >= budget:
                break
            if self.frame >= self.next_ckpt:
                self._checkpoint(every_ckpt)
            self.train_episode()
        self._checkpoint(every_ckpt)
        done = Done(
            frame=self.frame,
            episodes=self.episode,
            eval_rows=self.eval_log.rows(),
            final_success_rate=self.last_eval_success,
            seconds=round(self.elapsed, 1),
        ).as_dict()
        atomic_write_json(self.run_dir / DONE_FILE, done)
        return done

    def _checkpoint(self, every: int) -> None:
        self.elapsed += time.monotonic() - self._t0
        self._t0 = time.monotonic()
        while self.next_ckpt <= self.frame:
            self.next_ckpt += every
        self.save_checkpoint()

    def close(self) -> None:
        self.env.close()
        self.eval_env.close()
        if self.wandb is not None:
            self.wandb.finish()


def _wandb_run(config: RunConfig, run_dir: Path):
    mode = config.wandb
    if mode == "off":
        return None
    import wandb  # local import: wandb is an optional dependency

    return wandb.init(
        project="video-reward-bench",
        mode=mode,
        dir=str(run_dir),
        config=config.as_dict(),
        name=run_key(config.method, config.task, config.seed, config.suite),
        group=config.suite,
        reinit=True,
    )


class ConfigMismatch(ValueError):
    """A run directory already holds a run (finished or not) of another config."""


def as_run_config(config: RunConfig | Mapping[str, Any]) -> RunConfig:
    """A run config, given typed or as ``config.json`` holds it (a dict: checked and upgraded the same way
    as a recorded one, ``RunConfig.from_dict``; impossible budgets and seeds are refused)."""
    return config if isinstance(config, RunConfig) else RunConfig.from_dict(config)


def checkpoint_config(path: Path) -> dict[str, Any] | None:
    """The config a checkpoint was made under (``{}`` for one made before checkpoints carried theirs), or
    None when the file cannot be read (the resume reports it and falls back). Memory-mapped: the weights
    are not read, so a launch can check every run's checkpoints before anything starts."""
    import torch  # local import: torch only where a run has checkpoints to check

    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # a torn or corrupted checkpoint (mmap of a cut file can raise OSError too)
        return None
    return dict(state.get("config") or {}) if isinstance(state, dict) else None


def recorded_configs(run_dir: str | os.PathLike) -> list[tuple[Path, dict[str, Any]]]:
    """``(file, config)`` of every record of the config ``run_dir`` was started with: its ``config.json``
    and the config each readable checkpoint carries. A checkpoint is a record of its own because
    ``config.json`` is one file a user can delete: the checkpoint it would then resume must still refuse
    another budget. A checkpoint that carries none (made before checkpoints did) counts only beside a
    ``config.json``; alone, what run it continues cannot be told, and ``ConfigMismatch`` says so."""
    run_dir = Path(run_dir)
    out = [(run_dir / CONFIG_FILE, read_config_json(run_dir))] if (run_dir / CONFIG_FILE).exists() else []
    for path in list_checkpoints(run_dir):
        recorded = checkpoint_config(path)
        if recorded:
            out.append((path, recorded))
        elif recorded is not None and not out:
            raise ConfigMismatch(
                f"checkpoint {path} records no config (it was made before a checkpoint carried one) and "
                f"{run_dir / CONFIG_FILE} is missing, so the run it continues cannot be checked: restore "
                f"{CONFIG_FILE}, or delete {run_dir} to start that run over"
            )
    return out


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], dict, dict]:
    """The dotted keys on which a recorded config and a launch's differ (``LAUNCH_KEYS`` aside, and a key of
    ``UNASKED_KEYS`` the launch leaves None), with both configs flattened for the message."""
    old_flat = flat_keys(RunConfig.upgraded(old))
    new_flat = flat_keys(as_run_config(new).as_dict())  # as config.json would hold it
    differ = sorted(
        k
        for k in old_flat.keys() | new_flat.keys()
        if k.split(".")[0] not in LAUNCH_KEYS
        and not (k in UNASKED_KEYS and new_flat.get(k) is None)
        and old_flat.get(k, "<absent>") != new_flat.get(k, "<absent>")
    )
    return differ, old_flat, new_flat


def _refuse(run_dir: Path, where: Path, differ: list[str], old: dict, new: dict) -> ConfigMismatch:
    """The one-line refusal: the keys with both values, the file that recorded them, and the ways out
    (the flags that give the recorded values back, where a flag sets them)."""
    shown = "; ".join(f"{k}: {old.get(k, '<absent>')!r} there, {new.get(k, '<absent>')!r} now" for k in differ)
    flags = " ".join(f"{RELAUNCH_FLAGS[k]} {old[k]}" for k in differ if k in RELAUNCH_FLAGS and old.get(k) is not None)
    relaunch = f"relaunch with {flags} (what it was started with), " if flags else ""
    return ConfigMismatch(
        f"{run_dir} holds a run{' (finished)' if (run_dir / DONE_FILE).exists() else ''} of another config "
        f"({', '.join(differ)} differ: {shown}; recorded in {where}). A run directory holds one config, so "
        f"results never mix: {relaunch}use another --results directory, or delete {run_dir} to start that run over"
    )


def check_config(
    config: RunConfig | Mapping[str, Any], run_dir: str | os.PathLike, log: Callable[[str], None] | None = None
) -> None:
    """Compare ``config`` with the one ``run_dir`` was started with, finished or not: its ``config.json``
    and the config each of its checkpoints carries (``recorded_configs``: deleting ``config.json`` does not
    let a checkpoint resume under another budget).

    Every key counts except ``LAUNCH_KEYS`` (device, wandb, data root, versions: they say where and with
    what the run executes and may change between launches, e.g. resuming on another node), and a
    ``torch_threads`` the launch leaves None (not asked: the recorded one is kept, ``launch_config``); a
    change of ``data_root`` or ``versions`` is logged as a warning, since a resume under them may not be
    bit-exact. Any other difference raises ``ConfigMismatch`` naming the keys (nested ones dotted, e.g.
    ``agent.batch_size``) with both values and the file that recorded them: averaging a 1000-frame run with
    a 3000-frame one, a smoke profile with a quick one, or a run whose first half ran on 1 thread and its
    second on 2, would be silent and wrong. A config recorded before some key existed compares as if it
    held the value in force then (``common.runs.ADDED_KEYS``: an fp32 run made before ``precision``
    resumes with --precision fp32 and refuses bf16, naming "precision").
    """
    _check_against(config, Path(run_dir), recorded_configs(run_dir), log)


def _check_against(
    config: RunConfig | Mapping[str, Any],
    run_dir: Path,
    records: list[tuple[Path, dict[str, Any]]],
    log: Callable[[str], None] | None,
) -> None:
    """``check_config`` on records already read (``launch_config`` reads them once for both of its uses)."""
    flattened = []
    for where, recorded in records:
        differ, old, new = _differences(recorded, config)
        if differ:
            raise _refuse(run_dir, where, differ, old, new)
        flattened.append((old, new))
    if not flattened or log is None:
        return
    old, new = flattened[0]  # warnings against the first record: config.json, or without it the oldest checkpoint
    warn = sorted(k for k in old.keys() | new.keys() if k.split(".")[0] in WARN_KEYS and old.get(k) != new.get(k))
    if warn:
        log(
            f"warning: {run_dir} was started with other {', '.join(warn)} "
            f"({'; '.join(f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in warn)}); a resume may not be bit-exact"
        )


def launch_config(
    config: RunConfig | Mapping[str, Any], run_dir: str | os.PathLike, log: Callable[[str], None] | None = None
) -> RunConfig:
    """The config a launch runs ``run_dir`` with, checked (``check_config``).

    A launch that names no thread count (``torch_threads`` None: no ``--threads``) gets the one the run
    recorded, so another ``--jobs`` (GPU runs default to cores / jobs), ``--slurm-cpus`` or launcher never
    changes a resumed run's threads behind the user's back; one that names another count is refused."""
    config = as_run_config(config)
    records = recorded_configs(run_dir)
    if config.torch_threads is None and records:
        config = dataclasses.replace(config, torch_threads=records[0][1].get("torch_threads"))
    _check_against(config, Path(run_dir), records, log)
    return config


def drop_resume_state(run_dir: Path) -> None:
    """A finished run needs neither checkpoints nor replay files: they only serve a resume. Called after
    ``done.json`` is written, so a kill in between leaves a finished run with some files to spare."""
    for name in RESUME_DIRS:
        shutil.rmtree(run_dir / name, ignore_errors=True)


def run(
    config: RunConfig | Mapping[str, Any], run_dir: str | os.PathLike, log: Callable[[str], None] | None = None
) -> dict:
    """Run (or resume, or skip) one run. Returns its done.json contents, or {"skipped": why}.

    The config is checked first, finished run or not (``launch_config``): a relaunch with another budget,
    profile or thread count on the same directory is an error, never a silent skip or mix. So are its files:
    one that is there but unreadable (``common.runs.run_problem``) raises ``RunFileError`` naming it.
    """
    run_dir = Path(run_dir)
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    config = launch_config(config, run_dir, log)
    problem = run_problem(run_dir)
    if problem is not None:  # neither resumed over nor counted as done: the damaged file is named
        raise RunFileError(problem.path, problem.problem)
    if (run_dir / DONE_FILE).exists():
        return {"skipped": "done", **read_done(run_dir)}
    try:
        with run_lock(run_dir):
            if (run_dir / DONE_FILE).exists():
                return {"skipped": "done"}
            check_config(config, run_dir)  # again under the lock: another launch may have written it
            if not (run_dir / CONFIG_FILE).exists():
                config.write(run_dir)
            trainer = Trainer(config, run_dir, log)
            try:
                done = trainer.run()
            finally:
                trainer.close()
            drop_resume_state(run_dir)
            return done
    except RunBusy as e:
        return {"skipped": str(e)}
