"""What ships under ``results/reference/``: every run's CSVs and config and nothing heavier, and figures and a
report that ``python -m analysis.figures`` regenerates from those files alone (on a copy, so the shipped
files are never touched).

Every suite folder under ``results/reference/`` is checked (a folder holding ``<method>/<task>/seed_<n>/``
run directories): the pilots, the precision-parity runs and the reference experiment once it is committed.
Where a folder ships its ``figures/report.md``, the regenerated report must be the same text.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis import figures
from analysis.ship import SHIPPED_FILES as RUN_FILES

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"
#: nothing a run directory may ship besides its CSVs and config: checkpoints and models stay out of git
HEAVY_SUFFIXES = (".pt", ".pth", ".ckpt", ".npz", ".npy", ".pkl")


def suite_dirs() -> list[Path]:
    """Folders ``<root>/<suite>`` under results/reference holding ``<method>/<task>/seed_<n>/eval.csv``."""
    return sorted({p.parents[3] for p in REFERENCE.glob("**/seed_*/eval.csv")})


SUITES = suite_dirs()


def _id(path: Path) -> str:
    return str(path.relative_to(REFERENCE))


def test_reference_results_are_found():
    assert SUITES, f"no run directories under {REFERENCE}"


@pytest.mark.parametrize("suite", SUITES, ids=_id)
def test_each_run_ships_its_csvs_and_full_config_and_nothing_heavier(suite):
    runs = sorted(p.parent for p in suite.glob("*/*/seed_*/eval.csv"))
    for run in runs:
        missing = [f for f in RUN_FILES if not (run / f).is_file()]
        assert not missing, f"{run}: missing {missing}"
        config = json.loads((run / "config.json").read_text())
        for key in ("seed", "precision", "versions", "agent", "task", "method"):
            assert key in config, f"{run}/config.json has no {key!r}"
        assert config["task"] == run.parent.name and config["seed"] == int(run.name.removeprefix("seed_"))
    heavy = [p for p in suite.rglob("*") if p.suffix in HEAVY_SUFFIXES]
    assert not heavy, f"checkpoints or models under {suite}: {heavy[:5]}"


@pytest.mark.parametrize("suite", SUITES, ids=_id)
def test_figures_and_report_regenerate_from_the_shipped_files_alone(suite, tmp_path):
    copy = tmp_path / suite.name
    shutil.copytree(suite, copy, ignore=shutil.ignore_patterns("figures"))
    shipped = suite / "figures" / "report.md"
    # the shipped report's bootstrap repetitions, so that the same numbers come out; otherwise a quick 200
    reps = figures.DEFAULT_REPS if shipped.exists() else 200
    assert figures.main(["--suite", suite.name, "--results", str(tmp_path), "--reps", str(reps)]) == 0
    out = copy / "figures"
    report = (out / "report.md").read_text()
    methods = {p.name for p in suite.iterdir() if p.is_dir() and p.name != "figures"}
    assert methods and all(m in report for m in methods), (methods, report[:400])
    assert (out / "learning_curves.png").stat().st_size > 0 and (out / "figure_data.csv").stat().st_size > 0
    if shipped.exists():
        assert report == shipped.read_text(), f"{shipped} differs from what analysis.figures makes of the runs"
