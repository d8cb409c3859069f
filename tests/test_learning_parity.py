"""scripts.learning_parity on the committed fp32 vs bf16 runs (results/reference/precision-parity)."""

import shutil
from pathlib import Path

import pandas as pd

from scripts import learning_parity

REF = Path(__file__).resolve().parents[1] / "results" / "reference" / "precision-parity"


def test_committed_fp32_and_bf16_runs_agree_within_their_seed_spread(capsys):
    assert learning_parity.main([str(REF / "fp32"), str(REF / "bf16")]) == 0
    out = capsys.readouterr().out
    assert "overlap at every evaluation: yes" in out and "30000" in out


def test_a_curve_outside_the_other_variants_seed_spread_fails(tmp_path, capsys):
    shutil.copytree(REF, tmp_path / "ref")
    for ev in (tmp_path / "ref" / "bf16").glob("*/*/*/seed_*/eval.csv"):
        df = pd.read_csv(ev)
        df.loc[df["frame"] == 30000, "success_rate"] = 1.0  # both bf16 seeds above fp32's 0.4
        df.to_csv(ev, index=False)
    verdict = learning_parity.compare(
        learning_parity.load(tmp_path / "ref" / "fp32"),
        learning_parity.load(tmp_path / "ref" / "bf16"),
        ("fp32", "bf16"),
    )
    assert list(verdict.loc[~verdict["overlap"], "frame"]) == [30000]
    assert learning_parity.main([str(tmp_path / "ref" / "fp32"), str(tmp_path / "ref" / "bf16")]) == 1


def test_an_empty_folder_names_what_it_expected(tmp_path, capsys):
    assert learning_parity.main([str(tmp_path), str(REF / "bf16")]) == 2
    assert "expected <suite>/<method>/<task>/seed_<s>/eval.csv" in capsys.readouterr().err
