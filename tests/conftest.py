"""Shared test settings: headless GL, few threads (tests share a 2-core machine), a private data root."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def session_data_root(tmp_path_factory):
    """The data root every test sees by default: a per-session temp dir, never the user's ./data."""
    return tmp_path_factory.getbasetemp() / "data_root"


@pytest.fixture(autouse=True)
def _private_data_root(session_data_root, monkeypatch):
    monkeypatch.setenv("VRB_DATA_ROOT", str(session_data_root))
    yield
