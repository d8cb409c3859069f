"""The pretrained video rewards on real recorded episodes with tiny, briefly trained models."""
import numpy as np
import pytest

import rewards
from rewards.models.pretrain import pretrain
from tasks import datasets as ds
from tasks.collect import collect

VIDEO_PROVIDERS = ["diffusion_reward", "diffusion_reward_nonoise", "diffusion_ll", "viper", "viper_std", "viper_ce"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """reach: 3 expert episodes (2 train, 1 test); codec and both video models trained briefly on it."""
    root = tmp_path_factory.mktemp("video_rewards")
    collect("metaworld", ["reach"], episodes=3, root=root, show_progress=False)
    for model in ("codec", "vqdiffusion", "videogpt"):
        pretrain("metaworld", model, "small", 2, steps=15, tasks=["reach"], root=root, device="cpu",
                 quality=False, progress=False, log=lambda m: None)
    return root


def _make(name, root, **kw):
    return rewards.make(name, task="reach", domain="metaworld", device="cpu", data_root=root, seed=0, **kw)


def test_all_video_providers_are_registered():
    assert set(VIDEO_PROVIDERS) <= set(rewards.available())


@pytest.mark.parametrize("name", VIDEO_PROVIDERS)
def test_each_provider_labels_a_real_episode(name, root):
    ep = ds.load_episodes("metaworld", ["reach"], split="test", root=root)[0]
    provider = _make(name, root)
    r = provider.label_episode(ep.frames, ep.rewards)
    assert r.shape == ep.rewards.shape and r.dtype == np.float32 and np.all(np.isfinite(r))
    expected_alpha = {"viper": 0.5, "viper_std": 0.5, "viper_ce": 0.5}.get(name, 0.95)
    assert provider.bonus_scale == expected_alpha == provider.params["alpha"]
    assert provider.params["trained_on"] == ["reach"]
    with pytest.raises(ValueError, match="uint8"):
        provider.label_episode(ep.frames.astype(np.float32), ep.rewards)


def test_pen_uses_alpha_zero_for_diffusion_reward():
    cls = rewards.get("diffusion_reward")
    assert cls.task_alpha["pen"] == 0.0 and cls.default_alpha == 0.95


def test_alpha_and_beta_combine_as_the_formula_says(root):
    ep = ds.load_episodes("metaworld", ["reach"], root=root)[0]
    p = _make("viper_std", root, alpha=0.3, beta=2.0)
    s = p.scores(ep.frames)
    expected = 0.7 * (s - p.mu) / p.sigma + 2.0 * ep.rewards
    np.testing.assert_allclose(p.label_episode(ep.frames, ep.rewards), expected, rtol=1e-5, atol=1e-5)
    raw = _make("viper", root, alpha=0.0, beta=0.0)  # VIPER: the raw log-likelihood, not standardised
    np.testing.assert_allclose(raw.label_episode(ep.frames, ep.rewards), s, rtol=1e-5, atol=1e-4)
    assert (raw.mu, raw.sigma) == (0.0, 1.0)


@pytest.mark.parametrize("name, tol", [("viper_std", 1e-3), ("diffusion_ll", 0.35)])
def test_standardised_expert_returns_have_mean_0_std_1_on_training_videos(name, tol, root):
    """Exact for VideoGPT's deterministic LL; VQ-Diffusion's ELBO samples z_t, so only close to it."""
    p = _make(name, root, alpha=0.0, beta=0.0)
    scores = np.concatenate([p.label_episode(e.frames, e.rewards)
                             for e in ds.load_episodes("metaworld", ["reach"], root=root)])
    assert abs(scores.mean()) < tol and abs(scores.std() - 1.0) < tol


def test_noise_off_is_deterministic_and_checkpoints_round_trip(root):
    ep = ds.load_episodes("metaworld", ["reach"], root=root)[0]
    a, b = _make("diffusion_reward_nonoise", root), _make("diffusion_reward_nonoise", root)
    np.testing.assert_array_equal(a.label_episode(ep.frames, ep.rewards), b.label_episode(ep.frames, ep.rewards))
    noisy = _make("diffusion_reward", root)
    noisy.label_episode(ep.frames, ep.rewards)
    state = noisy.state_dict()
    first = noisy.label_episode(ep.frames, ep.rewards)
    again = _make("diffusion_reward", root)
    again.load_state_dict(state)
    np.testing.assert_array_equal(again.label_episode(ep.frames, ep.rewards), first)


def test_non_finite_rewards_name_provider_task_and_episode(root):
    ep = ds.load_episodes("metaworld", ["reach"], root=root)[0]
    p = _make("viper_std", root)
    p.sigma = 0.0
    with pytest.raises(ValueError, match=r"viper_std: non-finite reward on task 'reach', episode 1"):
        p.label_episode(ep.frames, ep.rewards)


def test_missing_models_name_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m rewards.models.pretrain --domain metaworld --model videogpt"):
        _make("viper", tmp_path)
