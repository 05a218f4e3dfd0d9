"""Run-time settings shared by the whole package: device, seeds, quick mode, folders.

Everything that depends on the environment is read here, and only here:

* ``DGSP_DEVICE`` overrides the device (``cuda``, ``mps`` or ``cpu``),
* ``DGSP_QUICK=1`` switches every notebook and ``dgsp`` to *quick mode*
  (fewer epochs, less data; the same code paths),
* ``DGSP_HOME`` names the project folder (default: the nearest parent of the
  working directory holding ``pyproject.toml``), under which ``figures/``,
  ``data/`` and ``checkpoints/`` live,
* ``DGSP_PUBLISH=1`` (set by ``make course`` and ``make bench``) writes figures and
  the results table into the committed ``figures/``; without it, full-mode runs
  (e.g. from ``make lab``) write them under ``build/figures/``.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterator, TypeVar

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


def seed_everything(seed: int = 0, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a torch generator with that seed.

    ``deterministic=True`` also asks cuDNN and torch for deterministic algorithms (a GPU run then repeats
    bit for bit, a little slower); ops without a deterministic version warn instead of failing."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch using ``n`` CPU threads (None: leave it as it is), then restore the count."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


_CHECKED_DEPTH = 0


@contextlib.contextmanager
def inputs_checked() -> Iterator[None]:
    """Inside this block the models' public entry points (``encode`` and the like) skip their NaN/inf test:
    whoever opened it has checked its data once. :func:`dgsp.train.fit` does, so that a training step never
    makes the host wait for a GPU to test a batch that came from data already checked."""
    global _CHECKED_DEPTH
    _CHECKED_DEPTH += 1
    try:
        yield
    finally:
        _CHECKED_DEPTH -= 1


def inputs_are_checked() -> bool:
    """True inside :func:`inputs_checked`."""
    return _CHECKED_DEPTH > 0


def check_count(n: int, who: str, least: int = 1) -> int:
    """``n`` as an ``int``; a ``ValueError`` naming ``who`` unless it is a whole number of at least ``least``
    (a number of samples, of clusters, ...)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < least:
        raise ValueError(f"{who} needs a whole number >= {least}, got {n!r}")
    return int(n)


def check_generator(generator: torch.Generator | None, who: str) -> None:
    """A ``ValueError`` naming ``who`` unless ``generator`` is None or a CPU ``torch.Generator``: dgsp draws seeded
    noise on the CPU and moves it to the model's device, so that a seed gives the same samples on every device."""
    if generator is None or (isinstance(generator, torch.Generator) and generator.device.type == "cpu"):
        return
    where = f"a generator on {generator.device}" if isinstance(generator, torch.Generator) else repr(generator)
    raise ValueError(f"{who}: dgsp draws seeded noise on the CPU and moves it to the model's device (the same "
                     f"samples on every device), so pass a CPU generator, torch.Generator().manual_seed(seed); "
                     f"got {where}")


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """Inside this block a GPU computes float32 convolutions and matrix products in full precision. cuDNN
    convolutions use TensorFloat-32 by default on Ampere and later chips, whose inputs keep only 10 of float32's
    23 mantissa bits, so two ways of computing the same gradient can differ by 1e-4 relative there. Comparisons to
    1e-5 need this. No effect on a CPU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch prefers fp32_precision; these two flags still hold
        before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` on ``x``'s device. With a (CPU) ``generator`` the
    draw is made on the CPU and moved, so a seeded result is the same on every device."""
    check_generator(generator, "randn_like")
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def as_numpy(a: torch.Tensor | np.ndarray | list) -> np.ndarray:
    """A NumPy array of ``a``: a tensor is detached and moved to the CPU first."""
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def rand_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform [0, 1) noise shaped like ``x``; seeded like :func:`randn_like`."""
    check_generator(generator, "rand_like")
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


def is_publishing() -> bool:
    """True when ``DGSP_PUBLISH`` is set: figures and results go to the committed ``figures/``."""
    return os.environ.get("DGSP_PUBLISH", "").strip().lower() in _TRUE


def output_dir(kind: str) -> Path:
    """Where figures, results and checkpoints go.

    Full mode keeps checkpoints in the project's ``checkpoints/`` (a cache shared by every run) and writes
    figures and results into ``figures/`` when publishing (``DGSP_PUBLISH=1``, set by ``make course``),
    else into ``build/figures/``, so an interactive run never overwrites the committed ones. Quick mode
    writes everything into a temporary folder private to this process, removed when the process exits, so
    tests never touch tracked files and never reuse a checkpoint from another run. ``DGSP_QUICK_DIR`` names
    a folder to use instead, shared by several processes and left in place: ``make test`` points every kernel
    of one test run at the same fresh folder, so a quick model trained in one notebook run is loaded (by its
    content key) in the next, and removes it afterwards.
    """
    global _QUICK_TMP
    if is_quick():
        if _QUICK_TMP is None:
            shared = os.environ.get("DGSP_QUICK_DIR", "").strip()
            if shared:
                _QUICK_TMP = Path(shared).expanduser().resolve()
            else:
                _QUICK_TMP = Path(tempfile.mkdtemp(prefix="dgsp-quick-"))
                atexit.register(shutil.rmtree, _QUICK_TMP, ignore_errors=True)
        root = _QUICK_TMP
    elif kind == "checkpoints" or is_publishing():
        root = project_dir()
    else:
        root = project_dir() / "build"
    path = root / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
