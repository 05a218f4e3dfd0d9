"""Tests run in quick mode, offline, with a non-interactive matplotlib backend."""
import os

os.environ.setdefault("DGSP_QUICK", "1")
os.environ.setdefault("DGSP_NO_DOWNLOAD", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("DGSP_DEVICE", None)

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def assert_moved():
    """``assert_moved(before, model, *parts)``: each named sub-network of ``model`` has some weight that differs from
    ``before`` (a copy of its state_dict), so a training step that forgot an optimiser step fails its test."""
    def check(before: dict, model: torch.nn.Module, *parts: str) -> None:
        now = model.state_dict()
        for part in parts:
            keys = [k for k in now if k.startswith(part + ".") and k.endswith("weight")]
            assert keys, f"{type(model).__name__} has no weights under {part!r}"
            assert any(not torch.equal(before[k], now[k]) for k in keys), f"{type(model).__name__}: {part} did not move"
    return check


@pytest.fixture(autouse=True)
def _small_torch():
    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield
