"""Benchmarks time what a run does: torch may use every core here (the tests' conftest pins it to 1)."""
import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _all_cores():
    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    yield
    torch.set_num_threads(before)
