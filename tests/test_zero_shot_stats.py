"""Strict zero-shot statistics (docs/models-and-rewards.md#rewards, "Zero-shot statistics"): ``zero_shot_stats="seen"``
standardises with the pooled scores of the tasks the model was trained on and reads nothing of its own
task; the default (the paper's) standardises with the task's own expert videos."""

import numpy as np
import pytest

import rewards
from rewards.models import reward_stats
from rewards.models.store import ModelRef
from rewards.prepare import PrepareRequest
from suites.definitions import get
from suites.plan import expand
from tasks import datasets as ds
from tests.conftest import TASK

UNSEEN = "coffee-button"  # a metaworld_unseen task: no dataset of it exists under video_model_root


def _make(name, root, task, **kw):
    return rewards.make(name, task=task, domain="metaworld", device="cpu", data_root=root, seed=0, **kw)


def test_pool_is_the_statistics_of_the_concatenated_scores():
    rng = np.random.default_rng(0)
    parts = [rng.normal(0, 1, 50), rng.normal(3, 0.1, 7), rng.normal(-1, 2, 300)]
    pooled = reward_stats.pool([{"mean": p.mean(), "std": p.std(), "n": p.size} for p in parts])
    v = np.concatenate(parts)
    assert pooled["n"] == v.size
    np.testing.assert_allclose([pooled["mean"], pooled["std"]], [v.mean(), v.std()], rtol=1e-9)
    assert abs(pooled["mean"] - np.mean([p.mean() for p in parts])) > 0.1  # not the average of the means
    with pytest.raises(ValueError, match="no score statistics"):
        reward_stats.pool([])


@pytest.mark.parametrize("name", ["viper_std", "diffusion_reward"])
def test_strict_stats_need_no_file_of_the_unseen_task(name, video_model_root):
    assert not ds.episode_dir("metaworld", UNSEEN, "expert", "train", video_model_root).exists()
    # the paper's default reads the task's own expert videos: without them it cannot standardise
    with pytest.raises(FileNotFoundError, match=f"python -m tasks.collect --domain metaworld --tasks {UNSEEN}"):
        _make(name, video_model_root, UNSEEN)
    strict = _make(name, video_model_root, UNSEEN, zero_shot_stats="seen")
    kind = strict.score_kind
    ref = ModelRef("metaworld", strict.model_name, "small", 2, video_model_root)
    seen = reward_stats.task_stats(ref, kind, steps=10, noise=True, tasks=[TASK])[TASK]
    # the model saw reach only: its pooled statistics are reach's
    assert (strict.mu, strict.sigma) == pytest.approx((seen["mean"], seen["std"]), rel=1e-9)
    assert strict.params["zero_shot_stats"] == "seen" and strict.params["stats_tasks"] == [TASK]
    ep = ds.load_episodes("metaworld", [TASK], split="test", root=video_model_root)[0]
    assert np.all(np.isfinite(strict.label_episode(ep.frames, ep.rewards)))
    # on a task with its own videos the default uses them, the strict setting still the pooled seen ones
    own = _make(name, video_model_root, TASK)
    assert own.params["stats_tasks"] == [TASK] and own.params["zero_shot_stats"] == "task"
    with pytest.raises(ValueError, match="valid: task, seen"):
        _make(name, video_model_root, UNSEEN, zero_shot_stats="unseen")


def test_strict_request_keeps_the_setting_and_pools_only_the_training_tasks(video_model_root):
    """``zero_shot_stats`` is a prepare override (it changes what ``prepare`` computes: the training tasks'
    statistics instead of the run's task's); the pooled statistics name the tasks they pooled."""
    req = PrepareRequest.make(
        rewards.get("viper_std"),
        overrides={"zero_shot_stats": "seen", "alpha": 0.1},
        domain="metaworld",
        tasks=(UNSEEN,),
        data_root=str(video_model_root),
    )
    assert req.override("zero_shot_stats") == "seen" and req.override("alpha") is None
    pooled = reward_stats.pooled_stats(ModelRef("metaworld", "videogpt", "small", 2, video_model_root), "ll")
    assert pooled["tasks"] == [TASK]  # what the model was trained on (its meta), not the seen split's 7
    assert not ds.episode_dir("metaworld", UNSEEN, "expert", "train", video_model_root).exists()


def test_zero_shot_suite_has_the_strict_variants():
    suite = get("metaworld_unseen")
    assert dict(suite.method("diffusion_reward_strict").overrides) == {"zero_shot_stats": "seen"}
    assert suite.method("viper_std_strict").provider == "viper_std"
    [run] = expand("metaworld_unseen", "smoke", methods=["diffusion_reward_strict"], tasks=[UNSEEN])
    assert run.prepare.override("zero_shot_stats") == "seen"
    assert run.config.provider_overrides == {"zero_shot_stats": "seen", "preset": "small"}
