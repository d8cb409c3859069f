"""Model diagnostics (copy accuracy, NLL per token, token persistence, codec PSNR): in the pretraining history
at every evaluation, for any saved model through the quality command, and as checkable functions."""

import csv
import json
import shutil

import pytest
import torch

from rewards.models import store
from rewards.models.diagnostics import DIAG_WINDOWS, copy_accuracy, diagnostics, heldout_data, token_persistence
from rewards.models.pretrain import pretrain
from rewards.models.quality import main as quality_main
from rewards.models.quality import write_report
from rewards.models.store import ModelRef
from rewards.models.vqdiffusion import VQDiffusion, VQDiffusionConfig
from tests.conftest import TASK

KEYS = {
    "codec": {"psnr"},
    "vqdiffusion": {"copy_accuracy", "persistence", "data_persistence"},
    "videogpt": {"nll_per_token", "persistence", "data_persistence"},
}
#: the video models' EMA moves every 25 steps: evaluated at 25 and 50, their scored weights differ
STEPS = {"codec": (4, 2), "video": (50, 25)}


def train(ref: ModelRef, steps: int | None = None) -> None:
    total, every = STEPS["codec" if ref.is_codec else "video"]
    pretrain(
        ref,
        steps=steps or total,
        tasks=[TASK],
        batch_size=8,
        device="cpu",
        eval_every=every,
        ckpt_every=every,
        quality=False,
        progress=False,
        log=lambda m: None,
    )


@pytest.fixture(scope="module")
def root(tiny_dataset, tmp_path_factory):
    """The tiny dataset with a codec (4 steps, evaluated every 2), a VQ-Diffusion (l=2) and a VideoGPT (l=1)
    (50 steps, evaluated every 25)."""
    root = tmp_path_factory.mktemp("diag_models")
    shutil.copytree(tiny_dataset / "datasets", root / "datasets")
    train(ModelRef("metaworld", "codec", data_root=root))
    train(ModelRef("metaworld", "vqdiffusion", "small", 2, root))
    train(ModelRef("metaworld", "videogpt", "small", 1, root))
    return root


REFS = [("codec", 2), ("vqdiffusion", 2), ("videogpt", 1)]


def history(ref: ModelRef) -> list[dict]:
    return json.loads((ref.dir / "history.json").read_text())


@pytest.mark.parametrize("kind,context", REFS)
def test_history_has_the_diagnostics_at_every_evaluation(root, kind, context):
    ref = ModelRef("metaworld", kind, "small", context, root)
    hist = history(ref)
    assert [h["step"] for h in hist] == ([2, 4] if kind == "codec" else [25, 50])
    for h in hist:
        assert KEYS[kind] <= set(h), h
        for k in KEYS[kind] & {"copy_accuracy", "persistence", "data_persistence"}:
            assert 0.0 <= h[k] <= 1.0, (k, h)
    if kind == "codec":
        assert all(5.0 < h["psnr"] < 60.0 for h in hist)
        assert store.read_checkpoint(ref.checkpoint)["meta"]["psnr"] == hist[-1]["psnr"]
    else:
        # the data's persistence does not depend on the model; the model's numbers are of its EMA weights,
        # which moved between the two evaluations
        assert hist[0]["data_persistence"] == hist[1]["data_persistence"] > 0.3
        moved = "copy_accuracy" if kind == "vqdiffusion" else "nll_per_token"
        assert hist[0][moved] != hist[1][moved]
        meta = store.read_checkpoint(ref.checkpoint)["meta"]
        assert meta["codec_psnr"] == history(ref.codec)[-1]["psnr"]
    if kind == "videogpt":
        # an untrained model over a 1024-token codebook: close to log(1024) = 6.93 nats per token
        assert all(4.0 < h["nll_per_token"] < 8.0 for h in hist)


def test_data_persistence_is_the_fraction_of_tokens_kept_by_real_consecutive_frames(root):
    ref = ModelRef("metaworld", "vqdiffusion", "small", 2, root)
    codec = ref.codec.load("cpu")
    episodes = store.episode_tokens(codec, "metaworld", [TASK], split="test", root=root)[TASK]
    kept = torch.cat([(ep[1:] == ep[:-1]).flatten() for ep in episodes]).float()
    assert kept.numel() <= DIAG_WINDOWS * 64  # the tiny test split is whole inside the diagnostics' subset
    assert history(ref)[-1]["data_persistence"] == pytest.approx(float(kept.mean()), abs=1e-6)


@pytest.mark.parametrize("kind,context", REFS)
def test_a_saved_model_gives_its_history_numbers_through_the_quality_command(root, kind, context, tmp_path):
    """model.pt holds the best-by-validation weights (the last for the codec): the post-hoc diagnostics of
    that file are the history's at that step, so a budget study's snapshots are scored like training."""
    ref = ModelRef("metaworld", kind, "small", context, root)
    meta = store.read_checkpoint(ref.checkpoint)["meta"]
    snapshot = tmp_path / "budget_study" / ref.name / f"step_{meta['steps']}" / "model.pt"  # as the study keeps it
    snapshot.parent.mkdir(parents=True)
    shutil.copy2(ref.checkpoint, snapshot)
    out = tmp_path / "diag.csv"
    assert (
        quality_main(
            [
                "--domain",
                "metaworld",
                "--diagnostics",
                "--model-file",
                str(snapshot),
                "--data-root",
                str(root),
                "--device",
                "cpu",
                "--csv",
                str(out),
            ]
        )
        == 0
    )
    row = json.loads((snapshot.parent / "diagnostics.json").read_text())
    step = meta.get("best_step") or meta["steps"]
    entry = next(h for h in history(ref) if h["step"] == step)
    for k in KEYS[kind]:
        assert row[k] == pytest.approx(entry[k], abs=1e-6), k
    if kind != "codec":
        assert row["codec_psnr"] == pytest.approx(history(ref.codec)[-1]["psnr"], abs=1e-6)
    [written] = list(csv.DictReader(out.open()))
    assert written["model"] == kind and written["file"] == str(snapshot)
    assert all(float(written[k]) == pytest.approx(row[k]) for k in KEYS[kind])


def test_the_quality_command_refuses_a_model_of_another_domain_and_a_missing_file(root, tmp_path, capsys):
    path = ModelRef("metaworld", "codec", data_root=root).checkpoint
    assert (
        quality_main(
            [
                "--domain",
                "adroit",
                "--diagnostics",
                "--model-file",
                str(path),
                "--data-root",
                str(root),
                "--device",
                "cpu",
            ]
        )
        == 2
    )
    assert "is a metaworld model, not adroit" in capsys.readouterr().err
    assert (
        quality_main(
            ["--domain", "metaworld", "--diagnostics", "--model-file", str(tmp_path / "none.pt"), "--device", "cpu"]
        )
        == 2
    )
    assert "no model file" in capsys.readouterr().err


def test_diagnostics_are_deterministic_and_leave_the_global_rng_alone(root):
    ref = ModelRef("metaworld", "vqdiffusion", "small", 2, root)
    codec, net = ref.load_with_codec("cpu")
    data = heldout_data("vqdiffusion", codec, "metaworld", [TASK], 2, root)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = diagnostics("vqdiffusion", net, data)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert diagnostics("vqdiffusion", net, data) == first
    assert diagnostics("vqdiffusion", net, data, seed=1)["persistence"] != first["persistence"]


def test_history_diagnostics_are_the_same_resumed_or_uninterrupted(root, tmp_path):
    whole = ModelRef("metaworld", "vqdiffusion", "small", 2, root)
    other = ModelRef("metaworld", "vqdiffusion", "small", 2, tmp_path)
    shutil.copytree(whole.codec.dir, other.codec.dir)
    shutil.copytree(root / "datasets", tmp_path / "datasets")
    train(other, steps=STEPS["video"][1])
    train(other)
    drop = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert drop(history(other)) == drop(history(whole))


def test_copy_accuracy_scores_the_predictor_against_the_target():
    """At the lowest noise level almost every token is visible: a predictor that copies what it sees scores
    the visible fraction (about 1), one that knows the target 1, one that shifts every token 0."""
    torch.manual_seed(0)
    net = VQDiffusion(VQDiffusionConfig.preset("small", context=2))
    k = net.num_classes
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, k, (32, 64), generator=gen)
    visible = net.schedule.sample_marginal(target, torch.ones(32, dtype=torch.long), gen)
    onehot = lambda x: torch.nn.functional.one_hot(x, k + 1).float()  # noqa: E731
    copy = copy_accuracy(onehot, visible, target)
    assert copy == float((visible == target).float().mean()) and copy > 0.99
    assert copy_accuracy(lambda z: onehot(target), visible, target) == 1.0
    assert copy_accuracy(lambda z: onehot((target + 1) % k), visible, target) == 0.0
    # the model's own predictor goes through the same function: an untrained one is far from copying
    ctx = torch.randint(0, k, (32, 2, 64), generator=gen)
    assert 0.0 <= copy_accuracy(lambda z: net.predict_x0(ctx, z, 1), visible, target) < 0.5


def test_token_persistence_counts_positions():
    last = torch.arange(64).repeat(2, 1)
    frame = last.clone()
    frame[0, :16] = 99
    assert token_persistence(frame, last) == pytest.approx(1 - 16 / 128)


def test_quality_report_has_the_video_models_diagnostics(root):
    ref = ModelRef("metaworld", "videogpt", "small", 1, root)
    rows = write_report([ref], device="cpu", tasks=[TASK], log=lambda m: None, n_windows=8, n_div=2, n_samples=2)
    metrics = {r["metric"]: r["value"] for r in rows}
    entry = next(h for h in history(ref) if h["step"] == store.read_checkpoint(ref.checkpoint)["meta"]["best_step"])
    for k in KEYS["videogpt"]:
        assert metrics[k] == pytest.approx(entry[k], abs=1e-6)
    assert "nll_per_token" in (ref.dir / "quality" / "report.md").read_text()
