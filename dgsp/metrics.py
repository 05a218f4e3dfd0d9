"""Evaluation helpers shared by the lectures.

Reconstruction errors are *per image*: summed over pixels, averaged over images,
so a PCA error is directly comparable with a sum of eigenvalues.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from dgsp.core import check_count
from dgsp.data import check_finite_rows
from dgsp.nets import check_shape
from dgsp.train import Model, fit


@torch.no_grad()
def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in batches without gradients and concatenate the results."""
    batch_size = check_count(batch_size, "map_batches(batch_size)")
    if len(x) == 0:
        raise ValueError("map_batches got an empty batch (0 rows)")
    return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def sample_in_chunks(sample: Callable[..., torch.Tensor], n: int, chunk: int = 500,
                     seed: int | None = 0) -> torch.Tensor:
    """``n`` samples from ``sample(m, generator=...)`` (any course model's ``sample``), drawn ``chunk`` at a time
    with one generator seeded by ``seed``, so an evaluation gives the same numbers whatever ran before it
    (``seed=None``: torch's global generator)."""
    n, chunk = check_count(n, "sample_in_chunks(n)"), check_count(chunk, "sample_in_chunks(chunk)")
    g = None if seed is None else torch.Generator().manual_seed(seed)
    return torch.cat([sample(min(chunk, n - i), generator=g) for i in range(0, n, chunk)])


def _check_pair(x: torch.Tensor, x_hat: torch.Tensor) -> None:
    if x.shape != x_hat.shape:
        raise ValueError(f"reconstruction has shape {tuple(x_hat.shape)} but the input has {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"a reconstruction error needs at least one image, got shape {tuple(x.shape)}")


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
    if 0 in a.shape or 0 in b.shape:
        raise ValueError(f"principal_angles needs bases with d, k >= 1, got {a.shape} and {b.shape}")
    return np.sort(np.degrees(subspace_angles(a, b)))


def knn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, k: int = 1) -> float:
    """Test accuracy of a k-nearest-neighbour classifier (scikit-learn) on learned features."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=k)
    clf.fit(train_features.detach().cpu().numpy(), train_labels.detach().cpu().numpy())
    return float(clf.score(test_features.detach().cpu().numpy(), test_labels.detach().cpu().numpy()))


def nearest_neighbours(memory: torch.Tensor, queries: torch.Tensor, k: int = 1, metric: str = "euclidean",
                       chunk: int = 1000) -> torch.Tensor:
    """Indices (len(queries), k) of each query's k nearest rows of ``memory``, by exact search in chunks of
    ``chunk`` queries (a 60,000 x 10,000 search never holds more than chunk x 60,000 distances).

    ``metric="euclidean"`` ranks by ||m - q||^2 = ||m||^2 - 2 m.q + ||q||^2 (the ||q||^2 term is the same for every
    m, so it is left out); ``"cosine"`` ranks by 1 - m.q / (||m|| ||q||) on the normalised rows."""
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"unknown metric {metric!r}; choose 'euclidean' or 'cosine'")
    memory, queries = memory.detach().flatten(1), queries.detach().flatten(1)
    if len(memory) == 0 or len(queries) == 0:
        raise ValueError(f"nearest_neighbours needs a non-empty memory and queries, got {len(memory)} and "
                         f"{len(queries)} rows")
    if memory.shape[1] != queries.shape[1]:
        raise ValueError(f"memory rows have {memory.shape[1]} features but queries have {queries.shape[1]}")
    if not 1 <= k <= len(memory):
        raise ValueError(f"k must be between 1 and the memory size {len(memory)}, got {k}")
    memory, queries = memory.float(), queries.to(memory.device).float()
    check_finite_rows(memory, "the memory features")
    check_finite_rows(queries, "the query features")
    if metric == "cosine":
        memory = F.normalize(memory, dim=1)
        queries = F.normalize(queries, dim=1)
        bias = torch.zeros(len(memory), device=memory.device)
    else:
        bias = (memory ** 2).sum(1)
    out = []
    for q in queries.split(chunk):
        score = bias[None, :] - 2 * q @ memory.T   # smaller is nearer (for cosine: -cos up to a factor 2)
        out.append(score.topk(k, dim=1, largest=False).indices)
    return torch.cat(out)


def one_nn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                    test_labels: torch.Tensor, metric: str = "euclidean", chunk: int = 1000) -> float:
    """Test accuracy of the 1-nearest-neighbour classifier whose memory is the training features (BiGAN Table 1's
    protocol): each test point takes the label of its nearest training point under ``metric``."""
    for feats, labels, who in ((train_features, train_labels, "training"), (test_features, test_labels, "test")):
        if len(feats) != len(labels):
            raise ValueError(f"{len(feats)} {who} features but {len(labels)} {who} labels")
    nearest = nearest_neighbours(train_features, test_features, 1, metric, chunk)[:, 0]
    predicted = train_labels.to(nearest.device)[nearest]
    return float((predicted == test_labels.to(nearest.device)).float().mean())


def _column_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and standard deviations, accumulated in float64 over blocks of about 4M entries (no full-size
    temporary)."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    squares = torch.zeros_like(total)
    for rows in x.split(max(1, 2 ** 22 // max(1, x.shape[1]))):
        total += rows.double().sum(0)
        squares += (rows.double() ** 2).sum(0)
    mean = total / len(x)
    var = (squares / len(x) - mean ** 2).clamp_min(0) * len(x) / max(1, len(x) - 1)
    return mean.to(x.dtype), var.sqrt().clamp_min(1e-6).to(x.dtype)


class _FixedFeaturesTimes(torch.autograd.Function):
    """``f @ w`` for a fixed (N, F) feature matrix ``f``, differentiable in ``w`` only. Its backward forms f^T g as
    (g^T f)^T: the same numbers, but CPU BLAS is far faster that way round for a tall ``f`` (measured 2026-12-03 on
    60,000 x 16,384 AFVs and 10 classes: 0.5 s against 9 s, which made each probe step 8x faster)."""

    @staticmethod
    def forward(ctx, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(f)
        return f @ w

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        (f,) = ctx.saved_tensors
        return None, (grad.T @ f).T


def linear_probe(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, l2: float = 1e-3, max_iter: int = 100) -> float:
    """Test accuracy of a linear classifier on frozen features: the course's one linear-probe protocol.

    Multinomial logistic regression on features standardised with the training mean and standard deviation,
    minimising mean cross-entropy + ``l2`` ||W||^2 by full-batch L-BFGS (``max_iter`` iterations, strong-Wolfe line
    search) from zero weights: the same convex problem for every representation, solved to (near) optimality, so the
    rows differ by their features and not by an optimiser's luck. The standardisation is folded into the weights
    (X W / s - (m / s) W), so a large feature matrix is never copied; it may stay on the CPU."""
    for feats, labels, who in ((train_features, train_labels, "training"), (test_features, test_labels, "test")):
        if feats.dim() != 2 or len(feats) == 0:
            raise ValueError(f"the {who} features must be a non-empty (N, F) matrix, got {tuple(feats.shape)}")
        if len(feats) != len(labels):
            raise ValueError(f"{len(feats)} {who} features but {len(labels)} {who} labels")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"training features have {train_features.shape[1]} columns, test {test_features.shape[1]}")
    if l2 < 0 or max_iter < 1:
        raise ValueError(f"need l2 >= 0 and max_iter >= 1, got {l2} and {max_iter}")
    check_finite_rows(train_features, "the training features")
    check_finite_rows(test_features, "the test features")
    x, x_test = train_features.float(), test_features.float()
    dev = x.device
    y, y_test = train_labels.to(dev).long(), test_labels.to(dev).long()
    n_classes = int(max(y.max(), y_test.max())) + 1
    mean, std = _column_moments(x)
    w = torch.zeros(x.shape[1], n_classes, device=dev, requires_grad=True)
    b = torch.zeros(n_classes, device=dev, requires_grad=True)

    def logits(f: torch.Tensor) -> torch.Tensor:  # ((f - mean) / std) W + b, without forming (f - mean) / std
        scaled = w / std[:, None]
        return _FixedFeaturesTimes.apply(f, scaled) + (b - mean @ scaled)

    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(logits(x), y) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        correct = sum(int((logits(f).argmax(1) == t).sum()) for f, t in zip(x_test.split(4096), y_test.split(4096)))
    return correct / len(y_test)


# ============================================================================= lecture 3: GAN and WGAN
# Sample-based two-sample distances (MMD, Fréchet distance), mode coverage on 2-D mixtures, and a
# small MNIST classifier whose features and predictions score generated digits.
def _as_2d(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x
    return x.detach().flatten(1).double().cpu() if x.dim() > 1 else x.detach().double().cpu()[:, None]


def _median_distance(z: torch.Tensor) -> float:
    if len(z) < 2:
        raise ValueError(f"a median pairwise distance needs at least two points, got {len(z)}")
    d = torch.cdist(z, z)
    return float(d[torch.triu(torch.ones_like(d, dtype=torch.bool), diagonal=1)].median())


def median_bandwidth(x: torch.Tensor, y: torch.Tensor, max_points: int = 2000) -> float:
    """The median heuristic: sigma = median pairwise distance in the pooled sample (Gretton et al. 2012, Sec. 8)."""
    return _median_distance(torch.cat([_as_2d(x)[:max_points // 2], _as_2d(y)[:max_points // 2]]))


def reference_bandwidth(y: torch.Tensor, max_points: int = 2000) -> float:
    """sigma = median pairwise distance within the reference sample ``y`` alone (e.g. draws of a prior): one kernel
    for every sample compared with that reference, so that their MMDs are measured in the same units."""
    return _median_distance(_as_2d(y)[:max_points])


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidth: float | str = "median") -> float:
    """Unbiased estimate of the squared maximum mean discrepancy with a Gaussian kernel
    k(a, b) = exp(-||a - b||^2 / (2 sigma^2)) (Gretton et al. 2012, eq. 3 / Lemma 6):

        MMD_u^2 = 1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i, y_j) - 2/(mn) sum_{i,j} k(x_i, y_j).

    Its expectation is 0 when x and y come from the same distribution (so it can be slightly
    negative), and positive otherwise. ``bandwidth="median"`` uses :func:`median_bandwidth` (the pooled sample's
    median distance, which changes with x); ``"reference"`` uses :func:`reference_bandwidth` of y alone, the choice
    when several samples x are scored against the same y.
    """
    x, y = _as_2d(x), _as_2d(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"samples must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError("mmd2 needs at least two points in each sample")
    if bandwidth == "median":
        sigma = median_bandwidth(x, y)
    elif bandwidth == "reference":
        sigma = reference_bandwidth(y)
    elif isinstance(bandwidth, str):
        raise ValueError(f"unknown bandwidth {bandwidth!r}; give a number, 'median' or 'reference'")
    else:
        sigma = float(bandwidth)
    if not sigma > 0:
        raise ValueError(f"bandwidth must be positive, got {sigma}")

    def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.cdist(a, b) ** 2 / (2 * sigma**2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
                 + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1)) - 2 * kxy.mean())


def mode_coverage(samples: torch.Tensor, modes: torch.Tensor, std: float, n_std: float = 3.0,
                  min_count: int | None = None) -> dict[str, float]:
    """Mode coverage of samples from a Gaussian-mixture target (Srivastava et al. 2017, VEEGAN, Sec. 5.1).

    A sample is *high quality* when it lies within ``n_std`` standard deviations (default 3) of its
    nearest mode. A mode is *covered* when at least ``min_count`` high-quality samples fall on it;
    the default is 10% of the count a perfect generator would put there, ceil(0.1 n / K), so that a
    handful of stray points does not count as capturing a mode. Returns ``modes_covered``,
    ``n_modes``, ``high_quality`` (share of high-quality samples) and ``min_count``.
    """
    samples = torch.as_tensor(samples).detach().double().cpu()
    modes = torch.as_tensor(modes).detach().double().cpu()
    if samples.dim() != 2 or modes.dim() != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(f"samples (N, d) and modes (K, d) must share d, got {tuple(samples.shape)} and "
                         f"{tuple(modes.shape)}")
    n, k = len(samples), len(modes)
    if n == 0 or k == 0:
        raise ValueError(f"mode_coverage needs at least one sample and one mode, got {n} and {k}")
    threshold = math.ceil(0.1 * n / k) if min_count is None else int(min_count)
    dist, nearest = torch.cdist(samples, modes).min(dim=1)
    good = dist <= n_std * std
    counts = torch.bincount(nearest[good], minlength=k)
    return {"modes_covered": int((counts >= max(threshold, 1)).sum()), "n_modes": k,
            "high_quality": float(good.double().mean()), "min_count": threshold}


def gaussian_frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2) (Heusel et al. 2017, eq. 6):
    ||mu1 - mu2||^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^{1/2})."""
    from scipy.linalg import sqrtm

    mu1, mu2 = np.atleast_1d(mu1).astype(float), np.atleast_1d(mu2).astype(float)
    cov1, cov2 = np.atleast_2d(cov1).astype(float), np.atleast_2d(cov2).astype(float)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape:
        raise ValueError(f"mismatched Gaussians: means {mu1.shape}, {mu2.shape}; "
                         f"covariances {cov1.shape}, {cov2.shape}")
    with warnings.catch_warnings():  # near-singular products are handled just below
        warnings.simplefilter("ignore")
        covmean = sqrtm(cov1 @ cov2)
        if not np.isfinite(covmean).all():  # singular product: regularise (as the reference FID code does)
            offset = np.eye(len(cov1)) * 1e-6
            covmean = sqrtm((cov1 + offset) @ (cov2 + offset))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def frechet_distance(feats_a: torch.Tensor | np.ndarray, feats_b: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature samples (N, d): FID's formula (Heusel et al.
    2017) in whatever feature space the features come from (here: dgsp's MNIST classifier)."""
    a, b = _as_2d(feats_a).numpy(), _as_2d(feats_b).numpy()
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features must have the same dimension, got {a.shape[1]} and {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("frechet_distance needs at least two feature vectors per sample")
    return gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


class DigitClassifier(Model):
    """A small conv net for 28x28 digits: two conv-pool blocks, a 128-unit feature layer, 10 logits.
    Its feature layer is the space in which dgsp computes Fréchet distances of generated digits."""

    def __init__(self, lr: float = 1e-3, feature_dim: int = 128):
        super().__init__(lr=lr, feature_dim=feature_dim)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, feature_dim), torch.nn.ReLU())
        self.head = torch.nn.Linear(feature_dim, 10)
        self.optimizers = {"clf": torch.optim.Adam(self.parameters(), lr=lr)}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, 1, 28, 28), type(self).__name__, finite=True)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        opt = self.optimizers["clf"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}


def mnist_classifier(dataset: str = "mnist", epochs: int | None = None, n: int | None = None,
                     checkpoint: str = "mnist_classifier") -> DigitClassifier:
    """The course's MNIST feature classifier, trained once with ``dgsp.train.fit`` and cached under
    ``checkpoints/<checkpoint>.pt`` (full mode: 2 epochs on all training digits; quick mode: 1 epoch
    on 2,000). Its test accuracy is stored as ``model.test_accuracy``."""
    from dgsp.core import by_mode, device
    from dgsp.data import load

    epochs = by_mode(2, 1) if epochs is None else epochs
    n = by_mode(None, 2000) if n is None else n
    x, y = load(dataset, "train", n=n)
    model = DigitClassifier().to(device())
    fit(model, (x, y), epochs=epochs, batch_size=128, checkpoint=checkpoint, desc="MNIST classifier")
    xt, yt = load(dataset, "test")
    model.test_accuracy = classifier_accuracy(model, xt, yt)
    return model


def classifier_accuracy(model: DigitClassifier, x: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of images x (N, 1, 28, 28) that the classifier labels as ``labels`` (N,). On reconstructions
    G(E(x)) with the labels of x, it asks whether a model keeps each digit's class."""
    if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
        raise ValueError(f"expected images of shape (N, 1, 28, 28), got {tuple(x.shape)}")
    if labels.shape != (len(x),):
        raise ValueError(f"expected {len(x)} labels of shape ({len(x)},), got {tuple(labels.shape)}")
    if len(x) == 0:
        raise ValueError("classifier_accuracy needs at least one image")
    model.eval()
    pred = map_batches(model, x.to(next(model.parameters()).device)).argmax(1)
    return float((pred.cpu() == labels.cpu()).double().mean())


def classifier_features(model: DigitClassifier, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The classifier's 128-d feature vectors of images x (N, 1, 28, 28), without gradients."""
    model.eval()
    return map_batches(model.features, x.to(next(model.parameters()).device), batch_size)


def class_histogram(model: DigitClassifier, x: torch.Tensor, n_classes: int = 10) -> np.ndarray:
    """Share of images the classifier assigns to each class: a collapse detector for generators
    (a mode-dropping generator leaves some digits near 0%)."""
    model.eval()
    return _class_shares(map_batches(model, x.to(next(model.parameters()).device)).argmax(1), n_classes)


def _class_shares(pred: torch.Tensor, n_classes: int = 10) -> np.ndarray:
    """The share of each class among predicted labels."""
    return (torch.bincount(pred.cpu(), minlength=n_classes).double() / max(len(pred), 1)).numpy()


def empirical_wasserstein(x: torch.Tensor, y: torch.Tensor) -> float:
    """W_1 between two equal-size empirical distributions: the optimal assignment's mean distance
    (an exact linear program for uniform weights; scipy's Hungarian solver)."""
    from scipy.optimize import linear_sum_assignment

    x, y = _as_2d(x), _as_2d(y)
    if x.shape != y.shape:
        raise ValueError(f"empirical_wasserstein needs samples of equal shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    cost = torch.cdist(x, y).numpy()
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def tsne_kmeans_nmi(codes: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, k: int = 10, seed: int = 0,
                    perplexity: float = 30.0) -> tuple[float, torch.Tensor]:
    """Embed ``codes`` in 2-D with t-SNE, cluster the embedding with k-means (``k`` clusters) and return the
    normalised mutual information 2 I(clusters; labels) / (H(clusters) + H(labels)) with the embedding (scikit-learn
    throughout; the protocol of the Fisher AE paper's Figure 3)."""
    from sklearn.cluster import KMeans
    from sklearn.manifold import TSNE
    from sklearn.metrics import normalized_mutual_info_score

    codes = _as_2d(codes).double()
    labels = np.asarray(torch.as_tensor(labels).cpu())
    if len(codes) != len(labels):
        raise ValueError(f"{len(codes)} codes but {len(labels)} labels")
    if len(codes) <= max(k, 3 * perplexity):
        raise ValueError(f"t-SNE with perplexity {perplexity} and {k} clusters needs more than "
                         f"{max(k, 3 * perplexity):g} points, got {len(codes)}")
    check_finite_rows(codes, "the codes given to tsne_kmeans_nmi")
    embedding = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(codes.cpu().numpy())
    clusters = KMeans(k, n_init=10, random_state=seed).fit_predict(embedding)
    return float(normalized_mutual_info_score(labels, clusters, average_method="arithmetic")), \
        torch.as_tensor(embedding, dtype=torch.float32)


@torch.no_grad()
def sample_quality(classifier: "DigitClassifier", images: torch.Tensor, reference_features: torch.Tensor) -> dict:
    """How a model's samples look to the course's digit classifier: the Fréchet distance between their features
    and ``reference_features`` (e.g. of the test set), and the share of the rarest predicted class (a collapsed
    model leaves some digits out)."""
    if len(images) < 2:
        raise ValueError(f"need at least 2 samples, got {len(images)}")
    check_finite_rows(images.flatten(1), "the samples")
    feats = classifier_features(classifier, images)
    with torch.no_grad():  # the predictions from the same features (one pass of the network, not two)
        pred = classifier.head(feats).argmax(1)
    return {"frechet": frechet_distance(feats, reference_features), "min_class_share": float(_class_shares(pred).min())}
