"""A third-party reward provider end to end: a real distribution, built and installed by pip, declares a
provider under the entry-point group, and ``python -m suites.run`` benchmarks it beside a suite.

The distribution is installed with ``--target`` into a temporary folder that only the launched process
sees (on its PYTHONPATH): entry points are found from the ``.dist-info`` on ``sys.path``, so this is
what an installed plugin looks like to the suite, and the test's own environment is never changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import rewards
from rewards.registry import ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "halved_sparse"

PYPROJECT = f'''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "vrb-halved-sparse"
version = "0.1.0"

[project.entry-points."{ENTRY_POINT_GROUP}"]
{PLUGIN} = "vrb_halved_sparse:HalvedSparse"

[tool.setuptools]
py-modules = ["vrb_halved_sparse"]
'''

MODULE = '''
"""The env's success reward times a factor: the smallest provider that trains an agent."""
import rewards


class HalvedSparse(rewards.RewardProvider):
    def __init__(self, *, task, domain, device="cpu", data_root=None, seed=0, factor=0.5):
        super().__init__(task=task, domain=domain, device=device, data_root=data_root, seed=seed)
        self.factor = float(factor)
        self.params = {"factor": self.factor}

    def label_episode(self, frames, env_rewards):
        return rewards.validate_episode(frames, env_rewards)[1] * self.factor
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    """A folder holding the plugin as pip installs it (module + ``.dist-info`` with its entry points)."""
    src = tmp_path_factory.mktemp("plugin_src")
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "vrb_halved_sparse.py").write_text(textwrap.dedent(MODULE))
    target = tmp_path_factory.mktemp("plugin_site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert list(target.glob("vrb_halved_sparse-0.1.0.dist-info/entry_points.txt"))
    return target


def _suite_run(plugin_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m suites.run ARGS`` from the worktree, with the plugin installed for that process only."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "suites.run", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def test_the_plugin_is_installed_for_the_launched_process_only(plugin_path):
    assert PLUGIN not in rewards.available()  # this environment is unchanged
    out = _suite_run(plugin_path, "--list")
    assert out.returncode == 0, out.stderr
    assert PLUGIN in out.stdout.split("reward providers")[1].split()


@pytest.mark.slow
def test_an_installed_plugin_runs_through_the_smoke_profile(plugin_path, tmp_path):
    """Beside the suite's own ``sparse``, the plugin by name and with a parameter, all in one launch."""
    results = tmp_path / "results"
    out = _suite_run(
        plugin_path,
        "--suite",
        "smoke",
        "--profile",
        "smoke",
        "--seeds",
        "0",
        "--frames",
        "400",
        "--threads",
        "1",
        "--jobs",
        "1",
        "--no-figures",
        "--results",
        str(results),
        "--methods",
        "sparse",
        PLUGIN,
        f"{PLUGIN}:factor=2",
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    suite_dir = results / "smoke"
    for label, factor in (("sparse", None), (PLUGIN, 0.5), (f"{PLUGIN}-factor=2", 2.0)):
        run_dir = suite_dir / label / "reach" / "seed_0"
        assert json.loads((run_dir / "done.json").read_text())["frame"] == 400
        assert list(pd.read_csv(run_dir / "eval.csv")["frame"]) == [0, 400]
        config = json.loads((run_dir / "config.json").read_text())
        assert config["method"] == label
        if factor is not None:
            assert config["provider"] == PLUGIN
            assert config["provider_overrides"] == ({} if label == PLUGIN else {"factor": 2})
    assert set(pd.read_csv(suite_dir / "scores.csv")["method"]) == {"sparse", PLUGIN, f"{PLUGIN}-factor=2"}


def test_a_bad_plugin_parameter_is_refused_before_anything_runs(plugin_path, tmp_path):
    out = _suite_run(plugin_path, "--suite", "smoke", "--results", str(tmp_path), "--methods", f"{PLUGIN}:factr=2")
    assert out.returncode == 2
    assert f"reward {PLUGIN!r} has no parameter factr; it takes: factor" in out.stderr
    assert not (tmp_path / "smoke").exists()
