"""Evaluation helpers shared by the lectures.

Reconstruction errors are *per image*: summed over pixels, averaged over images,
so a PCA error is directly comparable with a sum of eigenvalues.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in batches without gradients and concatenate the results."""
    return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def _check_pair(x: torch.Tensor, x_hat: torch.Tensor) -> None:
    if x.shape != x_hat.shape:
        raise ValueError(f"reconstruction has shape {tuple(x_hat.shape)} but the input has {tuple(x.shape)}")


def reconstruction_mse(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Squared error summed over pixels, averaged over images: mean_i ||x_i - x_hat_i||^2."""
    _check_pair(x, x_hat)
    return float(((x - x_hat) ** 2).flatten(1).sum(1).mean())


def reconstruction_bce(x: torch.Tensor, x_hat: torch.Tensor, eps: float = 1e-6) -> float:
    """Binary cross-entropy summed over pixels, averaged over images (nats per image)."""
    _check_pair(x, x_hat)
    if x.min() < 0 or x.max() > 1:
        raise ValueError("BCE needs targets in [0, 1]")
    return float(F.binary_cross_entropy(x_hat.clamp(eps, 1 - eps), x, reduction="none").flatten(1).sum(1).mean())


def principal_angles(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> np.ndarray:
    """Principal angles (degrees, ascending) between the column spaces of ``a`` and ``b`` (d x k).

    With orthonormal bases Q_a, Q_b the cosines are the singular values of Q_a^T Q_b
    (Björck and Golub 1973); scipy computes them stably for small angles too.
    """
    from scipy.linalg import subspace_angles

    a = a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, dtype=float)
    b = b.detach().cpu().double().numpy() if isinstance(b, torch.Tensor) else np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"principal_angles needs two (d, k) bases with the same d, got {a.shape} and {b.shape}")
    return np.sort(np.degrees(subspace_angles(a, b)))


def knn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, k: int = 1) -> float:
    """Test accuracy of a k-nearest-neighbour classifier (scikit-learn) on learned features."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=k)
    clf.fit(train_features.detach().cpu().numpy(), train_labels.detach().cpu().numpy())
    return float(clf.score(test_features.detach().cpu().numpy(), test_labels.detach().cpu().numpy()))
