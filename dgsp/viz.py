"""Plots shared by the lectures. Every figure is saved by name with :func:`savefig`.

Full mode writes ``figures/<name>.png`` in the project; quick mode writes into a
private temporary folder so tests leave the working tree clean.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torchvision.utils import make_grid

from dgsp.core import as_numpy, output_dir

PALETTE = "tab10"


def set_style() -> None:
    """The course's plotting style (seaborn's white grid, readable fonts)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)
    plt.rcParams.update({"figure.dpi": 100, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def figures_dir() -> Path:
    """The folder figures are written to (``figures/`` in full mode)."""
    return output_dir("figures")


def savefig(fig: plt.Figure, name: str) -> Path:
    """Save ``fig`` as ``<figures>/<name>.png`` (150 dpi) and return the path."""
    if not name or any(c in name for c in "/\\ "):
        raise ValueError(f"figure name must be a plain file name without spaces, got {name!r}")
    path = figures_dir() / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


def rescale(images: torch.Tensor) -> torch.Tensor:
    """Stretch each image of a batch (N, C, H, W) to [0, 1] on its own, to show signed weights
    (principal components, decoder atoms) as pictures."""
    if images.dim() != 4:
        raise ValueError(f"rescale expects (N, C, H, W) images, got shape {tuple(images.shape)}")
    images = images.detach().float().cpu()
    low, high = images.amin((1, 2, 3), keepdim=True), images.amax((1, 2, 3), keepdim=True)
    return (images - low) / (high - low).clamp_min(1e-8)


def image_grid(images: torch.Tensor, nrow: int = 10, ax: plt.Axes | None = None, title: str | None = None,
               pad: int = 1) -> plt.Axes:
    """Show a batch of (N, C, H, W) images in [0, 1] as one grid (torchvision ``make_grid``)."""
    if images.dim() != 4:
        raise ValueError(f"image_grid expects (N, C, H, W) images, got shape {tuple(images.shape)}")
    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=pad, pad_value=1.0)
    ax = ax or plt.subplots(figsize=(nrow * 0.6, (len(images) / nrow) * 0.6 + 0.3))[1]
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def compare_rows(rows: Sequence[torch.Tensor], labels: Sequence[str], n: int = 10,
                 figsize_scale: float = 0.65) -> plt.Figure:
    """One row of ``n`` images per tensor in ``rows`` (e.g. inputs, then reconstructions)."""
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * figsize_scale, len(rows) * figsize_scale * 1.15))
    axes = np.atleast_1d(axes)
    for ax, imgs, label in zip(axes, rows, labels):
        image_grid(imgs[:n], nrow=n, ax=ax)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for s in ax.spines.values():
            s.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    return fig


def latent_scatter(z: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray | None = None,
                   ax: plt.Axes | None = None, title: str | None = None, s: float = 4,
                   background: torch.Tensor | np.ndarray | None = None) -> plt.Axes:
    """Scatter 2-D codes, coloured by digit label (with a legend), over light-grey ``background`` points
    (e.g. draws of the prior)."""
    z = as_numpy(z)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter expects (N, 2) codes, got shape {z.shape}")
    ax = ax or plt.subplots(figsize=(5, 4.5))[1]
    if background is not None:
        bg = as_numpy(background)
        ax.scatter(bg[:, 0], bg[:, 1], s=s, color="0.8", alpha=0.5, zorder=0, label="prior")
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=s, alpha=0.6)
    else:
        labels = as_numpy(labels)
        cmap = plt.get_cmap(PALETTE)
        for c in np.unique(labels):
            m = labels == c
            ax.scatter(z[m, 0], z[m, 1], s=s, alpha=0.6, color=cmap(int(c) % 10), label=str(c))
        ax.legend(markerscale=3, fontsize=7, ncol=2, loc="best", frameon=True)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return ax


def training_curves(history, keys: Sequence[str], ax: plt.Axes | None = None, title: str | None = None,
                    smooth: int = 1, logy: bool = False) -> plt.Axes:
    """Plot metrics from a :class:`dgsp.train.History` against training step.

    ``smooth`` > 1 applies a running mean (per-step metrics are noisy).
    """
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for key in keys:
        steps, values = history.series(key)
        values = np.asarray(values, dtype=float)
        if smooth > 1 and len(values) > smooth:
            kernel = np.ones(smooth) / smooth
            values = np.convolve(values, kernel, mode="valid")
            steps = steps[smooth - 1:]
        ax.plot(steps, values, label=key, marker="o" if len(values) < 30 else None, ms=3)
    ax.set_xlabel("training step")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax
