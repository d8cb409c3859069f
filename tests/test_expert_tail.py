"""The expert-tail option: expert clips that keep N steps after their first success, and the models of them.

On real recordings of reach (MetaWorld): a tail-N clip is the release's clip of the same episode continued by
min(N, steps left) steps and lives in a folder of its own; tail 0 is the release's recording, file for file.
Then the whole path of a tail model on tiny sizes: a provider's ``prepare`` with ``expert_tail`` records the
tail's clips, trains the tail model (through the shared codec) and its statistics; the pretraining command
continues it; ``diffusion_reward:expert_tail=N`` in a suite reaches that model; and the reward-quality scoring
of the tail model ranks exactly the episodes (and uses exactly the window K) of the default model's scoring.
"""

from __future__ import annotations

import json
import shutil
import zlib

import numpy as np
import pandas as pd
import pytest

import rewards
import tasks
from experiments import reward_quality as erq
from rewards.models import pretrain as pretrain_cli
from rewards.models.store import ModelRef, read_checkpoint
from rewards.video_reward import DiffusionReward
from suites.plan import expand
from tasks import collect as collect_mod
from tasks import datasets as ds
from tasks.experts import make_expert
from tasks.registry import seen_tasks
from tests.conftest import TASK

TAIL = 5
#: what an expert clip's meta held before the option existed: tail 0 must write exactly these keys
RELEASE_META_KEYS = {
    "task",
    "domain",
    "seed",
    "epsilon",
    "camera",
    "action_repeat",
    "success",
    "goal_seed",
    "first_success",
    "clipped",
    "kind",
    "split",
    "index",
    "format",
}


def quiet(_msg: str) -> None:
    pass


def _clips(root, tail, split):
    return ds.load_episodes("metaworld", [TASK], ds.expert_kind(tail), split, root)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """reach's expert clips (2 train + 1 test) with tail 0, ``TAIL`` and ``full``, recorded by the collector."""
    root = tmp_path_factory.mktemp("tail_clips")
    for tail in (0, TAIL, ds.FULL_TAIL):
        collect_mod.collect("metaworld", [TASK], episodes=3, root=root, show_progress=False, expert_tail=tail)
    return root


# ------------------------------------------------------------------------------- recording


def test_a_tail_clip_is_the_release_clip_continued_by_min_n_steps(clips):
    horizon = tasks.spec(TASK).horizon
    for split in ds.SPLITS:
        for base, tail, full in zip(_clips(clips, 0, split), _clips(clips, TAIL, split), _clips(clips, "full", split)):
            t = base.meta["first_success"]
            assert t == base.length and t + TAIL < horizon  # so N, not the horizon, bounds the tail-N clip
            for ep, kept in ((tail, TAIL), (full, horizon - t)):
                assert ep.meta["seed"] == base.meta["seed"] and ep.meta["first_success"] == t
                assert ep.length == t + kept and ep.frames.shape[0] == t + kept + 1
                assert np.flatnonzero(ep.successes)[0] == t - 1  # the first success is where the release's clip ends
                np.testing.assert_array_equal(ep.frames[: t + 1], base.frames)
                np.testing.assert_array_equal(ep.actions[:t], base.actions)
            assert (tail.meta["kind"], tail.meta["expert_tail"]) == ("expert_tail5", TAIL)
            assert (full.meta["kind"], full.meta["expert_tail"]) == ("expert_tailfull", "full")
            assert "expert_tail" not in base.meta and base.meta["kind"] == "expert"


def test_each_tail_is_a_dataset_of_its_own(clips):
    task_dir = ds.domain_dir("metaworld", clips) / TASK
    assert sorted(p.name for p in task_dir.iterdir()) == ["expert", "expert_tail5", "expert_tailfull"]
    for kind, tail in (("expert", 0), ("expert_tail5", TAIL), ("expert_tailfull", "full")):
        for split, n in (("train", 2), ("test", 1)):
            files = sorted((task_dir / kind / split).glob("*.npz"))
            assert [f.name for f in files] == [f"ep_{i:04d}.npz" for i in range(n)]
            assert {ds.read_episode(f).meta.get("expert_tail", 0) for f in files} == {tail}
    sheets = sorted(p.name for p in ds.domain_dir("metaworld", clips).glob("contact_sheet*.png"))
    assert sheets == ["contact_sheet.png", "contact_sheet_tail5.png", "contact_sheet_tailfull.png"]
    # a resumed recording of a tail finds its files and records nothing
    assert collect_mod.record_task(collect_mod.Plan("metaworld", TASK, 3, root=clips, expert_tail=TAIL)) == 0


def test_tail_zero_records_what_the_release_recording_did(clips):
    """Tail 0 is the recording of before the option: each file is the scripted expert run from its seed until its
    first success, the seed is the first successful one of ``crc32(task/expert/split)``'s, the meta has the keys
    it always had."""
    env, expert = tasks.make(TASK), make_expert(TASK)
    try:
        for split in ds.SPLITS:
            for i, ep in enumerate(_clips(clips, 0, split)):
                assert set(ep.meta) == RELEASE_META_KEYS
                base = zlib.crc32(f"{TASK}/expert/{split}".encode()) % 1_000_000 * 1000 + 1000 * i
                assert base <= ep.meta["seed"] < base + collect_mod.MAX_TRIES
                frames, actions = [env.reset(seed=ep.meta["seed"])[0]], []
                success = False
                while not success:
                    actions.append(expert.act(env.unwrapped.state))
                    obs, _, _, _, info = env.step(actions[-1])
                    frames.append(obs)
                    success = bool(info["is_success"])
                np.testing.assert_array_equal(ep.frames, np.stack(frames))
                np.testing.assert_array_equal(ep.actions, np.stack(actions))
    finally:
        env.close()


def test_clip_keeps_the_tail_the_episode_has():
    t = 10
    ep = ds.Episode(
        np.arange(t + 1, dtype=np.uint8)[:, None, None, None] * np.ones((1, 3, 4, 4), np.uint8),
        np.zeros((t, 4), np.float32),
        np.zeros(t, np.float32),
        np.zeros(t, bool),
        {"task": TASK},
    )
    ep.successes[[2, 6]] = True  # first success at step 3
    for tail, length in ((0, 3), (4, 7), (7, 10), (50, 10), ("full", 10), ("4", 7)):
        clip = ds.clip_at_first_success(ep, tail)
        assert clip.length == length and clip.meta["first_success"] == 3
        assert clip.frames[-1, 0, 0, 0] == length
        assert clip.meta.get("expert_tail", 0) == ds.check_tail(tail)
    for bad in (-1, 2.5, "half", True, None):
        with pytest.raises(ValueError, match="expert_tail"):
            ds.clip_at_first_success(ep, bad)


def test_names_follow_one_rule_and_the_default_keeps_every_old_name(tmp_path):
    assert [ds.expert_kind(t) for t in (0, "0", 20, "20", "full")] == [
        "expert",
        "expert",
        "expert_tail20",
        "expert_tail20",
        "expert_tailfull",
    ]
    kinds = {"expert": 0, "expert_tail20": 20, "expert_tailfull": "full"}
    assert {k: ds.kind_tail(k) for k in [*kinds, "expert_tail0", "expert_tail020", "eps_1.00"]} == {
        **kinds,
        "expert_tail0": None,
        "expert_tail020": None,
        "eps_1.00": None,
    }
    assert ds.episode_dir("metaworld", TASK, "expert_tail20", "test", tmp_path).parts[-2:] == ("expert_tail20", "test")
    with pytest.raises(ds.DatasetMissingError, match=f"--tasks {TASK} --expert-tail 20 --data-root {tmp_path}"):
        ds.load_episodes("metaworld", [TASK], "expert_tail20", "train", tmp_path)

    ref = ModelRef("metaworld", "vqdiffusion", data_root=tmp_path)
    tail = ModelRef("metaworld", "vqdiffusion", data_root=tmp_path, expert_tail="20")
    assert (ref.name, ref.expert_kind, ref.command) == (
        "vqdiffusion_small_l2",
        "expert",
        f"python -m rewards.models.pretrain --domain metaworld --model vqdiffusion --preset small --context 2 "
        f"--data-root {tmp_path}",
    )
    assert (tail.name, tail.expert_tail, tail.expert_kind) == ("vqdiffusion_small_l2_tail20", 20, "expert_tail20")
    assert "--context 2 --expert-tail 20 --data-root" in tail.command and "--expert-tail 20" in str(tail.missing())
    assert ModelRef("metaworld", "videogpt", task_set="genreward", expert_tail="full").name == (
        "videogpt_small_l2_genreward_tailfull"
    )
    # one codec for every tail: the tail model's codec is the default model's
    assert tail.codec == ref.codec == ModelRef("metaworld", "codec", data_root=tmp_path, expert_tail=20)
    assert tail.codec.name == "codec_small" and tail != ref
    with pytest.raises(ValueError, match="expert_tail"):
        ModelRef("metaworld", "vqdiffusion", expert_tail=-3)
    assert erq.default_out_dir("metaworld").name == "metaworld"
    assert erq.default_out_dir("metaworld", expert_tail=20).name == "metaworld_tail20"


def test_command_lines_take_the_tail(tmp_path, capsys):
    for bad in ("-1", "half"):
        with pytest.raises(SystemExit):
            collect_mod.main(
                ["--domain", "metaworld", "--tasks", TASK, "--expert-tail", bad, "--data-root", str(tmp_path)]
            )
        assert "--expert-tail" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        pretrain_cli.main(
            ["--domain", "metaworld", "--model", "codec", "--expert-tail", "5", "--data-root", str(tmp_path)]
        )
    assert "the codec is shared by every tail" in capsys.readouterr().err
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "models").exists()


# ------------------------------------------------------------------------------- models, providers, scoring


@pytest.fixture(scope="module")
def tail_models(clips, tmp_path_factory):
    """``diffusion_reward:expert_tail=5``'s preparation on reach: the tail's clips and the release's of the seen
    tasks (2 expert episodes each), the shared codec and the tail model (2 steps each), reach's statistics."""
    root = tmp_path_factory.mktemp("tail_models")
    shutil.copytree(clips / "datasets", root / "datasets")
    request = rewards.PrepareRequest.make(
        DiffusionReward,
        overrides={"expert_tail": TAIL, "alpha": 0.5},
        domain="metaworld",
        tasks=(TASK,),
        data_root=str(root),
        pretrain_steps=2,
        expert_episodes=2,
        reports=False,
        device="cpu",
        precision="fp32",
    )
    assert request.overrides == (("expert_tail", TAIL),)  # it changes what is prepared; alpha does not
    DiffusionReward.prepare(request, log=quiet)
    return root


def test_prepare_records_the_tail_and_trains_the_tail_model_through_the_shared_codec(tail_models, capsys):
    root = tail_models
    ref = ModelRef("metaworld", "vqdiffusion", data_root=root, expert_tail=TAIL)
    for task in seen_tasks("metaworld"):  # the tail's clips for the model, the release's for the codec
        for kind in ("expert_tail5", "expert"):
            assert ds.load_episodes("metaworld", [task], kind, "train", root), (task, kind)
    models = sorted(p.name for p in (root / "models" / "metaworld").iterdir())
    assert models == ["codec_small", "vqdiffusion_small_l2_tail5"]
    meta = read_checkpoint(ref.checkpoint)["meta"]
    assert meta["expert_tail"] == TAIL and meta["steps"] == 2 and meta["tasks"] == seen_tasks("metaworld")
    assert np.isfinite(meta["codec_psnr_clips"]) and meta["codec_psnr_clips"] > 0
    assert (ref.codec.dir / "tokens" / TASK / "expert_tail5_train.pt").is_file()
    # the statistics are over the tail's training clips of the task, every transition once
    stats = json.loads((ref.dir / "stats.json").read_text())
    (entry,) = stats.values()
    tail_steps = sum(ep.length for ep in _clips(root, TAIL, "train"))
    assert entry["tasks"][TASK]["n"] == tail_steps > sum(ep.length for ep in _clips(root, 0, "train"))
    # the pretraining command with --expert-tail names the same model: trained already, nothing to do
    capsys.readouterr()
    cli = ["--domain", "metaworld", "--model", "vqdiffusion", "--expert-tail", str(TAIL), "--steps", "2"]
    assert pretrain_cli.main([*cli, "--device", "cpu", "--precision", "fp32", "--data-root", str(root)]) == 0
    assert f"already trained for 2 >= 2 steps: nothing to do ({ref.dir})" in capsys.readouterr().out


def test_the_provider_option_reaches_the_tail_model(tail_models, tmp_path):
    kw = dict(task=TASK, domain="metaworld", device="cpu", alpha=0.0, beta=0.0)
    provider = rewards.make("diffusion_reward", expert_tail=TAIL, data_root=tail_models, **kw)
    assert provider.ref.dir == ModelRef("metaworld", "vqdiffusion", data_root=tail_models, expert_tail=TAIL).dir
    assert provider.model.meta["expert_tail"] == TAIL and provider.params["expert_tail"] == TAIL
    with pytest.raises(FileNotFoundError, match=f"--context 2 --expert-tail {TAIL} --data-root {tmp_path}"):
        rewards.make("viper_std", expert_tail=TAIL, data_root=tmp_path, **kw)
    # a suite's NAME:key=value method carries it into the runs' preparation and provider settings
    (run,) = expand("metaworld7", "smoke", methods=[f"diffusion_reward:expert_tail={TAIL}"], tasks=["door-close"])
    assert run.prepare.override("expert_tail") == TAIL and run.config.provider_overrides["expert_tail"] == TAIL
    assert run.config.method == f"diffusion_reward-expert_tail={TAIL}"


def test_scoring_the_tail_model_ranks_the_default_scorings_episodes(tail_models, tmp_path):
    """The tail changes the model the rewards come from, nothing else: the default scoring's episodes, steps and
    window K (which no provider changes, so the model-free control stands for the default scoring here)."""
    args = dict(
        epsilons=(0.0, 1.0),
        eps_episodes=1,
        expert_episodes=2,
        data_root=tail_models,
        device="cpu",
        precision="fp32",
        log=quiet,
        progress=False,
        n_boot=50,
    )
    default = erq.score("metaworld", ["noise"], [TASK], out_dir=tmp_path / "default", pretrain=False, **args)
    tail = erq.score(
        "metaworld",
        ["diffusion_reward"],
        [TASK],
        pretrain=False,
        overrides={"expert_tail": TAIL, "steps": 1},  # one denoising step: a quick score, the same episodes
        out_dir=tmp_path / "tail",
        **args,
    )
    same = ["task", "epsilon", "episode", "step", "dense", "first_success"]
    pd.testing.assert_frame_equal(tail.steps[same], default.steps[same])
    assert (
        tail.windows == default.windows == {TASK: int(np.median([ep.length for ep in _clips(tail_models, 0, "test")]))}
    )
    config = json.loads((tmp_path / "tail" / "config.json").read_text())
    assert (
        config["expert_tail"] == TAIL
        and json.loads((tmp_path / "default" / "config.json").read_text())["expert_tail"] == 0
    )
    params = config["provider_params"]["diffusion_reward"][TASK]
    assert params["expert_tail"] == TAIL and params["trained_on"] == seen_tasks("metaworld")
    assert (tmp_path / "tail" / "reward_quality_metaworld_tail5.png").is_file()


def test_the_scoring_command_takes_the_tail(tmp_path, capsys):
    cli = ["--domain", "metaworld", "--tasks", TASK, "--data-root", str(tmp_path), "--expert-tail", str(TAIL)]
    with pytest.raises(SystemExit):  # the flag reaches the providers' overrides: one without a tail model is refused
        erq.main([*cli, "--providers", "genreward_video"])
    assert "genreward_video: its video model has no expert-tail variant" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        erq.main([*cli[:-1], "tail"])
    assert "--expert-tail" in capsys.readouterr().err
    assert not (tmp_path / "datasets").exists()
