"""Run-time settings shared by the whole package: device, seeds, quick mode, folders.

Everything that depends on the environment is read here, and only here:

* ``DGSP_DEVICE`` overrides the device (``cuda``, ``mps`` or ``cpu``),
* ``DGSP_QUICK=1`` switches every notebook and ``dgsp`` to *quick mode*
  (fewer epochs, less data; the same code paths),
* ``DGSP_HOME`` names the project folder (default: the nearest parent of the
  working directory holding ``pyproject.toml``), under which ``figures/``,
  ``data/`` and ``checkpoints/`` live.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}


def is_quick() -> bool:
    """True when ``DGSP_QUICK`` is set to 1/true/yes/on (the one quick-mode switch)."""
    return os.environ.get("DGSP_QUICK", "").strip().lower() in _TRUE


def by_mode(full: T, quick: T) -> T:
    """Return ``quick`` in quick mode and ``full`` otherwise.

    Notebooks use it for every size that quick mode shrinks, e.g.
    ``epochs = dgsp.by_mode(full=30, quick=2)``.
    """
    return quick if is_quick() else full


def device() -> torch.device:
    """The device every tensor and model follows: cuda, then mps, then cpu.

    ``DGSP_DEVICE`` overrides the choice; an unavailable override is an error.
    """
    name = os.environ.get("DGSP_DEVICE", "").strip().lower()
    if name:
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"DGSP_DEVICE={name!r} but CUDA is not available here")
        if name == "mps" and not torch.backends.mps.is_available():
            raise ValueError("DGSP_DEVICE='mps' but MPS is not available here")
        if not (name == "cpu" or name == "mps" or name.startswith("cuda")):
            raise ValueError(f"DGSP_DEVICE={name!r}: use 'cpu', 'cuda', 'cuda:N' or 'mps'")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a torch generator with that seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` on ``x``'s device. With a (CPU) ``generator`` the
    draw is made on the CPU and moved, so a seeded result is the same on every device."""
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def rand_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform [0, 1) noise shaped like ``x``; seeded like :func:`randn_like`."""
    if generator is None:
        return torch.rand_like(x)
    return torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def project_dir() -> Path:
    """The course folder: ``DGSP_HOME``, else the nearest parent with ``pyproject.toml``."""
    env = os.environ.get("DGSP_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "dgsp").is_dir():
            return folder
    return here


_QUICK_TMP: Path | None = None


def output_dir(kind: str) -> Path:
    """Where figures, results and checkpoints go.

    Full mode writes into the project (``figures/``, ``checkpoints/``); quick
    mode writes into a temporary folder private to this process, so tests never
    touch tracked files and never reuse a checkpoint from another run.
    """
    global _QUICK_TMP
    if is_quick():
        if _QUICK_TMP is None:
            _QUICK_TMP = Path(tempfile.mkdtemp(prefix="dgsp-quick-"))
        root = _QUICK_TMP
    else:
        root = project_dir()
    path = root / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
