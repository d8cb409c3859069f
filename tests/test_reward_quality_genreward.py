"""experiments.reward_quality on GenReward's task set (``--task-set genreward``), end to end on real parts.

The session's GenReward data root (tests/conftest.py ``genreward_model_root``: the five tasks' expert videos
and a codec and VQ-Diffusion of the ``genreward`` set trained 30 steps) is copied, so this module records its
epsilon-greedy episodes without changing what other tests read. The analysis records pick-place's
epsilon-greedy episodes (256 steps: the task's horizon), scores them with ``genreward_video`` and then
``genreward`` on the five-task model with a 4-frame, 2-step goal video, and writes the tables. What must hold:

- the tables have the analysis's columns, one Spearman row per (provider, split), finite values;
- every provider used the ``genreward`` task set's model (its params say so, and no seen-task model was made);
- ``genreward`` is its video level (its rows equal ``genreward_video``'s, and the outputs say why), and in
  one analysis it labels with ``genreward_video``'s goal videos (none rolled out twice);
- ``--no-pretrain`` labels with the models on disk and gives the same tables; bad names list the valid ones
  and a missing model names the commands that make it, before anything is recorded.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import rewards
from experiments.reward_quality import GENREWARD_NOTE, _share_goal_videos, main, make_kwargs, score
from rewards.goal_video import frame_key
from tasks import datasets as ds
from tasks.registry import task_set

TASK = "pick-place"  # the genreward task whose scripted expert succeeds fastest (~27 steps)
EPSILONS = ("0", "0.5", "1")
EPS_EPISODES = 1  # 3 levels x 1 episode of 256 steps: 3 points, the fewest a Spearman correlation takes


def _argv(root, out, provider, *extra):
    return [
        "--domain",
        "metaworld",
        "--task-set",
        "genreward",
        "--providers",
        provider,
        "--tasks",
        TASK,
        "--epsilons",
        ",".join(EPSILONS),
        "--eps-episodes",
        str(EPS_EPISODES),
        "--expert-episodes",
        "2",
        "--goal-frames",
        "4",
        "--goal-steps",
        "2",
        "--data-root",
        str(root),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--precision",
        "fp32",
        *extra,
    ]


@pytest.fixture(scope="module")
def analysed(genreward_model_root, tmp_path_factory):
    """Two CLI runs on a copy of the GenReward data root: ``genreward_video`` with ``--pretrain-steps 30`` (the
    fixture's models are trained that far, so ``prepare`` only checks them and computes the statistics), then
    ``genreward`` with ``--no-pretrain`` on the episodes the first run recorded. Labelling a 256-step episode
    costs ~7 s here (the codec's latents of every frame), so each provider labels 3 episodes once."""
    root = tmp_path_factory.mktemp("reward_quality_genreward")
    for part in ("datasets", "models"):
        shutil.copytree(genreward_model_root / part, root / part)
    assert main(_argv(root, root / "video", "genreward_video", "--pretrain-steps", "30")) == 0
    assert main(_argv(root, root / "both", "genreward", "--no-pretrain")) == 0
    return root


def test_genreward_analysis_tables_models_and_goal_videos(analysed):
    root, out = analysed, analysed / "video"
    episodes = pd.read_csv(out / "episodes.csv")
    assert {
        "provider",
        "task",
        "split",
        "epsilon",
        "episode",
        "raw_return",
        "window_return",
        "std_return",
        "std_window_return",
        "K",
        "first_success",
    } <= set(episodes.columns)
    assert len(episodes) == len(EPSILONS) * EPS_EPISODES
    assert set(episodes["task"]) == {TASK} and set(episodes["split"]) == {"seen"}  # the set's models saw it
    assert np.isfinite(episodes[["raw_return", "std_return", "window_return", "std_window_return"]].to_numpy()).all()
    # the epsilon-greedy episodes run the task's 256-step horizon
    recorded = [
        ep for e in EPSILONS for ep in ds.load_episodes("metaworld", [TASK], kind=ds.eps_kind(float(e)), root=root)
    ]
    assert len(recorded) == len(EPSILONS) * EPS_EPISODES and {len(ep.rewards) for ep in recorded} == {256}

    rho = pd.read_csv(out / "splits.csv")
    assert list(zip(rho["provider"], rho["split"])) == [("genreward_video", "seen")]
    assert rho["rho_whole"].between(-1, 1).all() and rho["p_whole"].notna().all()  # finite: NaN fails between
    assert (rho["n_episodes"] == len(EPSILONS) * EPS_EPISODES).all() and (rho["n_tasks"] == 1).all()
    by_task = pd.read_csv(out / "tasks.csv")
    assert list(by_task[["provider", "split", "task"]].itertuples(index=False, name=None)) == [
        ("genreward_video", "seen", TASK)
    ]
    md = (out / "reward_quality.md").read_text()
    assert "genreward task-set models" in md and "| genreward_video |" in md and GENREWARD_NOTE not in md
    assert "genreward_video" in json.loads((out / "gate.json").read_text())["providers"]

    config = json.loads((out / "config.json").read_text())
    five = task_set("genreward", "metaworld")
    assert config["task_set"] == "genreward" and config["task_set_tasks"] == five
    assert config["splits"] == {TASK: "seen"} and config["notes"] == {} and config["pretrain"] is True
    params = config["provider_params"]["genreward_video"][TASK]
    assert params["pretrained_on"] == "genreward" and params["trained_on"] == five
    assert params["goal_frames"] == 4 and params["goal_steps"] == 2 and params["beta"] == 0.0
    assert params["w_frame"] == 0.0 and params["sigma"] > 0
    assert sorted(d.name for d in (root / "models" / "metaworld").iterdir()) == [
        "codec_small_genreward",
        "vqdiffusion_small_l2_genreward",
    ]  # no seen-task model was made
    # one goal-video rollout per distinct first frame, through the provider's cache
    assert config["goal_videos"] == {"genreward_video": {TASK: len({frame_key(ep.frames[0]) for ep in recorded})}}
    assert (out / "reward_quality_metaworld_genreward.png").is_file()


def test_genreward_is_its_video_level_and_says_so(analysed):
    """``genreward`` (both levels) scores a recorded episode by its video level alone: with ``--no-pretrain``
    on the same models it gives exactly ``genreward_video``'s returns, and its outputs name the missing FB."""
    video = pd.read_csv(analysed / "video" / "episodes.csv")
    both = pd.read_csv(analysed / "both" / "episodes.csv")
    assert set(both["provider"]) == {"genreward"}
    pd.testing.assert_frame_equal(both.drop(columns="provider"), video.drop(columns="provider"))
    assert GENREWARD_NOTE in (analysed / "both" / "reward_quality.md").read_text()
    config = json.loads((analysed / "both" / "config.json").read_text())
    assert config["notes"] == {"genreward": GENREWARD_NOTE} and config["pretrain"] is False
    params = config["provider_params"]["genreward"][TASK]
    assert params["pretrained_on"] == "genreward" and params["w_frame"] == 0.0 and params["beta"] == 0.0


def test_providers_of_one_task_share_goal_videos(analysed):
    """``genreward`` after ``genreward_video`` (same model and rollout settings) labels with the videos the
    first one rolled out, and gets the rewards its own rollouts would give (a real expert episode)."""
    ep = ds.load_episodes("metaworld", [TASK], split="test", root=analysed)[0]

    def make(name):
        kw = make_kwargs(rewards.get(name), "small", "genreward", {"goal_frames": 4, "goal_steps": 2})
        return rewards.make(name, task=TASK, domain="metaworld", device="cpu", data_root=analysed, seed=0, **kw)

    shared: dict = {}
    first, second, alone = make("genreward_video"), make("genreward"), make("genreward")
    _share_goal_videos(first, shared, 10)
    _share_goal_videos(second, shared, 10)
    assert second.goals is first.goals and first.goals.capacity >= 10
    r1 = first.label_episode(ep.frames, ep.rewards)
    r2 = second.label_episode(ep.frames, ep.rewards)
    assert first.goals.misses == 1  # the second provider rolled out nothing
    np.testing.assert_array_equal(r2, r1)
    np.testing.assert_array_equal(alone.label_episode(ep.frames, ep.rewards), r1)
    assert alone.goals.misses == 1


def test_bad_task_sets_providers_and_missing_models_fail_before_any_work(tmp_path, capsys):
    root, out = tmp_path / "data", tmp_path / "out"
    with pytest.raises(ValueError, match=r"unknown task set 'other'; valid: seen, genreward"):
        score("metaworld", ["genreward_video"], task_set="other", data_root=root, out_dir=out)
    with pytest.raises(ValueError, match="task set 'genreward' has no adroit tasks"):
        score("adroit", ["viper_std"], task_set="genreward", data_root=root, out_dir=out)
    with pytest.raises(ValueError, match="genreward_frame: cannot be scored offline"):
        score("metaworld", ["genreward_frame"], task_set="genreward", data_root=root, out_dir=out)
    with pytest.raises(ValueError, match="override 'goal_frames': none of the providers viper_std takes it"):
        score(
            "metaworld", ["viper_std"], task_set="genreward", overrides={"goal_frames": 4}, data_root=root, out_dir=out
        )
    with pytest.raises(ValueError, match="pretrained_on are set by the scoring"):
        score(
            "metaworld",
            ["genreward_video"],
            task_set="genreward",
            overrides={"pretrained_on": "seen"},
            data_root=root,
            out_dir=out,
        )
    with pytest.raises(SystemExit) as e:
        main(["--domain", "metaworld", "--task-set", "other"])
    assert e.value.code == 2 and "choose from 'seen', 'genreward'" in capsys.readouterr().err
    # --no-pretrain on a root without the five-task models: the commands that make them, nothing recorded
    assert (
        main(
            [
                "--domain",
                "metaworld",
                "--task-set",
                "genreward",
                "--providers",
                "genreward_video",
                "viper_std",
                "--no-pretrain",
                "--data-root",
                str(root),
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--model vqdiffusion --preset small --context 2 --task-set genreward" in err
    assert "python -m tasks.collect --domain metaworld --tasks bin-picking" in err
    assert not root.exists() and not out.exists()
