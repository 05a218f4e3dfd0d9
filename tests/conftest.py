"""Tests run in quick mode, offline, with a non-interactive matplotlib backend."""
import os

os.environ.setdefault("DGSP_QUICK", "1")
os.environ.setdefault("DGSP_NO_DOWNLOAD", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("DGSP_DEVICE", None)

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _small_torch():
    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield
