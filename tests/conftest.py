"""Shared test settings: headless GL, few threads (tests share a 2-core machine), a private data root."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _private_data_root(tmp_path_factory, monkeypatch):
    """No test may read or write the user's ./data: point the data root at a per-session temp dir."""
    root = tmp_path_factory.getbasetemp() / "data_root"
    monkeypatch.setenv("VRB_DATA_ROOT", str(root))
    yield
