"""One aggregate, one setting: runs made under other settings (bf16 beside fp32, smoke beside quick) are
refused before anything is aggregated, with the runs on each side named."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.consistency import MixedSettingsError, check_one_setting, mixed_settings
from analysis.figures import main as figures_main
from analysis.figures import make_figures
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
    assert mixed["precision"] == {"'bf16'": ["rnd/reach/seed_0", "rnd/reach/seed_1", "sparse/reach/seed_0",
                                             "sparse/reach/seed_1"], "'fp32'": ["rnd/reach/seed_2"]}
    with pytest.raises(MixedSettingsError, match=r"precision: 'bf16' \(4 runs: rnd/reach/seed_0, rnd/reach/seed_1, "
                                                 r"sparse/reach/seed_0, \.\.\.\) vs 'fp32' \(1 run: rnd/reach/seed_2\)"):
        make_figures("toy", suite_dir.parent, reps=10)
    assert not (suite_dir / "figures").exists()  # nothing half-written
    assert figures_main(["--suite", "toy", "--results", str(suite_dir.parent), "--reps", "10"]) == 1
    err = capsys.readouterr().err
    assert "different settings" in err and "--precision" in err


@pytest.mark.parametrize("setting, key", [({"profile": "smoke"}, "profile"),
                                          ({"agent": {**AGENT, "batch_size": 256}}, "agent.batch_size")])
def test_another_profile_or_agent_setting_is_refused(suite_dir, setting, key):
    _run(suite_dir, "sparse", "reach", 2, **setting)
    assert set(mixed_settings(suite_dir)) == {key}
    with pytest.raises(MixedSettingsError, match=key):
        check_one_setting(suite_dir)
