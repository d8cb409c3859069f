"""The launch line of the reward-quality gate and which methods it checks (the end-to-end launch with the gate
is in tests/test_suites_video.py)."""

from suites.plan import expand
from suites.quality_gate import _compact, line, video_methods


def _verdict(seen_pass: bool, unseen):
    return {
        "pass": seen_pass and (unseen is None or unseen["pass"]),
        "seen": {
            "rho": 0.52,
            "p": 0.004,
            "ci": [0.3, 0.7],
            "n": 175,
            "n_tasks": 7,
            "rho_whole": -0.1,
            "p_whole": 0.2,
            "pass": seen_pass,
        },
        "unseen": unseen,
    }


def test_the_line_names_each_split_its_numbers_and_the_verdict():
    v = _verdict(
        True,
        {
            "rho": -0.05,
            "p": 0.6,
            "ci": [-0.3, 0.2],
            "n": 100,
            "n_tasks": 4,
            "rho_whole": 0.01,
            "p_whole": 0.9,
            "pass": False,
        },
    )
    text = line("diffusion_reward", v)
    assert text.startswith(
        "reward quality diffusion_reward: FAIL (seen rho +0.52 (p 0.004, 175 episodes, "
        "whole-episode rho -0.10) pass; unseen rho -0.05 (p 0.6, 100 episodes"
    )
    assert line("viper_std", _verdict(True, None), " (cached)").endswith("pass) (cached)")
    recorded = _compact(v, {"tasks": "gate"})
    assert recorded["pass"] is False and recorded["seen"]["rho"] == 0.52 and "ci" not in recorded["seen"]


def test_only_methods_learning_from_a_video_model_are_gated(tmp_path):
    runs = expand("metaworld7", "smoke", methods=["sparse", "rnd", "diffusion_reward", "viper_std"], results=tmp_path)
    assert sorted(video_methods(runs)) == ["diffusion_reward", "viper_std"]
