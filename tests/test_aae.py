"""Lecture 4 pieces: priors, the three phases, the cluster-error rule, bad input (dgsp.models.aae)."""
import math

import numpy as np
import pytest
import torch

import dgsp
from dgsp import metrics
from dgsp.models import aae
from dgsp.train import fit


def _images(n, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _small(**kw):
    torch.manual_seed(0)
    return aae.AAE(hidden=(32,), disc_hidden=(16,), **kw)


def test_priors_have_their_shape():
    g = torch.Generator().manual_seed(0)
    z = aae.gaussian_prior(20_000, 3, g)
    assert z.shape == (20_000, 3) and abs(float(z.mean())) < 0.02 and abs(float(z.std()) - 1) < 0.02
    comp = torch.randint(10, (20_000,), generator=g)
    m = aae.mixture_prior(20_000, generator=g, component=comp)
    for c in (0, 3, 7):  # each component sits on the circle at angle 2 pi c / 10, with equal weights
        centre = m[comp == c].mean(0)
        angle = 2 * math.pi * c / 10
        assert torch.allclose(centre, 4.0 * torch.tensor([math.cos(angle), math.sin(angle)]), atol=0.05)
    # drawn by the prior itself: each point's component read off its angle (sectors of 2 pi / 10 around the
    # centres); equal weights, and each component stretched along its radius (std 1) and not across it (0.25)
    m = aae.mixture_prior(50_000, generator=torch.Generator().manual_seed(1))
    sector = (torch.atan2(m[:, 1], m[:, 0]) / (2 * math.pi / 10)).round().long() % 10
    assert (torch.bincount(sector, minlength=10).float() / 50_000 - 0.1).abs().max() < 0.01
    first = m[sector == 0]  # the component on the positive x axis: radial = x, tangential = y
    assert abs(float(first[:, 0].std()) - 1.0) < 0.05 and abs(float(first[:, 1].std()) - 0.25) < 0.03
    t = torch.linspace(0, 1, 200)
    roll = aae.swiss_roll_prior(200, noise=0.0, position=t)
    radius = roll.norm(dim=1)
    assert torch.all(radius[1:] >= radius[:-1] - 1e-5) and 0.4 < float(radius[0]) < 0.6 and float(radius[-1]) > 3.9
    y = aae.categorical_prior(1000, 16, g)
    assert y.shape == (1000, 16) and torch.all(y.sum(1) == 1)
    with pytest.raises(ValueError, match="choose one of"):
        aae.sample_prior("laplace", 5)
    with pytest.raises(ValueError, match="2-D"):
        aae.sample_prior("swiss_roll", 5, dim=3)


def test_phase_losses_by_hand():
    logits, x = torch.randn(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    p = torch.sigmoid(logits)
    by_hand = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1).mean()
    assert float(aae.reconstruction_loss(logits, x)) == pytest.approx(float(by_hand), rel=1e-5)
    disc = lambda z: z.sum(1)  # noqa: E731  D's logit is z_1 + z_2
    prior, codes = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[-1.0, 0.0], [0.5, 0.5]])
    loss_d, loss_g = aae.code_discriminator_loss(disc, prior, codes), aae.encoder_adversarial_loss(disc, codes)
    sig = torch.sigmoid
    d_hand = -(sig(torch.tensor([1.0, 2.0])).log().mean() + (1 - sig(torch.tensor([-1.0, 1.0]))).log().mean())
    g_hand = -sig(torch.tensor([-1.0, 1.0])).log().mean()
    assert float(loss_d) == pytest.approx(float(d_hand)) and float(loss_g) == pytest.approx(float(g_hand))


def test_cluster_error_rule():
    train_c = np.array([0, 0, 0, 1, 1, 2])
    train_y = np.array([7, 7, 1, 3, 3, 5])
    test_c = np.array([0, 1, 2, 2, 3])  # cluster 3 has no training point: counted wrong
    test_y = np.array([7, 3, 5, 4, 3])
    assert aae.cluster_error(train_c, train_y, test_c, test_y) == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="same length"):
        aae.cluster_error(train_c, train_y[:-1], test_c, test_y)


def test_cluster_error_confident_is_the_papers_rule():
    # 3 clusters; cluster 0's most confident example is a 2 (the majority of its members are 7s)
    scores = np.array([[0.6, 0.3, 0.1],   # label 7
                       [0.7, 0.2, 0.1],   # label 7
                       [0.9, 0.05, 0.05],  # label 2: the most confident for cluster 0
                       [0.1, 0.8, 0.1],   # label 3: the most confident for cluster 1
                       [0.2, 0.1, 0.7]])  # label 5: the most confident for cluster 2
    labels = np.array([7, 7, 2, 3, 5])
    test_c, test_y = np.array([0, 0, 1, 2]), np.array([7, 2, 3, 4])
    assert aae.cluster_error_confident(scores, labels, test_c, test_y) == pytest.approx(2 / 4)
    majority = aae.cluster_error(scores.argmax(1), labels, test_c, test_y)
    assert majority == pytest.approx(2 / 4) and aae.cluster_error(scores.argmax(1), labels, test_c[:1], test_y[:1]) == 0
    assert aae.cluster_error_confident(torch.tensor(scores), torch.tensor(labels), test_c[:1], test_y[:1]) == 1.0
    with pytest.raises(ValueError, match="must be \\(N, K\\)"):
        aae.cluster_error_confident(scores[:, 0], labels, test_c, test_y)
    with pytest.raises(ValueError, match="0..2"):
        aae.cluster_error_confident(scores, labels, np.array([3]), np.array([1]))
    with pytest.raises(ValueError, match="needs labelled examples"):
        aae.cluster_error_confident(scores[:0], labels[:0], test_c, test_y)


def test_label_probs_are_q_y_given_x_and_match_classify():
    dgsp.seed_everything(0)
    model = aae.AAE(z_dim=4, hidden=(32,), disc_hidden=(32,), n_classes=16).eval()
    x = torch.rand(9, 1, 28, 28)
    q = model.label_probs(x)
    assert q.shape == (9, 16) and torch.allclose(q.sum(1), torch.ones(9)) and (q >= 0).all()
    assert torch.equal(q.argmax(1), model.classify(x))
    with pytest.raises(ValueError, match="no label head"):
        aae.AAE(z_dim=2, hidden=(32,), disc_hidden=(32,)).label_probs(x)


@pytest.mark.parametrize("kw", [dict(), dict(posterior="gaussian"), dict(posterior="universal"),
                                dict(prior="mixture"), dict(prior="swiss_roll"),
                                dict(n_classes=10, supervised=True), dict(n_classes=16, z_dim=4),
                                dict(adversarial=False)])
def test_every_model_takes_a_step(kw, assert_moved):
    model = _small(**kw)
    x, y = _images(8), torch.arange(8) % 10
    batch = (x, y) if kw.get("supervised") else (x,)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logs = model.training_step(batch)
    assert "recon" in logs and all(torch.isfinite(v) for v in logs.values())
    parts = ["encoder", "decoder"] + (["disc_z"] if kw.get("adversarial", True) else []) \
        + (["disc_y"] if kw.get("n_classes") and not kw.get("supervised") else [])
    assert_moved(before, model, *parts)
    assert ("loss_d" in logs) == kw.get("adversarial", True)
    assert model.encode(x).shape == (8, model.z_dim)
    digits = y[:5] if kw.get("supervised") else None
    assert model.sample(5, generator=torch.Generator().manual_seed(0), y=digits).shape == (5, 1, 28, 28)


def test_label_phase_only_touches_labelled_rows():
    model = _small(n_classes=10, z_dim=2)
    x_u, x_l, y_l = _images(8, 1), _images(4, 2), torch.tensor([0, 1, 2, 3])
    seen = []
    real_encode = model.encode_all

    def spy(x, generator=None):
        seen.append(x)
        return real_encode(x, generator)

    model.encode_all = spy
    logs = model.training_step({"unlabelled": (x_u,), "labelled": (x_l, y_l)})
    assert "cross_entropy" in logs
    # phases 1 and 2 encode the unlabelled batch, phase 3 the labelled batch and nothing else
    assert [len(t) for t in seen] == [8, 8, 4] and torch.equal(seen[2], x_l)


def test_clear_errors_before_training():
    with pytest.raises(ValueError, match="unknown prior.*choose one of"):
        aae.AAE(prior="cauchy")
    with pytest.raises(ValueError, match="unknown posterior.*choose one of"):
        aae.AAE(posterior="flow")
    with pytest.raises(ValueError, match="2-D"):
        aae.AAE(prior="mixture", z_dim=3)
    model = _small(n_classes=10)
    x = _images(100)
    with pytest.raises(ValueError, match=r"same length, got \[100, 99\]"):
        fit(model, {"unlabelled": x, "labelled": (x, torch.zeros(99, dtype=torch.long))}, epochs=1, batch_size=10)
    with pytest.raises(ValueError, match="labels for 99 of 100"):
        aae.check_labels(torch.zeros(99, dtype=torch.long), 100, 10)
    with pytest.raises(ValueError, match="integers"):
        aae.check_labels(torch.zeros(100), 100, 10)
    with pytest.raises(ValueError, match=r"0\.\.9.*0\.\.10"):
        fit(model, {"unlabelled": x, "labelled": (x, torch.arange(100) % 11)}, epochs=1, batch_size=10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit(_small(), x * 255, epochs=1, batch_size=10)
    for k in (0, 1, 2.5):  # a clustering run needs a whole number of clusters, checked before any data is loaded
        with pytest.raises(ValueError, match=r"mnist_cluster_aae\(k\)"):
            dgsp.recipes.mnist_cluster_aae(k)


def test_adversary_pulls_the_codes_to_the_prior():
    """On 2,000 digits with 2-D codes and small networks, 600 steps: the AAE's codes match N(0, I) far better
    (MMD², median bandwidth) than those of the plain autoencoder with the same networks and no adversary."""
    x, _ = dgsp.data.load("mnist5k", "train", n=2000, device="cpu")
    prior = aae.gaussian_prior(1000, 2, torch.Generator().manual_seed(0))
    mmd = {}
    for adv in (True, False):
        torch.manual_seed(0)
        model = aae.AAE(hidden=(32,), disc_hidden=(32, 32), recon_lr=1e-3, reg_lr=1e-3, betas=(0.5, 0.9),
                        adversarial=adv)
        fit(model, x, epochs=30, batch_size=100, progress=False)
        mmd[adv] = metrics.mmd2(metrics.map_batches(model.encode, x[:1000]), prior)
    assert mmd[True] < mmd[False] / 10


def test_cluster_head_penalty_by_hand():
    heads = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0], [3.0, 2.0]], requires_grad=True)
    margin = 4.0
    # pairwise distances: (0,1) 5, (0,2) 1, (0,3) 3.606, (1,2) 4.243, (1,3) 2, (2,3) 3.162; only those below 4 count
    by_hand = (4 - 1) + (4 - math.sqrt(13)) + (4 - 2) + (4 - math.sqrt(10))
    assert float(aae.cluster_head_penalty(heads, margin).detach()) == pytest.approx(by_hand, rel=1e-6)
    aae.cluster_head_penalty(heads, margin).backward()
    assert heads.grad[0, 1] > 0 and heads.grad[2, 1] < 0  # descending pushes heads 0 and 2 apart


def test_cluster_heads_model_and_its_picture():
    model = _small(n_classes=10, z_dim=2, cluster_heads=True, head_margin=6.0)
    start = model.heads.detach()
    gaps = torch.cdist(start, start) + 1e9 * torch.eye(10)
    assert float(gaps.min()) == pytest.approx(6.0, rel=1e-4)  # neighbours start one margin apart
    x = _images(8)
    logs = model.training_step({"unlabelled": (x,), "labelled": (x[:4], torch.tensor([0, 1, 2, 3]))})
    assert {"recon", "loss_d", "loss_g", "cross_entropy"} <= set(logs)
    out = model.encode_all(x)
    assert torch.allclose(model.embed(x), out["mu"] + out["y"] @ model.heads, atol=1e-6)
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match="label head"):
        aae.AAE(cluster_heads=True)


def test_label_only_baseline_touches_only_the_encoder_and_the_labels():
    model = aae.LabelOnly(hidden=(32,), disc_hidden=(16,), n_classes=10, z_dim=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x_l, y_l = _images(6), torch.arange(6)
    logs = model.training_step({"labelled": (x_l, y_l)})
    assert set(logs) == {"cross_entropy"}
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"encoder"}


def test_labelled_subset_is_balanced_and_fixed():
    from dgsp import recipes

    x, y = recipes.labelled_subset(100, "mnist5k")
    assert len(x) == 100 and torch.equal(torch.bincount(y.cpu(), minlength=10), torch.full((10,), 10))
    x2, y2 = recipes.labelled_subset(100, "mnist5k")
    assert torch.equal(x, x2) and torch.equal(y, y2)
    with pytest.raises(ValueError, match="multiple of 10"):
        recipes.labelled_subset(95, "mnist5k")


def test_code_panel_is_pure():
    from dgsp.widgets import aae_code_panel, draw_aae_code_panel

    runs = {("gaussian", "deterministic"): _small(), ("mixture", "deterministic"): _small(prior="mixture")}
    x, labels = _images(50), torch.arange(50) % 10
    a = aae_code_panel(runs, x, labels, "mixture", "deterministic")
    b = aae_code_panel(runs, x, labels, "mixture", "deterministic")
    assert a["codes"].shape == (50, 2) and a["prior_draws"].shape == (50, 2)
    assert a["mmd2"] == b["mmd2"] and torch.equal(a["prior_draws"], b["prior_draws"])
    # the ring prior sits around radius 4, so its draws are far from an untrained encoder's codes
    assert a["mmd2"] > aae_code_panel(runs, x, labels, "gaussian", "deterministic")["mmd2"]
    import matplotlib.pyplot as plt
    plt.close(draw_aae_code_panel(a))
    with pytest.raises(ValueError, match="no trained AAE.*available"):
        aae_code_panel(runs, x, labels, "swiss_roll", "universal")


def test_lr_decay_enters_the_key_only_when_used():
    assert "lr_decay" not in _small().hparams  # runs cached before the option existed keep their key
    model = _small(lr_decay=0.5, recon_lr=1e-3, reg_lr=2e-3)
    model.on_epoch_end(1)  # after the second epoch: every rate times 0.5 ** 2
    rates = {name: opt.param_groups[0]["lr"] for name, opt in model.optimizers.items()}
    assert rates == pytest.approx({"recon": 2.5e-4, "disc": 5e-4, "gen": 5e-4})


def test_instance_noise_blurs_both_samples_and_enters_the_key_only_when_used():
    seen = []
    disc = lambda v: seen.append(v) or v.sum(1, keepdim=True)  # noqa: E731
    assert aae.instance_noise(disc, 0.0) is disc
    torch.manual_seed(0)
    aae.instance_noise(disc, 0.3)(torch.zeros(20_000, 4))
    assert float(seen[-1].std()) == pytest.approx(0.3, rel=0.03) and abs(float(seen[-1].mean())) < 0.01
    assert "disc_noise" not in _small().hparams
    # in the model, every input of the categorical adversary is blurred: the prior's one-hot draws and the codes
    # for D's step, and the codes for the encoder's step. Clean, each row sums to 1; blurred it does not.
    for std in (0.0, 0.3):
        model = _small(n_classes=16, z_dim=4, disc_noise=std)
        sums = []
        model.disc_y.register_forward_pre_hook(lambda module, args: sums.append(args[0].detach().sum(1)))
        model.training_step((_images(8),))
        assert len(sums) == 3
        off = [float((s - 1).abs().mean()) for s in sums]
        assert (min(off) > 0.3) if std else (max(off) < 1e-5), (std, off)
    model = _small(n_classes=16, z_dim=4, disc_noise=0.3)
    assert model.hparams["disc_noise"] == 0.3
    # the categorical adversary sees noisy one-hot draws: its loss on the same batch differs from a noiseless twin's
    twin = _small(n_classes=16, z_dim=4)
    x = _images(16)
    torch.manual_seed(1)
    noisy = model.training_step((x,))["loss_d"]
    torch.manual_seed(1)
    clean = twin.training_step((x,))["loss_d"]
    assert torch.isfinite(noisy) and not torch.isclose(noisy, clean)


def test_gaussian_posterior_exposes_its_log_variance():
    x = _images(6)
    out = _small(posterior="gaussian", z_dim=3).encode_all(x, generator=torch.Generator().manual_seed(0))
    assert out["logvar"].shape == (6, 3)
    sigma = (0.5 * out["logvar"]).exp()
    eps = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out["z"], out["mu"] + sigma * eps, atol=1e-6)  # z is the reparameterised draw
    assert "logvar" not in _small(posterior="deterministic").encode_all(x)


def test_sample_posterior_draws_the_codes_the_adversary_sees():
    x = _images(6)
    gaussian = _small(posterior="gaussian", z_dim=3)
    z = gaussian.sample_posterior(x, torch.Generator().manual_seed(0))
    out = gaussian.encode_all(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, out["z"])  # mu + sigma * eps with the same noise: not the mean that encode returns
    assert not torch.allclose(z, gaussian.encode(x))
    deterministic = _small(posterior="deterministic")
    assert torch.equal(deterministic.sample_posterior(x), deterministic.encode(x))
    universal = _small(posterior="universal")  # one draw of the encoder's noise, repeatable with a generator
    a, b = (universal.sample_posterior(x, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(a, b) and not torch.equal(a, universal.sample_posterior(x, torch.Generator().manual_seed(4)))
