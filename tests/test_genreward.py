"""GenReward on real recorded MetaWorld episodes with a tiny, briefly trained codec and VQ-Diffusion:
goal-video rollouts (shape, determinism, cache), the provider's two levels, and exact checkpoints."""

import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import rewards
from analysis.scores import build_scores
from rewards.base import seeded_init
from rewards.fb import FBLearner, FBNetworks, PixelTrunk
from rewards.genreward import model_ref
from rewards.goal_video import GoalVideoCache, generate, rollout_tokens
from rewards.models.store import ModelMissingError, ModelRef
from rewards.prepare import PrepareRequest
from suites import run as suite_run
from suites import train
from suites.plan import expand
from tasks import datasets as ds
from tasks.registry import task_set

TASK = "pick-place"  # the scripted expert succeeds in ~27 steps, so its videos are short
FAST = dict(goal_frames=6, goal_steps=2)  # short rollouts keep the tests fast on a 2-core CPU


@pytest.fixture
def root(genreward_model_root):
    """The five genreward tasks' expert videos (1 train + 1 test each) with a codec and VQ-Diffusion of the
    ``genreward`` task set trained 30 steps on them (tests/conftest.py, built once per session)."""
    return genreward_model_root


def _make(name, root, **kw):
    return rewards.make(name, task=TASK, domain="metaworld", device="cpu", data_root=root, seed=0, **{**FAST, **kw})


def _episode(root):
    return ds.load_episodes("metaworld", [TASK], split="test", root=root)[0]


def test_rollout_shape_determinism_and_cache(root):
    codec, model = model_ref("metaworld", "small", 2, root, "genreward").load_with_codec("cpu")
    ep = _episode(root)
    first = codec.encode(torch.from_numpy(ep.frames[:2]))
    toks = rollout_tokens(model, first, 4, steps=2, generator=torch.Generator().manual_seed(0))
    assert toks.shape == (2, 5, 64) and torch.equal(toks[:, 0], first)
    a = generate(codec, model, ep.frames[0], 5, seed=3, steps=2)
    b = generate(codec, model, ep.frames[0], 5, seed=3, steps=2)
    c = generate(codec, model, ep.frames[0], 5, seed=4, steps=2)
    assert a.frames.shape == (6, 3, 64, 64) and a.frames.dtype == np.uint8 and a.latents.shape[0] == 6
    assert np.array_equal(a.frames, b.frames) and torch.equal(a.latents, b.latents)
    assert a.frames.flags["C_CONTIGUOUS"]  # the layout a checkpoint reloads frames in: a resume must not change it
    assert not np.array_equal(a.frames, c.frames)  # the seed matters
    cache = GoalVideoCache(codec, model, seed=3, steps=2)
    assert np.array_equal(cache.get(ep.frames[0], 5).frames, a.frames)
    cache.get(ep.frames[0], 5)
    assert cache.misses == 1  # same first frame: paid once
    cache.get(ep.frames[1], 5)
    assert cache.misses == 2 and len(cache) == 2
    with pytest.raises(ValueError, match="length"):
        rollout_tokens(model, first, 0)


def test_providers_are_registered_and_label_a_real_episode(root):
    assert {"genreward", "genreward_video", "genreward_frame"} <= set(rewards.available())
    ep = _episode(root)
    p = _make("genreward", root)
    r = p.label_episode(ep.frames, ep.rewards)
    assert r.shape == ep.rewards.shape and r.dtype == np.float32 and np.all(np.isfinite(r))
    assert p.params["trained_on"] == task_set("genreward", "metaworld") and p.params["sigma"] > 0
    assert TASK in p.params["trained_on"] and p.codec.ref.name == "codec_small_genreward"
    assert len(p.key_frames) == 1 and p.key_frames[0].shape == (3, 64, 64)
    # the env reward enters with beta, the video level with w_video
    v = _make("genreward_video", root, beta=0.0).label_episode(ep.frames, ep.rewards)
    f = _make("genreward_frame", root).label_episode(ep.frames, ep.rewards)
    np.testing.assert_allclose(r, v + ep.rewards, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(f, ep.rewards)
    assert _make("genreward_video", root).bonus_scale == 0.0


def test_fb_numbers_do_not_depend_on_the_frames_memory_layout():
    """Why a resumed run once differed from an uninterrupted one, directly: the codec decodes channels_last,
    a checkpoint reloads arrays C-contiguous,
    and a CPU convolution takes another kernel (another summation order) per layout. FB's pixel trunk takes
    one layout whatever it is given, so B, z_g, F and the bonus are bit-identical for the same pixels."""
    with seeded_init(0):
        fb = FBLearner(FBNetworks(lambda: (PixelTrunk(64), 128), 4, 32))
    gen = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8, generator=gen)
    nhwc = frames.contiguous(memory_format=torch.channels_last)  # same pixels, the codec's layout
    assert torch.equal(nhwc, frames) and not nhwc.is_contiguous()
    from_numpy = torch.from_numpy(np.ascontiguousarray(frames.permute(0, 2, 3, 1).numpy()).transpose(0, 3, 1, 2))
    action = torch.rand(4, 4, generator=gen) * 2 - 1
    with torch.no_grad():
        z = fb.goal_vector(frames)
        for x in (nhwc, from_numpy):
            assert torch.equal(fb.nets.B(x), fb.nets.B(frames)) and torch.equal(fb.goal_vector(x), z)
            assert torch.equal(fb.score(x, action, z), fb.score(frames, action, z))


def _batch(ep, gen, n=8):
    idx = torch.randint(0, len(ep.rewards) - 3, (n,), generator=gen)
    frames = torch.from_numpy(ep.frames)
    return {
        "obs": frames[idx],
        "action": torch.from_numpy(ep.actions)[idx],
        "reward": torch.zeros(n),
        "discount": torch.ones(n),
        "next_obs": frames[idx + 3],
    }


def test_frame_level_bonus_updates_its_model_and_checkpoints_resume_exactly(root):
    ep = _episode(root)
    p = _make("genreward", root)
    gen = torch.Generator().manual_seed(0)
    assert p.bonus(_batch(ep, gen)) is None  # no goal video yet
    p.label_episode(ep.frames, ep.rewards)
    for step in range(4):
        b = _batch(ep, gen)
        assert p.bonus(b).shape == (8,)
        info = p.update(b, step)
    assert {"fb_loss", "fb_ortho_loss"} <= set(info)
    # through torch.save/torch.load as the trainer's checkpoint goes (a deepcopy would keep the arrays' memory
    # layout, which a pickled numpy array does not: a layout-only difference is invisible to a deepcopy)
    buf = io.BytesIO()
    torch.save(p.state_dict(), buf)
    state = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    batches = [_batch(ep, gen) for _ in range(3)]
    a = [(p.bonus(b), p.update(b, 10 + i)) for i, b in enumerate(batches)]
    q = _make("genreward", root)  # a fresh process after kill -9: nothing but the checkpoint
    q.load_state_dict(state)
    qa = [(q.bonus(b), q.update(b, 10 + i)) for i, b in enumerate(batches)]
    for (b1, i1), (b2, i2) in zip(a, qa):
        assert torch.equal(b1, b2) and i1 == i2
    r1, r2 = p.label_episode(ep.frames, ep.rewards), q.label_episode(ep.frames, ep.rewards)
    np.testing.assert_array_equal(r1, r2)  # the goal cache is not saved: regenerated identically
    with pytest.raises(ValueError, match="parameters differ"):
        _make("genreward", root, w_frame=0.5).load_state_dict(state)


def test_bad_input_and_missing_models_say_what_to_do(root, tmp_path):
    with pytest.raises(ValueError, match="valid: genreward, seen"):
        _make("genreward", root, pretrained_on="other")
    with pytest.raises(ModelMissingError, match="--model codec --preset small --task-set genreward --data-root"):
        rewards.make("genreward", task=TASK, domain="metaworld", data_root=tmp_path)
    p = _make("genreward", root)
    with pytest.raises(ValueError, match="keys obs, action, next_obs"):
        p.bonus({"next_obs": torch.zeros(2, 3, 64, 64, dtype=torch.uint8)})


# ------------------------------------------------------------------------------------ through the trainer


def _genreward_runs(genreward_model_root, results, methods=("genreward",), frames=1024):
    """genreward5 smoke runs on pick-place: one eval episode, a short goal video (8 frames, 2 denoising steps)
    so that a 256-step episode does not pay a 256-frame rollout; the request is rebuilt so ``prepare`` makes
    the statistics of exactly these settings."""
    runs = expand(
        "genreward5",
        "smoke",
        methods=list(methods),
        tasks=[TASK],
        results=results,
        frames=frames,
        data_root=str(genreward_model_root),
        torch_threads=1,
        device="cpu",
    )
    out = []
    for spec in runs:
        c = dataclasses.replace(spec.config, eval_episodes=1, checkpoint_every_frames=512, eval_every_frames=frames)
        if c.provider == "genreward":
            c = dataclasses.replace(c, provider_overrides={**c.provider_overrides, "goal_frames": 8, "goal_steps": 2})
        request = rewards.PrepareRequest.make(
            rewards.get(c.provider),
            overrides=c.provider_overrides,
            **{
                f.name: getattr(spec.prepare, f.name) for f in dataclasses.fields(spec.prepare) if f.name != "overrides"
            },
        )
        out.append(dataclasses.replace(spec, config=c, prepare=request))
    return out


def _rows(path):
    return pd.read_csv(path).drop(columns=[c for c in ("time", "fps") if c in pd.read_csv(path, nrows=0).columns])


@pytest.mark.slow
def test_kill_9_and_resume_with_fb_state_gives_the_rows_of_an_uninterrupted_run(genreward_model_root, tmp_path):
    """Checkpoints at frames 512 and 1024 (updates, hence the FB networks, start in episode 2, once the replay
    holds an episode; the key goal frame exists from episode 1's end); the run is killed during episode 3 and
    resumed from the 1024 checkpoint: it must give the uninterrupted run's rows (evaluation at 0 and 1536).

    Why: the resumed episode's learned_return and critic_loss differed in the last digits, because the
    key goal frames were channels_last views of the decoded goal video in the live run but C-contiguous
    arrays after the checkpoint's reload, and a CPU convolution sums in another order per layout (z_g a few
    ulps apart). Where the kill lands is made certain: the test waits for the 1024 checkpoint file itself,
    and episode 3 (tens of seconds) cannot have ended 1 s later (checked: no 1536 checkpoint, run alive)."""

    [whole] = _genreward_runs(genreward_model_root, tmp_path / "whole", frames=1536)
    suite_run.prepare([whole], log=lambda m: None)
    train.run(whole.config, whole.run_dir)
    [killed] = _genreward_runs(genreward_model_root, tmp_path / "killed", frames=1536)
    code = "import json, sys; from suites import train; train.run(json.loads(sys.argv[1]), sys.argv[2])"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(killed.config.as_dict()), str(killed.run_dir)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    ckpts = killed.run_dir / "checkpoints"
    deadline = time.monotonic() + 600
    try:
        # written atomically (renamed into place), so once it exists it is whole
        while not (ckpts / "ckpt_0000001024.pt").exists():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no 1024-frame checkpoint within 600 s"
            time.sleep(0.05)
        time.sleep(1.0)  # into episode 3, which lasts tens of seconds
        assert proc.poll() is None, "the run ended before it could be killed"
        assert not (ckpts / "ckpt_0000001536.pt").exists(), "the kill would land after episode 3"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (killed.run_dir / "done.json").exists()
    ckpt = train.list_checkpoints(killed.run_dir)[-1]
    assert ckpt.name == "ckpt_0000001024.pt"
    state = torch.load(ckpt, weights_only=False)["provider"]
    # the FB state is in it: networks, and one key goal frame per distinct first frame of episodes 1 and 2
    assert state["fb"] is not None and state["key_frames"].shape[1:] == (3, 64, 64) and state["episodes"] == 2
    logs = []
    train.run(killed.config, killed.run_dir, log=logs.append)
    assert any("resumed" in m and "frame 1024" in m for m in logs), logs
    pd.testing.assert_frame_equal(_rows(killed.run_dir / "eval.csv"), _rows(whole.run_dir / "eval.csv"))
    a, b = _rows(killed.run_dir / "train.csv"), _rows(whole.run_dir / "train.csv")
    pd.testing.assert_frame_equal(a, b)
    # no update before the replay holds episode 1; episodes 2 and 3 (the resumed one) learned with the bonus
    assert a["bonus"].notna().tolist() == [False, True, True]


@pytest.mark.slow
def test_genreward5_smoke_end_to_end(genreward_model_root, tmp_path):
    """prepare (videos and models found made; statistics computed), one 512-frame run of genreward and of
    diffusion_reward on the genreward task set's model, scores written."""

    runs = _genreward_runs(genreward_model_root, tmp_path / "results", ("diffusion_reward", "genreward"), 512)
    logs = []
    suite_run.prepare(runs, log=logs.append)
    # the session's five-task models were already trained to 30 steps: both providers find them made
    assert sum("nothing to do" in m for m in logs) == 4 and not any("trained to step" in m for m in logs)
    for spec in runs:
        assert train.run(spec.config, spec.run_dir)["frame"] == 512
    suite_dir = tmp_path / "results" / "genreward5"
    build_scores(suite_dir)
    assert set(pd.read_csv(suite_dir / "scores.csv")["method"]) == {"diffusion_reward", "genreward"}
    five = task_set("genreward", "metaworld")
    for method in ("diffusion_reward", "genreward"):
        config = json.loads((suite_dir / method / TASK / "seed_0" / "config.json").read_text())
        assert list(pd.read_csv(suite_dir / method / TASK / "seed_0" / "eval.csv")["frame"]) == [0, 512]
    assert config["provider_overrides"]["preset"] == "small"
    dr = rewards.make(
        "diffusion_reward", task=TASK, domain="metaworld", data_root=genreward_model_root, task_set="genreward"
    )
    # the suite's diffusion_reward reads the five-task model, not the seen-task one (not silently zero-shot)
    assert dr.params["trained_on"] == five and dr.params["task_set"] == "genreward"
    assert (
        json.loads((suite_dir / "diffusion_reward" / TASK / "seed_0" / "config.json").read_text())[
            "provider_overrides"
        ]["task_set"]
        == "genreward"
    )


def test_prepare_pretrains_the_shared_genreward_model_in_the_requested_precision(genreward_model_root, tmp_path):
    """genreward and diffusion_reward (``task_set="genreward"``) share one codec and VQ-Diffusion; whichever
    prepares it first fixes its precision for both (a finished model is used as it is). So genreward's
    prepare must pretrain in the request's precision, as diffusion_reward's does; in fp32 regardless, a
    bf16 launch's diffusion_reward would score with an fp32-trained model, or not, depending on the order."""
    shutil.copytree(genreward_model_root / "datasets", tmp_path / "datasets")  # the videos, no models
    shared = model_ref("metaworld", "small", 2, tmp_path, "genreward")
    assert shared == ModelRef(
        "metaworld", rewards.get("diffusion_reward").model_name, "small", 2, tmp_path, task_set="genreward"
    )
    request = PrepareRequest(
        domain="metaworld",
        tasks=(TASK,),
        data_root=str(tmp_path),
        preset="small",
        pretrain_steps={"codec": 2, "vqdiffusion": 3},  # each model its own budget
        expert_episodes=2,
        reports=False,
        device="cpu",
        precision="bf16",
    )
    rewards.get("genreward_frame").prepare(request, log=lambda m: None)  # the frame level: no statistics to make
    for ref, steps in ((shared.codec, 2), (shared, 3)):
        meta = torch.load(ref.checkpoint, map_location="cpu", weights_only=False)["meta"]
        assert meta["precision"] == "bf16" and meta["steps"] == steps, ref.name
    # diffusion_reward's own prepare takes its budget per model too: the codec stays, the VQ-Diffusion goes on
    more = PrepareRequest.make(
        rewards.get("diffusion_reward"),
        overrides={"task_set": "genreward"},
        **{
            **{k: v for k, v in request.to_dict().items() if k != "overrides"},
            "tasks": (TASK,),
            "pretrain_steps": {"codec": 2, "vqdiffusion": 4},
        },
    )
    rewards.get("diffusion_reward").prepare(more, log=lambda m: None)
    assert [torch.load(r.checkpoint, weights_only=False)["meta"]["steps"] for r in (shared.codec, shared)] == [2, 4]
