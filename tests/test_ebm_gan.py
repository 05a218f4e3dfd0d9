"""Lecture 7: the EBM-GAN (dgsp.models.ebm_gan), Langevin dynamics, the linear probe, the closing tables' pieces."""
import math

import pytest
import torch
from torch import nn

from dgsp import course_tables, metrics, recipes, widgets
from dgsp.divergences import tv_grid
from dgsp.models.ebm_gan import EBMGAN, grid_2d, grid_density_2d, knn_entropy
from dgsp.score import langevin
from dgsp.train import fit


@pytest.mark.parametrize("d, s", [(1, 1.0), (2, 0.5)])
def test_knn_entropy_of_gaussians(d, s):
    exact = d / 2 * math.log(2 * math.pi * math.e * s ** 2)
    draws = [s * torch.randn(4096, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
             for seed in range(4)]
    # one estimate has a standard deviation of about 0.03 nats here; their mean is within 0.05 of the truth
    assert sum(float(knn_entropy(z)) for z in draws) / 4 == pytest.approx(exact, abs=0.05)
    z = draws[0]
    # spreading the samples raises the estimate by d log(scale), as it does the entropy
    assert float(knn_entropy(3 * z) - knn_entropy(z)) == pytest.approx(d * math.log(3), abs=1e-5)
    with pytest.raises(ValueError, match="at least 2 samples"):
        knn_entropy(z[:1])


def test_energy_loss_is_the_bound_plus_the_two_stabilisers():
    torch.manual_seed(0)
    model = EBMGAN(latent_dim=2, hidden=(16,), alpha=0.01, r1=0.5)
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    loss, gap = model.energy_loss(real, fake)
    d_real, d_fake = model.log_density(real), model.log_density(fake)
    x = real.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model.log_density(x).sum(), x)
    expected = d_fake.mean() - d_real.mean() + 0.01 * (d_real ** 2 + d_fake ** 2).mean() + 0.25 * (g ** 2).sum(1).mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert float(gap.detach()) == pytest.approx(float((d_real.mean() - d_fake.mean()).detach()), rel=1e-5)
    g_loss, h = model.generator_loss(fake)
    assert float(g_loss.detach()) == pytest.approx(float((-d_fake.mean() - knn_entropy(fake)).detach()), rel=1e-5)


def test_ebm_gan_learns_a_density_on_the_ring():
    toy = recipes.ebm_toy("ring8")
    x = toy.sample(2048, seed=0, device="cpu")  # the model stays on the CPU, as the grid and the checks below
    torch.manual_seed(0)
    model = EBMGAN(**recipes.TOY_EBM)
    fit(model, x, epochs=None, max_steps=300, batch_size=256, cache=False, progress=False)
    points, cell = grid_2d(3.0, 64)
    dens = grid_density_2d(model.log_density, points, cell)
    # grid_density_2d against a closed form: the standard normal on [-6, 6]^2 is exp(-|x|^2 / 2) / (2 pi)
    pts6, cell6 = grid_2d(6.0, 121)
    normal = grid_density_2d(lambda p: -(p ** 2).sum(1) / 2 + 7.0, pts6, cell6)  # + 7: any constant drops out
    assert torch.allclose(normal, (-(pts6.double() ** 2).sum(1) / 2).exp() / (2 * math.pi), rtol=1e-3, atol=1e-6)
    truth = grid_density_2d(toy.log_prob, points, cell)
    uniform = torch.full_like(truth, 1 / (36.0))
    # after 300 steps e^D is already closer to the ring than a flat density on the square is
    assert tv_grid(dens, truth, cell) < tv_grid(uniform, truth, cell) - 0.05
    with torch.no_grad():
        assert float(model.log_density(x[:500]).mean()) > float(model.log_density(4 * torch.rand(500, 2) - 2).mean())


def test_ebm_gan_bad_input():
    with pytest.raises(ValueError, match="entropy must be >= 0"):
        EBMGAN(entropy=-1.0)
    bn_d = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    with pytest.raises(ValueError, match="batch norm"):
        EBMGAN(discriminator=bn_d)
    with pytest.raises(ValueError, match="unknown toy"):
        recipes.ebm_toy("ring9")
    with pytest.raises(ValueError, match="same grid"):
        tv_grid(torch.ones(4), torch.ones(5), 1.0)
    with pytest.raises(ValueError, match="n >= 2"):
        grid_2d(1.0, 1)


def test_langevin_samples_a_gaussian_and_checks_its_input():
    log_p = lambda x: -0.5 * ((x - 2.0) ** 2).sum(1) / 0.25  # noqa: E731  N(2, 0.5^2 I)
    x0 = torch.zeros(4000, 2)
    x, trail = langevin(log_p, x0, 400, 0.02, generator=torch.Generator().manual_seed(0), every=100)
    assert len(trail) == 5 and torch.equal(trail[0], x0)
    assert x.mean(0).tolist() == pytest.approx([2.0, 2.0], abs=0.04)
    assert x.std(0).tolist() == pytest.approx([0.5, 0.5], rel=0.08)  # the Euler step biases it by about eps/8
    again, _ = langevin(log_p, x0, 400, 0.02, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
    boxed, _ = langevin(log_p, x0, 50, 0.02, clamp=(0.0, 1.0))
    assert float(boxed.max()) <= 1.0
    with pytest.raises(ValueError, match="step_size > 0"):
        langevin(log_p, x0, 10, 0.0)
    with pytest.raises(ValueError, match="non-finite"):
        langevin(log_p, torch.full((2, 2), float("nan")), 10, 0.1)


def test_the_probes_fixed_feature_product_has_the_gradient_of_a_matmul():
    f = torch.randn(50, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(50, 3, dtype=torch.float64)
    out = metrics._FixedFeaturesTimes.apply(f, w)
    (grad,) = torch.autograd.grad((out * g).sum(), w)
    assert torch.allclose(out, f @ w) and torch.allclose(grad, f.T @ g)
    assert torch.autograd.gradcheck(lambda w: metrics._FixedFeaturesTimes.apply(f, w), (w,))


def test_linear_probe_separates_separable_classes_and_checks_shapes():
    g = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(4, 20, generator=g)
    y = torch.arange(800) % 4
    x = centres[y] + torch.randn(800, 20, generator=g)
    acc = metrics.linear_probe(x[:600], y[:600], x[600:], y[600:], max_iter=50)
    assert acc > 0.97
    noise = torch.randn(800, 20, generator=g)  # features that carry no label: chance level
    assert metrics.linear_probe(noise[:600], y[:600], noise[600:], y[600:], max_iter=50) < 0.45
    with pytest.raises(ValueError, match="600 training features but 599"):
        metrics.linear_probe(x[:600], y[:599], x[600:], y[600:])
    with pytest.raises(ValueError, match="columns"):
        metrics.linear_probe(x[:600], y[:600], x[600:, :5], y[600:])
    with pytest.raises(ValueError, match="l2 >= 0"):
        metrics.linear_probe(x[:600], y[:600], x[600:], y[600:], l2=-1.0)


def test_representation_table_rows_and_names():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(300) % 3
    good = torch.eye(3)[y] * 4 + 0.1 * torch.randn(300, 3, generator=g)
    bad = torch.randn(300, 3, generator=g)
    table = course_tables.representation_table({"good": (good[:200], good[200:]), "bad": (bad[:200], bad[200:])},
                                               y[:200], y[200:], probe={"max_iter": 30})
    assert table["good"]["one_nn"] == 1.0 and table["good"]["linear_probe"] == 1.0
    assert table["bad"]["linear_probe"] < 0.6 and table["good"]["dim"] == 3
    with pytest.raises(ValueError, match="unknown row 'nope'"):
        course_tables.representation_features("nope", good, good)
    with pytest.raises(ValueError, match="unknown row"):
        course_tables.sampler("nope")


def test_langevin_panel_is_a_pure_function():
    toy = recipes.ebm_toy("ring8")
    torch.manual_seed(0)
    model = EBMGAN(**recipes.TOY_EBM)
    start = model.sample(100, generator=torch.Generator().manual_seed(0))
    kept = start.clone()
    out = widgets.langevin_panel(model, toy, start, steps=20, step_size=1e-3)
    assert out["after"].shape == (100, 2) and out["d"].shape == (100, 100)
    assert torch.equal(start, kept) and not torch.equal(out["after"], start)  # moves copies, not its input
    again = widgets.langevin_panel(model, toy, start, steps=20, step_size=1e-3)
    assert torch.equal(again["after"], out["after"]) and torch.equal(again["d"], out["d"])  # seeded: the same
    from dgsp.metrics import mode_coverage
    assert out["coverage_after"] == mode_coverage(out["after"], toy.modes, toy.std)
    assert torch.equal(widgets.langevin_panel(model, toy, start, steps=0, step_size=1e-3)["after"], start)
    fig = widgets.draw_langevin_panel(out)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="step size"):
        widgets.langevin_panel(model, toy, start, steps=5, step_size=2.0)


def test_closing_tables_render_what_was_measured_and_say_what_was_not():
    from dgsp.results import closing_tables

    assert closing_tables({}) == []
    entry = {"metrics": {"probe_afv": 0.99, "one_nn_afv": 0.95, "frechet_vae": 90.0, "min_class_share_vae": 0.08},
             "dataset": "mnist", "mode": "full", "date": "2026-11-30"}
    text = "\n".join(closing_tables({"07_ebm_gan_afv": entry}))
    assert "| 7 | afv: adversarial Fisher vectors" in text and "| 99.00 | 95.00 |" in text
    assert "| 2 | VAE, decoder means of z ~ N(0, I) | 90.0 | 8.00 |" in text
    assert "| 3 | WGAN-GP | not run | not run |" in text
    assert "pixels: the 784 pixels | not run | not run |" in text


def test_overfit_gap_averages_the_first_and_the_last_monitored_epochs():
    from dgsp.train import History

    h = History()
    for step, (train, held) in enumerate([(100, 101), (50, 51.5), (40, 40), (20, 20.4), (10, 10.6), (5, 5.4)]):
        h.log(15 * step, {"fisher_train": float(train), "fisher_held_out": float(held)})
    r = recipes.overfit_gap(h, window=2)
    assert r["steps"].tolist() == [0, 15, 30, 45, 60, 75]
    assert r["gap"] == pytest.approx([1, 1.5, 0, 0.4, 0.6, 0.4])
    assert r["relative"] == pytest.approx([0.01, 0.03, 0, 0.02, 0.06, 0.08])  # held-out / train - 1
    assert (r["start"], r["end"], r["ratio"]) == pytest.approx((0.02, 0.07, 3.5))
    assert (r["gap_start"], r["gap_end"]) == pytest.approx((1.25, 0.5))  # the raw gap shrinks with the distances
    assert recipes.overfit_gap(h, window=3)["start"] == pytest.approx(0.04 / 3)
    assert recipes.overfit_gap(h, window=1)["ratio"] == pytest.approx(8.0)  # one point at each end
    h.log(90, {"fisher_train": 1.0, "fisher_held_out": 0.0})
    with pytest.raises(ValueError, match="7 points"):
        recipes.overfit_gap(h, window=4)
    flat = History()
    for step in range(4):
        flat.log(step, {"fisher_train": 5.0, "fisher_held_out": 4.0})  # a negative gap: no ratio
    assert math.isnan(recipes.overfit_gap(flat, window=1)["ratio"])
    flat.log(4, {"frechet_train": 50.0, "frechet_held_out": 60.0})
    flat.log(5, {"frechet_train": 40.0, "frechet_held_out": 50.0})
    assert recipes.overfit_gap(flat, window=1, metric="frechet")["relative"] == pytest.approx([0.2, 0.25])
    with pytest.raises(ValueError, match="'fisher' or 'frechet'"):
        recipes.overfit_gap(flat, metric="fid")
