"""analysis.reward_analysis: learned return against epsilon on seen and unseen tasks.

Three levels:
- the statistics (``analysis.reward_tables``) on hand-made tables whose answer is known;
- the whole pipeline with the ``sparse`` provider, whose "learned" return is the env success reward:
  it must fall as epsilon grows, so its Spearman correlation with 1 - epsilon is clearly positive;
- the whole pipeline with a real video provider (``viper_std``) at smoke scale: its own ``prepare``
  records the seen tasks' experts and pretrains a codec and VideoGPT for a few steps, and the files
  written must be consistent with one another.

Both pipeline tests share one private data root (one seen and one unseen MetaWorld task), so the
epsilon-greedy episodes are recorded once.
"""
from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from analysis import reward_tables as rt
from analysis.reward_analysis import VIDEO_PROVIDERS, analyse, main, split_of

SEEN, UNSEEN = "reach", "drawer-open"
EXPERT_EPISODES, EPS_EPISODES = 2, 2  # 2 experts per task, as the smoke profile records


def quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def smoke_root(session_data_root):
    """The session's data root (tests/conftest.py): the seen-task videos and the codec recorded and trained
    here are the ones the smoke suites use later, so they are made once. Pretraining resumes to the
    largest step count asked for, so sharing changes no result a test checks."""
    return session_data_root


# ------------------------------------------------------------------------------- the statistics

def _table(returns: dict[tuple[str, str, float], list[float]]) -> pd.DataFrame:
    rows = [{"provider": p, "task": t, "split": split_of(t), "epsilon": e, "episode": i, "raw_return": r}
            for (p, t, e), rs in returns.items() for i, r in enumerate(rs)]
    return pd.DataFrame(rows)


def test_standardise_is_a_z_score_within_provider_and_task():
    table = _table({("viper", SEEN, 0.0): [500.0, 510.0], ("viper", SEEN, 1.0): [400.0, 380.0],
                    ("viper", UNSEEN, 0.0): [-3.0, -2.0], ("viper", UNSEEN, 1.0): [-9.0, -8.0],
                    ("sparse", SEEN, 0.0): [0.0, 0.0], ("sparse", SEEN, 1.0): [0.0, 0.0]})
    out = rt.standardise(table)
    for (provider, task), g in out.groupby(["provider", "task"]):
        if provider == "sparse":  # constant returns: no ranking information, 0 rather than NaN
            assert (g["std_return"] == 0).all()
            continue
        raw = g["raw_return"].to_numpy()
        np.testing.assert_allclose(g["std_return"], (raw - raw.mean()) / raw.std(), rtol=1e-12)
        assert abs(g["std_return"].mean()) < 1e-12 and g["std_return"].std(ddof=0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="raw_return"):
        rt.standardise(table.drop(columns="raw_return"))


def test_spearman_and_summary_on_known_orderings():
    good = {("viper", SEEN, e): [10 - 8 * e, 9 - 8 * e] for e in (0.0, 0.5, 1.0)}       # falls with epsilon
    bad = {("viper", UNSEEN, e): [1 + 5 * e, 2 + 5 * e] for e in (0.0, 0.5, 1.0)}      # rises with epsilon
    table = rt.standardise(_table({**good, **bad}))
    rho = rt.spearman(table)
    assert list(zip(rho["split"], rho["n_episodes"])) == [("seen", 6), ("unseen", 6)]
    seen, unseen = rho["spearman"].to_numpy()
    assert seen > 0.9 and unseen < -0.9
    summary = rt.summarise(table)
    seen_means = summary[summary["split"] == "seen"].sort_values("epsilon")["mean"].to_numpy()
    assert np.all(np.diff(seen_means) < 0) and set(summary["n_episodes"]) == {2}
    md = rt.spearman_markdown(rho)
    assert md.count("\n") == 3 and "| viper |" in md and "seen" in md and "unseen" in md
    # one epsilon level only: no correlation can be measured
    flat = rt.spearman(rt.standardise(_table({("viper", SEEN, 0.0): [1.0, 2.0, 3.0]})))
    assert np.isnan(flat["spearman"].iloc[0])


# ------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, message", [
    (dict(providers=["no_such_reward"]), r"unknown reward 'no_such_reward'; valid: .*sparse"),
    (dict(tasks=["door"]), r"unknown metaworld task\(s\) door; valid: .*reach"),
    (dict(epsilons=[0.0, 1.5]), r"epsilons: expected at least two distinct values in \[0, 1\]"),
    (dict(eps_episodes=0), r"eps_episodes: expected an int >= 1"),
    (dict(preset="huge"), r"unknown preset 'huge'; valid: small, paper"),
    (dict(pretrain_steps=0), r"pretrain_steps: expected an int >= 1"),
])
def test_bad_input_fails_before_any_work(kwargs, message, tmp_path):
    args = dict(providers=["sparse"], tasks=[SEEN], data_root=tmp_path / "data", out_dir=tmp_path / "out",
                log=quiet, progress=False) | kwargs
    with pytest.raises(ValueError, match=message):
        analyse("metaworld", **args)
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()


def test_cli_unknown_provider_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["--domain", "metaworld", "--providers", "sparse", "viperr", "--data-root", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown reward 'viperr'" in err and all(name in err for name in VIDEO_PROVIDERS)


# ------------------------------------------------------------------------------- the pipeline

def _check_outputs(result, providers, tasks, epsilons):
    """Files on disk equal the returned tables and agree with one another."""
    paths = result.paths
    for key in ("episodes", "summary", "spearman", "spearman_md", "spearman_by_task", "figure", "figure_pdf",
                "config"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    episodes = pd.read_csv(paths["episodes"])
    assert list(episodes.columns[:7]) == list(rt.EPISODE_COLUMNS)
    assert len(episodes) == len(providers) * len(tasks) * len(epsilons) * EPS_EPISODES
    assert set(episodes["split"]) == {"seen", "unseen"} and set(episodes["epsilon"]) == set(epsilons)
    for _, g in episodes.groupby(["provider", "task"]):
        assert abs(g["std_return"].mean()) < 1e-5
        raw = g["raw_return"].to_numpy()
        if raw.std() > 0:
            np.testing.assert_allclose(g["std_return"], (raw - raw.mean()) / raw.std(), atol=1e-4)
    summary = pd.read_csv(paths["summary"])
    assert len(summary) == len(providers) * 2 * len(epsilons)
    expected = episodes.groupby(["provider", "split", "epsilon"])["std_return"].mean()
    for _, row in summary.iterrows():
        assert row["mean"] == pytest.approx(expected[(row["provider"], row["split"], row["epsilon"])], abs=1e-5)
    rho = pd.read_csv(paths["spearman"])
    assert sorted(zip(rho["provider"], rho["split"])) == sorted((p, s) for p in providers for s in ("seen", "unseen"))
    assert rho["spearman"].between(-1, 1).all() and (rho["n_episodes"] == len(epsilons) * EPS_EPISODES).all()
    md = paths["spearman_md"].read_text()
    assert all(f"| {p} |" in md for p in providers)
    image = mpimg.imread(paths["figure"])
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600  # two panels side by side
    assert image[..., :3].std() > 0.05  # not blank
    config = json.loads(paths["config"].read_text())
    assert config["providers"] == list(providers) and config["tasks"] == list(tasks)
    assert config["splits"] == {SEEN: "seen", UNSEEN: "unseen"}
    return episodes, summary, rho


def test_sparse_env_reward_falls_with_epsilon(smoke_root, tmp_path):
    """The env success reward ranks the expert above its noisy versions: a known answer without models."""
    epsilons = (0.0, 0.25, 0.5, 0.75, 1.0)
    result = analyse("metaworld", ["sparse"], [SEEN, UNSEEN], eps_episodes=EPS_EPISODES,
                     expert_episodes=EXPERT_EPISODES, data_root=smoke_root, out_dir=tmp_path / "out", device="auto",
                     log=quiet, progress=False)
    episodes, summary, rho = _check_outputs(result, ["sparse"], [SEEN, UNSEEN], epsilons)
    np.testing.assert_array_equal(episodes["raw_return"], episodes["env_return"])  # sparse = env reward
    seen = summary[summary["split"] == "seen"].set_index("epsilon")["raw_mean"]
    assert seen[0.0] > seen[0.5] > seen[1.0] and seen[0.0] > 100  # the expert succeeds for most of the 100 steps
    rho_seen = rho.set_index("split").loc["seen", "spearman"]
    assert rho_seen > 0.5 and result.spearman.equals(rt.spearman(result.episodes))


def test_cli_relabels_existing_data(smoke_root, tmp_path, capsys):
    """The command reuses recorded episodes and writes the same tables as the function."""
    out = tmp_path / "cli"
    assert main(["--domain", "metaworld", "--providers", "sparse", "--tasks", SEEN, UNSEEN, "--epsilons", "0,0.5,1",
                 "--eps-episodes", str(EPS_EPISODES), "--expert-episodes", str(EXPERT_EPISODES),
                 "--data-root", str(smoke_root), "--out", str(out), "--device", "auto"]) == 0
    printed = capsys.readouterr().out
    assert "Spearman" in printed and "| sparse |" in printed
    episodes = pd.read_csv(out / "episodes.csv")
    assert len(episodes) == 2 * 3 * EPS_EPISODES and (out / "reward_analysis_metaworld.png").is_file()


def test_video_provider_smoke(smoke_root, tmp_path):
    """viper_std end to end: prepare pretrains its models, the reward is the standardised score alone."""
    epsilons = (0.0, 0.5, 1.0)
    result = analyse("metaworld", ["viper_std"], [SEEN, UNSEEN], epsilons=epsilons, eps_episodes=EPS_EPISODES,
                     expert_episodes=EXPERT_EPISODES, pretrain_steps=3, data_root=smoke_root,
                     out_dir=tmp_path / "out", device="auto", log=quiet, progress=False)
    episodes, _, _ = _check_outputs(result, ["viper_std"], [SEEN, UNSEEN], epsilons)
    assert (smoke_root / "models" / "metaworld" / "videogpt_small_l2" / "model.pt").is_file()
    # alpha = beta = 0: the env reward is not in the return (it would be up to 200 for the expert)
    assert not np.allclose(episodes["raw_return"], episodes["env_return"])
    assert episodes["raw_return"].abs().max() < 1e4 and episodes["raw_return"].nunique() > len(episodes) // 2
