"""How long must the video models pretrain? Train them to growing budgets and keep each budget's model.

    python -m experiments.budget_study --domain metaworld --data-root DIR --out results/reference/reward-quality
        [--models vqdiffusion videogpt] [--budgets 1000 3000 10000 30000] [--max-cpu-hours 8] [--seed 0]

One codec (the preset's default steps), then each video model trained and *resumed* to each budget in
turn (``rewards.models.pretrain`` continues from its ``train_state.pt``, and its schedule does not depend on
the final step count, so the model at 3k steps is the 1k model trained 2k steps more, exactly as one 3k
run). After each budget the saved model (its best-by-validation EMA weights up to that step) is copied to
``<data-root>/budget_study/<model>_<preset>_l<L>/step_<N>/model.pt``, where the reward-quality command
scores it, and a row is appended to ``<out>/pretraining.csv``: budget, best step, validation loss, the
process CPU seconds of that segment and the model's cumulative CPU-hours (one torch thread: CPU time is
core time), the machine and precision. A model stops taking budgets once its cumulative CPU-hours pass
``--max-cpu-hours``, or once ``<out>/gate_passed_<model>`` exists (the reward-quality step writes it when a
budget passes the gate, so larger budgets are not spent).

Everything is resumable: a budget already in ``pretraining.csv`` with its snapshot is skipped, a killed
segment continues from the last checkpoint (every 500 steps). Models stay under ``--data-root``; only the
CSV and the models' ``history.json`` go to ``--out`` (results are shipped, weights are not).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path
from typing import Sequence

from common.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from common.runtime import DEFAULT_PRECISION, PRECISIONS, cpu_name, resolve_device, resolve_precision
from rewards.models import store
from rewards.models.pretrain import pretrain
from tasks.cli import positive_int, run_reporting_user_errors
from tasks.collect import collect
from tasks.datasets import DatasetMissingError
from tasks.registry import DOMAINS, seen_tasks

COLUMNS = (
    "model",
    "preset",
    "context",
    "budget",
    "best_step",
    "val_loss",
    "segment_cpu_s",
    "cpu_hours",
    "segment_wall_s",
    "precision",
    "seed",
    "machine",
)
DEFAULT_BUDGETS = (1000, 3000, 10000, 30000)


def snapshot_dir(ref: store.ModelRef, budget: int) -> Path:
    """Where the model at ``budget`` steps is kept (under the data root, never shipped)."""
    return Path(ref.data_root or "data") / "budget_study" / ref.name / f"step_{budget}"


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and tuple(rows[0]) != COLUMNS:
        raise ValueError(
            f"{path} has columns {list(rows[0])}, expected {list(COLUMNS)}: it was written by "
            f"another version of the study; move it away to start a new study"
        )
    return rows


def write_rows(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def study(
    domain: str,
    models: Sequence[str],
    budgets: Sequence[int],
    out: Path,
    data_root: str | None,
    preset: str = "small",
    context: int = 2,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    max_cpu_hours: float = 8.0,
    tasks: Sequence[str] | None = None,
    codec_steps: int | None = None,
    episodes: int | None = None,
    log=print,
) -> list[dict]:
    """Run (or continue) the study; returns the rows of ``pretraining.csv``. ``tasks`` (default: the domain's
    seen tasks), ``codec_steps`` (default: the preset's) and ``episodes`` (expert episodes per task, default
    the collector's) exist to make a small study for tests."""
    dev = resolve_device(device)
    precision = resolve_precision(precision, dev)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "pretraining.csv"
    rows = read_rows(csv_path)
    task_list = list(tasks) if tasks else seen_tasks(domain)
    collect(domain, task_list, episodes=episodes, root=data_root, show_progress=False)
    codec = store.ModelRef(domain, store.CODEC, preset, data_root=data_root)
    pretrain(
        codec,
        codec_steps,
        task_list,
        seed=seed,
        device=device,
        precision=precision,
        quality=False,
        progress=False,
        log=log,
    )
    for model in models:
        ref = store.ModelRef(domain, model, preset, context, data_root)
        for budget in sorted(budgets):
            done = [r for r in rows if r["model"] == model and int(r["budget"]) == budget]
            snap = snapshot_dir(ref, budget)
            if done and (snap / "model.pt").exists():
                continue
            spent = sum(float(r["segment_cpu_s"]) for r in rows if r["model"] == model) / 3600
            if spent >= max_cpu_hours:
                log(f"{model}: {spent:.2f} CPU-hours spent >= {max_cpu_hours}: no budget above this")
                break
            if (out / f"gate_passed_{model}").exists():
                log(f"{model}: passed the reward-quality gate at a smaller budget: no budget above this")
                break
            cpu, wall = time.process_time(), time.time()
            pretrain(
                ref,
                budget,
                task_list,
                seed=seed,
                device=device,
                precision=precision,
                quality=False,
                progress=False,
                log=log,
            )
            segment_cpu, segment_wall = time.process_time() - cpu, time.time() - wall
            meta = store.read_checkpoint(ref.checkpoint)["meta"]
            atomic_write_bytes(snap / "model.pt", ref.checkpoint.read_bytes())
            rows = [r for r in rows if not (r["model"] == model and int(r["budget"]) == budget)]
            rows.append(
                {
                    "model": model,
                    "preset": preset,
                    "context": context,
                    "budget": budget,
                    "best_step": meta.get("best_step"),
                    "val_loss": meta.get("val_loss"),
                    "segment_cpu_s": round(segment_cpu, 2),
                    "cpu_hours": round(spent + segment_cpu / 3600, 5),
                    "segment_wall_s": round(segment_wall, 1),
                    "precision": precision,
                    "seed": seed,
                    "machine": cpu_name(),
                }
            )
            write_rows(csv_path, rows)
            atomic_write_bytes(out / f"history_{ref.name}.json", (ref.dir / "history.json").read_bytes())
            log(
                f"{model} at {budget} steps: best step {meta.get('best_step')}, validation loss "
                f"{meta.get('val_loss'):.4f}, {segment_cpu / 3600:.2f} CPU-hours this segment"
            )
    atomic_write_json(
        out / "study.json",
        {
            "domain": domain,
            "models": list(models),
            "budgets": list(budgets),
            "preset": preset,
            "context": context,
            "seed": seed,
            "precision": precision,
            "max_cpu_hours": max_cpu_hours,
            "tasks": task_list,
        },
    )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.budget_study", description=__doc__.split("\n")[0])
    p.add_argument("--domain", default="metaworld", choices=list(DOMAINS))
    p.add_argument("--models", nargs="+", default=["vqdiffusion", "videogpt"], choices=["vqdiffusion", "videogpt"])
    p.add_argument("--budgets", nargs="+", type=positive_int, default=list(DEFAULT_BUDGETS))
    p.add_argument("--preset", default="small")
    p.add_argument("--context", type=positive_int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-cpu-hours", type=float, default=8.0, help="per model (default 8)")
    p.add_argument("--data-root", default=None, help="datasets and models (default $VRB_DATA_ROOT or ./data)")
    p.add_argument("--out", default="results/reward-quality", help="where the CSV and histories go")
    p.add_argument("--tasks", nargs="+", default=None, help="default: the domain's seen tasks")
    p.add_argument("--codec-steps", type=positive_int, default=None, help="default: the preset's")
    p.add_argument(
        "--episodes", type=positive_int, default=None, help="expert episodes per task (default: the collector's)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default=DEFAULT_PRECISION, choices=list(PRECISIONS))
    a = p.parse_args(argv)
    return run_reporting_user_errors(
        lambda: study(
            a.domain,
            a.models,
            a.budgets,
            Path(a.out),
            a.data_root,
            a.preset,
            a.context,
            a.seed,
            a.device,
            a.precision,
            a.max_cpu_hours,
            a.tasks,
            a.codec_steps,
            a.episodes,
        ),
        (store.ModelMissingError, DatasetMissingError, ValueError),
    )


if __name__ == "__main__":
    sys.exit(main())
