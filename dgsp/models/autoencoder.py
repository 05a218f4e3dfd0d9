"""Lecture 1: PCA and autoencoders (linear, deep, sparse, k-sparse, denoising).

References
----------
* Paik (2018), *Deep Learning: A Statistical Perspective*, lecture notes, slides
  "Shallow autoencoders" (linear f is PCA), "Autoencoders" (sparse and k-sparse),
  "Denoised autoencoder" and "Deep autoencoders".
* Baldi and Hornik (1989), *Neural networks and principal component analysis*:
  every local minimum of the linear autoencoder's squared error spans the
  top-k principal subspace (their Fact 4 / Theorem 1).
* Ranzato et al. (2007), sparse codes with an L1 penalty; Makhzani and Frey (2013),
  *k-Sparse Autoencoders*; Vincent et al. (2008), denoising autoencoders.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dgsp.core import rand_like, randn_like
from dgsp.data import check_images
from dgsp.nets import MLP, ConvDecoder, ConvEncoder, activation, check_shape, weight_dtype
from dgsp.train import Model


# ----------------------------------------------------------------------------- PCA by SVD
@dataclass
class PCA:
    """A fitted PCA: ``mean`` (d,), ``components`` (k, d) with orthonormal rows, and
    ``eigenvalues`` (all of them, descending) of the covariance (1/n) X_c^T X_c."""

    mean: torch.Tensor
    components: torch.Tensor
    eigenvalues: torch.Tensor
    image_shape: tuple[int, ...]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Scores z = Γ^T (x - mean), shape (N, k)."""
        return (x.flatten(1).double() - self.mean) @ self.components.T

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction x_hat = mean + Γ z, shape (N, *image_shape), float32."""
        return (self.mean + z @ self.components).float().view(-1, *self.image_shape)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def optimal_mse(self) -> float:
        """The minimum of mean_i ||x_i - x_hat_i||^2 over rank-k maps on the *fitting* data:
        the sum of the discarded eigenvalues, sum_{j>k} λ_j."""
        return float(self.eigenvalues[len(self.components):].sum())


def pca(x: torch.Tensor, k: int) -> PCA:
    """Principal component analysis by the SVD of the centred data matrix.

    With X_c = U S V^T, the covariance (1/n) X_c^T X_c has eigenvectors V and
    eigenvalues S^2 / n; the top-k right singular vectors span the principal
    subspace ("Shallow autoencoders" slide: w_1 = Γ, the leading eigenvectors).
    """
    if x.dim() < 2:
        raise ValueError(f"pca expects (N, ...) data, got shape {tuple(x.shape)}")
    flat = x.flatten(1).double()
    n, d = flat.shape
    if not 1 <= k <= min(n, d):
        raise ValueError(f"k must be between 1 and {min(n, d)}, got {k}")
    mean = flat.mean(0)
    _, s, vh = torch.linalg.svd(flat - mean, full_matrices=False)
    return PCA(mean=mean, components=vh[:k], eigenvalues=s**2 / n, image_shape=tuple(x.shape[1:]))


# ----------------------------------------------------------------------------- the pieces
def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Per-image reconstruction loss L(x, g(f(x))), summed over pixels, averaged over the batch.

    ``mse``: ||x - x_hat||^2 (a Gaussian decoder's negative log-likelihood up to constants);
    ``bce``: the Bernoulli negative log-likelihood; ``x_hat`` are then logits.
    """
    if x_hat.shape != x.shape:
        raise ValueError(f"reconstruction shape {tuple(x_hat.shape)} does not match input {tuple(x.shape)}")
    if kind == "mse":
        return ((x_hat - x) ** 2).flatten(1).sum(1).mean()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(x_hat, x, reduction="none").flatten(1).sum(1).mean()
    raise ValueError(f"unknown loss {kind!r}; choose 'mse' or 'bce'")


def l1_penalty(z: torch.Tensor) -> torch.Tensor:
    """Ω(z) = ||z||_1 per code, averaged over the batch (the sparse autoencoder's penalty)."""
    return z.abs().sum(1).mean()


def keep_top_k(z: torch.Tensor, k: int) -> torch.Tensor:
    """k-sparse coding (Makhzani and Frey 2013): keep the k largest activations of each code, zero the rest."""
    if not 1 <= k <= z.shape[1]:
        raise ValueError(f"k must be between 1 and the code size {z.shape[1]}, got {k}")
    idx = z.topk(k, dim=1).indices
    mask = torch.zeros_like(z).scatter_(1, idx, 1.0)
    return z * mask


def corrupt(x: torch.Tensor, level: float, kind: str = "gaussian",
            generator: torch.Generator | None = None) -> torch.Tensor:
    """The denoising autoencoder's corruption x -> x_tilde (Vincent et al. 2008).

    ``gaussian``: add N(0, level^2) noise and clip to [0, 1];
    ``mask``: set each pixel to 0 with probability ``level``.
    """
    if level < 0 or (kind == "mask" and level > 1):
        raise ValueError(f"corruption level {level} out of range for {kind!r} noise")
    if level == 0:
        return x
    if kind == "gaussian":
        return (x + level * randn_like(x, generator)).clamp(0, 1)
    if kind == "mask":
        return x * (rand_like(x, generator) >= level)
    raise ValueError(f"unknown noise kind {kind!r}; choose 'gaussian' or 'mask'")


# ----------------------------------------------------------------------------- the model
class Autoencoder(Model):
    """x -> z = f(x) -> x_hat = g(z), trained on L(x, g(f(x_tilde))) + l1 * ||z||_1.

    arch: ``linear`` (one linear map each way; PCA's subspace at the optimum),
          ``mlp`` or ``conv`` (deep encoder and decoder from :mod:`dgsp.nets`; ``channels`` sets the conv width).
    code_act: an activation on the code (``"relu"`` gives non-negative codes for sparse models).
    l1 > 0 gives a sparse AE; ``k_sparse`` keeps only the k largest code units;
    ``noise`` > 0 trains a denoising AE on inputs corrupted by :func:`corrupt`.
    ``lr_decay`` < 1 multiplies the learning rate by that factor after every epoch (``Model.on_epoch_end``):
    SGD noise shrinks and the linear model settles on the principal subspace instead of jittering around it.
    """

    def __init__(self, code_dim: int = 32, arch: str = "mlp", hidden: tuple[int, ...] = (512, 256),
                 loss: str = "mse", l1: float = 0.0, k_sparse: int | None = None, noise: float = 0.0,
                 noise_kind: str = "gaussian", code_act: str | None = None, lr: float = 1e-3,
                 lr_decay: float = 1.0, channels: int = 32, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__(code_dim=code_dim, arch=arch, hidden=list(hidden), loss=loss, l1=l1, k_sparse=k_sparse,
                         noise=noise, noise_kind=noise_kind, code_act=code_act, lr=lr, lr_decay=lr_decay,
                         channels=channels, image_shape=list(image_shape))
        if loss not in ("mse", "bce"):
            raise ValueError(f"unknown loss {loss!r}; choose 'mse' or 'bce'")
        self.image_shape = tuple(image_shape)
        # the decoder ends in a sigmoid for deep MSE models (pixels live in [0, 1]);
        # BCE models output logits; the linear model is purely linear, like PCA.
        out_act = None if (arch == "linear" or loss == "bce") else "sigmoid"
        if arch == "linear":
            self.encoder = MLP(self.image_shape, [], code_dim, out_act=code_act)
            self.decoder = MLP(code_dim, [], self.image_shape)
        elif arch == "mlp":
            self.encoder = MLP(self.image_shape, list(hidden), code_dim, out_act=code_act)
            self.decoder = MLP(code_dim, list(reversed(hidden)), self.image_shape, out_act=out_act)
        elif arch == "conv":
            if self.image_shape != (1, 28, 28):
                raise ValueError("the conv autoencoder is built for (1, 28, 28) images")
            self.encoder = nn.Sequential(ConvEncoder(code_dim, channels=channels, norm=None), activation(code_act))
            self.decoder = ConvDecoder(code_dim, channels=channels, out_act=out_act)
        else:
            raise ValueError(f"unknown arch {arch!r}; choose 'linear', 'mlp' or 'conv'")
        self.optimizers = {"ae": torch.optim.Adam(self.parameters(), lr=lr)}

    def check_data(self, data: tuple[torch.Tensor, ...]) -> None:
        """Called once by :func:`dgsp.train.fit`: float images of the model's shape, finite."""
        check_images(data[0], self.image_shape, f"the {type(self).__name__}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = f(x), made k-sparse if the model is."""
        check_shape(x, (None, *self.image_shape), type(self).__name__, weight_dtype(self), finite=True)
        z = self.encoder(x)
        k = self.hparams["k_sparse"]
        return keep_top_k(z, k) if k else z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction g(z) as pixels in [0, 1] (or unbounded for the linear model)."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.hparams["loss"] == "bce" else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training objective on a batch: reconstruction of the clean x from f(x_tilde), plus the L1 penalty."""
        h = self.hparams
        x_in = corrupt(x, h["noise"], h["noise_kind"]) if h["noise"] > 0 else x
        z = self.encode(x_in)
        x_hat = self.decoder(z)
        rec = reconstruction_loss(x_hat, x, h["loss"])
        penalty = l1_penalty(z) if h["l1"] > 0 else torch.zeros((), device=x.device)
        return {"loss": rec + h["l1"] * penalty, "recon": rec, "l1": penalty}

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        opt = self.optimizers["ae"]
        opt.zero_grad(set_to_none=True)
        terms = self.loss(batch[0])
        terms["loss"].backward()
        opt.step()
        return {k: v.detach() for k, v in terms.items()}

    def decoder_basis(self) -> torch.Tensor:
        """For the linear model: the decoder's weight (d, k), whose columns span the learned subspace."""
        if self.hparams["arch"] != "linear":
            raise ValueError("decoder_basis is defined for the linear autoencoder only")
        return self.decoder.net[0].weight.detach()
