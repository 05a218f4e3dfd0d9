"""Lecture 2 maths: Gaussian KL, grid divergences, KL fits, CAVI, the conjugate ELBO, gradient estimators."""
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dgsp import divergences as dv


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu_q, lv_q, mu_p, lv_p = (torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(4))
    ours = dv.gaussian_kl(mu_q, lv_q, mu_p, lv_p)
    ref = kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp())).sum(-1)
    torch.testing.assert_close(ours, ref)
    std = kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(dv.gaussian_kl(mu_q, lv_q), std)
    assert float(dv.gaussian_kl(torch.zeros(4), torch.zeros(4))) == 0.0


def test_gaussian_kl_matches_monte_carlo():
    mu_q, lv_q = torch.tensor([0.5, -1.0], dtype=torch.float64), torch.tensor([-0.7, 0.4], dtype=torch.float64)
    mu_p, lv_p = torch.tensor([0.0, 0.3], dtype=torch.float64), torch.tensor([0.2, -0.1], dtype=torch.float64)
    exact = float(dv.gaussian_kl(mu_q, lv_q, mu_p, lv_p))
    est, se = dv.kl_monte_carlo(lambda z: dv.log_normal_diag(z, mu_q, lv_q),
                                lambda z: dv.log_normal_diag(z, mu_p, lv_p),
                                lambda n, g: mu_q + (0.5 * lv_q).exp() * torch.randn(n, 2, generator=g,
                                                                                      dtype=torch.float64),
                                n=40_000, seed=1)
    assert abs(est - exact) < 4 * se
    assert se < 0.05 * exact


def test_gaussian_kl_shape_error():
    with pytest.raises(ValueError, match="same shape"):
        dv.gaussian_kl(torch.zeros(3), torch.zeros(4))


def test_grid_divergences():
    grid = torch.linspace(-10, 10, 4001, dtype=torch.float64)
    dx = float(grid[1] - grid[0])
    p = dv.grid_density(lambda x: Normal(0.0, 1.0).log_prob(x[:, 0]), grid)
    q = dv.grid_density(lambda x: Normal(1.0, 2.0).log_prob(x[:, 0]), grid)
    assert abs(float(p.sum()) * dx - 1) < 1e-9
    exact = float(kl_divergence(Normal(0.0, 1.0), Normal(1.0, 2.0)))
    assert abs(dv.kl_grid(p, q, dx) - exact) < 1e-4
    assert dv.kl_grid(p, p, dx) == pytest.approx(0.0, abs=1e-12)
    assert 0 < dv.js_grid(p, q, dx) < math.log(2)
    # TV(N(0, 1), N(1, 4)) = 1/2 ∫ |p - q| by scipy's adaptive quadrature, split where the densities cross
    from scipy import integrate, stats
    gap = lambda t: abs(stats.norm.pdf(t, 0, 1) - stats.norm.pdf(t, 1, 2))  # noqa: E731
    tv = 0.5 * sum(integrate.quad(gap, a, b)[0] for a, b in ((-10, -1.0), (-1.0, 1.5), (1.5, 10)))
    assert dv.tv_grid(p, q, dx) == pytest.approx(tv, abs=1e-6)
    # the same on a 2-D grid (cells of area dx^2): independent coordinates, one of them the same in p and q
    p2, q2 = p[::20, None] * p[None, ::20], q[::20, None] * p[None, ::20]
    dx2 = 20 * dx
    p2, q2 = p2 / (p2.sum() * dx2 ** 2), q2 / (q2.sum() * dx2 ** 2)
    assert dv.tv_grid(p2, q2, dx2 ** 2) == pytest.approx(tv, abs=1e-3)
    disjoint = torch.zeros_like(p)
    disjoint[:10] = 1.0 / (10 * dx)
    p_cut = p.clone()
    p_cut[:10] = 0
    assert dv.kl_grid(disjoint, p_cut, dx) == math.inf
    assert dv.js_grid(disjoint, p_cut / (p_cut.sum() * dx), dx) == pytest.approx(math.log(2), abs=1e-6)
    with pytest.raises(ValueError):
        dv.grid_density(lambda x: x[:, 0], torch.tensor([0.0, 1.0, 3.0]))


def test_mixture_moments_match_samples():
    p = dv.bimodal(dim=2, separation=4.0, weights=(0.7, 0.3), correlation=0.5)
    x = p.sample(100_000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.mean(0), p.mean(), atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), p.covariance(), atol=0.05, rtol=0)


def test_reverse_kl_is_mode_seeking_and_forward_kl_matches_moments():
    p = dv.bimodal(dim=1, separation=6.0, weights=(0.6, 0.4))
    right = dv.fit_gaussian(p, "reverse", init_mean=[2.0], steps=600, lr=0.05, seed=0)
    left = dv.fit_gaussian(p, "reverse", init_mean=[-2.0], steps=600, lr=0.05, seed=0)
    assert abs(float(right.mean[0]) - 3.0) < 0.3 and abs(float(right.cov[0, 0]) - 1.0) < 0.3
    assert abs(float(left.mean[0]) + 3.0) < 0.3
    # the heavier mode (left, weight 0.6) is the global minimum: lower final KL(q||p)
    assert sum(left.losses[-100:]) < sum(right.losses[-100:])
    fwd = dv.fit_gaussian(p, "forward", init_mean=[2.0], steps=1500, lr=0.05, n_samples=512, seed=0)
    assert abs(float(fwd.mean[0]) - float(p.mean()[0])) < 0.3
    assert abs(float(fwd.cov[0, 0]) - float(p.covariance()[0, 0])) < 0.1 * float(p.covariance()[0, 0])
    with pytest.raises(ValueError, match="direction"):
        dv.fit_gaussian(p, "sideways")


def test_cavi_fixed_point():
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    cov = torch.tensor([[2.0, 1.5], [1.5, 2.0]], dtype=torch.float64)
    res = dv.cavi_gaussian(mean, cov, iters=200, init=[-3.0, 4.0])
    torch.testing.assert_close(res.means[-1], mean, atol=1e-10, rtol=0)
    torch.testing.assert_close(res.variances, 1.0 / torch.linalg.inv(cov).diagonal())
    assert (res.variances < cov.diagonal()).all()  # mean field under-estimates the variance
    assert res.means.shape == (201, 2)
    # with no correlation it converges in one sweep
    one = dv.cavi_gaussian(mean, torch.eye(2, dtype=torch.float64), iters=1)
    torch.testing.assert_close(one.means[-1], mean)
    with pytest.raises(ValueError):
        dv.cavi_gaussian(mean, torch.tensor([[1.0, 2.0], [2.0, 1.0]]))


def test_conjugate_elbo_identity_and_monte_carlo():
    x = torch.tensor([1.5, -0.5], dtype=torch.float64)
    s2 = 0.5
    log_px = dv.conjugate_log_evidence(x, s2)
    post_m, post_lv = dv.conjugate_posterior(x, s2)
    q_m, q_lv = torch.tensor([0.3, 0.1], dtype=torch.float64), torch.tensor([-1.0, 0.2], dtype=torch.float64)
    terms = dv.conjugate_elbo(x, s2, q_m, q_lv)
    gap = dv.gaussian_kl(q_m, q_lv, post_m, post_lv)
    torch.testing.assert_close(log_px, terms["elbo"] + gap)  # log p(x) = ELBO + KL(q||p(z|x))
    torch.testing.assert_close(dv.conjugate_elbo(x, s2, post_m, post_lv)["elbo"], log_px)  # tight at the posterior
    est, se = dv.conjugate_elbo_mc(x, s2, q_m, q_lv, n=50_000, seed=0)
    assert abs(est - float(terms["elbo"])) < 4 * se


def test_gradient_estimators_unbiased_and_reparam_lower_variance():
    mu, log_sigma = 1.0, math.log(0.8)
    out = dv.gradient_estimators(lambda z: z**2, mu, log_sigma, n=200_000, seed=0)
    sigma = math.exp(log_sigma)
    truth = torch.tensor([2 * mu, 2 * sigma**2], dtype=torch.float64)  # d/dμ, d/dlogσ of μ² + σ²
    for name in ("score", "reparam"):
        est = out[name].mean(0)
        se = out[name].std(0) / math.sqrt(len(out[name]))
        assert (est - truth).abs().lt(5 * se).all(), name
    assert (out["reparam"].var(0) < out["score"].var(0)).all()
    a = dv.gradient_estimators(lambda z: z**2, mu, log_sigma, n=10, seed=3)
    b = dv.gradient_estimators(lambda z: z**2, mu, log_sigma, n=10, seed=3)
    torch.testing.assert_close(a["score"], b["score"])


def test_gaussian_fit_sampling_matches_its_moments():
    fit = dv.GaussianFit(mean=torch.tensor([1.0, -1.0], dtype=torch.float64),
                         cov=torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=torch.float64), direction="reverse")
    x = fit.sample(100_000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.mean(0), fit.mean, atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), fit.cov, atol=0.03, rtol=0)
    torch.testing.assert_close(fit.sample(5, torch.Generator().manual_seed(1)),
                               fit.sample(5, torch.Generator().manual_seed(1)))
