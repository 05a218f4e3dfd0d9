"""Lecture 2: divergences between distributions, and the small inference problems built on them.

* closed-form KL between diagonal Gaussians, and KL by Monte Carlo;
* KL / JS / TV between densities tabulated on a grid (1-D here, 2-D in lecture 7);
* fitting one Gaussian q to a bimodal mixture p by gradient descent on the reverse
  KL(q||p) (mode-seeking) or the forward KL(p||q) (mass-covering);
* coordinate-ascent mean-field VI (CAVI) for a correlated 2-D Gaussian;
* a conjugate Gaussian model in which log p(x), the posterior and the ELBO are all closed-form;
* the score-function and reparameterised estimators of one gradient.

References
----------
* Paik (2018), *Deep Learning: A Statistical Perspective*, slides "Approximate Inference:
  Variational Inference", "Two types of KL divergence", "Variational Inference: Marginal
  likelihood, KL divergence and ELBO", "Reparameterization trick", "Mean Field VI",
  "Expectation propagation".
* Kingma and Welling (2014), *Auto-Encoding Variational Bayes*: eq. 3 (ELBO),
  eq. 10 and Appendix B (Gaussian KL in closed form).
* Bishop (2006), *Pattern Recognition and Machine Learning*, §10.1.2 (eqs. 10.11-10.15: mean field
  on a correlated Gaussian) and Fig. 10.3 (the two KL directions on a bimodal p).
* Blei, Kucukelbir and McAuliffe (2017), *Variational Inference: A Review for Statisticians*,
  eqs. 17-18 (the CAVI update q_j ∝ exp E_{-j}[log p]).
* Williams (1992) for the score-function (REINFORCE) estimator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from dgsp.core import check_count

LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------- Gaussian KL
def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor | None = None,
                logvar_p: torch.Tensor | None = None) -> torch.Tensor:
    """KL(N(mu_q, diag e^logvar_q) || N(mu_p, diag e^logvar_p)), summed over the last dimension.

    Per coordinate: ½ [log σ_p² − log σ_q² + (σ_q² + (μ_q − μ_p)²) / σ_p² − 1].
    With the default p = N(0, I) this is −½ Σ (1 + log σ² − μ² − σ²), minus the first term of
    Kingma and Welling (2014) eq. 10 (derived in their Appendix B).
    """
    if mu_q.shape != logvar_q.shape:
        raise ValueError(f"mu_q {tuple(mu_q.shape)} and logvar_q {tuple(logvar_q.shape)} must have the same shape")
    if mu_p is None and logvar_p is None:
        return 0.5 * (logvar_q.exp() + mu_q**2 - 1.0 - logvar_q).sum(-1)
    mu_p = torch.zeros_like(mu_q) if mu_p is None else mu_p
    logvar_p = torch.zeros_like(logvar_q) if logvar_p is None else logvar_p
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0).sum(-1)


def kl_monte_carlo(log_q: Callable[[torch.Tensor], torch.Tensor], log_p: Callable[[torch.Tensor], torch.Tensor],
                   sample_q: Callable[[int, torch.Generator], torch.Tensor], n: int = 10_000,
                   seed: int = 0) -> tuple[float, float]:
    """KL(q||p) = E_q[log q(z) − log p(z)] by Monte Carlo: returns (estimate, its standard error)."""
    g = torch.Generator().manual_seed(seed)
    z = sample_q(n, g)
    terms = (log_q(z) - log_p(z)).double()
    return float(terms.mean()), float(terms.std() / math.sqrt(n))


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag e^logvar), summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 / logvar.exp()).sum(-1)


# ----------------------------------------------------------------------------- divergences on a grid
# p and q are densities tabulated at the same cells (any shape: a 1-D grid here, lecture 7's 2-D grids) and dx is
# the size of one cell (its length, or its area), so that sums times dx are Riemann sums of the integrals.
def grid_density(log_prob: Callable[[torch.Tensor], torch.Tensor], grid: torch.Tensor) -> torch.Tensor:
    """Evaluate a 1-D density (``log_prob`` takes points of shape (N, 1)) on an evenly spaced grid,
    renormalised to integrate to 1 there."""
    if grid.dim() != 1 or len(grid) < 3:
        raise ValueError(f"grid must be a 1-D tensor with at least 3 points, got shape {tuple(grid.shape)}")
    dens = log_prob(grid[:, None].double()).exp().double().reshape(-1)
    return dens / (dens.sum() * _spacing(grid))


def _spacing(grid: torch.Tensor) -> float:
    steps = grid[1:] - grid[:-1]
    if not torch.allclose(steps, steps[0].expand_as(steps), rtol=1e-4, atol=1e-7) or steps[0] <= 0:
        raise ValueError("the grid must be increasing and evenly spaced")
    return float(steps[0])


def _check_grid_pair(p: torch.Tensor, q: torch.Tensor) -> None:
    if p.shape != q.shape:
        raise ValueError(f"p and q must be densities on the same grid, got {tuple(p.shape)} and {tuple(q.shape)}")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("densities must be non-negative")


def kl_grid(p: torch.Tensor, q: torch.Tensor, dx: float) -> float:
    """KL(p||q) = ∫ p log(p/q) by a Riemann sum; cells where p = 0 contribute 0, q = 0 < p gives inf."""
    _check_grid_pair(p, q)
    p, q = p.double(), q.double()
    mask = p > 0
    if (q[mask] == 0).any():
        return math.inf
    return float((p[mask] * (p[mask].log() - q[mask].log())).sum() * dx)


def js_grid(p: torch.Tensor, q: torch.Tensor, dx: float) -> float:
    """Jensen-Shannon divergence ½ KL(p||m) + ½ KL(q||m) with m = (p + q)/2 (in nats, at most log 2)."""
    m = 0.5 * (p.double() + q.double())
    return 0.5 * kl_grid(p, m, dx) + 0.5 * kl_grid(q, m, dx)


def tv_grid(p: torch.Tensor, q: torch.Tensor, dx: float) -> float:
    """Total variation distance ½ ∫ |p − q| (between 0 and 1)."""
    _check_grid_pair(p, q)
    return float(0.5 * (p.double() - q.double()).abs().sum() * dx)


# ----------------------------------------------------------------------------- mixtures and Gaussian fits
@dataclass
class GaussianMixture:
    """A mixture of Gaussians with full covariances in d dimensions: Σ_k w_k N(means_k, covs_k)."""

    means: torch.Tensor      # (K, d)
    covs: torch.Tensor       # (K, d, d)
    weights: torch.Tensor    # (K,)

    def __post_init__(self):
        self.means = torch.as_tensor(self.means, dtype=torch.float64)
        self.covs = torch.as_tensor(self.covs, dtype=torch.float64)
        self.weights = torch.as_tensor(self.weights, dtype=torch.float64)
        k, d = self.means.shape
        if self.covs.shape != (k, d, d) or self.weights.shape != (k,):
            raise ValueError(f"means (K, d), covs (K, d, d), weights (K,) expected; got {tuple(self.means.shape)}, "
                             f"{tuple(self.covs.shape)}, {tuple(self.weights.shape)}")
        if (self.weights < 0).any() or not math.isclose(float(self.weights.sum()), 1.0, rel_tol=1e-6):
            raise ValueError("mixture weights must be non-negative and sum to 1")
        self._components = torch.distributions.MultivariateNormal(self.means, covariance_matrix=self.covs)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) for points x of shape (N, d) (float64 internally, returned in x's dtype)."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"log_prob expects points of shape (N, {self.dim}), got {tuple(x.shape)}")
        lp = self._components.log_prob(x.double()[:, None, :]) + self.weights.log()
        return torch.logsumexp(lp, dim=1).to(x.dtype)

    __call__ = log_prob

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """∇_x log p(x) = Σ_k r_k(x) Σ_k⁻¹ (μ_k − x), with r_k(x) the posterior probability of component k at x
        (closed form; float64 internally, returned in x's dtype)."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"score expects points of shape (N, {self.dim}), got {tuple(x.shape)}")
        resp = torch.softmax(self._components.log_prob(x.double()[:, None, :]) + self.weights.log(), dim=1)
        pull = torch.einsum("kij,nkj->nki", torch.linalg.inv(self.covs), self.means[None] - x.double()[:, None, :])
        return (resp[..., None] * pull).sum(1).to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws (float64, shape (n, d))."""
        n = check_count(n, "GaussianMixture.sample(n)")
        which = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        chol = torch.linalg.cholesky(self.covs)[which]
        eps = torch.randn(n, self.dim, 1, generator=generator, dtype=torch.float64)
        return self.means[which] + (chol @ eps).squeeze(-1)

    def mean(self) -> torch.Tensor:
        """E_p[x] = Σ_k w_k μ_k."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """Cov_p[x] = Σ_k w_k (Σ_k + μ_k μ_kᵀ) − E[x] E[x]ᵀ."""
        m = self.mean()
        second = (self.weights[:, None, None] * (self.covs + self.means[:, :, None] * self.means[:, None, :])).sum(0)
        return second - torch.outer(m, m)


def bimodal(dim: int = 1, separation: float = 4.0, weights: tuple[float, float] = (0.6, 0.4),
            scale: float = 1.0, correlation: float = 0.0) -> GaussianMixture:
    """Two Gaussians at ±separation/2 along the first axis (Bishop 2006, Fig. 10.3 style);
    in 2-D they are also offset by ∓separation/4 along the second axis, so the modes lie on a slanted line.

    Unequal weights make one mode the global minimum of KL(q||p) and the other a local one.
    In 2-D each component may have a within-component ``correlation``.
    """
    if dim not in (1, 2):
        raise ValueError(f"bimodal is defined for dim 1 or 2, got {dim}")
    means = torch.zeros(2, dim, dtype=torch.float64)
    means[0, 0], means[1, 0] = -separation / 2, separation / 2
    if dim == 2:
        means[0, 1], means[1, 1] = -separation / 4, separation / 4
        cov = torch.tensor([[1.0, correlation], [correlation, 1.0]], dtype=torch.float64) * scale**2
    else:
        cov = torch.eye(1, dtype=torch.float64) * scale**2
    return GaussianMixture(means, torch.stack([cov, cov]), torch.tensor(weights, dtype=torch.float64))


@dataclass
class GaussianFit:
    """A Gaussian q = N(mean, cov) fitted by gradient descent, with its optimisation path."""

    mean: torch.Tensor
    cov: torch.Tensor
    direction: str
    losses: list[float] = field(default_factory=list)
    means: list[torch.Tensor] = field(default_factory=list)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x) for points (N, d)."""
        normal = torch.distributions.MultivariateNormal(self.mean, covariance_matrix=self.cov)
        return normal.log_prob(x.double()).to(x.dtype)

    __call__ = log_prob

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws (float64, shape (n, d)): mean + L ε with L the Cholesky factor of cov."""
        n = check_count(n, "GaussianFit.sample(n)")
        eps = torch.randn(n, len(self.mean), generator=generator, dtype=torch.float64)
        return self.mean + eps @ torch.linalg.cholesky(self.cov).T


def _scale_tril(raw: torch.Tensor) -> torch.Tensor:
    """A lower-triangular Cholesky factor with a positive (exp) diagonal from an unconstrained matrix."""
    return torch.tril(raw, -1) + torch.diag_embed(raw.diagonal().exp())


def fit_gaussian(p: GaussianMixture, direction: str = "reverse", init_mean: torch.Tensor | list | None = None,
                 init_std: float = 1.0, steps: int = 1500, lr: float = 0.02, n_samples: int = 256,
                 seed: int = 0) -> GaussianFit:
    """Fit q = N(m, L Lᵀ) to p by Adam on a Monte Carlo estimate of a KL divergence.

    ``reverse``: KL(q||p) = E_q[log q(z) − log p(z)] with z = m + L ε, ε ~ N(0, I) (the
    reparameterisation trick, slide "Reparameterization trick"); the objective is small only when
    q puts little mass where p is small, so q locks onto one mode (mode-seeking), and
    which one depends on ``init_mean``.
    ``forward``: KL(p||q) = −E_p[log q(z)] + const with z ~ p: maximum likelihood of q on draws
    from p, whose optimum matches p's mean and covariance (mass-covering; slide "Expectation
    propagation": E_q[u(z)] = E_p[u(z)]).
    """
    if direction not in ("reverse", "forward"):
        raise ValueError(f"direction must be 'reverse' or 'forward', got {direction!r}")
    g = torch.Generator().manual_seed(seed)
    d = p.dim
    m = (torch.zeros(d, dtype=torch.float64) if init_mean is None
         else torch.as_tensor(init_mean, dtype=torch.float64).clone())
    if m.shape != (d,):
        raise ValueError(f"init_mean must have shape ({d},), got {tuple(m.shape)}")
    m.requires_grad_(True)
    raw = torch.diag(torch.full((d,), math.log(init_std), dtype=torch.float64)).requires_grad_(True)
    opt = torch.optim.Adam([m, raw], lr=lr)
    fit = GaussianFit(mean=m.detach().clone(), cov=torch.eye(d, dtype=torch.float64), direction=direction)
    for _ in range(steps):
        L = _scale_tril(raw)
        q = torch.distributions.MultivariateNormal(m, scale_tril=L)
        if direction == "reverse":
            eps = torch.randn(n_samples, d, generator=g, dtype=torch.float64)
            z = m + eps @ L.T
            loss = (q.log_prob(z) - p.log_prob(z)).mean()
        else:
            z = p.sample(n_samples, g)
            loss = (p.log_prob(z) - q.log_prob(z)).mean()  # KL(p||q); only −log q depends on q
        opt.zero_grad()
        loss.backward()
        opt.step()
        fit.losses.append(float(loss.detach()))
        fit.means.append(m.detach().clone())
    L = _scale_tril(raw.detach())
    fit.mean, fit.cov = m.detach().clone(), L @ L.T
    return fit


# ----------------------------------------------------------------------------- mean field: CAVI
@dataclass
class CAVIResult:
    """Per-iteration means (T+1, 2) and variances (2,) of the factorised q(z1) q(z2)."""

    means: torch.Tensor
    variances: torch.Tensor
    target_mean: torch.Tensor
    target_cov: torch.Tensor


def cavi_gaussian(mean: torch.Tensor | list, cov: torch.Tensor | list, iters: int = 10,
                  init: torch.Tensor | list | None = None) -> CAVIResult:
    """Coordinate-ascent mean-field VI for p(z) = N(mean, cov) in two dimensions.

    With precision Λ = cov⁻¹, the CAVI update q_j ∝ exp E_{q_{-j}}[log p(z)] (Blei et al. 2017,
    eqs. 17-18; slide "Mean Field VI") is Gaussian (Bishop 2006, eqs. 10.12-10.15):
        q_1(z_1) = N(m_1, 1/Λ_11),   m_1 = μ_1 − Λ_11⁻¹ Λ_12 (m_2 − μ_2),
    and symmetrically for z_2. Each sweep updates m_1 then m_2; the fixed point is m = μ, and the
    variances 1/Λ_jj are never larger than the true marginal variances Σ_jj.
    """
    mu = torch.as_tensor(mean, dtype=torch.float64)
    sigma = torch.as_tensor(cov, dtype=torch.float64)
    if mu.shape != (2,) or sigma.shape != (2, 2):
        raise ValueError(f"cavi_gaussian expects a mean (2,) and a covariance (2, 2), got {tuple(mu.shape)}, "
                         f"{tuple(sigma.shape)}")
    if not torch.allclose(sigma, sigma.T) or torch.linalg.eigvalsh(sigma).min() <= 0:
        raise ValueError("cov must be symmetric positive definite")
    lam = torch.linalg.inv(sigma)
    m = torch.zeros(2, dtype=torch.float64) if init is None else torch.as_tensor(init, dtype=torch.float64).clone()
    path = [m.clone()]
    for _ in range(iters):
        m[0] = mu[0] - lam[0, 1] / lam[0, 0] * (m[1] - mu[1])
        m[1] = mu[1] - lam[1, 0] / lam[1, 1] * (m[0] - mu[0])
        path.append(m.clone())
    return CAVIResult(torch.stack(path), 1.0 / lam.diagonal(), mu, sigma)


# ----------------------------------------------------------------------------- a conjugate model: all closed-form
def conjugate_log_evidence(x: torch.Tensor, noise_var: float) -> torch.Tensor:
    """Model z ~ N(0, I), x | z ~ N(z, s² I): log p(x) = log N(x; 0, (1 + s²) I), summed over dims."""
    v = torch.full_like(x, 1.0 + noise_var)
    return log_normal_diag(x, torch.zeros_like(x), v.log())


def conjugate_posterior(x: torch.Tensor, noise_var: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact posterior p(z|x) = N(x / (1 + s²), s² / (1 + s²)) per coordinate: (mean, logvar)."""
    mean = x / (1.0 + noise_var)
    return mean, torch.full_like(x, math.log(noise_var / (1.0 + noise_var)))


def conjugate_elbo(x: torch.Tensor, noise_var: float, q_mean: torch.Tensor,
                   q_logvar: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ELBO of q = N(q_mean, diag e^q_logvar) in closed form, split as reconstruction − KL(q||prior).

    E_q[log N(x; z, s²)] = −½ Σ [log 2πs² + ((x − m)² + v) / s²]   and   KL from :func:`gaussian_kl`.
    """
    v = q_logvar.exp()
    recon = -0.5 * (LOG_2PI + math.log(noise_var) + ((x - q_mean) ** 2 + v) / noise_var).sum(-1)
    kl = gaussian_kl(q_mean, q_logvar)
    return {"elbo": recon - kl, "recon": recon, "kl": kl}


def conjugate_elbo_mc(x: torch.Tensor, noise_var: float, q_mean: torch.Tensor, q_logvar: torch.Tensor,
                      n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Monte Carlo ELBO E_q[log p(x, z) − log q(z)] with z = m + σ ε: (estimate, standard error)."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, *q_mean.shape, generator=g, dtype=q_mean.dtype)
    z = q_mean + (0.5 * q_logvar).exp() * eps
    log_joint = (log_normal_diag(x, z, torch.full_like(z, math.log(noise_var)))
                 + log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z)))
    terms = (log_joint - log_normal_diag(z, q_mean, q_logvar)).double()
    return float(terms.mean()), float(terms.std() / math.sqrt(n))


# ----------------------------------------------------------------------------- two gradient estimators
def gradient_estimators(f: Callable[[torch.Tensor], torch.Tensor], mu: float, log_sigma: float,
                        n: int = 2000, seed: int = 0) -> dict[str, torch.Tensor]:
    """n independent single-sample estimates of ∇_(μ, log σ) E_{z~N(μ, σ²)}[f(z)], two ways.

    ``score``: f(z) ∇ log q(z) with z ~ q, i.e. f(z) · ((z − μ)/σ², (z − μ)²/σ² − 1)
    (the score-function / REINFORCE estimator; slide "Optimizing ELBO", where φ sits in the density).
    ``reparam``: ∇ f(μ + σ ε) with ε ~ N(0, 1), i.e. f'(z) · (1, σ ε) (slide "Reparameterization
    trick"; Kingma and Welling 2014, §2.4). Both are unbiased for the same gradient; they share ε
    so their variances are compared on the same draws. Returns tensors of shape (n, 2) and the ε used.
    """
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, generator=g, dtype=torch.float64)
    sigma = math.exp(log_sigma)
    z = (mu + sigma * eps).requires_grad_(True)
    fz = f(z)
    if fz.shape != z.shape:
        raise ValueError(f"f must map (n,) to (n,), got output shape {tuple(fz.shape)}")
    (dfdz,) = torch.autograd.grad(fz.sum(), z)
    z, fz = z.detach(), fz.detach()
    score = torch.stack([fz * (z - mu) / sigma**2, fz * ((z - mu) ** 2 / sigma**2 - 1.0)], dim=1)
    reparam = torch.stack([dfdz, dfdz * sigma * eps], dim=1)
    return {"score": score, "reparam": reparam, "eps": eps}
