"""Shared test settings: headless GL, few threads (tests share a 2-core machine), a private data root, and
the fixtures that record episodes or train models.

Those fixtures live here, not in a test module: a session fixture imported into several test modules is
built once per importing module, so a recording or a training run would be repeated for each of them.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("WANDB_MODE", "disabled")

import shutil

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rewards.models.codec import CodecConfig, CodecOptim
from rewards.models.pretrain import CodecTrainer, pretrain
from rewards.models.store import ModelRef
from tasks.collect import collect
from tasks.datasets import load_episodes
from tasks.registry import task_set

torch.set_num_threads(1)

#: the task of the tiny real dataset the model tests train on
TASK = "reach"


@pytest.fixture(scope="session")
def session_data_root(tmp_path_factory):
    """The data root every test sees by default: a per-session temp dir, never the user's ./data."""
    return tmp_path_factory.getbasetemp() / "data_root"


@pytest.fixture(autouse=True)
def _private_data_root(session_data_root, monkeypatch):
    monkeypatch.setenv("VRB_DATA_ROOT", str(session_data_root))
    yield


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A data root holding datasets/metaworld/reach: 2 train + 1 test expert episodes, 1 eps_1.00 episode,
    recorded with the project's own collector."""
    root = tmp_path_factory.mktemp("tiny_data")
    collect("metaworld", [TASK], episodes=3, epsilons=(1.0,), eps_episodes=1, root=root, show_progress=False)
    return root


def tiny_codec_config(**kw):
    """A codec small enough to train in seconds on one CPU thread (the architecture of the presets)."""
    base = dict(
        channels=(16, 16, 32, 32),
        codebook_size=256,
        code_dim=32,
        disc_channels=16,
        disc_start=60,
        dead_after=20,
        optim=CodecOptim(lr=2e-3),
    )
    base.update(kw)
    return CodecConfig(**base)


def frames_of(root, split):
    """Every frame of the tiny dataset's ``split`` as one uint8 tensor [N, 3, 64, 64]."""
    return torch.from_numpy(
        np.concatenate([e.frames for e in load_episodes("metaworld", [TASK], split=split, root=root)])
    )


@pytest.fixture(scope="session")
def trained_codec(tiny_dataset):
    """The tiny codec after 100 steps on the training frames (GAN loss on from step 60)."""
    torch.manual_seed(0)
    trainer = CodecTrainer(tiny_codec_config(), torch.device("cpu"))
    train = frames_of(tiny_dataset, "train")
    gen = torch.Generator().manual_seed(0)
    logs = {}
    for step in range(100):
        logs = trainer.step(train[torch.randint(0, len(train), (16,), generator=gen)], step)
    assert "gan_d" in logs  # the discriminator did switch on after its warm-up
    return trainer.model.eval()


@pytest.fixture(scope="session")
def video_model_root(tiny_dataset, tmp_path_factory):
    """A data root with the tiny dataset's reach videos and a codec, VQ-Diffusion and VideoGPT (small preset,
    context 2) each trained 15 steps on them: what the video-reward providers load."""
    root = tmp_path_factory.mktemp("video_models")
    shutil.copytree(tiny_dataset / "datasets", root / "datasets")
    for kind in ("codec", "vqdiffusion", "videogpt"):
        pretrain(
            ModelRef("metaworld", kind, "small", 2, root),
            steps=15,
            tasks=[TASK],
            device="cpu",
            quality=False,
            progress=False,
            log=lambda m: None,
        )
    return root


#: GenReward's five tasks, the ``genreward`` task set (tasks.registry.TASK_SETS)
GENREWARD_TASK = "pick-place"


@pytest.fixture(scope="session")
def genreward_model_root(tmp_path_factory):
    """A data root with the five genreward tasks' expert videos (2 each: 1 train + 1 test, the smoke
    profile's count; the scripted experts stop at success, 25-110 steps) and a codec and VQ-Diffusion of
    the ``genreward`` task set (small preset, context 2) trained 30 steps on them: the smoke profile's
    pretraining length, so a genreward5 smoke run finds them made and trains nothing."""
    root = tmp_path_factory.mktemp("genreward_models")
    collect("metaworld", task_set("genreward", "metaworld"), episodes=2, root=root, show_progress=False)
    ref = ModelRef("metaworld", "vqdiffusion", "small", 2, root, task_set="genreward")
    for r in (ref.codec, ref):
        pretrain(r, steps=30, device="cpu", quality=False, progress=False, log=lambda m: None)
    return root


#: test files that use the same expensive session fixture: under pytest-xdist (``--dist loadgroup``, the
#: README's command) each group runs on one worker, so its fixture is built once per run, not once per
#: worker that happens to get one of its files. Every other file is its own group (``--dist loadfile``'s
#: behaviour: a module's fixtures are built once).
FIXTURE_GROUPS = {
    "test_genreward.py": "genreward_model_root",
    "test_reward_quality_genreward.py": "genreward_model_root",
    "test_precision.py": "video_model_root",
    "test_video_rewards.py": "video_model_root",
    "test_zero_shot_stats.py": "video_model_root",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the marks into groups
def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.xdist_group(FIXTURE_GROUPS.get(item.path.name, str(item.path))))
