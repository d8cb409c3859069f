"""One aggregate, one setting: runs made under other settings (bf16 beside fp32, smoke beside quick) are
refused before anything is aggregated, with the runs on each side named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.consistency import MixedSettingsError, check_joins, check_one_setting, mixed_settings
from analysis.figures import main as figures_main
from analysis.figures import make_figures
from suites import run as suite_run
from suites.plan import expand
from tests.test_scores import write_run

AGENT = {"batch_size": 64, "lr": 1e-4, "precision": "bf16"}


def _run(suite_dir: Path, method: str, task: str, seed: int, **setting) -> Path:
    run = write_run(suite_dir, method, task, seed, [0.0, 0.5, 1.0, 1.0])
    cfg = json.loads((run / "config.json").read_text())
    cfg.update({"profile": "quick", "precision": "bf16", "agent": AGENT, "versions": {"cpu": f"cpu {seed}"}})
    cfg.update(setting)
    (run / "config.json").write_text(json.dumps(cfg))
    return run


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    d = tmp_path / "results" / "toy"
    for method in ("sparse", "rnd"):
        for seed in (0, 1):
            _run(d, method, "reach", seed)
    return d


def test_one_setting_passes_even_across_machines(suite_dir):
    """Different CPUs (versions) are two machines of one experiment, not two settings."""
    assert mixed_settings(suite_dir) == {}
    check_one_setting(suite_dir)
    assert (suite_dir / "figures" / "report.md") in make_figures("toy", suite_dir.parent, reps=10)


def test_an_fp32_run_among_bf16_ones_is_refused_and_named(suite_dir, capsys):
    _run(suite_dir, "rnd", "reach", 2, precision="fp32", agent={**AGENT, "precision": "fp32"})
    mixed = mixed_settings(suite_dir)
    assert set(mixed) == {"precision", "agent.precision"}
    assert mixed["precision"] == {
        "'bf16'": ["rnd/reach/seed_0", "rnd/reach/seed_1", "sparse/reach/seed_0", "sparse/reach/seed_1"],
        "'fp32'": ["rnd/reach/seed_2"],
    }
    with pytest.raises(
        MixedSettingsError,
        match=r"precision: 'bf16' \(4 runs: rnd/reach/seed_0, rnd/reach/seed_1, "
        r"sparse/reach/seed_0, \.\.\.\) vs 'fp32' \(1 run: rnd/reach/seed_2\)",
    ):
        make_figures("toy", suite_dir.parent, reps=10)
    assert not (suite_dir / "figures").exists()  # nothing half-written
    assert figures_main(["--suite", "toy", "--results", str(suite_dir.parent), "--reps", "10"]) == 1
    err = capsys.readouterr().err
    assert "different settings" in err and "--precision" in err


@pytest.mark.parametrize(
    "setting, key", [({"profile": "smoke"}, "profile"), ({"agent": {**AGENT, "batch_size": 256}}, "agent.batch_size")]
)
def test_another_profile_or_agent_setting_is_refused(suite_dir, setting, key):
    _run(suite_dir, "sparse", "reach", 2, **setting)
    assert set(mixed_settings(suite_dir)) == {key}
    with pytest.raises(MixedSettingsError, match=key):
        check_one_setting(suite_dir)


def test_video_runs_of_two_pretraining_budgets_are_refused_and_runs_without_a_model_are_not(suite_dir):
    """A video reward at another pretraining budget is another reward: its runs must not pool with the old
    ones. Runs without a video model record no budget (older ones a meaningless profile value), so a sparse
    run of a 1,000-step launch pools with one of a per-model-budget launch."""
    video = {"provider_overrides": {"preset": "small"}}
    _run(suite_dir, "sparse", "reach", 2, pretrain_steps=1000)  # recorded before the rule: the profile's value
    _run(suite_dir, "sparse", "reach", 3, pretrain_steps=None)
    for seed in (0, 1):
        _run(suite_dir, "viper_std", "reach", seed, pretrain_steps={"codec": 3000, "videogpt": 3000}, **video)
    _run(suite_dir, "diffusion_reward", "reach", 0, pretrain_steps=1000, **video)
    assert mixed_settings(suite_dir) == {}  # each video method has one budget; diffusion_reward may differ
    _run(suite_dir, "viper_std", "reach", 2, pretrain_steps=1000, **video)
    mixed = mixed_settings(suite_dir)
    assert mixed == {
        "pretrain_steps (viper_std)": {
            "{'codec': 3000, 'videogpt': 3000}": ["viper_std/reach/seed_0", "viper_std/reach/seed_1"],
            "1000": ["viper_std/reach/seed_2"],
        }
    }
    with pytest.raises(
        MixedSettingsError, match=r"pretrain_steps \(viper_std\): .* vs 1000 \(1 run: viper_std/reach/seed_2\)"
    ):
        check_one_setting(suite_dir)
    # a model trained on clips with a post-success tail is another reward too (a provider override)
    tail = {"provider_overrides": {"preset": "small", "expert_tail": 20}}
    _run(suite_dir, "diffusion_reward", "reach", 1, pretrain_steps=1000, **tail)
    assert set(mixed_settings(suite_dir)) == {"pretrain_steps (viper_std)", "provider_overrides (diffusion_reward)"}


def test_a_launch_of_another_precision_beside_a_folders_runs_is_refused_up_front(tmp_path, capsys):
    """The case of a CPU without native bf16: --precision auto there plans fp32 runs, and the folder holds
    bf16 ones (e.g. a copy of the reference experiment). suites.run refuses before preparing anything."""
    results = tmp_path / "results"
    planned = expand("smoke", "smoke", seeds=[0], results=results, precision="fp32")
    there = planned[0]
    bf16 = {
        **there.config.as_dict(),
        "seed": 7,
        "precision": "bf16",
        "agent": {**there.config.agent, "precision": "bf16"},
    }
    run_dir = results / "smoke" / there.config.method / there.config.task / "seed_7"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(bf16, default=str))
    with pytest.raises(SystemExit) as exc:
        suite_run.main(["--suite", "smoke", "--seeds", "0", "--precision", "fp32", "--results", str(results)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "holds runs of another setting than this launch" in err and "precision: 'fp32' now, 'bf16' in 1 run" in err
    assert not (results / "smoke" / there.config.method / there.config.task / "seed_0").exists()
    check_joins(results / "smoke", [bf16])  # the folder's own setting joins it (another seed)
    same = {**there.config.as_dict(), "seed": 7}
    run_dir.joinpath("config.json").write_text(json.dumps(same, default=str))
    check_joins(results / "smoke", [r.config.as_dict() for r in planned])


def test_tasks_may_differ_in_budget_and_horizon_but_seeds_of_one_task_may_not(suite_dir):
    """adroit3's pen runs 50 agent steps per episode, door 100; each task's std schedule follows its budget."""
    pen = {"horizon": 50, "frames": 3000, "agent": {**AGENT, "std_duration": 1500.0}}
    for seed in (0, 1):
        _run(suite_dir, "sparse", "pen", seed, **pen)
    assert mixed_settings(suite_dir) == {}
    _run(suite_dir, "rnd", "pen", 0, **{**pen, "frames": 6000, "agent": {**AGENT, "std_duration": 3000.0}})
    assert set(mixed_settings(suite_dir)) == {"frames (pen)", "agent.std_duration (pen)"}
