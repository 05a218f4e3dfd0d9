"""Lecture 2: the VAE, its bounds, and the lecture's widget functions."""
import math

import pytest
import torch

from dgsp.models import vae as V
from dgsp import widgets
from dgsp.train import fit


def small_vae(**kw) -> V.VAE:
    torch.manual_seed(0)
    kw.setdefault("z_dim", 4)
    kw.setdefault("hidden", (32,))
    return V.VAE(**kw)


def images(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_reparameterized_sample_mean_and_variance():
    mu = torch.tensor([1.0, -2.0, 0.5])
    logvar = torch.tensor([0.0, math.log(4.0), math.log(0.25)])
    z = V.reparameterize(mu.expand(100_000, 3), logvar.expand(100_000, 3), torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), mu, atol=0.02, rtol=0)
    torch.testing.assert_close(z.var(0), logvar.exp(), atol=0, rtol=0.03)
    # gradients flow to both parameters
    m, lv = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    V.reparameterize(m, lv).sum().backward()
    assert m.grad is not None and lv.grad is not None and torch.all(m.grad == 1)


def test_likelihoods_match_torch_distributions():
    x = (images(3) > 0.5).float()
    logits = torch.randn(3, 1, 28, 28)
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(V.bernoulli_log_likelihood(x, logits), ref)
    mean, logvar = torch.rand(3, 1, 28, 28), torch.full((1, 28, 28), -1.0)
    ref = torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(V.gaussian_log_likelihood(x, mean, logvar), ref)
    with pytest.raises(ValueError, match="do not match"):
        V.bernoulli_log_likelihood(x, logits[:, :, :27])


@pytest.mark.parametrize("kw", [dict(arch="mlp"), dict(arch="mlp", likelihood="gaussian"),
                                dict(arch="mlp", likelihood="gaussian", obs_logvar=-2.0),
                                dict(arch="conv", channels=4), dict(z_dim=2)])
def test_shapes_and_one_step(kw):
    model = small_vae(**kw)
    x = images(6)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, model.z_dim)
    with torch.no_grad():
        rec = model(x)
    assert rec.shape == x.shape and 0 <= float(rec.min()) and float(rec.max()) <= 1
    assert model.sample(5).shape == (5, 1, 28, 28)
    assert model.sample(5, mean=False, generator=torch.Generator().manual_seed(0)).shape == (5, 1, 28, 28)
    metrics = {k: float(v) for k, v in model.training_step((x,)).items()}
    assert set(metrics) == {"loss", "elbo", "recon", "kl"}
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics["kl"] >= 0 and metrics["elbo"] == pytest.approx(metrics["recon"] - metrics["kl"], rel=1e-5)


def test_clear_errors():
    model = small_vae()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit(model, images(4) * 255, epochs=1, batch_size=2)  # checked once, before the first step
    nan = images(4)
    nan[2, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="non-finite.*row 2"):
        fit(model, nan, epochs=1, batch_size=2)
    with pytest.raises(ValueError, match="non-finite.*row 2"):
        V.elbo(model, nan)
    with pytest.raises(ValueError, match="float64"):
        fit(model, images(4).double(), epochs=1, batch_size=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        V.elbo(model, images(4) - 0.5)
    with pytest.raises(ValueError, match="expects input of shape"):
        model.encode(torch.rand(4, 784))
    with pytest.raises(ValueError, match="expects input of shape"):
        model.decode(torch.zeros(4, 7))
    with pytest.raises(ValueError, match="likelihood"):
        V.VAE(likelihood="poisson")
    with pytest.raises(ValueError, match="arch"):
        V.VAE(arch="transformer")
    with pytest.raises(ValueError, match="k must be"):
        V.iwae_bound(model, images(2), k=0)
    # a Gaussian decoder accepts unbounded data
    gauss = small_vae(likelihood="gaussian", binarize=False)
    assert math.isfinite(gauss.training_step((images(4) * 3 - 1,))["loss"])


def test_elbo_terms_and_beta():
    model = small_vae()
    x = (images(5) > 0.5).float()
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    t1 = V.elbo(model, x, beta=1.0, generator=g())
    t4 = V.elbo(model, x, beta=4.0, generator=g())
    # each term rebuilt by hand: z = mu + sigma * eps with the same seeded eps, a Bernoulli log-likelihood
    # from torch.distributions, and the closed-form KL(N(mu, sigma^2) || N(0, 1)) summed over the code
    with torch.no_grad():
        mu, logvar = model.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g())
        recon = torch.distributions.Bernoulli(logits=model.decode(z)).log_prob(x).flatten(1).sum(1)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
        torch.testing.assert_close(t1["recon"], recon)
        torch.testing.assert_close(t1["kl"], kl)
        torch.testing.assert_close(t1["elbo"], recon - kl)
        torch.testing.assert_close(t1["loss"], -(recon - kl))
        torch.testing.assert_close(t4["loss"], -(recon - 4.0 * kl))
        # the one-sample KL estimate log q(z|x) - log p(z) at the same z
        mc = V.elbo(model, x, analytic_kl=False, generator=g())["kl"]
        q, p = torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)
        torch.testing.assert_close(mc, (q.log_prob(z) - p.log_prob(z)).sum(1))


def test_iwae_equals_elbo_at_k1_and_increases_with_k():
    model = small_vae()
    for _ in range(20):  # a few steps so q is not the prior
        model.training_step((images(16, seed=1),))
    x = (images(20, seed=2) > 0.5).float()
    with torch.no_grad():
        mc = V.elbo(model, x, analytic_kl=False, generator=torch.Generator().manual_seed(7))["elbo"]
        iw1 = V.iwae_bound(model, x, k=1, generator=torch.Generator().manual_seed(7))
        torch.testing.assert_close(iw1, mc, rtol=1e-5, atol=1e-3)
        # in expectation the analytic-KL ELBO and L_1 agree
        many = torch.stack([V.iwae_bound(model, x, 1) for _ in range(200)]).mean(0)
        analytic = torch.stack([V.elbo(model, x)["elbo"] for _ in range(200)]).mean(0)
        assert abs(float(many.mean() - analytic.mean())) < 1.0
        bounds = [float(V.iwae_bound(model, x, k, generator=torch.Generator().manual_seed(k)).mean())
                  for k in (1, 10, 100, 1000)]
    assert all(b2 > b1 - 0.5 for b1, b2 in zip(bounds, bounds[1:])), bounds
    assert bounds[-1] > bounds[0] + 1.0, bounds


def test_iwae_chunking_and_normalisation():
    """If q(z|x) = p(z) and the decoder ignores z, every importance weight equals p(x), so L_k = log p(x)
    for any k and any chunking: this checks the logsumexp − log k bookkeeping exactly."""
    model = small_vae()
    with torch.no_grad():
        model.encoder.net[-2].weight.zero_()  # last encoder layer: μ = 0, log σ² = 0
        model.encoder.net[-2].bias.zero_()
        model.decoder.net[0].weight.zero_()   # first decoder layer: output independent of z
    x = (images(7) > 0.5).float()
    single = V.iwae_bound(model, x, k=1)
    with torch.no_grad():
        log_px = V.bernoulli_log_likelihood(x, model.decode(torch.zeros(7, model.z_dim)))
    torch.testing.assert_close(single, log_px)
    for k, max_rows in [(50, 10_000), (50, 7 * 13), (333, 100)]:
        torch.testing.assert_close(V.iwae_bound(model, x, k=k, batch=3, max_rows=max_rows), single,
                                   rtol=1e-6, atol=1e-3)


def test_training_reduces_loss_and_is_seeded():
    from dgsp.train import fit

    x = images(64, seed=5)

    def run():
        torch.manual_seed(0)
        model = V.VAE(z_dim=3, hidden=(32,))
        hist = fit(model, x, epochs=6, batch_size=16, progress=False)
        return model, hist

    m1, h1 = run()
    m2, h2 = run()
    assert h1["loss"] == h2["loss"]
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p1, p2)
    assert sum(h1["loss"][-4:]) < sum(h1["loss"][:4])


def test_kl_warmup_and_lr_decay():
    model = small_vae(beta=2.0, warmup_steps=4, lr_decay=0.5)
    assert model.current_beta() == 0.0
    for _ in range(2):
        model.training_step((images(4),))
    assert model.current_beta() == pytest.approx(1.0)
    for _ in range(4):
        model.training_step((images(4),))
    assert model.current_beta() == pytest.approx(2.0)
    model.on_epoch_end(1)
    assert model.optimizers["vae"].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.25)


def test_rate_distortion_sums_to_negative_elbo():
    model = small_vae()
    x = (images(10) > 0.5).float()
    rd = V.rate_distortion(model, x, batch=4, generator=torch.Generator().manual_seed(0))  # three batches
    assert rd["rate"] >= 0 and rd["distortion"] > 0
    # against the per-image ELBO of the same three batches with the same draws: rate = mean KL, distortion =
    # -mean recon, averaged over all ten images (not over batches)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        parts = [V.elbo(model, chunk, generator=g) for chunk in x.split(4)]
    t = {k: torch.cat([part[k] for part in parts]) for k in ("kl", "recon", "elbo")}
    assert rd["rate"] == pytest.approx(float(t["kl"].mean()), rel=1e-5)
    assert rd["distortion"] == pytest.approx(float(-t["recon"].mean()), rel=1e-5)
    assert rd["elbo"] == pytest.approx(float(t["elbo"].mean()), rel=1e-5)


def test_latent_traversal_panel():
    model = small_vae(z_dim=3)
    base = torch.zeros(3)
    out = widgets.latent_traversal_panel(model, base, {0: 1.5, 2: -1.0})
    torch.testing.assert_close(out["z"], torch.tensor([1.5, 0.0, -1.0]))
    assert out["image"].shape == (1, 1, 28, 28)
    torch.testing.assert_close(out["image"], model.mean_image(out["z"][None]).detach())
    assert base.abs().sum() == 0  # the base code is not modified
    with pytest.raises(ValueError, match="out of range"):
        widgets.latent_traversal_panel(model, base, {5: 0.0})
    with pytest.raises(ValueError, match="entries"):
        widgets.latent_traversal_panel(model, torch.zeros(2), {})
    import matplotlib.pyplot as plt
    plt.close(widgets.draw_latent_image(out))


def test_beta_panel_selects_precomputed_run():
    x = (images(6) > 0.5).float()
    runs = {b: V.run_summary(small_vae(beta=b), x, x[:4], n_samples=4) for b in (0.5, 1.0, 4.0)}
    out = widgets.beta_panel(runs, 4.0)
    assert out["run"] is runs[4.0]
    assert out["curve"]["beta"] == [0.5, 1.0, 4.0]
    assert out["curve"]["rate"][2] == runs[4.0]["rate"]
    assert runs[1.0]["recons"].shape == (4, 1, 28, 28) and runs[1.0]["samples"].shape == (4, 1, 28, 28)
    with pytest.raises(ValueError, match="no precomputed run"):
        widgets.beta_panel(runs, 2.0)
    import matplotlib.pyplot as plt
    plt.close(widgets.draw_beta_panel(out))
