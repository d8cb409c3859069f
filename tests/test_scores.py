"""analysis.scores: the long scores table, its atomic rebuild, staleness, and run status."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.scores import SCORE_COLUMNS, build_scores, load_scores, read_run_csv, run_status

EVAL_HEADER = "frame,step,episode,success_rate,episode_return,time"


def write_run(
    suite_dir: Path,
    method: str,
    task: str,
    seed: int,
    success: list[float],
    every: int = 1000,
    budget: int | None = None,
    done: bool = True,
    extra: dict | None = None,
) -> Path:
    """A run directory as the runner writes it: config.json, eval.csv (one row per eval), done.json."""
    run = suite_dir / method / task / f"seed_{seed}"
    run.mkdir(parents=True, exist_ok=True)
    frames = [i * every for i in range(len(success))]
    budget = budget if budget is not None else frames[-1]
    cfg = {
        "suite": suite_dir.name,
        "method": method,
        "task": task,
        "seed": seed,
        "frames": budget,
        "domain": "metaworld",
    }
    (run / "config.json").write_text(json.dumps(cfg))
    header = EVAL_HEADER + "".join(f",{k}" for k in (extra or {}))
    lines = [header]
    for i, (f, s) in enumerate(zip(frames, success)):
        cols = [f, f // 2, 10 * i, s, 50.0 * s, 1.5 * i] + [v[i] for v in (extra or {}).values()]
        lines.append(",".join(str(c) for c in cols))
    (run / "eval.csv").write_text("\n".join(lines) + "\n")
    if done:
        (run / "done.json").write_text(json.dumps({"frames": budget}))
    return run


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    d = tmp_path / "results" / "toy"
    write_run(d, "sparse", "reach", 0, [0.0, 0.1, 0.2, 0.3], extra={"reward_mean": [1.0, 2.0, 3.0, 4.0]})
    write_run(d, "sparse", "reach", 1, [0.0, 0.0, 0.1, 0.1])
    write_run(d, "rnd", "reach", 0, [0.0, 0.5], budget=3000, done=False)
    return d


def test_build_scores_long_form_and_file(suite: Path):
    scores = build_scores(suite)
    assert list(scores.columns) == SCORE_COLUMNS
    # every numeric column except frame/step/time is a metric, extra columns included
    assert set(scores["metric"]) == {"episode", "success_rate", "episode_return", "reward_mean"}
    sr = scores[(scores.method == "sparse") & (scores.seed == 0) & (scores.metric == "success_rate")]
    assert sr["frame"].tolist() == [0, 1000, 2000, 3000]
    assert sr["value"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    # rnd has no reward_mean column: no such rows, no NaN rows
    assert scores["value"].notna().all()
    assert not ((scores.method == "rnd") & (scores.metric == "reward_mean")).any()
    # 4 metrics x 4 evals + 3 x 4 + 3 x 2
    assert len(scores) == 16 + 12 + 6
    on_disk = pd.read_csv(suite / "scores.csv")
    pd.testing.assert_frame_equal(on_disk, scores, check_dtype=False)
    assert not list(suite.glob(".scores.csv.*"))  # atomic write left no temp file


def test_load_scores_round_trip_and_rebuild_when_stale(suite: Path):
    built = build_scores(suite)
    loaded = load_scores(suite)
    pd.testing.assert_frame_equal(loaded, built)
    # newer scores.csv is reused as is: a marker edit survives
    path = suite / "scores.csv"
    text = path.read_text().replace("sparse,reach,0,0,success_rate,0.0", "sparse,reach,0,0,success_rate,0.5")
    path.write_text(text)
    future = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(future, future))
    marked = load_scores(suite)
    assert marked.query("method=='sparse' and seed==0 and frame==0 and metric=='success_rate'")["value"].item() == 0.5
    # an eval.csv appended after scores.csv triggers a rebuild that sees the new row
    ev = suite / "rnd" / "reach" / "seed_0" / "eval.csv"
    with ev.open("a") as f:
        f.write("2000,1000,20,0.75,37.5,3.0\n")
    later = future + 10**9
    os.utime(ev, ns=(later, later))
    fresh = load_scores(suite)
    rnd = fresh.query("method=='rnd' and metric=='success_rate'")
    assert rnd["value"].tolist() == [0.0, 0.5, 0.75]
    assert fresh.query("method=='sparse' and seed==0 and frame==0 and metric=='success_rate'")["value"].item() == 0.0
    # missing file -> rebuilt; rebuild=True forces it
    path.unlink()
    pd.testing.assert_frame_equal(load_scores(suite), fresh)
    assert path.is_file()
    pd.testing.assert_frame_equal(load_scores(suite, rebuild=True), fresh)


def test_partial_last_line_is_not_parsed(tmp_path: Path):
    ev = tmp_path / "eval.csv"
    ev.write_text(EVAL_HEADER + "\n0,0,0,0.0,0.0,0.0\n1000,500,10,0.5,25.0,1.0\n2000,1000,20,0.7")
    df = read_run_csv(ev)
    assert df["frame"].tolist() == [0, 1000]
    assert read_run_csv(tmp_path / "missing.csv").empty
    (tmp_path / "header.csv").write_text(EVAL_HEADER + "\n")
    assert read_run_csv(tmp_path / "header.csv").empty
    (tmp_path / "bad.csv").write_text("step,success_rate\n0,0.1\n")
    with pytest.raises(ValueError, match="frame"):
        read_run_csv(tmp_path / "bad.csv")


def test_run_status(suite: Path):
    # a run that has started (config) but not evaluated yet
    started = suite / "rnd" / "reach" / "seed_1"
    started.mkdir(parents=True)
    (started / "config.json").write_text(json.dumps({"frames": 3000}))
    (suite / "figures" / "x").mkdir(parents=True)  # not a run
    # training episodes as suites.train writes them; the last line is still being written
    (suite / "sparse" / "reach" / "seed_0" / "train.csv").write_text(
        "frame,step,episode,episode_return,learned_return,success,fps\n"
        "200,100,1,0,0,0,90\n400,200,2,1,0,1,90\n600,300,3,0,0,0,90\n800,400,4,1,0,1,90\n1000,500,5,1"
    )
    (suite / "sparse" / "reach" / "seed_1" / "done.json").write_text(json.dumps({"frames": 3000, "seconds": 90.5}))
    status = run_status(suite)
    assert list(status.columns) == [
        "method",
        "task",
        "seed",
        "done",
        "last_frame",
        "budget",
        "train_episodes",
        "train_successes",
        "seconds",
    ]
    rows = {(r.method, r.seed): r for r in status.itertuples(index=False)}
    assert set(rows) == {("sparse", 0), ("sparse", 1), ("rnd", 0), ("rnd", 1)}
    assert rows[("sparse", 0)].done and rows[("sparse", 0)].last_frame == 3000 and rows[("sparse", 0)].budget == 3000
    assert not rows[("rnd", 0)].done and rows[("rnd", 0)].last_frame == 1000
    assert not rows[("rnd", 1)].done and np.isnan(rows[("rnd", 1)].last_frame)
    assert (rows[("sparse", 0)].train_episodes, rows[("sparse", 0)].train_successes) == (4, 2)
    assert (rows[("sparse", 1)].train_episodes, rows[("sparse", 1)].train_successes) == (0, 0)  # no train.csv
    assert rows[("sparse", 1)].seconds == 90.5
    assert np.isnan(rows[("sparse", 0)].seconds) and np.isnan(rows[("rnd", 0)].seconds)  # no field; not done


def test_empty_and_missing_suite(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    scores = build_scores(empty)
    assert scores.empty and list(scores.columns) == SCORE_COLUMNS
    assert run_status(empty).empty
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_scores(tmp_path / "nope")
