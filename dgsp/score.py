"""Scores of unnormalised densities: the Fisher divergence, the Hyvärinen score, score matching, and SVGD.

Everything here needs the *score* grad_x log p(x) only, never the normalising constant: a density known up to a
factor, p(x) = exp(f(x)) / Z, has grad log p = grad f. Lecture 6 (Fisher auto-encoders) uses all of it; lecture 7
(EBM-GAN) samples an energy model with the same SVGD.

References
----------
* Hyvärinen (2005), *Estimation of non-normalized statistical models by score matching*, JMLR 6: the objective
  E_p [1/2 ||grad log q||^2 + Laplacian log q] (his Theorem 1) and its closed form for exponential families.
* Elkhalil, Hasan, Ding, Farsiu and Tarokh (2021), *Fisher Auto-Encoders*, AISTATS: the Fisher divergence (eq. 4),
  its expansion into the Hyvärinen score (eq. 5-6), and the polynomial exponential family (eq. 13).
* Liu and Wang (2016), *Stein Variational Gradient Descent*, NeurIPS: the update phi(x) (their eq. 8 and
  Algorithm 1) with an RBF kernel and the median-heuristic bandwidth h = med^2 / log(n + 1) of their code.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from dgsp.data import check_finite_rows

Score = Callable[[torch.Tensor], torch.Tensor]     # x (n, d) -> grad_x log p(x), (n, d)
LogDensity = Callable[[torch.Tensor], torch.Tensor]  # x (n, d) -> log p(x) up to a constant, (n,)


def _rows(x: torch.Tensor, who: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or len(x) == 0 or x.shape[1] == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{who} expects points of shape (n, d) with n, d >= 1, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{who} expects floating-point points (it differentiates at them), got {x.dtype}")
    check_finite_rows(x, f"the points given to {who}")
    return x


# ----------------------------------------------------------------------------- scores by autograd
def score_of(log_density: LogDensity) -> Score:
    """grad_x log p(x) by autograd, for each row of x (each row's log-density must depend on that row alone)."""
    def score(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(log_density(x).sum(), x)
        return grad
    return score


def hyvarinen_score(log_density: LogDensity, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """s(x) = 1/2 ||grad log p(x)||^2 + Laplacian log p(x) for each row of x, shape (n,) (Fisher AE eq. 6).

    The Laplacian is the sum of the d second derivatives d^2 log p / dx_j^2, one backward pass per dimension:
    exact, and cheap for the low-dimensional x this is meant for. ``create_graph=True`` keeps the result
    differentiable with respect to the density's parameters (to minimise it)."""
    x = _rows(x, "hyvarinen_score").detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(log_density(x).sum(), x, create_graph=True)
        laplacian = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for j in range(x.shape[1]):
            (second,) = torch.autograd.grad(grad[:, j].sum(), x, create_graph=create_graph, retain_graph=True)
            laplacian = laplacian + second[:, j]
    out = 0.5 * (grad ** 2).sum(1) + laplacian
    return out if create_graph else out.detach()


def fisher_divergence(score_p: Score, score_q: Score, x: torch.Tensor) -> float:
    """D(p || q) = E_p 1/2 ||grad log p(x) - grad log q(x)||^2 (Fisher AE eq. 4), by Monte Carlo over samples
    x ~ p (rows of x)."""
    x = _rows(x, "fisher_divergence")
    return float(0.5 * ((score_p(x) - score_q(x)) ** 2).sum(1).mean())


# ----------------------------------------------------------------------------- score matching for a polynomial family
def _check_order(order: int) -> None:
    if order < 2:
        raise ValueError(f"a polynomial exponential family needs order K >= 2 (K = 1 is not normalisable), got {order}")


def poly_log_density(eta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log q_eta(x) = sum_k eta_k x^k, k = 1..K, up to its normalising constant (1-D, eq. 13 with d = 1); x (n, 1)."""
    powers = torch.arange(1, len(eta) + 1, device=x.device, dtype=x.dtype)
    return (eta * x ** powers).sum(1)


def poly_derivatives(x: torch.Tensor, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """T'(x) and T''(x) of the statistic T(x) = (x, x^2, ..., x^K): rows (k x^(k-1))_k and (k (k-1) x^(k-2))_k."""
    _check_order(order)
    x = x.reshape(-1, 1)
    k = torch.arange(1, order + 1, dtype=x.dtype, device=x.device)
    first = k * x ** (k - 1)
    second = k * (k - 1) * x ** (k - 2).clamp_min(0)  # the k = 1 column is 0 * x^0 = 0
    return first, second


def score_matching_objective(eta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The empirical Hyvärinen score of q_eta on 1-D data x: mean_i 1/2 (eta . T'(x_i))^2 + eta . T''(x_i).
    Quadratic in eta: 1/2 eta' A eta + b' eta with A = mean T' T'^T and b = mean T''."""
    first, second = poly_derivatives(x, len(eta))
    return (0.5 * (first @ eta) ** 2 + second @ eta).mean()


def score_matching_poly(x: torch.Tensor, order: int, ridge: float = 0.0) -> torch.Tensor:
    """The minimiser eta = -A^{-1} b of :func:`score_matching_objective` (Hyvärinen 2005, Sec. 3 for exponential
    families), in float64. ``ridge`` adds ridge * I to A (for badly conditioned high orders). The fitted density
    is normalisable only if its top coefficient is negative and K even: checked, with a clear error otherwise."""
    x = _rows(x.reshape(-1, 1).double(), "score_matching_poly")
    first, second = poly_derivatives(x, order)
    a = first.T @ first / len(x) + ridge * torch.eye(order, dtype=x.dtype, device=x.device)
    b = second.mean(0)
    eta = -torch.linalg.solve(a, b)
    check_normalisable(eta)
    return eta


def score_matching_autograd(x: torch.Tensor, order: int, max_iter: int = 500) -> torch.Tensor:
    """The same minimiser found numerically: L-BFGS (a quasi-Newton gradient method) on
    :func:`score_matching_objective`, with the gradients from autograd, from eta = 0, in float64. Needs no
    algebra, so it also works for families whose objective is not quadratic."""
    x = _rows(x.reshape(-1, 1).double(), "score_matching_autograd")
    _check_order(order)
    eta = torch.zeros(order, dtype=torch.float64, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([eta], lr=1, max_iter=max_iter, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = score_matching_objective(eta, x)
        loss.backward()
        return loss
    with torch.enable_grad():
        opt.step(closure)
    return eta.detach()


def poly_mle_grid(x: torch.Tensor, order: int, grid: torch.Tensor, max_iter: int = 500) -> torch.Tensor:
    """Maximum likelihood in the same family, for contrast: maximise mean_i eta . T(x_i) - log Z(eta), where
    Z(eta) = integral exp(eta . T) is the normaliser score matching never needs; here it is a Riemann sum on the
    1-D ``grid`` (no such grid exists in 8 or 784 dimensions). L-BFGS from the Gaussian fit's eta, in float64."""
    x = _rows(x.reshape(-1, 1).double(), "poly_mle_grid")
    _check_order(order)
    grid = grid.reshape(-1, 1).double().to(x.device)
    log_dx = math.log(float(grid[1, 0] - grid[0, 0]))
    eta = torch.zeros(order, dtype=torch.float64, device=x.device)
    var = float(x.var())
    eta[0], eta[1] = float(x.mean()) / var, -0.5 / var
    eta.requires_grad_(True)
    opt = torch.optim.LBFGS([eta], lr=1, max_iter=max_iter, tolerance_grad=1e-10, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        log_z = torch.logsumexp(poly_log_density(eta, grid), 0) + log_dx
        loss = log_z - poly_log_density(eta, x).mean()
        loss.backward()
        return loss
    with torch.enable_grad():
        opt.step(closure)
    return eta.detach()


def check_normalisable(eta: torch.Tensor) -> None:
    """exp(sum_k eta_k x^k) integrates over the real line only if its leading power is even with a negative
    coefficient; raise a ``ValueError`` that says which condition fails."""
    eta = eta.detach().flatten()
    _check_order(len(eta))
    if not torch.isfinite(eta).all():
        raise ValueError(f"the natural parameters are not finite: {eta.tolist()}")
    nonzero = torch.nonzero(eta).flatten()
    if len(nonzero) == 0:
        raise ValueError("all natural parameters are zero: exp(0) is not normalisable on the real line")
    top = int(nonzero[-1]) + 1
    if top % 2 == 1 or float(eta[top - 1]) >= 0:
        raise ValueError(f"exp(sum_k eta_k x^k) is not normalisable: its leading term "
                         f"{float(eta[top - 1]):.3g} x^{top} must have an even power and a negative coefficient")


def normalised_density(log_density: LogDensity, grid: torch.Tensor) -> torch.Tensor:
    """exp(log p) on a regular 1-D grid, divided by its Riemann sum: the normalising constant found numerically."""
    grid = grid.reshape(-1, 1).double()
    log_p = log_density(grid)
    dx = float(grid[1, 0] - grid[0, 0])
    p = torch.exp(log_p - log_p.max())
    return p / (p.sum() * dx)


def grid_moments(log_density: LogDensity, lo: float, hi: float, n: int = 401) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of the 2-D density p ∝ exp(log_density) by numerical integration on an n x n grid over
    [lo, hi]^2 (the normaliser found as the Riemann sum): the reference SVGD's particles are checked against."""
    if n < 3 or not hi > lo:
        raise ValueError(f"need n >= 3 grid points per axis and hi > lo, got n={n}, [{lo}, {hi}]")
    axis = torch.linspace(lo, hi, n, dtype=torch.float64)
    pts = torch.cartesian_prod(axis, axis)
    log_p = log_density(pts).double()
    w = torch.exp(log_p - log_p.max())
    w = w / w.sum()
    mean = w @ pts
    centred = pts - mean
    return mean, (w[:, None] * centred).T @ centred


# ----------------------------------------------------------------------------- Stein variational gradient descent
def svgd_bandwidth(x: torch.Tensor) -> torch.Tensor:
    """The median heuristic h = med^2 / log(n + 1), med^2 the median squared distance over all n^2 pairs of
    particles, the zero diagonal included. This is Liu and Wang's released code (their Sec. 5 writes log n), median
    and all: with an even count it averages the two middle values, as numpy does, so two particles get h = d^2 / 2
    and not 0. A 0-d tensor on x's device, so SVGD's loop never waits for the host."""
    return _median_bandwidth(torch.cdist(x, x) ** 2)


def _median_bandwidth(d2: torch.Tensor) -> torch.Tensor:
    if len(d2) < 2:
        return d2.new_tensor(1.0)
    flat = d2.flatten()
    m = len(flat)  # torch.median takes the lower middle value; numpy's median averages the two
    med = (flat.kthvalue((m + 1) // 2).values + flat.kthvalue(m // 2 + 1).values) / 2
    return med / math.log(len(d2) + 1)


def svgd_direction(x: torch.Tensor, score: torch.Tensor, bandwidth: float | torch.Tensor | str = "median"
                   ) -> torch.Tensor:
    """phi(x_i) = 1/n sum_j [k(x_j, x_i) grad log p(x_j) + grad_{x_j} k(x_j, x_i)], k(a, b) = exp(-||a - b||^2 / h)
    (Liu and Wang 2016, eq. 8): the first term pulls particles up the density, the second pushes them apart.
    ``bandwidth`` is h, or "median" for :func:`svgd_bandwidth` (from the same pairwise distances)."""
    sq = (x ** 2).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0)  # d2[j, i] = ||x_j - x_i||^2
    h = _median_bandwidth(d2) if isinstance(bandwidth, str) else bandwidth
    k = torch.exp(-d2 / h)                                      # k[j, i], symmetric
    drive = k.T @ score                                         # sum_j k(x_j, x_i) grad log p(x_j)
    # sum_j grad_{x_j} k(x_j, x_i) = -2/h sum_j (x_j - x_i) k[j, i]: two matrix products, no (n, n, d) tensor
    repulse = -2 / h * (k.T @ x - x * k.sum(0)[:, None])
    return (drive + repulse) / len(x)


def svgd(score_fn: Score, x0: torch.Tensor, steps: int, step_size: float, bandwidth: float | str = "median",
         every: int = 0, adaptive: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Move the particles x0 (n, d) ``steps`` times along phi (Algorithm 1 of Liu and Wang 2016, plain steps of
    ``step_size``); the bandwidth is recomputed by the median rule at each step unless a number is given.
    ``adaptive=True`` scales each coordinate's step as Liu and Wang's released code does ("adagrad with
    momentum", an RMSprop rule): v <- 0.9 v + 0.1 phi^2 (v = phi^2 at the first step), x <- x + step_size *
    phi / (1e-6 + sqrt(v)), so a particle moves about ``step_size`` per step whatever the scale of phi.
    Returns the final particles and, if ``every`` > 0, snapshots every ``every`` steps (the first is x0)."""
    x = _rows(x0, "svgd").detach().clone()
    if steps < 0 or step_size <= 0:
        raise ValueError(f"need steps >= 0 and step_size > 0, got {steps} and {step_size}")
    if isinstance(bandwidth, str) and bandwidth != "median":
        raise ValueError(f"bandwidth must be a number or 'median', got {bandwidth!r}")
    trail = [x.clone()] if every else []
    v = None  # the running mean of phi^2 (adaptive steps only)
    for t in range(1, steps + 1):
        phi = svgd_direction(x, score_fn(x), bandwidth)
        if adaptive:
            v = phi ** 2 if v is None else 0.9 * v + 0.1 * phi ** 2
            phi = phi / (1e-6 + v.sqrt())
        x = x + step_size * phi
        if every and t % every == 0:
            trail.append(x.clone())
    check_finite_rows(x, "the SVGD particles (lower the step size)")
    return x, trail


# ----------------------------------------------------------------------------- Langevin dynamics
def langevin(log_density: LogDensity, x0: torch.Tensor, steps: int, step_size: float,
             generator: torch.Generator | None = None, clamp: tuple[float, float] | None = None,
             every: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Unadjusted Langevin dynamics on p ∝ exp(log_density): x <- x + (eps/2) grad log p(x) + sqrt(eps) n,
    n ~ N(0, I), ``steps`` times from x0 (any shape (N, ...); each row's log-density must depend on that row
    alone). For small eps and many steps the chain's law approaches p (Roberts and Tweedie 1996). ``clamp`` keeps
    the states in a box (pixels in [0, 1]). The noise comes from ``generator`` (CPU) when given, for a reproducible
    chain. Returns the final states and, if ``every`` > 0, snapshots every ``every`` steps (the first is x0)."""
    if not isinstance(x0, torch.Tensor) or x0.dim() < 2 or len(x0) == 0:
        raise ValueError(f"langevin expects a non-empty batch (N, ...), got "
                         f"{tuple(x0.shape) if isinstance(x0, torch.Tensor) else type(x0).__name__}")
    if steps < 0 or step_size <= 0:
        raise ValueError(f"need steps >= 0 and step_size > 0, got {steps} and {step_size}")
    check_finite_rows(x0.flatten(1), "the starting points given to langevin")
    grad_log_p = score_of(log_density)
    x = x0.detach().clone()
    trail = [x.clone()] if every else []
    for t in range(1, steps + 1):
        noise = torch.randn(x.shape, generator=generator).to(x) if generator is not None else torch.randn_like(x)
        x = x + 0.5 * step_size * grad_log_p(x) + math.sqrt(step_size) * noise
        if clamp is not None:
            x = x.clamp(*clamp)
        if every and t % every == 0:
            trail.append(x.clone())
    check_finite_rows(x.flatten(1), "the Langevin states (lower the step size)")
    return x, trail
