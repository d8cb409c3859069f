"""Benchmarks time what a run does: torch may use every core here (the tests' conftest pins it to 1)."""

import os

import pytest

from common.runtime import torch_threads


@pytest.fixture(autouse=True)
def _all_cores():
    with torch_threads(os.cpu_count() or 1):
        yield
