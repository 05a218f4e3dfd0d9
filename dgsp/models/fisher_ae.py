"""Lecture 6: the Fisher auto-encoder (Elkhalil, Hasan, Ding, Farsiu and Tarokh, AISTATS 2021).

The VAE minimises KL[q*(x) q_φ(z|x) ‖ p_η(z) p_θ(x|z)] over the joint of data and codes (paper eq. 7). The Fisher
AE minimises the *Fisher* divergence between the same two joints (eq. 8), which Theorem 1 splits into three terms
per image (eq. 10):

    L_F-AE(x) = D∇[q_φ(z|x) ‖ p_η,θ(z|x)]                    ① the posteriors, through their scores only
              + E_q s∇[p_θ(x|z)]                              ② the decoder's Hyvärinen score (a reconstruction)
              + E_q ½ ‖∇_x log q_φ(z|x)‖²                     ③ stability: how fast q(z|x) moves with x

① needs ∇_z log p_η,θ(z|x) = ∇_z log p_η(z) + ∇_z log p_θ(x|z), never p(x): the normalising constant drops out.
With one reparameterised draw z = μ(x) + σ(x) ⊙ ε per image this is the Monte Carlo estimate of eq. 11 (as
printed, eq. 11 repeats ∇_z log p_η; the second gradient is ∇_z log p_θ(x|z), as the unnumbered display after
eq. 12 shows).

The prior is the factorable polynomial exponential family (FPE, eq. 13), whose score is known in closed form and
whose normaliser is never needed in training; samples come from SVGD (Sec. 4), in :mod:`dgsp.score`.

Deviations, each a choice the paper leaves open:

* **Normalisable prior.** exp(Σ_k η_k z^k) with K = 5 integrates only if η_5 = 0 (an odd leading power runs off
  to +∞ on one side). The course keeps K = 5 free coefficients per dimension, as in the paper, and adds a fixed
  confining carrier h(z) = −c Σ_j z_j^m with m the smallest even power above K (eq. 12 allows any carrier; eq. 13
  takes h = 0). With c > 0 every η gives a proper density; with ``confine=0`` the user's η is checked instead.
* **Decoder scale.** p_θ(x|z) = N(f_θ(z), s² I) with a fixed s (Sec. 3 takes s = 1); ② is then
  ‖x − f_θ(z)‖² / (2 s⁴) − D / s², and ① sees ∇_z log p_θ(x|z) = J_f(z)ᵀ (x − f_θ(z)) / s².
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from dgsp.core import check_count, check_generator, randn_like
from dgsp.data import check_images
from dgsp.nets import MLP, check_shape
from dgsp.score import check_normalisable, poly_log_density, svgd
from dgsp.train import Model

__all__ = ["FPEPrior", "gaussian_posterior_score", "decoder_log_likelihood", "decoder_hyvarinen_score",
           "encoder_input_score", "fisher_ae_terms", "FisherAE", "score_matched_prior", "LinearGaussian", "add_noise",
           "NOISE_VARIANCES", "mean_code",
           "normalised_bce", "noisy_copy", "robustness_bce", "robustness_nmi"]


# ----------------------------------------------------------------------------- the prior (eq. 12-13)
class FPEPrior(nn.Module):
    """p_η(z) ∝ exp(Σ_j Σ_{k=1..K} η_jk z_j^k + h(z)) with the carrier h(z) = −c Σ_j z_j^m (m even, m > K).

    ``eta`` (d, K) is learnable. It starts at η_j2 = −½ and zeros elsewhere: a standard normal, bent by the carrier.
    """

    def __init__(self, dim: int, order: int = 5, confine: float = 1e-2, eta: torch.Tensor | None = None):
        super().__init__()
        if order < 2:
            raise ValueError(f"an FPE prior needs order K >= 2 (K = 1 is an exponential, not normalisable), "
                             f"got {order}")
        if dim < 1:
            raise ValueError(f"the latent dimension must be positive, got {dim}")
        if confine < 0:
            raise ValueError(f"the carrier's weight c must be >= 0 (c < 0 pushes mass to infinity), got {confine}")
        self.dim, self.order, self.confine = dim, order, float(confine)
        self.carrier_power = 2 * (order // 2) + 2  # the smallest even power above K
        if eta is None:
            eta = torch.zeros(dim, order)
            eta[:, 1] = -0.5
        eta = torch.as_tensor(eta, dtype=torch.float32)
        if eta.shape != (dim, order):
            raise ValueError(f"eta must have shape (d, K) = ({dim}, {order}), got {tuple(eta.shape)}")
        if confine == 0:  # no carrier: η alone must make each factor integrable
            for j in range(dim):
                try:
                    check_normalisable(eta[j])
                except ValueError as err:
                    raise ValueError(f"FPE prior without a carrier, dimension {j}: {err}") from None
        self.eta = nn.Parameter(eta.clone())

    def _check(self, z: torch.Tensor) -> None:
        check_shape(z, (None, self.dim), "the FPE prior")

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        """η·T(z) + h(z), one value per row: log p_η(z) up to its normalising constant (eq. 12)."""
        self._check(z)
        k = torch.arange(1, self.order + 1, device=z.device, dtype=z.dtype)
        powers = z[..., None] ** k                                    # (n, d, K): z_j^k
        return (self.eta * powers).sum((1, 2)) - self.confine * (z ** self.carrier_power).sum(1)

    def score(self, z: torch.Tensor) -> torch.Tensor:
        """∇_z log p_η(z) in closed form: Σ_k k η_jk z_j^(k−1) − c m z_j^(m−1) (the line after eq. 13)."""
        self._check(z)
        k = torch.arange(1, self.order + 1, device=z.device, dtype=z.dtype)
        powers = z[..., None] ** (k - 1)                              # z^0 = 1 for the k = 1 column
        m = self.carrier_power
        return (k * self.eta * powers).sum(2) - self.confine * m * z ** (m - 1)

    def marginal(self, j: int, grid: torch.Tensor) -> torch.Tensor:
        """The density of coordinate j on a regular 1-D grid, normalised numerically (the prior factorises)."""
        grid = grid.double()
        with torch.no_grad():
            log_p = (poly_log_density(self.eta[j].double().cpu(), grid[:, None])
                     - self.confine * grid ** self.carrier_power)
            p = torch.exp(log_p - log_p.max())
        return p / (p.sum() * (grid[1] - grid[0]))

    def sample_exact(self, n: int, generator: torch.Generator | None = None, lo: float = -12.0, hi: float = 12.0,
                     points: int = 24_001) -> torch.Tensor:
        """n exact draws (up to the grid's resolution): because p_η factorises, each coordinate is drawn
        independently by inverting its 1-D distribution function, tabulated on a grid over [lo, hi]."""
        n = check_count(n, "FPEPrior.sample_exact(n)")
        check_generator(generator, "FPEPrior.sample_exact")
        grid = torch.linspace(lo, hi, points, dtype=torch.float64)
        u = torch.rand(n, self.dim, generator=generator, dtype=torch.float64)
        cols = []
        for j in range(self.dim):
            cdf = torch.cumsum(self.marginal(j, grid), 0)
            cdf = cdf / cdf[-1]
            cols.append(grid[torch.searchsorted(cdf, u[:, j].contiguous()).clamp(max=points - 1)])
        return torch.stack(cols, 1).to(self.eta)

    def sample(self, n: int, steps: int = 15_000, step_size: float = 1e-3,
               generator: torch.Generator | None = None, adaptive: bool = False) -> torch.Tensor:
        """n draws by SVGD (Sec. 4): particles from N(0, I), moved ``steps`` times with ``step_size`` (plain steps,
        or with ``adaptive=True`` the per-coordinate scaling of Liu and Wang's code: :func:`dgsp.score.svgd`)."""
        n = check_count(n, "SVGD moves a set of particles: FPEPrior.sample(n)", least=2)
        z0 = randn_like(torch.empty(n, self.dim, device=self.eta.device), generator)
        with torch.no_grad():
            z, _ = svgd(self.score, z0, steps=steps, step_size=step_size, adaptive=adaptive)
        return z


def score_matched_prior(codes: torch.Tensor, order: int = 4) -> FPEPrior:
    """An FPE prior fitted to codes (e.g. the training set's μ(x)) after training, coordinate by coordinate, by
    score matching in closed form (lecture 6, §1: :func:`dgsp.score.score_matching_poly`); no carrier, so ``order``
    must be even and each fit must come out normalisable (checked)."""
    if codes.dim() != 2 or len(codes) < 2:
        raise ValueError(f"codes must be (N, d) with N >= 2, got {tuple(codes.shape)}")
    from dgsp.score import score_matching_poly

    eta = torch.stack([score_matching_poly(codes[:, j].detach().cpu(), order) for j in range(codes.shape[1])])
    return FPEPrior(codes.shape[1], order, confine=0.0, eta=eta.float()).to(codes.device)


# ----------------------------------------------------------------------------- the three terms of eq. 10
def gaussian_posterior_score(eps: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """∇_z log q_φ(z|x) at z = μ + σ ⊙ ε: −ε / σ (the line after eq. 11)."""
    return -eps / std


def decoder_log_likelihood(x: torch.Tensor, mean: torch.Tensor, scale: float) -> torch.Tensor:
    """log N(x; f_θ(z), s² I) up to its constant, one value per image: −‖x − f_θ(z)‖² / (2 s²)."""
    return -((x - mean) ** 2).flatten(1).sum(1) / (2 * scale ** 2)


def decoder_hyvarinen_score(x: torch.Tensor, mean: torch.Tensor, scale: float) -> torch.Tensor:
    """② s∇[p_θ(x|z)] = ½ ‖∇_x log p‖² + Δ_x log p = ‖x − f_θ(z)‖² / (2 s⁴) − D / s² for the Gaussian decoder
    (eq. 6; the paper's footnote 1 drops the constant −D/s², kept here so that Remark 1 holds exactly)."""
    pixels = x[0].numel()
    return ((x - mean) ** 2).flatten(1).sum(1) / (2 * scale ** 4) - pixels / scale ** 2


def encoder_input_score(x: torch.Tensor, mu: torch.Tensor, std: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """∇_x log q_φ(z|x) at the drawn z, held fixed while x moves, one row per image (the argument of ③).

    With log q = −Σ_j [(z_j − μ_j(x))² / (2 σ_j(x)²) + log σ_j(x)] and z_j − μ_j = σ_j ε_j,

        ∇_x log q(z|x) = J_μ(x)ᵀ (ε / σ) + J_σ(x)ᵀ ((ε² − 1) / σ),

    one vector-Jacobian product through the encoder; ``create_graph`` keeps it differentiable, so that the
    loss's gradient passes through it (double backpropagation). ``x`` must require grad and ``mu``, ``std`` be
    computed from it."""
    if not x.requires_grad:
        raise ValueError("encoder_input_score needs the images with requires_grad=True "
                         "(and mu, std computed from them)")
    # a posterior whose mean or spread does not depend on x contributes nothing through it
    pairs = [(t, w) for t, w in ((mu, eps / std), (std, (eps ** 2 - 1) / std)) if t.requires_grad]
    if not pairs:
        return torch.zeros_like(x).flatten(1)
    (grad,) = torch.autograd.grad([t for t, _ in pairs], x, grad_outputs=[w for _, w in pairs], create_graph=True)
    return grad.flatten(1)


def fisher_ae_terms(model: "FisherAE", x: torch.Tensor, generator: torch.Generator | None = None
                    ) -> dict[str, torch.Tensor]:
    """The three terms of eq. 10 (one draw of q per image, eq. 11) and their sum ``loss``, each of shape (N,)."""
    s = model.hparams["decoder_scale"]
    x = x.detach().requires_grad_(True)
    mu, logvar = model.encode_params(x)
    std = (0.5 * logvar).exp()
    eps = randn_like(mu, generator)
    z = mu + std * eps
    mean = model.decode(z)
    # ① ½ ‖∇_z log q − ∇_z log p_η − ∇_z log p_θ(x|z)‖²: the decoder's score in z by autograd
    (decoder_score,) = torch.autograd.grad(decoder_log_likelihood(x, mean, s).sum(), z, create_graph=True)
    posterior = 0.5 * ((gaussian_posterior_score(eps, std) - model.prior.score(z) - decoder_score) ** 2).sum(1)
    # ② the decoder's Hyvärinen score, and ③ the stability term
    recon = decoder_hyvarinen_score(x, mean, s)
    stability = 0.5 * (encoder_input_score(x, mu, std, eps) ** 2).sum(1)
    return {"loss": posterior + recon + stability, "posterior": posterior, "recon": recon, "stability": stability}


# ----------------------------------------------------------------------------- the model
class FisherAE(Model):
    """The Fisher AE on (1, 28, 28) images: a Gaussian encoder q_φ(z|x) = N(μ(x), diag σ²(x)) and a decoder
    f_θ(z) in (0, 1) (MLPs with ``hidden`` units, mirrored), an FPE prior of order ``order`` (eq. 13) with carrier
    weight ``confine``, trained with Adam on eq. 11. ``stability`` weights term ③ (1 is the paper's loss; 0 drops
    it, for the exercise)."""

    def __init__(self, z_dim: int = 8, hidden: tuple[int, ...] = (512, 512), order: int = 5, confine: float = 1e-2,
                 decoder_scale: float = 1.0, stability: float = 1.0, lr: float = 2e-4,
                 betas: tuple[float, float] = (0.5, 0.999), image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__(z_dim=z_dim, hidden=list(hidden), order=order, confine=confine, decoder_scale=decoder_scale,
                         stability=stability, lr=lr, betas=list(betas), image_shape=list(image_shape))
        if z_dim < 1 or decoder_scale <= 0 or stability < 0:
            raise ValueError(f"need z_dim >= 1, decoder_scale > 0 and stability >= 0; got {z_dim}, {decoder_scale}, "
                             f"{stability}")
        self.z_dim, self.image_shape = z_dim, tuple(image_shape)
        self.encoder = MLP(self.image_shape, list(hidden), 2 * z_dim, act="relu")
        self.decoder = MLP(z_dim, list(reversed(hidden)), self.image_shape, act="relu", out_act="sigmoid")
        self.prior = FPEPrior(z_dim, order, confine)
        self.optimizers = {"fae": torch.optim.Adam(self.parameters(), lr=lr, betas=tuple(betas))}

    def encode_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ(x), log σ²(x)), each (N, z_dim)."""
        check_shape(x, (None, *self.image_shape), type(self).__name__, finite=True)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of each image: the posterior mean μ(x)."""
        return self.encode_params(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """f_θ(z): the decoder's mean image, in (0, 1)."""
        check_shape(z, (None, self.z_dim), f"{type(self).__name__}.decode")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions f_θ(μ(x))."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int = 15_000,
               step_size: float = 1e-3, prior: FPEPrior | None = None, exact: bool = False) -> torch.Tensor:
        """n images: draws of the learned prior (or of ``prior``), decoded. The draws come from SVGD as in the
        paper (:meth:`FPEPrior.sample`), or, with ``exact=True``, from :meth:`FPEPrior.sample_exact`."""
        prior = self.prior if prior is None else prior
        z = prior.sample_exact(n, generator) if exact else prior.sample(n, steps, step_size, generator)
        return self.decode(z.to(self.device))

    def check_data(self, data: Any) -> None:
        """Called once by ``fit``: finite float images of the right shape."""
        check_images(data[0], self.image_shape, f"the {type(self).__name__}")

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        terms = fisher_ae_terms(self, batch[0])
        w = self.hparams["stability"]
        loss = (terms["posterior"] + terms["recon"] + w * terms["stability"]).mean()
        opt = self.optimizers["fae"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        # the terms first: a NaN is reported under the name of the term that produced it
        return {**{k: terms[k].detach().mean() for k in ("posterior", "recon", "stability")}, "loss": loss.detach()}


# ----------------------------------------------------------------------------- Remark 1, made concrete
class LinearGaussian(nn.Module):
    """A model where everything is Gaussian and known: z ~ N(0, I_d) (the FPE prior with K = 2, η_j = (0, −½), no
    carrier), x | z ~ N(W z + b, s² I_D), so p(x) = N(b, W Wᵀ + s² I). With orthogonal columns in W (``w``, D x d)
    the exact posterior is N(S Wᵀ (x − b) / s², S) with S = (I + WᵀW / s²)⁻¹ diagonal, and :meth:`encode_params`
    returns it: q_φ = p(z|x), the case of the paper's Remark 1. It plugs into :func:`fisher_ae_terms`."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor, scale: float):
        super().__init__()
        w, b = torch.as_tensor(w), torch.as_tensor(b)
        if w.dim() != 2 or b.shape != (w.shape[0],) or scale <= 0:
            raise ValueError(f"need W (D, d), b (D,) and scale > 0; got {tuple(w.shape)}, {tuple(b.shape)}, {scale}")
        gram = w.T @ w
        if not torch.allclose(gram, torch.diag(torch.diagonal(gram)), atol=1e-8):
            raise ValueError("W must have orthogonal columns (then the exact posterior has a diagonal covariance)")
        self.register_buffer("w", w)
        self.register_buffer("b", b)
        self.hparams = {"decoder_scale": float(scale)}
        d = w.shape[1]
        eta = torch.zeros(d, 2)
        eta[:, 1] = -0.5
        self.prior = FPEPrior(d, order=2, confine=0.0, eta=eta).to(w.dtype)
        self.prior.eta.requires_grad_(False)

    def encode_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s2 = self.hparams["decoder_scale"] ** 2
        post_var = 1 / (1 + torch.diagonal(self.w.T @ self.w) / s2)
        return (x - self.b) @ self.w * post_var / s2, post_var.log().expand(len(x), -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.w.T + self.b

    def evidence_hyvarinen_score(self, x: torch.Tensor) -> torch.Tensor:
        """s∇[p(x)] in closed form for p(x) = N(b, Σ), Σ = W Wᵀ + s² I: ½ ‖Σ⁻¹ (x − b)‖² − tr Σ⁻¹."""
        sigma = self.w @ self.w.T + self.hparams["decoder_scale"] ** 2 * torch.eye(len(self.b), dtype=self.w.dtype)
        prec = torch.linalg.inv(sigma)
        return 0.5 * (((x - self.b) @ prec) ** 2).sum(1) - torch.trace(prec)


# ----------------------------------------------------------------------------- robustness experiments (Sec. 4)
def add_noise(x: torch.Tensor, variance: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + N(0, σ² I): the corrupted test images of the paper's Figures 1-4 (not clipped, as in the paper)."""
    if variance < 0 or not math.isfinite(variance):
        raise ValueError(f"the noise variance must be a finite number >= 0, got {variance}")
    return x + math.sqrt(variance) * randn_like(x, generator)


NOISE_VARIANCES = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)  # σ² of the paper's Figures 1 and 3


def mean_code(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The code of each image under any of lecture 6's models: the posterior mean (a VAE's ``encode`` returns
    (μ, log σ²); the others return the code)."""
    out = model.encode(x)
    return out[0] if isinstance(out, tuple) else out


def normalised_bce(x_clean: torch.Tensor, x_hat: torch.Tensor, eps: float = 1e-6) -> float:
    """The binary cross-entropy between reconstructions and the clean images, averaged over pixels and images
    (the paper's Figure 1 y-axis): nats per pixel."""
    if x_clean.shape != x_hat.shape:
        raise ValueError(f"reconstructions {tuple(x_hat.shape)} do not match the images {tuple(x_clean.shape)}")
    if x_clean.min() < 0 or x_clean.max() > 1:
        raise ValueError("the clean images must lie in [0, 1]")
    return float(torch.nn.functional.binary_cross_entropy(x_hat.clamp(eps, 1 - eps), x_clean))


def noisy_copy(x: torch.Tensor, variance: float, seed: int = 0) -> torch.Tensor:
    """The test images corrupted with N(0, σ² I), the same draw for every model (fixed by ``seed`` and σ²)."""
    generator = torch.Generator().manual_seed(seed + int(round(variance * 1000)))
    return add_noise(x.cpu(), variance, generator).to(x.device)


@torch.no_grad()
def robustness_bce(model: nn.Module, x: torch.Tensor, variances=NOISE_VARIANCES, seed: int = 0) -> list[float]:
    """Normalised BCE of the reconstruction of x + N(0, σ² I) against x, for each σ² (the paper's Figure 1)."""
    from dgsp.metrics import map_batches

    return [normalised_bce(x, map_batches(model, noisy_copy(x, v, seed))) for v in variances]


@torch.no_grad()
def robustness_nmi(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, variances=NOISE_VARIANCES,
                   seed: int = 0) -> tuple[list[float], list[torch.Tensor]]:
    """For each σ²: encode x + N(0, σ² I), t-SNE the codes to 2-D, k-means them into 10 clusters and score the NMI
    against the labels (the paper's Figure 3); returns the NMIs and the 2-D embeddings (its Figure 4)."""
    from dgsp.metrics import map_batches, tsne_kmeans_nmi

    scores, embeddings = [], []
    for v in variances:
        codes = map_batches(lambda b: mean_code(model, b), noisy_copy(x, v, seed))
        nmi, embedding = tsne_kmeans_nmi(codes, labels, seed=seed)
        scores.append(nmi)
        embeddings.append(embedding)
    return scores, embeddings
