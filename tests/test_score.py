"""Score-based tools (dgsp.score): the Hyvärinen score, the Fisher divergence, score matching, SVGD, bad input."""
import math

import numpy as np
import pytest
import torch

from dgsp import score


def test_hyvarinen_score_of_a_gaussian_in_closed_form():
    mu, sigma = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.5])
    log_p = lambda x: (-(x - mu) ** 2 / (2 * sigma ** 2)).sum(1)  # noqa: E731  unnormalised on purpose
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    by_hand = ((x - mu) ** 2 / (2 * sigma ** 4)).sum(1) - (1 / sigma ** 2).sum()
    assert torch.allclose(score.hyvarinen_score(log_p, x.double()), by_hand.double(), atol=1e-10)
    # the normalising constant drops out: adding a constant to log p changes nothing
    assert torch.allclose(score.hyvarinen_score(lambda x: log_p(x) + 123.0, x), by_hand.double())


def test_fisher_divergence_between_two_gaussians():
    x = torch.randn(200_000, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    d = score.fisher_divergence(lambda x: -x, lambda x: -(x - 0.7), x)  # N(0, 1) vs N(0.7, 1): m^2 / 2
    assert d == pytest.approx(0.7 ** 2 / 2, rel=1e-9)  # the score gap is the constant -0.7: exact for any x
    # N(0, 1) vs N(0, 4): a score gap of -3x/4, so the Monte Carlo average over x ~ p matters: (1/2)(9/16) E x^2
    d = score.fisher_divergence(lambda x: -x, lambda x: -x / 4, x)
    assert d == pytest.approx(0.5 * 9 / 16, rel=5e-3)
    autograd = score.score_of(lambda x: -(x ** 2).sum(1) / 2)
    assert torch.allclose(autograd(x[:5]), -x[:5])


def test_score_matching_closed_form_agrees_with_gradient_descent():
    g = torch.Generator().manual_seed(2)
    x = torch.cat([torch.randn(3000, generator=g) * 0.5 - 1.5, torch.randn(2000, generator=g) * 0.7 + 1.0]).double()
    eta = score.score_matching_poly(x, 4)
    assert float(eta[-1]) < 0
    # brute force: minimise the same objective by L-BFGS from zero
    eta_gd = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([eta_gd], lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = score.score_matching_objective(eta_gd, x[:, None])
        loss.backward()
        return loss
    opt.step(closure)
    assert torch.allclose(eta_gd.detach(), eta, atol=1e-4)
    # the objective is the mean Hyvärinen score of the fitted (unnormalised) density
    h = score.hyvarinen_score(lambda t: score.poly_log_density(eta, t), x[:, None]).mean()
    assert float(h) == pytest.approx(float(score.score_matching_objective(eta, x[:, None])), rel=1e-9)
    grid = torch.linspace(-5, 5, 2001, dtype=torch.float64)
    p = score.normalised_density(lambda t: score.poly_log_density(eta, t), grid)
    assert float(p.sum() * (grid[1] - grid[0])) == pytest.approx(1.0)


def test_normalisability_and_bad_input():
    with pytest.raises(ValueError, match="order K >= 2"):
        score.poly_derivatives(torch.zeros(3), 1)
    with pytest.raises(ValueError, match="even power and a negative coefficient"):
        score.check_normalisable(torch.tensor([0.0, -1.0, 0.5]))  # leading x^3
    with pytest.raises(ValueError, match="even power and a negative coefficient"):
        score.check_normalisable(torch.tensor([0.0, 1.0]))  # exp(+x^2)
    score.check_normalisable(torch.tensor([1.0, -0.5, 0.0, 0.0]))  # a Gaussian written with K = 4 is fine
    with pytest.raises(ValueError, match="shape \\(n, d\\)"):
        score.hyvarinen_score(lambda x: x.sum(1), torch.zeros(5))
    with pytest.raises(ValueError, match="non-finite"):
        score.svgd(lambda x: -x, torch.tensor([[0.0], [float("nan")]]), 1, 0.1)
    with pytest.raises(ValueError, match="step_size"):
        score.svgd(lambda x: -x, torch.zeros(3, 1), 5, 0.0)


def test_svgd_leaves_a_standard_normal_sample_nearly_invariant_and_finds_a_shifted_one():
    x0 = torch.randn(300, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x, trail = score.svgd(lambda x: -x, x0, steps=200, step_size=0.05, every=100)
    assert len(trail) == 3
    assert float(x.mean(0).abs().max()) < 0.05
    assert torch.allclose(torch.cov(x.T), torch.eye(2, dtype=torch.float64), atol=0.1)
    # from N(0, I) to N((2, -1), I): the mean moves, the spread stays (100 particles: a wider kernel, faster drift)
    shifted, _ = score.svgd(lambda x: -(x - torch.tensor([2.0, -1.0], dtype=x.dtype)), x0[:100], 600, 0.2)
    assert torch.allclose(shifted.mean(0), torch.tensor([2.0, -1.0], dtype=torch.float64), atol=0.05)
    assert torch.allclose(torch.cov(shifted.T), torch.eye(2, dtype=torch.float64), atol=0.25)


def test_adaptive_svgd_steps_like_liu_and_wangs_code():
    """v = phi^2 at the first step, so each coordinate moves by step_size (times phi's sign); later steps divide
    by the running RMS of phi."""
    x0 = torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    weak = lambda x: -1e-3 * (x - 4.0)  # noqa: E731  N(4, 1000 I): phi is about 1e-3 of a unit score's
    one, _ = score.svgd(weak, x0, steps=1, step_size=0.01, adaptive=True)
    phi = score.svgd_direction(x0, weak(x0))
    assert torch.allclose(one - x0, 0.01 * phi / (1e-6 + phi.abs()), atol=1e-12)
    second = score.svgd_direction(one, weak(one))  # the second step, by hand
    v = 0.9 * phi ** 2 + 0.1 * second ** 2
    two, _ = score.svgd(weak, x0, steps=2, step_size=0.01, adaptive=True)
    assert torch.allclose(two - one, 0.01 * second / (1e-6 + v.sqrt()), atol=1e-12)
    # towards N(4, I): 300 adaptive steps of 1e-3 move the mean by 0.3 (one step_size a step, all the way), plain
    # steps by half that, since 50 particles in 3-D weigh each other's scores by about one half
    far = lambda x: -(x - 4.0)  # noqa: E731
    plain, _ = score.svgd(far, x0, steps=300, step_size=1e-3)
    adaptive, _ = score.svgd(far, x0, steps=300, step_size=1e-3, adaptive=True)
    assert torch.allclose(adaptive.mean(0) - x0.mean(0), torch.full((3,), 0.3, dtype=torch.float64), atol=0.005)
    assert float((plain.mean(0) - x0.mean(0)).max()) < 0.2


def test_svgd_direction_by_hand_for_two_particles():
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    s = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
    h = 2.0
    k = math.exp(-1 / h)
    # phi(x_0) = 1/2 [k(x0,x0) s0 + k(x1,x0) s1 + grad_{x1} k(x1, x0)], grad_{x1} k = -2 (x1 - x0) / h k
    phi0 = 0.5 * (1.0 - k + (-2 * 1.0 / h) * k)
    phi1 = 0.5 * (k * 1.0 - 1.0 + (-2 * -1.0 / h) * k)
    assert torch.allclose(score.svgd_direction(x, s, h), torch.tensor([[phi0], [phi1]], dtype=torch.float64))


def test_svgd_bandwidth_is_numpys_median_over_all_pairs():
    """h = med^2 / log(n + 1) with numpy's median (the average of the two middle values for an even count), so
    two particles at distance 1 get h = (1/2) / log 3, where torch's lower median would give 0 and a NaN kernel."""
    two = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    assert float(score.svgd_bandwidth(two)) == pytest.approx(0.5 / math.log(3))
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    d2 = (torch.cdist(x, x) ** 2).numpy()
    assert float(score.svgd_bandwidth(x)) == pytest.approx(float(np.median(d2)) / math.log(8))
    moved, _ = score.svgd(lambda z: -z, two, steps=5, step_size=0.1)  # two particles: a finite, repelled pair
    assert torch.isfinite(moved).all() and float(moved[1, 0] - moved[0, 0]) > 0


def test_score_matching_by_autograd_and_grid_moments():
    from dgsp import recipes

    x = recipes.score_matching_data(2000)
    assert torch.allclose(score.score_matching_autograd(x, 4), score.score_matching_poly(x, 4), atol=1e-4)
    # the grid integrals of an unnormalised correlated Gaussian recover its mean and covariance
    cov = torch.tensor([[1.0, 0.6], [0.6, 2.0]], dtype=torch.float64)
    mean = torch.tensor([0.5, -1.0], dtype=torch.float64)
    prec = torch.linalg.inv(cov)
    m, c = score.grid_moments(lambda z: -0.5 * (((z - mean) @ prec) * (z - mean)).sum(1) + 5.0, -10, 10, 301)
    assert torch.allclose(m, mean, atol=1e-6) and torch.allclose(c, cov, atol=1e-4)
    with pytest.raises(ValueError, match="hi > lo"):
        score.grid_moments(lambda z: z.sum(1), 1.0, 0.0)


def test_integer_points_are_a_clear_error():
    with pytest.raises(ValueError, match="floating-point points"):
        score.hyvarinen_score(lambda x: -(x ** 2).sum(1) / 2, torch.ones(4, 2, dtype=torch.long))
