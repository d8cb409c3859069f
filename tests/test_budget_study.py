"""The pretraining-budget study on a tiny real dataset: snapshots per budget, CPU time, resume, early stop."""

import shutil

from experiments.budget_study import main, read_rows, snapshot_dir
from rewards.models import store
from tests.conftest import TASK


def test_study_keeps_one_model_per_budget_and_resumes(tiny_dataset, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(f"{tiny_dataset}/datasets", root / "datasets")
    out = tmp_path / "out"
    args = [
        "--tasks",
        TASK,
        "--codec-steps",
        "2",
        "--episodes",
        "3",
        "--models",
        "vqdiffusion",
        "--budgets",
        "2",
        "4",
        "--context",
        "1",
        "--data-root",
        str(root),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--precision",
        "fp32",
    ]
    assert main(args) == 0
    rows = read_rows(out / "pretraining.csv")
    assert [(r["model"], int(r["budget"])) for r in rows] == [("vqdiffusion", 2), ("vqdiffusion", 4)]
    assert all(float(r["segment_cpu_s"]) > 0 for r in rows)
    assert float(rows[1]["cpu_hours"]) > float(rows[0]["cpu_hours"])
    ref = store.ModelRef("metaworld", "vqdiffusion", "small", 1, str(root))
    two, four = (store.read_checkpoint(snapshot_dir(ref, b) / "model.pt") for b in (2, 4))
    assert two["meta"]["steps"] == 2 and four["meta"]["steps"] == 4
    assert (out / "history_vqdiffusion_small_l1.json").exists()
    # a re-run trains nothing; a gate pass stops larger budgets
    (out / "gate_passed_vqdiffusion").write_text("2\n")
    capsys.readouterr()
    assert main([*args, "--budgets", "2", "4", "8"]) == 0
    log = capsys.readouterr().out
    assert "resuming vqdiffusion" not in log and "passed the reward-quality gate" in log
    assert len(read_rows(out / "pretraining.csv")) == 2
