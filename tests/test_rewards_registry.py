"""The reward registry: built-ins found lazily, decorated classes, third-party entry points, clean errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import rewards
from rewards.registry import ENTRY_POINT_GROUP, _registered
from tasks.datasets import load_episodes


@pytest.fixture
def episode(tiny_dataset):
    """(frames, env rewards) of a real recorded reach episode (the session's tiny dataset, tests/conftest.py)."""
    ep = load_episodes("metaworld", ["reach"], split="test", root=tiny_dataset)[0]
    return ep.frames[:6], ep.rewards[:5]


def test_builtins_listed_and_made():
    names = rewards.available()
    assert {"sparse", "rnd", "amp"} <= set(names) and names == sorted(names)
    r = rewards.make("rnd", task="reach", domain="metaworld", device="cpu", seed=2)
    assert isinstance(r, rewards.RewardProvider) and r.name == "rnd"
    assert r.params == {"bonus_scale": 1.0, "lr": 1e-4, "update_interval": 1, "image_size": 64}
    assert rewards.get("sparse").__name__ == "SparseReward"


def test_builtins_are_registered_once_in_the_table():
    """``BUILTINS`` is the one registration of a built-in: each line loads a provider class of its module,
    named after its line, and no built-in module registers itself a second way on import."""
    for name, spec in rewards.BUILTINS.items():
        module, _, attr = spec.partition(":")
        cls = rewards.get(name)
        assert (cls.__module__, cls.__name__) == (module, attr) and issubclass(cls, rewards.RewardProvider)
        assert cls.name == name  # the name its messages use while make() builds it

    assert not [n for n, c in _registered.items() if c.__module__.startswith("rewards.")]
    with pytest.raises(ValueError, match=r"'sparse' is a built-in provider \(rewards.sparse:SparseReward\)"):
        rewards.register("sparse")


def test_import_is_light():
    """``import rewards`` must not import torch or any provider module (they load on make())."""
    code = (
        "import sys, rewards; bad = [m for m in ('torch', 'rewards.rnd', 'rewards.amp', 'rewards.sparse') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown reward 'nope'; valid: amp, .*rnd, sparse") as e:
        rewards.make("nope", task="reach", domain="metaworld")
    assert isinstance(e.value, KeyError)  # a failed lookup too
    assert str(e.value).startswith("unknown reward 'nope'")  # readable, not KeyError's repr


def test_unknown_or_missing_keywords_name_the_parameters():
    with pytest.raises(
        ValueError,
        match=r"'rnd' got unknown parameter\(s\) alpha, lrr; it takes: task, domain, "
        r"device, data_root, seed, bonus_scale, lr, update_interval, image_size",
    ):
        rewards.make("rnd", task="reach", domain="metaworld", lrr=1.0, alpha=0.5)
    with pytest.raises(ValueError, match="missing a required argument: 'domain'"):
        rewards.make("sparse", task="reach")
    with pytest.raises(ValueError, match="unknown domain 'dmc'; valid"):
        rewards.make("sparse", task="reach", domain="dmc")
    with pytest.raises(ValueError, match="unknown device"):
        rewards.make("sparse", task="reach", domain="metaworld", device="tpu")


class _Half(rewards.RewardProvider):
    """A decorated provider: half the env reward."""

    def label_episode(self, frames, env_rewards):
        return rewards.validate_episode(frames, env_rewards)[1] * 0.5


def test_register_decorator(episode):
    frames, env_r = episode
    rewards.register("half_test")(_Half)
    try:
        assert "half_test" in rewards.available()
        r = rewards.make("half_test", task="reach", domain="metaworld")
        np.testing.assert_allclose(r.label_episode(frames, env_r + 1), 0.5 * (env_r + 1))
        assert r.bonus({"next_obs": torch.as_tensor(frames)}) is None and r.update({}, 0) == {}
        r.load_state_dict(r.state_dict())
        with pytest.raises(ValueError, match="already registered"):
            rewards.register("half_test")(type("Other", (_Half,), {}))
        with pytest.raises(TypeError, match="subclass of rewards.RewardProvider"):
            rewards.register("not_a_provider")(dict)
        with pytest.raises(ValueError, match="identifiers"):
            rewards.register("has space")
    finally:
        rewards.unregister("half_test")
    assert "half_test" not in rewards.available()


PLUGIN = '''
import numpy as np
import torch
import rewards


class ConstantBonus(rewards.RewardProvider):
    """env reward + 1 per step in replay, a constant bonus at update time."""

    bonus_scale = 0.5

    def __init__(self, *, task, domain, device="cpu", data_root=None, seed=0, level=2.0):
        super().__init__(task=task, domain=domain, device=device, data_root=data_root, seed=seed)
        self.level = float(level)
        self.params = {"level": self.level}

    def label_episode(self, frames, env_rewards):
        return rewards.validate_episode(frames, env_rewards)[1] + 1.0

    def bonus(self, batch):
        obs = rewards.batch_next_obs(batch)
        return torch.full((obs.shape[0],), self.level, device=self.device)
'''


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    """A distribution that is on sys.path but not installed: a module plus its ``.dist-info``."""
    (tmp_path / "vrb_plugin_const.py").write_text(PLUGIN)
    info = tmp_path / "vrb_plugin_const-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vrb-plugin-const\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
        [{ENTRY_POINT_GROUP}]
        plugin_const = vrb_plugin_const:ConstantBonus
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rewards.clear_cache()
    yield "plugin_const"
    monkeypatch.undo()
    sys.modules.pop("vrb_plugin_const", None)
    rewards.clear_cache()


def test_entry_point_provider(plugin_dist, episode):
    frames, env_r = episode
    assert plugin_dist in rewards.available()
    r = rewards.make(plugin_dist, task="reach", domain="metaworld", level=3.0)
    assert r.name == plugin_dist and r.params == {"level": 3.0}
    out = r.label_episode(frames, env_r)
    assert out.dtype == np.float32 and out.shape == (len(frames) - 1,)
    np.testing.assert_allclose(out, env_r + 1.0)
    bonus = r.bonus({"next_obs": torch.as_tensor(frames)})
    assert torch.equal(bonus, torch.full((len(frames),), 3.0))
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) levle; it takes: .*level"):
        rewards.make(plugin_dist, task="reach", domain="metaworld", levle=1.0)


def test_entry_points_gone_after_cache_clear(plugin_dist, monkeypatch):
    """Entry points are cached: an uninstalled plugin stays listed until ``clear_cache()`` re-reads them."""
    assert plugin_dist in rewards.available()
    monkeypatch.undo()  # the plugin's distribution leaves sys.path (as if uninstalled)
    assert plugin_dist in rewards.available()  # still the cached list
    rewards.clear_cache()
    assert plugin_dist not in rewards.available()
