"""The pretraining command, model store, reward statistics and quality report, end to end on real frames."""

import json
import shutil

import pytest
import torch

import rewards.models.reward_stats as rs
from rewards.models import store
from rewards.models.pretrain import ema_average, main, pretrain
from rewards.models.quality import trained_refs, write_report
from rewards.models.reward_stats import task_stats
from rewards.models.store import ModelRef
from tasks.datasets import DatasetMissingError
from tasks.registry import TASK_SETS, seen_tasks
from tests.conftest import TASK

# fp32 explicitly: these tests compare the CLI with `pretrain()` calls (default fp32) and read the fp32 token cache;
# the CLI itself defaults to auto (bf16 on a CPU with native bf16)
FAST = ["--domain", "metaworld", "--tasks", TASK, "--batch-size", "8", "--device", "cpu", "--precision", "fp32"]


def test_video_model_without_codec_is_refused_naming_the_command(tmp_path, capsys):
    rc = main([*FAST, "--model", "videogpt", "--steps", "2", "--data-root", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert (
        f"python -m rewards.models.pretrain --domain metaworld --model codec --preset small --data-root {tmp_path}"
    ) in err
    with pytest.raises(store.ModelMissingError, match="--model videogpt --preset small --context 2"):
        ModelRef("metaworld", "videogpt", "small", 2, tmp_path).load_with_codec("cpu")
    with pytest.raises(ValueError, match="codec, videogpt, vqdiffusion"):
        ModelRef("metaworld", "gpt5", data_root=tmp_path)


def test_missing_dataset_fails_clearly(tmp_path):
    with pytest.raises(DatasetMissingError, match="python -m tasks.collect --domain metaworld"):
        pretrain(
            ModelRef("metaworld", "codec", data_root=tmp_path), steps=1, tasks=[TASK], device="cpu", progress=False
        )


@pytest.fixture(scope="module")
def trained_root(tiny_dataset):
    """Codec (3 steps) then VideoGPT (l=1, 4 steps) through the CLI, on the tiny real dataset."""
    root = str(tiny_dataset)
    assert main([*FAST, "--model", "codec", "--steps", "3", "--data-root", root, "--no-quality"]) == 0
    assert (
        main([*FAST, "--model", "videogpt", "--context", "1", "--steps", "4", "--data-root", root, "--no-quality"]) == 0
    )
    return root


def test_cli_trains_and_resumes_exactly(trained_root, tmp_path, capsys):
    ref = ModelRef("metaworld", "videogpt", "small", 1, trained_root)
    d = ref.dir
    st = store.read_checkpoint(d / "train_state.pt")
    assert st["step"] == 4 and st["meta"]["tasks"] == [TASK] and st["meta"]["codec_preset"] == "small"
    assert (ref.codec.dir / "tokens" / TASK / "expert_train.pt").exists()
    capsys.readouterr()
    # continue to 6 steps: resumes at 4, does not redo them
    assert (
        main(
            [
                *FAST,
                "--model",
                "videogpt",
                "--context",
                "1",
                "--steps",
                "6",
                "--data-root",
                trained_root,
                "--eval-every",
                "1",
                "--no-quality",
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "resuming videogpt from step 4" in out.out
    hist = json.loads((d / "history.json").read_text())
    assert [h["step"] for h in hist][-2:] == [5, 6]
    resumed = store.read_checkpoint(d / "model.pt")["state_dict"]
    # the same 6 steps in one go (fresh root sharing the codec) give the same weights: RNG is restored
    other = tmp_path / "again"

    other_ref = ModelRef("metaworld", "videogpt", "small", 1, other)
    shutil.copytree(ref.codec.dir, other_ref.codec.dir)
    shutil.copytree(f"{trained_root}/datasets", other / "datasets")
    assert (
        main(
            [*FAST, "--model", "videogpt", "--context", "1", "--steps", "6", "--data-root", str(other), "--no-quality"]
        )
        == 0
    )
    straight = store.read_checkpoint(other_ref.checkpoint)
    for k, v in resumed.items():
        torch.testing.assert_close(v, straight["state_dict"][k], msg=k)
    # already there: nothing to do
    assert (
        main(
            [
                *FAST,
                "--model",
                "videogpt",
                "--context",
                "1",
                "--steps",
                "6",
                "--data-root",
                trained_root,
                "--no-quality",
            ]
        )
        == 0
    )
    assert "nothing to do" in capsys.readouterr().out
    codec, net = ref.load_with_codec("cpu")
    assert net.meta["tasks"] == [TASK] and not net.training and codec.config.codebook_size == 1024
    assert net.ref == ref and codec.ref == ref.codec


def test_reward_stats_are_cached_and_recomputed_when_the_model_changes(trained_root, monkeypatch):
    ref = ModelRef("metaworld", "videogpt", "small", 1, trained_root)
    kw = dict(tasks=[TASK, "drawer-open"])
    ll = task_stats(ref, "ll", **kw)
    assert set(ll) == {TASK}  # drawer-open has no videos here: no statistics
    n_frames = sum(
        ep.shape[0] - 1
        for ep in store.episode_tokens(ref.codec.load("cpu"), "metaworld", [TASK], root=trained_root)[TASK]
    )
    assert ll[TASK]["n"] == n_frames and ll[TASK]["std"] > 0 and ll[TASK]["mean"] < 0
    ce = task_stats(ref, "ce", noise=False, **kw)
    assert ce[TASK]["mean"] != ll[TASK]["mean"]
    d = ref.dir
    assert {"ll_seed0", "ce_s10_nonoise_seed0"} <= set(json.loads((d / "stats.json").read_text()))

    def fail(*a, **k):
        raise AssertionError("statistics were recomputed although the model did not change")

    monkeypatch.setattr(rs, "compute_task_stats", fail)
    monkeypatch.setattr(rs, "domain_tasks", lambda domain: [TASK])
    assert task_stats(ref, "ll") == ll
    monkeypatch.undo()
    # a changed model invalidates the cache (model.pt holds the best-by-validation weights, so another
    # training step need not change it: the weights are changed directly)
    ck = store.read_checkpoint(d / "model.pt")
    weights = {k: (v + 0.05 if v.is_floating_point() else v) for k, v in ck["state_dict"].items()}
    store.save_checkpoint(d / "model.pt", ck["name"], ck["config"], ck["meta"], weights)
    ll2 = task_stats(ref, "ll", **kw)
    assert ll2[TASK]["mean"] != ll[TASK]["mean"]


def test_reward_stats_keep_the_tasks_another_process_wrote_meanwhile(trained_root, monkeypatch):
    """Parallel scoring workers (``experiments.reward_quality --jobs``) compute the statistics of different
    tasks of one model at once: the one that writes last keeps the other's tasks, not only its own."""
    ref = ModelRef("metaworld", "videogpt", "small", 1, trained_root)
    key = rs.settings_key("ce", 3, False) + "_seed0" + rs.precision_suffix(ref.kind, "fp32")
    theirs = {"mean": -1.0, "std": 2.0, "n": 7}
    real = rs.compute_task_stats

    def another_process_writes_meanwhile(*a, **k):
        out = real(*a, **k)
        path = ref.dir / "stats.json"
        cache = json.loads(path.read_text()) if path.exists() else {}
        cache[key] = {"model": store.fingerprint(ref.checkpoint), "tasks": {"drawer-open": theirs}}
        path.write_text(json.dumps(cache))
        return out

    monkeypatch.setattr(rs, "compute_task_stats", another_process_writes_meanwhile)
    mine = task_stats(ref, "ce", steps=3, noise=False, tasks=[TASK])
    monkeypatch.undo()
    written = json.loads((ref.dir / "stats.json").read_text())[key]["tasks"]
    assert written == {TASK: mine[TASK], "drawer-open": theirs}


def test_quality_report_is_written(trained_root):
    refs = trained_refs("metaworld", "small", context=1, root=trained_root)
    assert [r.name for r in refs] == ["codec_small", "videogpt_small_l1"]  # vqdiffusion was never trained
    rows = write_report(
        refs, device="cpu", tasks=[TASK], log=lambda m: None, n_frames=64, n_windows=16, n_div=4, n_samples=2
    )
    metrics = {(r["model"], r["metric"]): r["value"] for r in rows}
    assert ("codec_small", "recon_psnr") in metrics and ("videogpt_small_l1", "diversity_eps_1.00") in metrics
    assert all(v == v for v in metrics.values())  # no NaN
    q = ModelRef("metaworld", "videogpt", "small", 1, trained_root).dir / "quality"
    assert (q / "report.csv").exists() and (q / "predictions.png").stat().st_size > 0
    assert "LPIPS" in (q / "report.md").read_text()
    assert (ModelRef("metaworld", "codec", data_root=trained_root).dir / "quality" / "reconstructions.png").exists()


def test_task_set_names_the_model_directory_and_command_only_when_not_the_default(tmp_path):
    seen = ModelRef("metaworld", "vqdiffusion", "small", 2, tmp_path)
    five = ModelRef("metaworld", "vqdiffusion", "small", 2, tmp_path, task_set="genreward")
    assert seen.task_set == "seen" and seen.name == "vqdiffusion_small_l2" and seen.codec.name == "codec_small"
    assert seen.tasks == seen_tasks("metaworld") and "--task-set" not in seen.command
    assert five.name == "vqdiffusion_small_l2_genreward" and five.codec.name == "codec_small_genreward"
    assert five.dir != seen.dir and five.tasks == list(TASK_SETS["genreward"]["metaworld"])
    assert "--task-set genreward" in five.command and "--task-set genreward" in five.codec.command
    with pytest.raises(store.ModelMissingError, match="of the genreward task set.*--task-set genreward"):
        five.load("cpu")
    with pytest.raises(ValueError, match="valid: seen, genreward"):
        ModelRef("metaworld", "codec", task_set="unseen")
    with pytest.raises(ValueError, match="no adroit tasks"):
        ModelRef("adroit", "codec", task_set="genreward")


def test_cli_task_set_trains_on_its_tasks_and_refuses_unknown_sets(tiny_dataset, capsys):
    """``--task-set genreward`` without ``--tasks`` trains on the five tasks: none are recorded here, so the
    dataset error names them (the command the error names makes them)."""
    root = str(tiny_dataset)
    args = [
        "--domain",
        "metaworld",
        "--model",
        "codec",
        "--steps",
        "1",
        "--data-root",
        root,
        "--no-quality",
        "--batch-size",
        "8",
        "--device",
        "cpu",
    ]
    assert main([*args, "--task-set", "genreward"]) == 2
    assert "bin-picking" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--task-set", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_saved_video_model_is_the_best_by_validation_ema(tiny_dataset, tmp_path):
    """model.pt holds the EMA weights of the evaluation with the lowest validation loss, and says so."""
    root = tmp_path / "root"
    shutil.copytree(f"{tiny_dataset}/datasets", root / "datasets")
    assert main([*FAST, "--model", "codec", "--steps", "2", "--data-root", str(root), "--no-quality"]) == 0
    assert (
        main(
            [
                *FAST,
                "--model",
                "vqdiffusion",
                "--context",
                "1",
                "--steps",
                "8",
                "--eval-every",
                "2",
                "--data-root",
                str(root),
                "--no-quality",
            ]
        )
        == 0
    )
    d = ModelRef("metaworld", "vqdiffusion", "small", 1, root).dir
    hist = json.loads((d / "history.json").read_text())
    best = min(hist, key=lambda h: h["val_loss"])
    saved = store.read_checkpoint(d / "model.pt")
    state = store.read_checkpoint(d / "train_state.pt")
    assert saved["meta"]["best_step"] == best["step"] and saved["meta"]["val_loss"] == best["val_loss"]
    assert saved["meta"]["weights"] == "EMA 0.99" and state["best"]["step"] == best["step"]
    ema = state["trainer"]["ema"]
    assert int(ema["n_averaged"]) == 8 // 25  # ema_every 25: no update within 8 steps
    raw = state["trainer"]["model"]
    # with no EMA update yet the EMA weights are the initial ones, so they differ from the trained raw weights
    assert any(not torch.equal(saved["state_dict"][k], raw[k]) for k in raw if raw[k].is_floating_point())


def test_ema_follows_the_weights_early_and_reaches_the_release_decay():
    avg = ema_average(0.99)
    one, zero = torch.ones(1), torch.zeros(1)
    assert avg(zero, one, torch.tensor(0)).item() == pytest.approx(0.9)  # d = 1/10 after no update
    assert avg(zero, one, torch.tensor(2000)).item() == pytest.approx(0.01)  # d = 0.99 later


def test_a_state_saved_before_selection_by_validation_is_refused(trained_root, tmp_path, capsys):
    ref = ModelRef("metaworld", "videogpt", "small", 1, trained_root)
    other = tmp_path / "old"
    shutil.copytree(ref.codec.dir, ModelRef("metaworld", "codec", data_root=other).dir)
    shutil.copytree(ref.dir, ModelRef("metaworld", "videogpt", "small", 1, other).dir)
    shutil.copytree(f"{trained_root}/datasets", other / "datasets")
    path = ModelRef("metaworld", "videogpt", "small", 1, other).dir / "train_state.pt"
    st = store.read_checkpoint(path)
    del st["trainer"]["ema"]
    torch.save(st, path)
    assert (
        main(
            [*FAST, "--model", "videogpt", "--context", "1", "--steps", "9", "--data-root", str(other), "--no-quality"]
        )
        == 2
    )
    assert "without EMA weights" in capsys.readouterr().err
