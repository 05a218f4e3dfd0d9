"""Lecture 6: the Fisher AE's prior, loss terms and model, Remark 1, the WAE-MMD penalty, the robustness helpers,
the widget's pure function, and bad input."""
import math

import pytest
import torch

from dgsp import metrics, recipes, score
from dgsp.models import fisher_ae, wae
from dgsp.models.fisher_ae import FisherAE, FPEPrior, LinearGaussian
from dgsp.train import NonFiniteLossError, fit
from dgsp.widgets import draw_noise_panel, noise_panel


def test_fpe_score_matches_autograd_and_the_carrier_keeps_it_normalisable():
    g = torch.Generator().manual_seed(0)
    prior = FPEPrior(3, order=5, confine=0.01, eta=torch.randn(3, 5, generator=g)).double()
    prior.eta.data[0] = torch.tensor([0.0, -0.5, 0.0, 0.0, 0.05])  # a positive z^5 coefficient in dimension 0
    z = torch.randn(16, 3, generator=g, dtype=torch.float64) * 2
    assert torch.allclose(prior.score(z), score.score_of(prior.log_density)(z), atol=1e-10)
    # with the carrier -c z^6 every factor integrates, even with a positive z^5 coefficient: check one numerically
    grid = torch.linspace(-12, 12, 20001, dtype=torch.float64)
    one = lambda t: prior.log_density(torch.cat([t, torch.zeros(len(t), 2, dtype=t.dtype)], 1))  # noqa: E731
    with torch.no_grad():
        p = score.normalised_density(one, grid)
    assert float(p[0]) < 1e-12 and float(p[-1]) < 1e-12  # no mass escapes to the grid's edges
    assert prior.carrier_power == 6 and FPEPrior(2, order=4).carrier_power == 6


def test_fpe_prior_bad_input():
    with pytest.raises(ValueError, match="order K >= 2"):
        FPEPrior(8, order=1)
    with pytest.raises(ValueError, match="dimension 0: .*not normalisable"):
        FPEPrior(2, order=3, confine=0.0, eta=torch.tensor([[0.0, -1.0, 0.3], [0.0, -1.0, 0.0]]))
    with pytest.raises(ValueError, match="carrier"):
        FPEPrior(2, confine=-1.0)
    with pytest.raises(ValueError, match=r"\(d, K\) = \(2, 5\)"):
        FPEPrior(2, eta=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="FPE prior"):
        FPEPrior(8).score(torch.zeros(4, 3))  # a latent of the wrong size
    with pytest.raises(ValueError, match=r"FPEPrior.sample\(n\) needs a whole number >= 2"):
        FPEPrior(2).sample(1)
    for n in (0, 1):  # zero is not "use the default"
        with pytest.raises(ValueError, match=r"svgd_bimodal\(n\)"):
            recipes.svgd_bimodal(n, steps=1)


def test_stability_term_against_finite_differences():
    torch.manual_seed(0)
    model = FisherAE(z_dim=2, hidden=(6,), image_shape=(1, 1, 3)).double()
    x = torch.rand(4, 1, 1, 3, dtype=torch.float64, requires_grad=True)
    mu, logvar = model.encode_params(x)
    std = (0.5 * logvar).exp()
    eps = torch.randn(4, 2, dtype=torch.float64)
    z = (mu + std * eps).detach()
    grad = fisher_ae.encoder_input_score(x, mu, std, eps)

    def log_q(xx):  # log q(z|x) at the fixed z, one value per image
        m, lv = model.encode_params(xx)
        return (-0.5 * (z - m) ** 2 / lv.exp() - 0.5 * lv).sum(1)
    h = 1e-6
    fd = torch.zeros(4, 3, dtype=torch.float64)
    with torch.no_grad():
        for j in range(3):
            step = torch.zeros(1, 1, 1, 3, dtype=torch.float64)
            step[..., j] = h
            fd[:, j] = (log_q(x + step) - log_q(x - step)) / (2 * h)
    assert torch.allclose(grad, fd, atol=1e-6)
    # and the term is differentiable in the encoder's weights (double backprop)
    (0.5 * (grad ** 2).sum()).backward()
    assert model.encoder.net[0].weight.grad is not None and model.encoder.net[0].weight.grad.abs().sum() > 0


def test_remark_1_on_a_linear_gaussian_model():
    q, _ = torch.linalg.qr(torch.randn(5, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    model = LinearGaussian(q * torch.tensor([2.0, 0.7], dtype=torch.float64), torch.linspace(-1, 1, 5).double(), 0.5)
    x = torch.tensor([[0.3, -1.0, 2.0, 0.5, 0.0]], dtype=torch.float64)
    n = 200_000
    terms = fisher_ae.fisher_ae_terms(model, x.expand(n, -1), generator=torch.Generator().manual_seed(2))
    terms = {k: v.detach() for k, v in terms.items()}
    assert float(terms["posterior"].abs().max()) < 1e-8  # q is the exact posterior: term 1 vanishes for every draw
    loss = terms["loss"].mean()
    se = terms["loss"].std() / math.sqrt(n)
    exact = model.evidence_hyvarinen_score(x)[0]
    assert abs(float(loss - exact)) < 4 * float(se)


def test_fisher_ae_step_shapes_and_noise_helpers():
    torch.manual_seed(0)
    model = FisherAE(z_dim=3, hidden=(32,))
    x = torch.rand(64, 1, 28, 28)
    logs = model.training_step((x,))
    assert set(logs) == {"posterior", "recon", "stability", "loss"}
    assert all(torch.isfinite(v) for v in logs.values())
    assert model.prior.eta.grad is not None  # the prior's natural parameters learn
    assert model(x).shape == x.shape and model.encode(x).shape == (64, 3)
    assert model.sample(5, generator=torch.Generator().manual_seed(0), steps=3).shape == (5, 1, 28, 28)
    a, b = fisher_ae.noisy_copy(x, 0.2, seed=1), fisher_ae.noisy_copy(x, 0.2, seed=1)
    assert torch.equal(a, b) and float((a - x).std()) == pytest.approx(math.sqrt(0.2), rel=0.02)
    assert torch.equal(fisher_ae.noisy_copy(x, 0.0), x)
    assert fisher_ae.normalised_bce(x, x.clamp(0.01, 0.99)) < fisher_ae.normalised_bce(x, torch.full_like(x, 0.5))
    bce = fisher_ae.robustness_bce(model, x, (0.0, 1.0))
    assert len(bce) == 2 and all(math.isfinite(v) for v in bce)


def test_fisher_ae_bad_input_and_nan_from_the_stability_term(monkeypatch):
    with pytest.raises(ValueError, match="decoder_scale"):
        FisherAE(decoder_scale=0.0)
    with pytest.raises(ValueError, match="FisherAE.decode"):
        FisherAE(z_dim=8).decode(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="variance"):
        fisher_ae.add_noise(torch.zeros(2), -0.1)
    with pytest.raises(ValueError, match="requires_grad"):
        fisher_ae.encoder_input_score(torch.zeros(2, 3), torch.zeros(2, 1), torch.ones(2, 1), torch.zeros(2, 1))
    nan_score = lambda x, mu, std, eps: torch.full_like(x, float("nan")).flatten(1)  # noqa: E731
    monkeypatch.setattr(fisher_ae, "encoder_input_score", nan_score)
    model = FisherAE(z_dim=2, hidden=(8,))
    with pytest.raises(NonFiniteLossError, match="'stability'"):
        fit(model, torch.rand(64, 1, 28, 28), epochs=1, batch_size=32, progress=False, log_every=1)


def test_imq_mmd_is_small_for_the_same_law_and_large_for_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    same, shifted = float(wae.imq_mmd2(a, b)), float(wae.imq_mmd2(a, b + 1.0))
    assert abs(same) < 0.02 and shifted > 10 * abs(same)
    with pytest.raises(ValueError, match="same shape"):
        wae.imq_mmd2(a, b[:10])


def test_the_four_models_share_networks_and_train_a_step(assert_moved):
    counts = {}
    for kind in recipes.ROBUST_AES:
        model = recipes.robust_ae(kind)
        counts[kind] = sum(p.numel() for p in model.encoder.parameters()) + \
            sum(p.numel() for p in model.decoder.parameters())
        before = {k: v.clone() for k, v in model.state_dict().items()}
        logs = model.training_step((torch.rand(32, 1, 28, 28),))
        assert all(math.isfinite(float(v)) for v in logs.values())
        assert_moved(before, model, "encoder", "decoder", *{"wae_gan": ["disc_z"]}.get(kind, []))
        assert fisher_ae.mean_code(model, torch.rand(3, 1, 28, 28)).shape == (3, 8)
    # a Gaussian encoder has a second 8-wide head; otherwise the networks are the same
    assert counts["fisher_ae"] == counts["vae"] and counts["wae_gan"] == counts["wae_mmd"]
    assert counts["fisher_ae"] - counts["wae_gan"] == 512 * 8 + 8
    with pytest.raises(ValueError, match="unknown model"):
        recipes.robust_ae("beta_vae")


def test_tsne_kmeans_nmi_on_separated_clusters_and_bad_input():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(50)
    codes = torch.randn(200, 5, generator=g) * 0.1 + 10 * torch.nn.functional.one_hot(labels, 5).float()
    nmi, emb = metrics.tsne_kmeans_nmi(codes, labels, k=4, perplexity=10)
    assert nmi > 0.95 and emb.shape == (200, 2)
    with pytest.raises(ValueError, match="labels"):
        metrics.tsne_kmeans_nmi(codes, labels[:10])


def test_noise_panel_is_pure():
    torch.manual_seed(0)
    models = {"fisher": FisherAE(z_dim=2, hidden=(16,)), "wae": recipes.robust_ae("wae_mmd")}
    x = torch.rand(6, 1, 28, 28)
    a, b = noise_panel(models, x, 0.2), noise_panel(models, x, 0.2)
    assert torch.equal(a["noisy"], b["noisy"]) and a["bce"] == b["bce"]
    assert set(a["reconstructions"]) == {"fisher", "wae"} and a["reconstructions"]["wae"].shape == x.shape
    draw_noise_panel(a)
    with pytest.raises(ValueError, match="variance"):
        noise_panel(models, x, 5.0)
    with pytest.raises(ValueError, match="at least one model"):
        noise_panel({}, x, 0.2)


def test_exact_fpe_draws_and_the_score_matched_prior():
    eta = torch.zeros(2, 4)
    eta[:, 1] = -0.5
    eta[1, 0] = 1.0  # exp(z - z^2 / 2): N(1, 1)
    prior = FPEPrior(2, order=4, confine=0.0, eta=eta)
    z = prior.sample_exact(40_000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), torch.tensor([0.0, 1.0]), atol=0.02)
    assert torch.allclose(z.std(0), torch.ones(2), atol=0.02)
    # score matching on draws of that prior recovers it (with K = 2: at K = 4 the fitted z^4 coefficient is
    # noise around 0, and a positive one is refused as not normalisable)
    fitted = fisher_ae.score_matched_prior(z, order=2)
    assert torch.allclose(fitted.eta.detach(), eta[:, :2], atol=0.05)
    with pytest.raises(ValueError, match="not normalisable"):
        fisher_ae.score_matched_prior(z, order=4)
    with pytest.raises(ValueError, match="codes must be"):
        fisher_ae.score_matched_prior(torch.zeros(5))
