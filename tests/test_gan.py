"""Lecture 3: GAN and WGAN pieces (dgsp.models.gan, the lecture-3 metrics and widget)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dgsp import adversarial, metrics
from dgsp.train import fit
from dgsp.models import gan
from dgsp.nets import MLP, ConvEncoder


def _normal_pdf(x: torch.Tensor, mu: float, sd: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def test_optimal_discriminator_and_js_identity_uniforms():
    # p_data = U[0, 2], p_g = U[1, 3]: overlap on [1, 2]. D* = 1 on [0,1), 1/2 on [1,2], 0 on (2,3].
    # JS = 1/2 KL(p||m) + 1/2 KL(q||m) = 1/2 (1/2 log 2) * 2 = log(2)/2, so C(G) = -log 4 + log 2 = -log 2.
    dx = 1e-4
    x = torch.arange(dx / 2, 3, dx, dtype=torch.float64)
    p = ((x >= 0) & (x < 2)).double() / 2
    q = ((x >= 1) & (x < 3)).double() / 2
    d = gan.optimal_discriminator(p, q)
    assert torch.allclose(d[x < 1], torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(d[(x > 1) & (x < 2)], torch.tensor(0.5, dtype=torch.float64))
    assert torch.allclose(d[x > 2], torch.tensor(0.0, dtype=torch.float64))
    js = gan.js_on_grid(p, q, dx)
    assert float(js) == pytest.approx(math.log(2) / 2, abs=1e-3)
    v = gan.value_on_grid(d, p, q, dx)
    assert float(v) == pytest.approx(-math.log(2), abs=1e-3)
    assert float(v) == pytest.approx(float(gan.virtual_training_criterion(js)), abs=1e-6)


def test_dstar_maximises_value_for_gaussians():
    dx = 1e-3
    x = torch.arange(-8, 8, dx, dtype=torch.float64)
    p, q = _normal_pdf(x, -1.0, 1.0), _normal_pdf(x, 1.5, 0.7)
    d_star = gan.optimal_discriminator(p, q)
    v_star = gan.value_on_grid(d_star, p, q, dx)
    assert float(v_star) == pytest.approx(float(2 * gan.js_on_grid(p, q, dx) - math.log(4)), abs=1e-6)
    for other in (torch.full_like(x, 0.5), torch.sigmoid(-x), d_star.clamp(0.2, 0.8)):
        assert float(gan.value_on_grid(other, p, q, dx)) < float(v_star)
    # equal distributions: D* = 1/2 and C(G) = -log 4 (Thm. 1's global minimum)
    assert float(gan.value_on_grid(gan.optimal_discriminator(p, p), p, p, dx)) == pytest.approx(-math.log(4), abs=1e-6)


def test_generator_loss_gradients_saturate_only_for_minimax():
    d = torch.tensor([1e-4, 0.5, 0.9999])
    g_mm = gan.generator_loss_gradient("minimax", d)
    g_ns = gan.generator_loss_gradient("nonsaturating", d)
    assert torch.allclose(g_mm, -d.double(), atol=1e-6)
    assert torch.allclose(g_ns, -(1 - d.double()), atol=1e-6)
    assert abs(g_mm[0]) < 1e-3 < abs(g_ns[0])


def test_losses_match_their_formulas():
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    dr, df = torch.sigmoid(r), torch.sigmoid(f)
    assert float(adversarial.discriminator_loss(r, f)) == pytest.approx(-float(gan.value_function(dr, df)), rel=1e-6)
    assert float(adversarial.generator_loss_minimax(f)) == pytest.approx(float(torch.log(1 - df).mean()), rel=1e-6)
    assert float(adversarial.generator_loss_nonsaturating(f)) == pytest.approx(float(-torch.log(df).mean()), rel=1e-6)
    assert float(adversarial.critic_loss(r, f)) == pytest.approx(float(f.mean() - r.mean()))
    assert float(adversarial.wasserstein_generator_loss(f)) == pytest.approx(float(-f.mean()))


def test_gradient_penalty_linear_critic():
    lin = nn.Linear(3, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 0.0, 4.0]]))  # ||grad f|| = 5 everywhere
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    gp = adversarial.gradient_penalty(lin, real, fake, lam=10.0)
    assert float(gp.detach()) == pytest.approx(10.0 * (5 - 1) ** 2, rel=1e-6)
    # differentiable w.r.t. the critic's weights: d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    gp.backward()
    assert torch.allclose(lin.weight.grad, 20 * 4 * lin.weight.detach() / 5, rtol=1e-5)


def test_gradient_penalty_is_per_sample_on_images():
    # f(x) = sum_i a_i x_i^2 / 2 has gradient a * x: check the per-sample norms on interpolates
    class Quad(nn.Module):
        def forward(self, x):
            return 0.5 * (x**2).flatten(1).sum(1)

    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    eps = torch.rand(4, 1, 1, 1)
    x_hat = eps * real + (1 - eps) * fake
    expected = 2.0 * ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    penalty = float(adversarial.gradient_penalty(Quad(), real, fake, lam=2.0, eps=eps).detach())
    assert penalty == pytest.approx(float(expected), rel=1e-5)


def test_clip_weights_bounds_every_parameter():
    critic = MLP(2, [16, 16], 1)
    with torch.no_grad():
        for p in critic.parameters():
            p.normal_(0, 1)
    adversarial.clip_weights(critic, 0.01)
    assert all(float(p.detach().abs().max()) <= 0.01 for p in critic.parameters())
    model = gan.WGAN(hidden=(16,))
    model.training_step((torch.randn(40, 2),))
    assert all(float(p.detach().abs().max()) <= model.hparams["clip"] + 1e-12 for p in model.discriminator.parameters())
    with pytest.raises(ValueError):
        adversarial.clip_weights(critic, 0.0)


def test_mmd_equal_and_different_distributions():
    g = torch.Generator().manual_seed(0)
    same = [metrics.mmd2(torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g), 1.0) for _ in range(20)]
    assert abs(np.mean(same)) < 3 * np.std(same) / math.sqrt(len(same)) + 1e-3
    diff = metrics.mmd2(torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g) + 1.0)
    assert diff > 0.05
    assert diff > max(same)


def test_mmd_reference_bandwidth_is_the_same_kernel_for_every_sample():
    g = torch.Generator().manual_seed(1)
    prior = torch.randn(300, 2, generator=g)
    near, far = torch.randn(300, 2, generator=g) * 1.2, torch.randn(300, 2, generator=g) * 20.0
    sigma = metrics.reference_bandwidth(prior)
    assert 1.3 < sigma < 2.2  # the median distance of two N(0, I_2) points is sqrt(2 * 2 log 2) = 1.67
    for x in (near, far):  # "reference" is the prior's own kernel whatever x is; "median" widens with a spread x
        assert metrics.mmd2(x, prior, "reference") == pytest.approx(metrics.mmd2(x, prior, sigma), rel=1e-12)
    assert metrics.median_bandwidth(far, prior) > 5 * sigma
    # the pooled median widens the kernel and shrinks the far sample's discrepancy; with the prior's kernel it is
    # E k(p, p') = 1 / (1 + 2 / sigma^2) = 0.58 (the far points see neither the prior nor, almost, each other)
    assert metrics.mmd2(far, prior, "reference") == pytest.approx(1 / (1 + 2 / sigma ** 2), abs=0.03)
    assert metrics.mmd2(far, prior, "reference") > 1.5 * metrics.mmd2(far, prior, "median")
    with pytest.raises(ValueError, match="unknown bandwidth 'widest'"):
        metrics.mmd2(near, prior, "widest")


def test_mode_coverage_known_answer():
    modes = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    std = 0.1
    g = torch.Generator().manual_seed(0)
    on_modes = modes[[0, 1, 2] * 100] + 0.5 * std * torch.randn(300, 2, generator=g).clamp(-2, 2)  # within 1 std
    off = torch.full((100, 2), 5.0)  # far from every mode
    out = metrics.mode_coverage(torch.cat([on_modes, off]), modes, std)
    assert out["modes_covered"] == 3 and out["n_modes"] == 4
    assert out["high_quality"] == pytest.approx(0.75)
    # a couple of stray points on the fourth mode do not cover it under the default rule
    stray = modes[3:4] + torch.zeros(2, 2)
    assert metrics.mode_coverage(torch.cat([on_modes, off, stray]), modes, std)["modes_covered"] == 3
    assert metrics.mode_coverage(torch.cat([on_modes, off, stray]), modes, std, min_count=1)["modes_covered"] == 4


def test_frechet_distance_identical_and_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5000, 3))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # N(mu1, s1^2 I) vs N(mu2, s2^2 I): ||mu1 - mu2||^2 + d (s1 - s2)^2
    mu2 = np.array([1.0, -2.0, 0.5])
    closed = float((mu2**2).sum() + 3 * (1.0 - 2.0) ** 2)
    frechet = metrics.gaussian_frechet_distance(np.zeros(3), np.eye(3), mu2, 4 * np.eye(3))
    assert frechet == pytest.approx(closed, rel=1e-6)
    b = mu2 + 2.0 * rng.normal(size=(200_000, 3))
    assert metrics.frechet_distance(a, b) == pytest.approx(closed, rel=0.05)


def test_sample_quality_reads_one_pass_of_the_classifier():
    """sample_quality's Fréchet distance and rarest-class share agree with frechet_distance and class_histogram,
    which run the classifier separately; an untrained classifier is enough to compare them."""
    torch.manual_seed(0)
    clf = metrics.DigitClassifier().eval()
    images = torch.rand(300, 1, 28, 28)
    ref = metrics.classifier_features(clf, torch.rand(200, 1, 28, 28))
    out = metrics.sample_quality(clf, images, ref)
    assert out["frechet"] == pytest.approx(metrics.frechet_distance(metrics.classifier_features(clf, images), ref))
    assert out["min_class_share"] == pytest.approx(float(metrics.class_histogram(clf, images).min()))
    with pytest.raises(ValueError, match="non-finite"):
        metrics.sample_quality(clf, images.index_fill(0, torch.tensor([3]), float("nan")), ref)


def test_parallel_lines_closed_forms_and_empirical_w():
    d = gan.parallel_lines_distances(np.array([-1.0, 0.0, 0.5]))
    assert np.allclose(d["W"], [1.0, 0.0, 0.5])
    assert np.allclose(d["JS"], [math.log(2), 0.0, math.log(2)])
    assert np.isinf(d["KL"][0]) and d["KL"][1] == 0 and np.allclose(d["TV"], [1, 0, 1])
    w = metrics.empirical_wasserstein(gan.parallel_lines(0.0, 300, seed=1), gan.parallel_lines(0.7, 300, seed=1))
    assert w == pytest.approx(0.7, abs=1e-6)  # same Z draws: the horizontal matching is optimal


def test_mismatched_generator_discriminator_shapes():
    with pytest.raises(ValueError, match="generator produces"):
        gan.GAN(data_shape=(2,), latent_dim=4, generator=MLP(4, [8], 3), discriminator=MLP(2, [8], 1))
    with pytest.raises(ValueError, match="discriminator cannot take"):
        gan.WGANGP(data_shape=(3,), latent_dim=4, generator=MLP(4, [8], 3), discriminator=MLP(2, [8], 1))
    with pytest.raises(ValueError, match="one score per sample"):
        gan.WGAN(data_shape=(2,), latent_dim=4, generator=MLP(4, [8], 2), discriminator=MLP(2, [8], 3))
    with pytest.raises(ValueError, match="latent"):
        gan.GAN(data_shape=(2,), latent_dim=5, generator=MLP(4, [8], 2), discriminator=MLP(2, [8], 1))
    with pytest.raises(ValueError, match="dcgan"):
        gan.GAN(data_shape=(2,), arch="dcgan")
    model = gan.GAN(data_shape=(2,), hidden=(8,))
    with pytest.raises(ValueError, match="built for data of shape"):
        model.training_step((torch.randn(8, 3),))


@pytest.mark.parametrize("loss", gan.LOSSES)
def test_every_model_steps_and_samples(loss, assert_moved):
    model = gan.make_model(loss, hidden=(16, 16), latent_dim=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = model.training_step((torch.randn(20, 2),))
    assert all(math.isfinite(v) for v in out.values())
    assert_moved(before, model, "generator", "discriminator")
    assert model.sample(7).shape == (7, 2)


@pytest.mark.parametrize("loss", gan.LOSSES)
def test_toy_recipe_schedule_and_settings(loss):
    model, schedule = gan.toy_recipe(loss, gen_steps=600, n_data=12_800)
    batch = 256 * (1 if loss in gan.GENERATOR_LOSSES else 5)
    assert schedule == {"epochs": round(600 / (12_800 // batch)), "batch_size": batch}
    h = model.hparams
    assert h["latent_dim"] == 2 and h["hidden"] == [128, 128, 128] and h["lr"] == gan.TOY_LR[loss]
    assert h["decay_start"] == schedule["epochs"] // 2
    decay_epochs = schedule["epochs"] - h["decay_start"]
    assert h["lr_decay"] ** decay_epochs == pytest.approx(0.05)  # lr ends at 5% of its start
    if loss == "wgan-gp":
        assert h["lam"] == 0.1  # Gulrajani et al.'s toy penalty weight
    for epoch in range(schedule["epochs"]):
        model.on_epoch_end(epoch)
    assert model.optimizers["g"].param_groups[0]["lr"] == pytest.approx(0.05 * gan.TOY_LR[loss])


def test_toy_recipe_batch_follows_discriminator_steps():
    _, schedule = gan.toy_recipe("nonsaturating", gen_steps=100, n_data=12_800, k=2)
    assert schedule["batch_size"] == 512
    _, schedule = gan.toy_recipe("wgan-gp", gen_steps=100, n_data=12_800, n_critic=3)
    assert schedule["batch_size"] == 768


def test_toy_recipe_bad_input():
    with pytest.raises(ValueError, match="unknown loss"):
        gan.toy_recipe("hinge", gen_steps=10, n_data=1000)
    with pytest.raises(ValueError, match="smaller than one training step"):
        gan.toy_recipe("wgan-gp", gen_steps=10, n_data=1000)


def test_dcgan_models_build_and_step():
    for model in (gan.GAN(data_shape=(1, 28, 28), arch="dcgan", latent_dim=8, channels=4),
                  gan.WGANGP(data_shape=(1, 28, 28), arch="dcgan", latent_dim=8, channels=4, n_critic=2)):
        out = model.training_step((torch.rand(8, 1, 28, 28),))
        assert all(math.isfinite(v) for v in out.values())
        assert model.sample(3).shape == (3, 1, 28, 28)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.discriminator.modules())


def test_fixed_generator_discriminator_approaches_dstar():
    torch.manual_seed(0)
    real, fake = 0.5 * torch.randn(4096, 1) - 1.0, 0.5 * torch.randn(4096, 1) + 1.0
    d = gan.FixedGeneratorCritic(data_dim=1, hidden=(16,), lr=1e-2)
    from dgsp.train import fit
    fit(d, (real, fake), epochs=5, batch_size=256, progress=False)
    x = torch.tensor([[-1.5], [0.0], [1.5]])
    d_star = gan.optimal_discriminator(_normal_pdf(x, -1, 0.5), _normal_pdf(x, 1, 0.5)).flatten()
    assert torch.allclose(d.discriminate(x).detach(), d_star, atol=0.1)


def test_gan_playground_pure_function():
    from dgsp.widgets import draw_gan_playground, gan_playground

    out = gan_playground("wgan", lr=1e-3, n_critic=2, clip=0.05, toy="ring8", steps=10, batch_size=32, hidden=16,
                         grid_size=12)
    assert out["fake"].shape == (1000, 2) and out["surface"].shape == (12, 12)
    assert len(out["history"]["wasserstein"]) == 10
    from dgsp.data import toy
    from dgsp.metrics import mode_coverage
    ring = toy("ring8")
    assert out["coverage"] == mode_coverage(out["fake"], ring.modes, ring.std)  # scored on the samples it returns
    # a function of its arguments: the same call again gives the same run; another seed another one
    again = gan_playground("wgan", lr=1e-3, n_critic=2, clip=0.05, toy="ring8", steps=10, batch_size=32,
                           hidden=16, grid_size=12)
    assert torch.equal(again["fake"], out["fake"]) and again["history"]["wasserstein"] == out["history"]["wasserstein"]
    other = gan_playground("wgan", lr=1e-3, n_critic=2, clip=0.05, toy="ring8", steps=10, batch_size=32,
                           hidden=16, grid_size=12, seed=1)
    assert not torch.equal(other["fake"], out["fake"])
    fig = draw_gan_playground(out)
    import matplotlib.pyplot as plt
    plt.close(fig)
    out = gan_playground("minimax", steps=5, batch_size=16, hidden=8, grid_size=8)
    assert float(out["surface"].min()) >= 0 and float(out["surface"].max()) <= 1


def test_snapshots_are_cached_with_their_run_and_never_mixed(tmp_path, monkeypatch):
    monkeypatch.setenv("DGSP_HOME", str(tmp_path))
    monkeypatch.setenv("DGSP_QUICK", "0")  # checkpoints under tmp_path/checkpoints
    data = torch.randn(64, 2)
    z = torch.randn(5, 2)

    def run(lr, every):
        torch.manual_seed(0)
        model = gan.GAN(hidden=(8,), latent_dim=2, lr=lr)
        fit(model, data, epochs=3, batch_size=16, eval_every=every, checkpoint="snap", progress=False,
            snapshot=lambda m: m.sample(len(z), z=z))
        return model.history.snapshots

    first = run(1e-3, every=1)
    assert sorted(first) == [0, 1, 2, 3]
    cached = run(1e-3, every=1)  # loaded without training: the same snapshots come back
    assert sorted(cached) == [0, 1, 2, 3]
    for k in first:
        torch.testing.assert_close(cached[k], first[k])
    other = run(2e-3, every=3)  # another config retrains; the first run's epochs 1 and 2 must not leak in
    assert sorted(other) == [0, 3]
    assert not torch.allclose(other[3], first[3])


def test_seeded_samples_do_not_depend_on_the_global_generator():
    model = gan.GAN(hidden=(8,), latent_dim=2)
    torch.manual_seed(1)
    a = model.sample(10, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(2)
    b = model.sample(10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_penalty_and_input_gradient_take_pairs():
    # a critic on pairs (x, z), as BiGAN's: f(x, z) = a.x + b.z has gradient (a, b) everywhere
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0, 0.0])
    critic = lambda x, z: x @ a + z @ b  # noqa: E731
    x, z = torch.randn(6, 2), torch.randn(6, 3)
    grad = adversarial.input_gradient(critic, (x, z))
    assert grad.shape == (6, 5) and torch.allclose(grad, torch.cat([a, b]).expand(6, 5))
    gp = adversarial.gradient_penalty(critic, (x, z), (torch.randn(6, 2), torch.randn(6, 3)), lam=1.0)
    assert float(gp) == pytest.approx((5.0 - 1.0) ** 2)  # ||(a, b)|| = 5
    with pytest.raises(ValueError, match="same shapes"):
        adversarial.gradient_penalty(critic, (x, z), (x, z[:, :2]))
    assert adversarial.has_batch_norm(torch.nn.Sequential(torch.nn.BatchNorm1d(3)))
    assert not adversarial.has_batch_norm(MLP(2, [4], 1))


def test_gan_gradient_penalty_pins_a_linear_discriminators_slope():
    # D(x) = w.x + b has gradient w everywhere, so gp * E(||grad D|| - 1)^2 pulls ||w|| to 1; without it, not
    norms = {}
    for gp in (0.0, 100.0):
        torch.manual_seed(0)
        model = gan.GAN(data_shape=(2,), latent_dim=2, generator=MLP(2, [8], 2), discriminator=MLP(2, [], 1),
                        gp=gp, lr=1e-2)
        x = torch.randn(64, 2) + torch.tensor([4.0, 0.0])
        for _ in range(200):
            out = model.training_step((x,))
        norms[gp] = float(model.discriminator.net[0].weight.detach().norm())
        assert all(math.isfinite(v) for v in out.values())
    assert abs(norms[100.0] - 1) < 0.1
    assert abs(norms[0.0] - 1) > 0.5


def test_gan_gradient_penalty_needs_per_sample_scores():
    plain = gan.GAN(data_shape=(1, 28, 28), arch="dcgan", latent_dim=8, channels=4)
    penalised = gan.GAN(data_shape=(1, 28, 28), arch="dcgan", latent_dim=8, channels=4, **gan.MNIST_GAN)
    has_bn = lambda net: any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # noqa: E731
    assert has_bn(plain.discriminator) and not has_bn(penalised.discriminator)
    assert "gp" not in plain.hparams and penalised.hparams["gp"] == 10.0  # old checkpoints keep their config
    with pytest.raises(ValueError, match="batch norm"):
        gan.GAN(data_shape=(1, 28, 28), arch="dcgan", latent_dim=8, channels=4, gp=10.0,
                discriminator=ConvEncoder(1, channels=4, norm="batch"))
    with pytest.raises(ValueError, match="gp must be >= 0"):
        gan.GAN(gp=-1.0)
