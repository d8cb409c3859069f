"""experiments.reward_quality and analysis.reward_quality: offline reward quality and its gate.

Levels:
- the statistics on hand-made tables whose answer is known (the window K, window returns, bootstrap CIs, the
  gate's thresholds at their edges, before/after the first success);
- the whole command on real recorded episodes (one seen and one unseen MetaWorld task): the ``dense`` oracle
  must pass the gate and the ``noise`` control must fail it, with the spec's thresholds; the files agree with
  the returned tables; a re-run records nothing; episodes recorded without the dense reward are re-recorded;
- a real video provider on the session's small models: ``--model-file`` and ``--budget-study`` score
  checkpoints in a scoring root of their own, resumably, and the launcher's ``evaluate_model_gate`` caches.
"""

from __future__ import annotations

import json
import os
import shutil

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from analysis import reward_quality as rq
from experiments import reward_quality as erq
from rewards.models.store import ModelMissingError, ModelRef
from tasks import datasets as ds
from tasks.collect import collect

SEEN, UNSEEN = "reach", "drawer-open"
EPSILONS = (0.0, 0.5, 1.0)
EPS_EPISODES, EXPERT_EPISODES = 4, 2  # 12 episodes per task; 2 experts: 1 train clip, 1 test clip (K)


def quiet(_msg: str) -> None:
    pass


# ------------------------------------------------------------------------------- the statistics


def _steps(spec: dict[tuple[str, str, float], list[list[float]]], successes: dict | None = None) -> pd.DataFrame:
    """A steps table from per-episode reward lists; the dense reward is the learned one (tests set it apart)."""
    rows = []
    for (provider, task, eps), episodes in spec.items():
        for i, rewards in enumerate(episodes):
            fs = (successes or {}).get((task, eps, i), -1)
            rows += [
                {
                    "provider": provider,
                    "task": task,
                    "split": erq.split_of(task),
                    "epsilon": eps,
                    "episode": i,
                    "step": t,
                    "reward": r,
                    "dense": r,
                    "first_success": fs,
                }
                for t, r in enumerate(rewards)
            ]
    return pd.DataFrame(rows)


def test_success_window_is_the_median_expert_first_success():
    assert rq.success_window([25]) == 25
    assert rq.success_window([20, 30, 41]) == 30
    assert rq.success_window([20, 31]) == 26  # median 25.5, rounded half to even
    with pytest.raises(ValueError, match="at least one expert episode"):
        rq.success_window([])


def test_window_returns_sum_the_first_k_steps_and_are_z_scored_per_task():
    steps = _steps(
        {
            ("p", SEEN, 0.0): [[1, 2, 3, 100]],
            ("p", SEEN, 1.0): [[0, 0, 1, -5]],
            ("p", UNSEEN, 0.0): [[5, 5, 5, 5]],
            ("p", UNSEEN, 1.0): [[1, 1, 1, 1]],
        }
    )
    ep = rq.episode_returns(steps, {SEEN: 2, UNSEEN: 3}).set_index(["task", "epsilon"])
    assert ep.loc[(SEEN, 0.0), "window_return"] == 3 and ep.loc[(SEEN, 0.0), "raw_return"] == 106
    assert ep.loc[(SEEN, 1.0), "window_return"] == 0 and ep.loc[(UNSEEN, 0.0), "window_return"] == 15
    assert ep.loc[(SEEN, 0.0), "std_window_return"] == pytest.approx(1.0)
    assert ep.loc[(SEEN, 1.0), "std_window_return"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="no pre-success window K for task"):
        rq.episode_returns(steps, {SEEN: 2})


def test_spearman_ci_brackets_rho_and_is_seeded():
    rng = np.random.default_rng(0)
    y = np.repeat([1.0, 0.5, 0.0], 10)
    x = y + rng.normal(0, 0.3, size=y.size)
    a, b = rq.spearman_ci(x, y, seed=3), rq.spearman_ci(x, y, seed=3)
    assert a == b and a["n"] == 30
    assert a["ci_low"] < a["rho"] < a["ci_high"] and a["rho"] > 0.6 and a["p"] < 1e-4
    strata = np.tile(["t1", "t2"], 15)
    assert rq.spearman_ci(x, y, strata, seed=3)["ci_low"] > 0
    assert np.isnan(rq.spearman_ci(np.ones(5), np.arange(5.0))["rho"])  # constant: no ranking


@pytest.mark.parametrize(
    "split, rho, p, passes",
    [
        ("seen", 0.4, 0.009, True),
        ("seen", 0.39, 0.001, False),
        ("seen", 0.9, 0.01, False),
        ("unseen", 0.01, 0.049, True),
        ("unseen", 0.0, 0.001, False),
        ("unseen", 0.5, 0.05, False),
        ("seen", float("nan"), float("nan"), False),
    ],
)
def test_gate_thresholds_at_their_edges(split, rho, p, passes):
    table = pd.DataFrame(
        [
            {
                "provider": "x",
                "split": split,
                "n_episodes": 50,
                "n_tasks": 1,
                "rho_window": rho,
                "p_window": p,
                "ci_low_window": 0.0,
                "ci_high_window": 1.0,
                "rho_whole": -0.3,
                "p_whole": 0.5,
            }
        ]
    )
    verdict = rq.gate(table)["x"]
    assert verdict[split]["pass"] is passes and verdict["pass"] is passes
    assert verdict["seen" if split == "unseen" else "unseen"] is None  # an absent split is not part of it


def test_before_after_uses_the_experts_own_success_and_k_for_random():
    # expert: reward 1 before its success at step 2, -1 after; random: 0 throughout but +2 from step K=3 on
    steps = _steps(
        {("p", SEEN, 0.0): [[1, 1, -1, -1, -1]], ("p", SEEN, 1.0): [[0, 0, 0, 2, 2]]}, successes={(SEEN, 0.0, 0): 2}
    )
    out = rq.before_after(steps, {SEEN: 3}).iloc[0]
    z = (steps["reward"] - steps["reward"].mean()) / steps["reward"].std(ddof=0)
    assert out["z_pre_expert"] == pytest.approx(z[:2].mean()) and out["z_post_expert"] == pytest.approx(z[2:5].mean())
    assert out["z_pre_random"] == pytest.approx(z[5:8].mean()) and out["z_post_random"] == pytest.approx(z[8:].mean())


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(providers=["no_such_reward"]),
            r"unknown reward 'no_such_reward'; valid: .*dense.* \(or noise, the control\)",
        ),
        (dict(providers=["rnd"]), r"rnd: cannot be scored offline \(learned online from an agent's replay"),
        (dict(providers=["amp"]), r"amp: cannot be scored offline"),
        (dict(providers=["genreward_frame"]), r"genreward_frame: cannot be scored offline"),
        (dict(tasks=["door"]), r"unknown metaworld task\(s\) door; valid: .*reach"),
        (dict(epsilons=[0.0, 1.5]), r"epsilons: expected at least two distinct values in \[0, 1\]"),
        (dict(eps_episodes=0), r"eps_episodes: expected an int >= 1"),
        (dict(preset="huge"), r"unknown preset 'huge'; valid: small, paper"),
        (dict(expert_episodes=1), r"expert_episodes: expected >= 2"),
    ],
)
def test_bad_input_fails_before_any_work(kwargs, message, tmp_path):
    args = (
        dict(
            providers=["dense"],
            tasks=[SEEN],
            data_root=tmp_path / "data",
            out_dir=tmp_path / "out",
            log=quiet,
            progress=False,
        )
        | kwargs
    )
    with pytest.raises(ValueError, match=message):
        erq.score("metaworld", **args)
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()


def test_cli_jobs_below_one_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        erq.main(["--domain", "metaworld", "--providers", "dense", "--jobs", "0", "--data-root", str(tmp_path)])
    assert e.value.code == 2 and "jobs: expected an int >= 1" in capsys.readouterr().err


def test_cli_unknown_provider_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        erq.main(["--domain", "metaworld", "--providers", "dense", "viperr", "--data-root", str(tmp_path)])
    assert e.value.code == 2 and "unknown reward 'viperr'" in capsys.readouterr().err


# ------------------------------------------------------------------------------- dense passes, noise fails


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """The command on real episodes of reach (seen) and drawer-open (unseen), with the oracle and the control."""
    root = tmp_path_factory.mktemp("reward_quality_data")
    out = tmp_path_factory.mktemp("reward_quality_out")
    result = erq.score(
        "metaworld",
        ["dense", "noise"],
        [SEEN, UNSEEN],
        epsilons=EPSILONS,
        eps_episodes=EPS_EPISODES,
        expert_episodes=EXPERT_EPISODES,
        data_root=root,
        out_dir=out,
        device="cpu",
        log=quiet,
        progress=False,
        n_boot=500,
    )
    return root, result


def test_dense_passes_the_gate_and_noise_fails_it(oracle):
    _, result = oracle
    dense, noise = result.gate["dense"], result.gate["noise"]
    assert dense["pass"] and dense["seen"]["pass"] and dense["unseen"]["pass"]
    assert dense["seen"]["rho"] >= rq.SEEN_MIN_RHO and dense["seen"]["p"] < rq.SEEN_MAX_P
    assert dense["unseen"]["rho"] > rq.UNSEEN_MIN_RHO and dense["unseen"]["p"] < rq.UNSEEN_MAX_P
    assert dense["seen"]["n"] == len(EPSILONS) * EPS_EPISODES and dense["seen"]["rho_whole"] > 0.5
    assert not noise["pass"] and not noise["seen"]["pass"]
    # the oracle's per-step rank correlation with itself is 1; the noise's is near 0
    by = result.tasks.set_index(["provider", "task"])
    assert by.loc[("dense", SEEN), "rho_dense_step"] == pytest.approx(1.0)
    assert abs(by.loc[("noise", SEEN), "rho_dense_step"]) < 0.2
    # the dense oracle rewards the expert's post-success frames (arm at the goal) above epsilon 1's
    assert by.loc[("dense", SEEN), "z_post_expert"] > by.loc[("dense", SEEN), "z_post_random"]


def test_window_is_the_median_first_success_of_the_expert_test_clips(oracle):
    root, result = oracle
    for task in (SEEN, UNSEEN):
        clips = ds.load_episodes("metaworld", [task], split="test", root=root)
        assert result.windows[task] == int(np.median([ep.meta["first_success"] for ep in clips]))
        assert 1 <= result.windows[task] < 100
    # window returns are the sums of the first K per-step rewards of the recorded dense series
    ep = ds.load_episodes("metaworld", [SEEN], kind=ds.eps_kind(0.5), root=root)[1]
    row = result.episodes.set_index(["provider", "task", "epsilon", "episode"]).loc[("dense", SEEN, 0.5, 1)]
    assert row["window_return"] == pytest.approx(float(ep.dense_rewards[: result.windows[SEEN]].sum()), rel=1e-5)
    assert row["raw_return"] == pytest.approx(float(ep.dense_rewards.sum()), rel=1e-5)


def test_outputs_on_disk_agree_with_the_tables(oracle):
    _, result = oracle
    p = result.paths
    for key in (
        "steps",
        "episodes",
        "tasks",
        "splits",
        "summary",
        "gate",
        "markdown",
        "figure",
        "figure_pdf",
        "config",
    ):
        assert p[key].is_file() and p[key].stat().st_size > 0, key
    steps = pd.read_csv(p["steps"])
    assert list(steps.columns) == list(rq.STEP_COLUMNS) and len(steps) == 2 * 2 * len(EPSILONS) * EPS_EPISODES * 100
    pd.testing.assert_frame_equal(pd.read_csv(p["splits"]), result.splits, check_exact=False, rtol=1e-5)
    gate = json.loads(p["gate"].read_text())
    assert gate["providers"]["dense"]["pass"] is True and gate["providers"]["noise"]["pass"] is False
    assert gate["windows"] == result.windows and "0.4" in gate["thresholds"]["seen"]
    md = p["markdown"].read_text()
    assert "| dense |" in md and "| noise |" in md and "**pass**" in md and "**FAIL**" in md
    assert "`rnd`" in md and "`amp`" in md  # what is left out, and why
    image = mpimg.imread(p["figure"])
    assert image.ndim == 3 and image.shape[0] > 600 and image.shape[1] > 600 and image[..., :3].std() > 0.05
    config = json.loads(p["config"].read_text())
    assert config["splits"] == {SEEN: "seen", UNSEEN: "unseen"} and config["notes"]["noise"] == erq.NOISE_NOTE


def test_rerun_records_nothing_and_gives_the_same_gate(oracle, tmp_path):
    root, result = oracle
    files = sorted((root / "datasets").rglob("*.npz"))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = erq.score(
        "metaworld",
        ["dense", "noise"],
        [SEEN, UNSEEN],
        epsilons=EPSILONS,
        eps_episodes=EPS_EPISODES,
        expert_episodes=EXPERT_EPISODES,
        data_root=root,
        out_dir=tmp_path,
        device="cpu",
        log=quiet,
        progress=False,
        n_boot=500,
    )
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert again.gate == result.gate
    pd.testing.assert_frame_equal(again.steps, result.steps)


def test_cli_writes_the_same_gate_as_the_function(oracle, tmp_path, capsys):
    """The command, its two tasks scored in two worker processes (``--jobs 2``), writes the steps table and the
    gate the in-process scoring made, rows in the same order."""
    root, result = oracle
    out = tmp_path / "cli"
    assert (
        erq.main(
            [
                "--domain",
                "metaworld",
                "--providers",
                "dense",
                "noise",
                "--tasks",
                SEEN,
                UNSEEN,
                "--epsilons",
                ",".join(f"{e:g}" for e in EPSILONS),
                "--eps-episodes",
                str(EPS_EPISODES),
                "--expert-episodes",
                str(EXPERT_EPISODES),
                "--data-root",
                str(root),
                "--out",
                str(out),
                "--device",
                "cpu",
                "--jobs",
                "2",
            ]
        )
        == 0
    )
    assert "| dense |" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["jobs"] == 2
    pd.testing.assert_frame_equal(pd.read_csv(out / "steps.csv.gz"), pd.read_csv(result.paths["steps"]))
    gate = json.loads((out / "gate.json").read_text())["providers"]
    assert {p: g["pass"] for p, g in gate.items()} == {"dense": True, "noise": False}
    assert gate["dense"]["seen"]["rho"] == pytest.approx(result.gate["dense"]["seen"]["rho"])
    assert (out / "reward_quality_metaworld.png").is_file()


def test_a_missing_checkpoint_names_the_commands_that_make_it(tmp_path):
    ref = ModelRef("metaworld", "vqdiffusion", "small", 2, tmp_path)
    with pytest.raises(ModelMissingError, match="python -m experiments.budget_study"):
        erq.scoring_root(ref, tmp_path / "budget_study" / ref.name / "step_1000" / "model.pt")
    with pytest.raises(
        ModelMissingError,
        match="no snapshots of vqdiffusion_small_l2 .*python -m "
        "experiments.budget_study --domain metaworld --models vqdiffusion",
    ):
        erq.score_budgets(
            "metaworld",
            ["diffusion_reward"],
            tmp_path / "budget_study",
            tmp_path / "out",
            data_root=tmp_path,
            tasks=[SEEN],
            log=quiet,
        )
    with pytest.raises(ValueError, match="dense: no video model"):
        erq.score_budgets("metaworld", ["dense"], tmp_path / "budget_study", tmp_path / "out", data_root=tmp_path)


def test_episodes_without_the_dense_reward_are_re_recorded(oracle, tmp_path):
    """A file recorded before the dense series was kept is refused by the scoring (naming the command) and
    re-recorded by the collector when asked for it: the same episode, with the series."""
    root = tmp_path / "root"
    shutil.copytree(oracle[0] / "datasets" / "metaworld" / SEEN, root / "datasets" / "metaworld" / SEEN)
    path = ds.episode_path(ds.episode_dir("metaworld", SEEN, ds.eps_kind(1.0), root=root), 0)
    full = ds.read_episode(path)
    full.dense_rewards, dense = None, full.dense_rewards
    ds.save_episode(path, full)
    old = ds.read_episode(path)
    assert old.dense_rewards is None
    with pytest.raises(ds.OutdatedEpisodeError, match="python -m tasks.collect --domain metaworld --tasks reach"):
        ds.require_dense(old, str(path), root)
    collect(
        "metaworld", [SEEN], episodes=EXPERT_EPISODES, epsilons=[1.0], eps_episodes=1, root=root, show_progress=False
    )
    assert ds.read_episode(path).dense_rewards is None  # not asked for: left as it is
    collect(
        "metaworld",
        [SEEN],
        episodes=EXPERT_EPISODES,
        epsilons=[1.0],
        eps_episodes=1,
        root=root,
        show_progress=False,
        dense_eps=True,
    )
    new = ds.read_episode(path)
    np.testing.assert_array_equal(new.frames, old.frames)
    np.testing.assert_allclose(new.dense_rewards, dense)


# ------------------------------------------------------------------------------- video models, checkpoints


@pytest.fixture(scope="module")
def video_root(video_model_root, tmp_path_factory):
    """A copy of the session's small-model root (codec, VQ-Diffusion, VideoGPT trained 15 steps on reach), so
    the episodes and statistics made here never change what other tests read."""
    root = tmp_path_factory.mktemp("reward_quality_models")
    for part in ("datasets", "models"):
        shutil.copytree(video_model_root / part, root / part)
    return root


def _video_args(root, **kw):
    return (
        dict(
            epsilons=(0.0, 1.0),
            eps_episodes=1,
            expert_episodes=3,
            data_root=root,
            device="cpu",
            precision="fp32",
            log=quiet,
            progress=False,
            n_boot=200,
        )
        | kw
    )


def test_budget_study_snapshots_are_scored_once_each(video_root, tmp_path):
    """Two snapshots of the VQ-Diffusion (the same weights at budgets 1 and 2) are scored by diffusion_reward in
    their own scoring roots: the model on disk keeps its statistics file untouched, a second call scores
    nothing, and ``gate_passed_vqdiffusion`` exists exactly when a budget passes."""
    ref = ModelRef("metaworld", "vqdiffusion", "small", 2, video_root)
    study = tmp_path / "budget_study"
    for budget in (1, 2):
        (study / ref.name / f"step_{budget}").mkdir(parents=True)
        shutil.copy2(ref.checkpoint, study / ref.name / f"step_{budget}" / "model.pt")
    stats_before = (ref.dir / "stats.json").read_bytes() if (ref.dir / "stats.json").exists() else None
    out = tmp_path / "out"
    messages: list[str] = []
    table = erq.score_budgets(
        "metaworld", ["diffusion_reward"], study, out, **_video_args(video_root, tasks=[SEEN], log=messages.append)
    )
    assert list(table["budget"]) == [1, 2] and set(table["model"]) == {"vqdiffusion"}
    assert pd.read_csv(out / "budgets.csv")["budget"].tolist() == [1, 2]
    for budget in (1, 2):
        where = out / "budgets" / "diffusion_reward" / f"step_{budget}"
        config = json.loads((where / "config.json").read_text())
        assert config["model_file"]["model"] == ref.name and config["pretrain"] is False
        assert (where / "gate.json").is_file() and (where / "tasks.csv").is_file()
    # same weights, same episodes: same numbers
    assert table["seen_rho"].nunique(dropna=False) == 1
    assert (out / "gate_passed_vqdiffusion").exists() == bool(table["pass"].any())
    after = (ref.dir / "stats.json").read_bytes() if (ref.dir / "stats.json").exists() else None
    assert after == stats_before  # the snapshots' statistics live in their scoring roots
    messages.clear()
    again = erq.score_budgets(
        "metaworld", ["diffusion_reward"], study, out, **_video_args(video_root, tasks=[SEEN], log=messages.append)
    )
    assert sum("scored already" in m for m in messages) == 2 and not any("scoring" in m for m in messages)
    pd.testing.assert_frame_equal(again, table)


def test_evaluate_model_gate_caches_by_checkpoint(video_root, tmp_path):
    """The launcher's gate on the model on disk: computed once, then read from the cache; a rewritten
    checkpoint is scored again."""

    kw = dict(
        tasks=[SEEN], epsilons=(0.0, 1.0), eps_episodes=1, expert_episodes=3, device="cpu", precision="fp32", log=quiet
    )
    first = erq.evaluate_model_gate("viper_std", "metaworld", video_root, **kw)
    assert first["cached"] is False and "seen" in first and first["unseen"] is None
    assert isinstance(first["pass"], bool) and first["seen"]["n"] == 2
    second = erq.evaluate_model_gate("viper_std", "metaworld", video_root, **kw)
    assert second["cached"] is True and second["seen"] == first["seen"]
    ckpt = ModelRef("metaworld", "videogpt", "small", 2, video_root).checkpoint
    os.utime(ckpt, ns=(ckpt.stat().st_atime_ns, ckpt.stat().st_mtime_ns + 10**9))
    assert erq.evaluate_model_gate("viper_std", "metaworld", video_root, **kw)["cached"] is False
    with pytest.raises(
        FileNotFoundError,
        match="python -m rewards.models.pretrain --domain metaworld --model vqdiffusion --preset small --context 2",
    ):
        erq.evaluate_model_gate("diffusion_reward", "metaworld", tmp_path / "empty", **kw)
