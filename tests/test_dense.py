"""The ``dense`` oracle: the env's shaped reward reaches replay, the sparse return is still what train.csv reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rewards
from rewards.dense import env_reward_series
from suites import definitions, train
from suites.plan import expand


def test_dense_provider_passes_the_given_rewards_through():
    r = rewards.make("dense", task="reach", domain="metaworld")
    assert r.env_reward == "dense" and r.params == {"env_reward": "dense"}
    assert rewards.make("sparse", task="reach", domain="metaworld").env_reward == "sparse"
    frames = np.zeros((4, 3, 8, 8), np.uint8)
    out = r.label_episode(frames, np.array([0.5, 1.25, 7.0]))
    assert out.dtype == np.float32 and out.tolist() == [0.5, 1.25, 7.0]
    assert r.bonus({"next_obs": None}) is None and r.update({}, 0) == {}


def test_env_reward_series_picks_the_series_and_refuses_a_missing_dense_reward():
    sparse, dense = [0.0, 0.0, 1.0], [0.3, 0.7, 9.0]
    assert env_reward_series("sparse", sparse, [None] * 3).tolist() == sparse
    assert env_reward_series("dense", sparse, dense).tolist() == pytest.approx(dense)
    with pytest.raises(ValueError, match=r"needs info\['dense_reward'\] at every env step.*reach"):
        env_reward_series("dense", sparse, [0.3, None, 9.0], "reach")
    with pytest.raises(ValueError, match="env_reward: expected 'sparse' or 'dense', got 'shaped'"):
        env_reward_series("shaped", sparse, dense)


def test_dense_runs_beside_the_methods_of_the_main_suites_only():
    for name in ("metaworld7", "adroit3", "metaworld_unseen"):
        assert definitions.get(name).method("dense").provider == "dense"
    assert "dense" not in {m.label for m in definitions.MAIN + definitions.ZERO_SHOT + definitions.BASELINES}
    assert "dense" not in {m.label for m in definitions.get("ablate_noise").methods}


def test_a_dense_smoke_run_records_the_shaped_return_beside_the_sparse_one(tmp_path):
    """A real 1k-frame run on reach: the replay gets the dense reward, train.csv keeps the sparse return."""
    [spec] = expand(
        "metaworld7",
        "smoke",
        methods=["dense"],
        tasks=["reach"],
        seeds=[0],
        results=tmp_path,
        frames=1000,
        torch_threads=1,
    )
    done = train.run(spec.config, spec.run_dir)
    assert done["eval_rows"] >= 2
    evals = pd.read_csv(spec.run_dir / "eval.csv")
    assert len(evals) == done["eval_rows"] and evals["frame"].iloc[-1] >= 1000
    rows = pd.read_csv(spec.run_dir / "train.csv")
    assert len(rows) >= 1
    # sparse success counts vs the MetaWorld v3 shaped reward (positive, up to 10 per sub-step)
    assert (rows["learned_return"] != rows["episode_return"]).all()
    assert (rows["learned_return"] > rows["episode_return"]).all()
