"""Record expert and epsilon-greedy videos: ``python -m tasks.collect --domain metaworld``.

Experts keep successful episodes only (20 per MetaWorld task, 50 per Adroit task by default), split by
episode into train and test, each cut at its first success step (inclusive;
docs/protocol.md#expert-and-epsilon-greedy-videos: the
paper's frame totals equal the experts' first-success steps). ``--expert-tail N`` keeps N more steps after
it (``full``: up to the horizon) in a dataset of its own (``tasks.datasets.expert_kind``): the same episodes
(same env seeds) as the release's clips, longer. Epsilon-greedy episodes (a fraction epsilon of the
expert's actions replaced
by uniform random actions) are kept whatever their outcome; they serve the reward analysis.

Every episode file is a function of (task, kind, split, index) alone: expert file ``<split>/ep_<i>``
tries the env seeds ``seed_base(task, "expert", split) + 1000 * i + j`` (whatever its tail) for j = 0, 1, ...
until one succeeds. So a re-run skips what exists, re-records exactly what is missing, corrupted or of an
older format (``datasets.FORMAT``), asking for more episodes later never puts one episode in both splits,
and tasks can be recorded in parallel (``--jobs``).
"""

from __future__ import annotations

import argparse
import sys
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

import tasks as task_registry
from common.io import atomic_write, data_root
from tasks import datasets as ds
from tasks.cli import expert_tail_arg, positive_int
from tasks.experts import make_expert

DEFAULT_EXPERT_EPISODES = {"metaworld": 20, "adroit": 50}
DEFAULT_EPSILONS = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_TRIES = 50  # attempts per expert episode before giving up (pen succeeds ~80%)


def default_tasks(domain: str) -> list[str]:
    """MetaWorld: the 7 seen and 8 unseen tasks (unseen ones need videos for statistics, AMP and
    analysis, never for pretraining); Adroit: door, hammer, pen."""
    return task_registry.names(domain=domain)


def n_test(n_episodes: int) -> int:
    return max(1, n_episodes // 5) if n_episodes > 1 else 0


@dataclass
class Plan:
    domain: str
    task: str
    episodes: int
    epsilons: Sequence[float] = ()
    eps_episodes: int = 10
    root: Path = field(default_factory=data_root)
    #: epsilon-greedy files must hold the dense env reward (the reward-quality command scores the oracle on
    #: them): one recorded before it was kept is re-recorded, the same episode with the series added. Expert
    #: files are never re-recorded for it (pretraining reads them; nothing needs their dense reward)
    dense_eps: bool = False
    #: steps kept after an expert clip's first success (``tasks.datasets.check_tail``; 0: the release's clips)
    expert_tail: int | str = 0


def run_episode(env, expert, seed: int, epsilon: float, stop_after_success: int | None = None) -> ds.Episode:
    """One episode of the (epsilon-greedy) expert. ``stop_after_success`` ends it that many steps after its
    first success step (0: at it), which is all an expert clip keeps (and saves simulating the rest); None
    runs the env's whole horizon."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    frames, actions, rewards, successes, dense = [obs], [], [], [], []
    done, first = False, None
    while not done:
        action = expert.act(env.unwrapped.state)
        if epsilon > 0 and rng.random() < epsilon:
            action = rng.uniform(-1.0, 1.0, size=action.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        frames.append(obs)
        actions.append(action)
        rewards.append(reward)
        successes.append(info["is_success"])
        dense.append(info["dense_reward"])
        if first is None and info["is_success"]:
            first = len(actions)
        after = stop_after_success is not None and first is not None and len(actions) - first >= stop_after_success
        done = terminated or truncated or after
    spec = env.unwrapped.task_spec
    meta = {
        "task": spec.name,
        "domain": spec.domain,
        "seed": int(seed),
        "epsilon": float(epsilon),
        "camera": spec.camera,
        "action_repeat": spec.action_repeat,
        "success": bool(any(successes)),
        "goal_seed": int(env.unwrapped.goal_seed),
    }
    return ds.Episode(
        np.stack(frames),
        np.stack(actions),
        np.asarray(rewards, np.float32),
        np.asarray(successes, bool),
        meta,
        np.asarray(dense, np.float32),
    )


def _seed_base(task: str, kind: str, split: str) -> int:
    """The first env seed of a (task, kind, split). Every expert kind draws the seeds of ``expert``, so a tail's
    clips are the release's clips of the same episodes, continued: the two datasets differ in the tail alone."""
    key = ds.EXPERT if ds.is_expert_kind(kind) else kind
    return zlib.crc32(f"{task}/{key}/{split}".encode()) % 1_000_000 * 1000


def _needs_recording(path: Path, log, dense: bool = False) -> bool:
    if not path.exists():
        return True
    try:
        ep = ds.read_episode(path)
        if dense and ep.dense_rewards is None:
            log(f"{path} was recorded without the dense env reward; re-recording it")
            return True
        return False
    except ds.OutdatedEpisodeError as e:
        log(f"{str(e).split('; re-record')[0]}; re-recording it")
        return True
    except ValueError as e:
        log(f"{e}; re-recording it")
        return True


def expected_files(plan: Plan) -> list[tuple[Path, str, str, int, float]]:
    """(path, kind, split, index within the split, epsilon) of every file the plan should produce."""
    out = []
    test = n_test(plan.episodes)
    for i in range(plan.episodes):
        split, j = ("train", i) if i < plan.episodes - test else ("test", i - (plan.episodes - test))
        kind = ds.expert_kind(plan.expert_tail)
        d = ds.episode_dir(plan.domain, plan.task, kind, split, plan.root)
        out.append((ds.episode_path(d, j), kind, split, j, 0.0))
    for eps in plan.epsilons:
        kind = ds.eps_kind(eps)
        d = ds.episode_dir(plan.domain, plan.task, kind, root=plan.root)
        out.extend((ds.episode_path(d, i), kind, "all", i, float(eps)) for i in range(plan.eps_episodes))
    return out


def record_task(plan: Plan, progress=None, log=print) -> int:
    """Record whatever the plan lacks; returns how many files were written."""
    todo = [
        f for f in expected_files(plan) if _needs_recording(f[0], log, plan.dense_eps and not ds.is_expert_kind(f[1]))
    ]
    if progress is not None:
        progress(len(expected_files(plan)) - len(todo))
    if not todo:
        return 0
    env = task_registry.make(plan.task)
    expert = make_expert(plan.task)
    tail = ds.check_tail(plan.expert_tail)
    stop = None if tail == ds.FULL_TAIL else tail
    try:
        for path, kind, split, index, eps in todo:
            base = _seed_base(plan.task, kind, split) + 1000 * index
            if ds.is_expert_kind(kind):
                for j in range(MAX_TRIES):
                    ep = run_episode(env, expert, base + j, 0.0, stop_after_success=stop)
                    if ep.success:
                        ep = ds.clip_at_first_success(ep, tail)
                        break
                else:
                    raise RuntimeError(f"the {plan.task} expert failed {MAX_TRIES} times in a row (seeds {base}..)")
            else:
                ep = run_episode(env, expert, base, eps)
            ep.meta.update(kind=kind, split=split, index=index)
            ds.save_episode(path, ep)
            if progress is not None:
                progress(1)
    finally:
        env.close()
    return len(todo)


def _record_worker(plan: Plan) -> tuple[str, int]:
    return plan.task, record_task(plan, log=lambda m: print(m, file=sys.stderr))


def collect(
    domain: str,
    tasks: Sequence[str] | None = None,
    episodes: int | None = None,
    epsilons: Sequence[float] = (),
    eps_episodes: int = 10,
    root: str | Path | None = None,
    jobs: int = 1,
    show_progress: bool = True,
    dense_eps: bool = False,
    expert_tail: int | str = 0,
) -> Path:
    """Make sure the datasets exist; record only what is missing. Returns the domain's dataset dir.

    ``dense_eps``: epsilon-greedy files without the dense env reward count as missing (``Plan.dense_eps``).
    ``expert_tail``: the expert clips are those with that many post-success steps (``Plan.expert_tail``)."""
    expert_tail = ds.check_tail(expert_tail)
    if domain not in task_registry.DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; valid domains: {', '.join(task_registry.DOMAINS)}")
    task_list = list(tasks) if tasks else default_tasks(domain)
    for t in task_list:
        if task_registry.spec(t).domain != domain:
            raise ValueError(
                f"task {t!r} is not a {domain} task; {domain} tasks: "
                f"{', '.join(task_registry.names(domain=domain, include_optional=True))}"
            )
    n = DEFAULT_EXPERT_EPISODES[domain] if episodes is None else episodes
    for what, value in (("episodes", n), ("eps_episodes", eps_episodes), ("jobs", jobs)):
        if int(value) < 1:
            raise ValueError(f"{what} must be at least 1, got {value}")
    plans = [
        Plan(domain, t, n, tuple(epsilons), eps_episodes, data_root(root), dense_eps, expert_tail) for t in task_list
    ]
    total = sum(len(expected_files(p)) for p in plans)
    with tqdm(total=total, desc=f"collect {domain}", unit="ep", disable=not show_progress) as bar:
        if jobs <= 1:
            for p in plans:
                bar.set_postfix_str(p.task)
                record_task(p, progress=bar.update, log=bar.write)
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for plan, (task, _) in zip(plans, pool.map(_record_worker, plans)):
                    bar.set_postfix_str(task)
                    bar.update(len(expected_files(plan)))
    write_contact_sheet(domain, task_list, root, expert_tail=expert_tail)
    return ds.domain_dir(domain, root)


def contact_sheet_path(domain: str, root=None, expert_tail: int | str = 0) -> Path:
    """``contact_sheet.png`` of the release's clips, ``contact_sheet_tail<N>.png`` of a tail's."""
    return ds.domain_dir(domain, root) / f"contact_sheet{ds.tail_suffix(expert_tail)}.png"


def write_contact_sheet(
    domain: str, task_list: Sequence[str], root=None, scale: int = 2, expert_tail: int | str = 0
) -> Path:
    """First, middle and last frame of the first training episode of each task, one row a task (the clips of
    ``expert_tail``)."""
    import matplotlib  # local import: only the preview plot; Agg before pyplot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # local import: only the preview plot; Agg before pyplot

    rows = []
    for t in task_list:
        try:
            ep = ds.load_episodes(domain, [t], ds.expert_kind(expert_tail), "train", root)[0]
        except ds.DatasetMissingError:
            continue
        f = ep.frames
        rows.append((t, [f[0], f[len(f) // 2], f[-1]]))
    out = contact_sheet_path(domain, root, expert_tail)
    if not rows:
        return out
    fig, axes = plt.subplots(len(rows), 3, figsize=(3 * scale, len(rows) * scale), squeeze=False)
    for r, (t, frames) in enumerate(rows):
        for c, (fr, label) in enumerate(zip(frames, ("first", "middle", "last"))):
            ax = axes[r][c]
            ax.imshow(fr.transpose(1, 2, 0))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label)
            if c == 0:
                ax.set_ylabel(t, fontsize=9)
    fig.tight_layout()
    atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=80))
    plt.close(fig)
    return out


def _parse_epsilons(text: str) -> list[float]:
    if not text:
        return []
    if text == "default":
        return list(DEFAULT_EPSILONS)
    return [float(x) for x in text.split(",")]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tasks.collect", description=__doc__.split("\n\n")[0])
    p.add_argument("--domain", required=True, choices=task_registry.DOMAINS)
    p.add_argument("--tasks", nargs="+", help="default: every task of the domain")
    p.add_argument(
        "--episodes", type=positive_int, help="successful expert episodes per task (default 20 MetaWorld, 50 Adroit)"
    )
    p.add_argument(
        "--epsilon",
        default="",
        type=str,
        help="comma-separated epsilon-greedy levels to record as well, or 'default' for "
        + ",".join(map(str, DEFAULT_EPSILONS)),
    )
    p.add_argument("--eps-episodes", type=positive_int, default=10, help="episodes per epsilon level and task")
    p.add_argument("--data-root", help=f"default: ${'{'}VRB_DATA_ROOT{'}'} or ./data")
    p.add_argument("--jobs", type=positive_int, default=1, help="tasks recorded in parallel processes")
    p.add_argument(
        "--expert-tail",
        type=expert_tail_arg,
        default=0,
        help="steps the expert clips keep after their first success (default 0: clips end at it, as the "
        "release's; 'full': up to the horizon); a tail's clips are a dataset of their own (expert_tail<N>/)",
    )
    a = p.parse_args(argv)
    try:
        epsilons = _parse_epsilons(a.epsilon)
        out = collect(
            a.domain, a.tasks, a.episodes, epsilons, a.eps_episodes, a.data_root, a.jobs, expert_tail=a.expert_tail
        )
    except ValueError as e:
        p.error(str(e))
    print(f"datasets in {out} (contact sheet: {contact_sheet_path(a.domain, a.data_root, a.expert_tail)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
