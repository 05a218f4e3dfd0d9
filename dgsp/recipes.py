"""One named recipe for each model the course trains on MNIST and uses in more than one place.

A recipe fixes everything that identifies a run (data, seed, network, hyper-parameters, schedule and
checkpoint name), trains through :func:`dgsp.train.fit` and returns the model in eval mode. Because the
checkpoint is keyed on all of that, the first caller trains and every later caller (another notebook, a
benchmark, a later lecture's closing table) loads the same run. Change a recipe here, once.

``epochs=None`` means the course's schedule (shorter in quick mode); another value trains (or extends) a
run under its own checkpoint name, so a benchmark's longer run never replaces the notebooks' run.
"""
from __future__ import annotations

from typing import Callable

import torch

from dgsp.core import by_mode, check_count, device, seed_everything
from dgsp.data import binarize, load, random_subset, resolve
from dgsp.train import History, Model, fit

# The course's MNIST networks for lecture 3: DCGAN-style G and D, 64-d codes, 32 base channels.
GAN_LATENT, GAN_CHANNELS = 64, 32


def course_data(split: str, dataset: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The MNIST split the recipes train and evaluate on: all of it in full mode, a fixed class-balanced
    2,000 (train) / 1,000 (test) in quick mode. ``dataset`` defaults to full MNIST, or the embedded subset."""
    return load(dataset or resolve("mnist"), split, n=by_mode(None, 2000 if split == "train" else 1000))


def _checkpoint(base: str, epochs: int, default: int) -> str:
    return base if epochs == default else f"{base}_e{epochs}"


def _seeded(build: Callable[[], Model], seed: int = 0) -> Model:
    """Seed first, then build: the initial weights never depend on what ran before."""
    seed_everything(seed)
    return build().to(device())


# ----------------------------------------------------------------------------- lecture 1
def linear_autoencoder(k: int, dataset: str | None = None, epochs: int | None = None):
    """The linear autoencoder with a k-d code (lecture 1), trained to PCA's subspace: Adam at 1e-2 with a
    x0.85 decay per epoch, batch 128, 20 epochs (quick: 3)."""
    from dgsp.models.autoencoder import Autoencoder

    default = by_mode(20, 3)
    epochs = default if epochs is None else epochs
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: Autoencoder(code_dim=k, arch="linear", lr=1e-2, lr_decay=0.85), seed=k)
    fit(model, x, epochs=epochs, batch_size=128, checkpoint=_checkpoint(f"01_linear_ae_k{k}", epochs, default),
        desc=f"linear AE k={k}")
    return model


# ----------------------------------------------------------------------------- lecture 2
def vae_eval_images(dataset: str | None = None) -> torch.Tensor:
    """The fixed binarised test digits (300; quick: 100) on which lecture 2 reports test ELBOs: a uniform sample of
    the test split (:func:`dgsp.data.random_subset`; its first 300 digits are cleaner than the split's average:
    the 20-epoch VAE's NLL is 92.2 nats on them, 94.2 on this sample and 95.4 on 2,000, 2026-12-04)."""
    x_test, _ = course_data("test", dataset)
    x_eval, = random_subset(x_test, n=by_mode(300, 100))
    return binarize(x_eval, generator=torch.Generator().manual_seed(1))


def test_elbo_callback(x_eval: torch.Tensor) -> Callable[[Model, int], dict]:
    """A ``fit`` callback logging ``test_elbo``: the ELBO on ``x_eval`` with a fixed seed."""
    from dgsp.models.vae import rate_distortion

    return lambda model, epoch: {"test_elbo": rate_distortion(model, x_eval,
                                                              generator=torch.Generator().manual_seed(0))["elbo"]}


def _mnist_vae(z_dim: int, default: int, base: str, dataset: str | None, epochs: int | None):
    from dgsp.models.vae import VAE

    epochs = default if epochs is None else epochs
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: VAE(z_dim=z_dim, hidden=(200, 200)))
    fit(model, x, epochs=epochs, batch_size=100, callbacks=[test_elbo_callback(vae_eval_images(dataset))],
        checkpoint=_checkpoint(base, epochs, default), desc=f"VAE z={z_dim}")
    return model


def mnist_vae(dataset: str | None = None, epochs: int | None = None):
    """Lecture 2's VAE: Burda et al.'s 784-200-200-50 MLP with a Bernoulli decoder on dynamically binarised
    digits, Adam 1e-3, batch 100, 20 epochs (quick: 5), the test ELBO logged after every epoch."""
    return _mnist_vae(50, by_mode(20, 5), "02_vae_mlp_z50", dataset, epochs)


def mnist_vae_2d(dataset: str | None = None, epochs: int | None = None):
    """The same VAE with a 2-D code (784-200-200-2), 10 epochs (quick: 3): the code that lecture 2 decodes on a
    grid and lecture 4 draws beside the adversarial autoencoders'."""
    return _mnist_vae(2, by_mode(10, 3), "02_vae_mlp_z2", dataset, epochs)


# ----------------------------------------------------------------------------- lecture 3
MNIST_GANS = ("gan_ns", "gan_ns_gp", "wgangp")


def frechet_callback(dataset: str | None = None, n: int | None = None) -> Callable[[Model, int], dict]:
    """A ``fit`` callback logging ``frechet``: the Fréchet distance, in the course classifier's features, of
    ``n`` seeded samples (5,000; quick: 1,000) to a class-balanced set of test digits."""
    from dgsp import metrics

    dataset = dataset or resolve("mnist")
    clf = metrics.mnist_classifier(dataset)
    x_test, _ = course_data("test", dataset)
    n = min(len(x_test), by_mode(5000, 1000)) if n is None else n
    x_ref, _ = load(dataset, "test", n=n)
    ref = metrics.classifier_features(clf, x_ref)

    def callback(model: Model, epoch: int) -> dict:
        fake = metrics.sample_in_chunks(model.sample, n, seed=epoch + 1)
        return {"frechet": metrics.frechet_distance(metrics.classifier_features(clf, fake), ref)}

    return callback


def gan_snapshot_codes(n: int = 40) -> torch.Tensor:
    """The fixed latent codes whose samples lecture 3 follows through training."""
    n = check_count(n, "gan_snapshot_codes(n)")
    return torch.randn(n, GAN_LATENT, generator=torch.Generator().manual_seed(2))


def mnist_gan(kind: str, dataset: str | None = None, epochs: int | None = None):
    """Lecture 3's MNIST GANs, with the DCGAN-style networks (64-d codes, 32 channels):

    * ``gan_ns``: the non-saturating GAN exactly as DCGAN trains it (batch-norm discriminator, Adam 2e-4,
      betas (0.5, 0.999)), m = 64, 5 epochs;
    * ``gan_ns_gp``: the same loss with the gradient-penalised discriminator of ``gan.MNIST_GAN``, 5 epochs;
    * ``wgangp``: WGAN-GP with ``gan.MNIST_WGANGP`` (lambda 10, n_critic 5), 5 x 64 real digits per step, 8 epochs.

    Quick mode trains one epoch of each. The Fréchet distance is logged after every epoch and samples of
    :func:`gan_snapshot_codes` are kept in ``history.snapshots``.
    """
    from dgsp.models import gan

    if kind not in MNIST_GANS:
        raise ValueError(f"unknown MNIST GAN {kind!r}; choose one of {MNIST_GANS}")
    common = dict(data_shape=(1, 28, 28), arch="dcgan", latent_dim=GAN_LATENT, channels=GAN_CHANNELS)
    build, batch, default, base = {
        "gan_ns": (lambda: gan.GAN(**common, loss="nonsaturating"), 64, by_mode(5, 1), "03_mnist_gan"),
        "gan_ns_gp": (lambda: gan.GAN(**common, loss="nonsaturating", **gan.MNIST_GAN), 64, by_mode(5, 1),
                      "03_mnist_gan_gp"),
        "wgangp": (lambda: gan.WGANGP(**common, **gan.MNIST_WGANGP), 64 * 5, by_mode(8, 1), "03_mnist_wgangp"),
    }[kind]
    epochs = default if epochs is None else epochs
    x, _ = course_data("train", dataset)
    model = _seeded(build)
    codes = gan_snapshot_codes().to(model.device)
    fit(model, x, epochs=epochs, batch_size=batch, callbacks=[frechet_callback(dataset)],
        snapshot=lambda m: m.sample(len(codes), z=codes), checkpoint=_checkpoint(base, epochs, default), desc=kind)
    return model


# ----------------------------------------------------------------------------- lecture 4
# Hyper-parameters of lecture 4, captured once. Adam everywhere (the paper used SGD with momentum and
# thousands of epochs; Adam gets far in the few epochs a CPU allows). The 2-D codes need a strong adversary whose
# game settles: MMD² of the first 5,000 test codes (see below) to the prior after 6 epochs (full MNIST; plain
# autoencoder 0.126),
#   reg_lr 1e-3, betas (0.5, 0.999), no decay:         Gaussian 0.055, and the swiss roll not unrolled
#   reg_lr 1e-3, betas (0.5, 0.9), x0.8 per epoch:     Gaussian 0.0057, swiss roll 0.020 (half unrolled)
#   reg_lr 2e-3, betas (0.5, 0.9), x0.75 per epoch:    Gaussian 0.0060, swiss roll 0.011 (on the spiral)
# Longer runs do not reach the factor 10 (screened 2026-12-02, one seed, MMD² after every epoch): with
# x0.85 per epoch for 15 epochs the mixture stays between 0.0045 and 0.0065 from epoch 9 on (the plain AE: 0.021),
# the swiss roll between 0.014 and 0.019, and the Gaussian jumps between 0.007 and 0.029. Two causes show up:
# (1) the codes of training digits, the q(z) of Sec. 2 that the adversary sees, often fit better than those of test
# digits (Gaussian 0.0045 against 0.029 after those 15 epochs; mixture 0.0037 against 0.0071 after 6, but 0.0043
# against 0.0037 in another run). It is not memorisation: trained on 50,000 training digits for 6 epochs, the AAE
# scores the 5,000 held-out ones like the seen ones (Gaussian 0.0025 and 0.0028, test digits 0.010; mixture 0.0052
# and 0.0043); (2) the encoder shares the digits unevenly between the mixture's ten components (6.5% to 14.4%
# after 6 epochs), and evening them out would mean moving whole groups of digits across the empty gaps between
# components. Cause (1) was the evaluation's, not the model's (2026-12-04): those scores used the first 5,000 test
# digits, and full MNIST's test split is not shuffled; its first half, from NIST's SD-3, is cleaner than the second
# (data.random_subset). This recipe, one run, MMD² after epochs 1 to 6 (the plain autoencoder's after 6 epochs):
#   Gaussian,   first 5,000 test digits:  .0308 .0052 .0270 .0333 .0237 .0191  (plain .129)
#               last 5,000:               .0111 .0343 .0021 .0183 .0243 .0100  (plain .208)
#               a uniform 5,000:          .0086 .0063 .0060 .0133 .0116 .0028  (plain .163)
#   mixture,    first 5,000:              .0095 .0069 .0101 .0114 .0069 .0072  (plain .021)
#               last 5,000:               .0120 .0044 .0019 .0005 .0024 .0040  (plain .034)
#               a uniform 5,000:          .0045 .0014 .0013 .0022 .0010 .0011  (plain .024)
#   swiss roll, first 5,000:              .0078 .0204 .0150 .0170 .0143 .0120  (plain .058)
#               last 5,000:               .0102 .0038 .0071 .0070 .0048 .0070  (plain .095)
#               a uniform 5,000:          .0027 .0072 .0062 .0070 .0047 .0044  (plain .075)
# Lecture 4 and bench_aae now score a uniform sample. The same seeded recipe on two CPUs gives plain-AE/AAE factors
# of 58, 21 and 17 (2026-12-04) and 11, 43 and 8.2 (2026-12-05, Gaussian, ring, swiss roll): read them as
# uncertain to a factor of two or more, and the swiss roll's target of 10 as met on one machine, not the other.
# An R1 penalty of weight 1 on the code discriminator (the same screen, first 5,000) gave 0.0095, 0.0198 and 0.0098
# after 6 epochs: no steadier, so the recipe has none.
AAE_2D = dict(hidden=(256, 256), disc_hidden=(256, 256), recon_lr=1e-3, reg_lr=2e-3, betas=(0.5, 0.9), lr_decay=0.75)
# The label-aware models (Sec. 4-6): 784-512-512 MLPs (the paper's are 1000-1000: twice the time per epoch).
# Semi-supervised, 100 labels, test error after 3 epochs: reg_lr 1e-4 16.2%, 1e-3 14.8%, 3e-4 with
# betas (0.5, 0.9) 10.7% (full MNIST, one seed). Tried on top of that, also 3 epochs: instance noise 0.3 on the
# discriminators' inputs 13.2%, Gaussian noise 0.3 on the encoder's input 13.7%, dropout 0.2 there 11.4%.
# Longer does not help either: this recipe for 30 epochs (100 labels, one seed, no checkpoint) falls from 14.6%
# after 1 epoch to 10.5% after 5 and then wanders between 8.35% and 9.83% from epoch 9 to 21. Tried for 5 epochs
# each on top of it (the recipe: 10.5%): a 5-D style 14.6%, instance noise 0.3 on both discriminators 12.0%,
# a separate label-phase rate of 1e-3 13.4%. The paper's 1000-1000 networks (encoder, decoder and both
# discriminators), 10 epochs at three times the cost: 8.98% (this recipe in the same script: 9.83%). Run-to-run
# spread is about 2 points, and the same seed differs between CPUs (7.80% on one, 9.83% in the course run of
# 2026-12-03 on another). More screens (2026-12-02/03, 100 labels, one seed, test error after every epoch; this
# recipe: 7.80% after 10 on that CPU): instance noise on both discriminators 10.46%
# (std 0.3) and 12.36% (0.5) after 10 epochs; phase 1 also reconstructing the labelled minibatch from its true
# one-hot label 8.86% after 12; Gaussian noise of std 0.3 on the encoder's input (a denoising encoder) 7.73% after 20
# (7.6-8.1% from epoch 15 on); input dropout 0.3 between 7.4% and 8.5% from epoch 12 to 17; a Gaussian (VAE-like)
# posterior for the style z, to squeeze class information out of it, 9.07% after 12. None leaves the
# run-to-run spread. With every label (2026-12-02, one seed, test error after every
# epoch) longer runs plateau too: this recipe is at 2.66% after 5 epochs and then wanders between 2.21% and 2.79%
# up to 18 epochs (stopped there); with a x0.85 decay per epoch it stays at 2.55-2.96% from 4 to 11 epochs. A cosine
# schedule to zero over 15 epochs (2026-12-04, one thread per run): the label-only baseline ends at 1.74%, and the AAE
# with recon_lr 1e-4 (so that phase 3 weighs more against phase 1) at 2.02% (2.01-2.13% from epoch 10 on). The plain
# classifier stays ahead, and the 1.2% is not in reach of these schedules.
# Phase 1 decoding a hard class instead of the softmax y (2026-12-04, 100 labels, 10 epochs, one thread per run,
# this recipe 8.65% in the same screen): a straight-through one-hot of argmax y 12.1%, a straight-through
# Gumbel-softmax draw (tau 1) 9.0%; an exponential moving average of the encoder's weights (decay 0.999), used for
# the test, 9.6%. With a cosine schedule to zero over 20 epochs (2026-12-04, one thread per run): recon_lr 1e-4, so
# that phase 3 weighs more, 15.8% (15.8-18.6% from epoch 5 on); Gaussian noise of std 0.3 on every image, the
# encoder's input and the reconstruction target alike, 14.1% (12.0-14.4% from epoch 5 on). The paper's code was never
# released, and reimplementers report about 5% at best after 5,000 epochs
# (github.com/takerum/adversarial_autoencoder/issues/2, musyoku/adversarial-autoencoder/issues/13).
AAE_LABELS = dict(hidden=(512, 512), disc_hidden=(512, 512), recon_lr=1e-3, reg_lr=3e-4, betas=(0.5, 0.9))
AAE_STYLE_DIM = 10  # the Gaussian style code z of the semi-supervised and clustering models (Sec. 5-6)
# The supervised AAE (Sec. 4) must keep the class out of its style code; nothing but a small code forces that in
# a few epochs. Share of its decodings that the course classifier reads as the label they were given, after
# 3 epochs: AAE_LABELS with a 10-D style 26%; with reg_lr 1e-3 and decay 0.8 as below, a 10-D style 24%,
# 5-D 51%, 5-D with a Gaussian posterior 60%, 3-D 75%.
AAE_SUPERVISED = dict(AAE_LABELS, reg_lr=1e-3, lr_decay=0.8, z_dim=3)
N_LABELS = 100  # the semi-supervised benchmark: 10 labelled digits per class
# The clustering AAE (Sec. 6) with AAE_LABELS alone collapses: after 10 epochs its label head uses 7 of 16 categories
# (test error 47%; 8 and 54% in the course run of 2026-12-03 on another CPU). Instance noise on the discriminators'
# inputs (aae.instance_noise) lets the categorical adversary pull codes into unused categories. 16 clusters, test
# error after 4 epochs (full MNIST): no noise 47.1% (7 used), std 0.3 32.6%, 0.5 27.4%, 0.8 40.6% (all 16 used); 0.3
# with a 2-D style 44.1%, 0.3 with recon_lr 3e-4 35.8%. Longer runs do not go lower: with 0.5 the error is 27.3% after
# 5 epochs and drifts back to 30.5% by epoch 10 (reconstruction slowly re-cuts the clusters by style), and a x0.85
# decay per epoch ends the same; with 0.3 it plateaus near 31%. Gaussian noise on the encoder's input as well
# (2026-12-03, std 0.3 or 0.5, 8 epochs each) ends at 31.3% and 29.3%, and a Gaussian posterior for the style 29.5%
# (28.4-30.5% from epoch 3 on). The categorical discriminator also shown the minibatch's mean of y (minibatch
# features, Salimans et al. 2016; 2026-12-04, with the noise): all 16 used from epoch 2, but 37-40% from epoch 5 to
# 10 (this recipe: 30.5%). The semi-supervised AAE, whose labels already anchor q(y|x), keeps AAE_LABELS (see
# above).
# Decoding a straight-through Gumbel-softmax draw of y (tau 1) instead of the softmax, so that only the class
# reaches the decoder through y (2026-12-04, one thread per run, 10 epochs): 29.7% after 10 epochs, against 27.3%
# for this recipe in the same screen (24.2-27.8% from epoch 4 on). The paper's 1000-1000 networks (encoder, decoder
# and both discriminators, with the noise; 361 s for 10 epochs on two threads): 34.2-36.4% from epoch 3 on, 34.8%
# after 10. Others did not reach the paper's clustering either
# (github.com/musyoku/adversarial-autoencoder/issues/2).
AAE_CLUSTER_NOISE = 0.5


def mnist_aae(prior: str = "gaussian", posterior: str = "deterministic", adversarial: bool = True,
              dataset: str | None = None, epochs: int | None = None):
    """Lecture 4's AAE with a 2-D code (:data:`AAE_2D`, 784-256-256-2, Bernoulli decoder), batch 100, 6 epochs
    (quick: 2). ``adversarial=False`` is the plain autoencoder with the same networks and no adversary."""
    from dgsp.models.aae import AAE

    default = by_mode(6, 2)
    epochs = default if epochs is None else epochs
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: AAE(z_dim=2, prior=prior, posterior=posterior, adversarial=adversarial, **AAE_2D))
    base = f"04_aae_{prior}_{posterior}" if adversarial else f"04_ae_{posterior}"
    fit(model, x, epochs=epochs, batch_size=100, checkpoint=_checkpoint(base, epochs, default),
        desc=base.removeprefix("04_"))
    return model


def mnist_supervised_aae(dataset: str | None = None, epochs: int | None = None):
    """Lecture 4's supervised AAE (Sec. 4): the one-hot label goes to the decoder beside a 3-D Gaussian style
    code (:data:`AAE_SUPERVISED`), batch 100, 10 epochs (quick: 1)."""
    from dgsp.models.aae import AAE

    default = by_mode(10, 1)
    epochs = default if epochs is None else epochs
    x, y = course_data("train", dataset)
    model = _seeded(lambda: AAE(n_classes=10, supervised=True, **AAE_SUPERVISED))
    fit(model, (x, y), epochs=epochs, batch_size=100, checkpoint=_checkpoint("04_aae_supervised", epochs, default),
        desc="supervised AAE")
    return model


def labelled_subset(n_labels: int | None, dataset: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The labelled training digits of the semi-supervised runs: ``n_labels`` of them, an equal number per class
    drawn with a fixed seed (``None``: every training label)."""
    x, y = course_data("train", dataset)
    if n_labels is None:
        return x, y
    if n_labels < 10 or n_labels % 10:
        raise ValueError(f"n_labels must be a positive multiple of 10 (equal numbers per class); got {n_labels}")
    g = torch.Generator().manual_seed(4)
    keep = torch.cat([torch.nonzero(y.cpu() == c).flatten()[torch.randperm(int((y == c).sum()), generator=g)]
                      [:n_labels // 10] for c in range(10)])
    return x[keep.to(x.device)], y[keep.to(y.device)]


def _label_epochs(epochs: int | None) -> tuple[int, int]:
    default = by_mode(10, 1)
    return default, default if epochs is None else epochs


def mnist_semi_aae(n_labels: int | None = N_LABELS, dataset: str | None = None, epochs: int | None = None):
    """Lecture 4's semi-supervised AAE (Sec. 5): q(y, z|x) with a 10-way softmax y and a 10-D Gaussian z, two
    adversaries, and phase 3 on a labelled minibatch of 100 drawn from :func:`labelled_subset` alongside every
    unlabelled minibatch of 100; :data:`AAE_LABELS`, 10 epochs of the unlabelled digits (quick: 1)."""
    from dgsp.models.aae import AAE

    default, epochs = _label_epochs(epochs)
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: AAE(z_dim=AAE_STYLE_DIM, n_classes=10, **AAE_LABELS))
    name = f"04_aae_semi_{n_labels or 'all'}"
    fit(model, {"unlabelled": x, "labelled": labelled_subset(n_labels, dataset)}, epochs=epochs, batch_size=100,
        checkpoint=_checkpoint(name, epochs, default), desc=name.removeprefix("04_"))
    return model


def mnist_label_baseline(n_labels: int | None = N_LABELS, dataset: str | None = None, epochs: int | None = None):
    """The semi-supervised AAE's baseline: the same encoder, trained by cross-entropy alone on the same labels
    for as many steps as the AAE (:class:`dgsp.models.aae.LabelOnly`)."""
    from dgsp.models.aae import LabelOnly

    default, epochs = _label_epochs(epochs)
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: LabelOnly(z_dim=AAE_STYLE_DIM, n_classes=10, **AAE_LABELS))
    name = f"04_label_only_{n_labels or 'all'}"
    steps = epochs * (len(x) // 100)  # the AAE's number of phase-3 steps
    fit(model, {"labelled": labelled_subset(n_labels, dataset)}, epochs=None, max_steps=steps, batch_size=100,
        checkpoint=_checkpoint(name, epochs, default), desc=name.removeprefix("04_"))
    return model


def mnist_cluster_aae(k: int = 16, dataset: str | None = None, epochs: int | None = None,
                      instance_noise: float = AAE_CLUSTER_NOISE):
    """Lecture 4's unsupervised clustering AAE (Sec. 6): a k-way softmax y with a categorical adversary, a 10-D
    Gaussian style z, no label phase; :data:`AAE_LABELS` with instance noise of standard deviation
    ``instance_noise`` on the discriminators' inputs (0: none, the run that collapses), batch 100, 10 epochs
    (quick: 1)."""
    from dgsp.models.aae import AAE

    k = check_count(k, "mnist_cluster_aae(k): the number of clusters", least=2)
    default, epochs = _label_epochs(epochs)
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: AAE(z_dim=AAE_STYLE_DIM, n_classes=k, disc_noise=instance_noise, **AAE_LABELS))
    name = f"04_aae_cluster{k}" + ("" if instance_noise == AAE_CLUSTER_NOISE else f"_noise{instance_noise:g}")
    fit(model, x, epochs=epochs, batch_size=100, checkpoint=_checkpoint(name, epochs, default),
        desc=f"clustering AAE k={k}, instance noise {instance_noise:g}")
    return model


def mnist_aae_heads(n_labels: int | None = 1000, dataset: str | None = None, epochs: int | None = None):
    """Lecture 4's dimensionality-reduction AAE (Sec. 7): 10 cluster heads plus a 2-D Gaussian style, the
    picture y W + z, semi-supervised with ``n_labels`` labels (the paper shows 1,000);
    :data:`AAE_2D` networks, batch 100, 10 epochs (quick: 2)."""
    from dgsp.models.aae import AAE

    default = by_mode(10, 2)
    epochs = default if epochs is None else epochs
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: AAE(z_dim=2, n_classes=10, cluster_heads=True, **AAE_2D))
    name = f"04_aae_heads_{n_labels or 'all'}"
    fit(model, {"unlabelled": x, "labelled": labelled_subset(n_labels, dataset)}, epochs=epochs, batch_size=100,
        checkpoint=_checkpoint(name, epochs, default), desc=name.removeprefix("04_"))
    return model


# ----------------------------------------------------------------------------- lecture 5
# BiGAN and the baselines of its Table 1, on permutation-invariant MNIST: the paper's 784-1024-1024-50 networks
# with batch norm, a 50-d uniform latent, batch 128, Adam 2e-4 with beta1 = 0.5 and weight decay 2.5e-5
# (dgsp.models.bigan). The authors train 400 epochs (200 at a constant rate, then 200 decaying geometrically to 1/100:
# train_gan.py's default, as train_mnist.sh does not ask for --linear_decay); in the
# issue's budget (BiGAN 60 min, the other rows 30 min together, on a 2-core CPU at 26-37 s per BiGAN epoch) the course
# trains the BiGAN 80 epochs, LR and JLR 15 each and the autoencoders 20 each. Each run keeps its rate for the
# first half and one epoch more, then decays it geometrically (the last epoch of 80 runs at 1.1% of it).
# One addition the paper does not have: dropout 0.2 after each hidden layer of the BiGAN's D (BIGAN_DROPOUT; the
# regulariser of ALI's discriminator, Dumoulin et al. 2017). Without it D wins the game (mean D 0.82 on real pairs,
# 0.18 on generated ones) and the encoder ends below the untrained one; with it D's means (dropout on) end near
# 0.66 and 0.35.
# Table 1 reads each encoder at its last hidden layer, the layer behind the paper's numbers (the authors' README logs
# it as NNC_e-: 96.84% untrained, 92.56% after 1 epoch, 96.28% after 25, 97.14% after 200, 97.35% after 400).
# This recipe on all 10,000 test digits after 80 epochs (bench_bigan, 2026-12-03, 48 min): 96.45% (E(x) 95.07%),
# against 96.40% untrained and 96.91% for raw pixels; lecture 5's run on another machine (2026-12-04, 41 min), same
# seed: 96.07% (E(x) 94.46%), since CPU sums differ in their last bits between machines and the game amplifies
# them. Its screen (another D initialisation, same settings): 95.47%,
# 95.66%, 95.73%, 95.80%, 95.90%, 95.86%, 96.29%, 96.36%, 96.22%, 96.30% after 8, 16, ..., 80 epochs. Dropout 0.5
# in the same screen (2026-12-04): 96.00%, 96.00%, 96.52%, 96.33% after 20, 40, 60, 80 epochs (E(x) 94.69% after
# 80; 2,881 s), no better than 0.2 within the run-to-run spread, so the course keeps 0.2.
# Without dropout (the recipe until 2026-12-03): 95.06% after 1 epoch, 95.41% after 6, 95.75% after 80 (E(x)
# 94.17%); kept at its constant rate (no decay, one seed) it did not climb: 95.41%, 95.36%, 94.80%, 95.04% and
# 95.36% after 6, 11, 16, 21 and 26 epochs, so a longer schedule alone would not reach the paper's 97.39%.
# Other fixes tried without dropout for 10 epochs each, scored on E(x) (94.89% at that point): a bounded encoder
# output, 2 sigmoid - 1 as in the authors' code, 91.56%; a joint D without batch norm and with a gradient penalty of
# weight 10 (lecture 3's remedy), which balances the game (0.58 / 0.43) but gives 94.35%; the authors' network
# layout (no batch norm on the first layer of E and D, z entering D at its second layer), 88.77% (hidden layer
# 89.76% after 6 epochs and 90.57% after 10, against 95.41% after 6); the authors' parametrisation on this layout
# (weights drawn from N(0, 0.02), no biases, batch norm without gain or bias: train_mnist.sh's --nogain --nobias),
# at a constant rate: 96.22% untrained, 94.99% after 4 epochs (the dip of the authors' log), 95.57% after 6, then
# it breaks down (91.90%, 92.89%, 91.47% after 12, 16, 20; hidden layer on all 10,000 test digits).
BIGAN_EPOCHS, BIGAN_DROPOUT = 80, 0.2
REGRESSOR_EPOCHS, AUTOENCODER_EPOCHS = 15, 20


def _decay(epochs: int) -> dict[str, float]:
    """Constant rate for the first half of the run and one epoch more (``Model.on_epoch_end`` sets a rate after each
    epoch), then a geometric decay by 0.01^(1/half) an epoch: the last epoch runs at 0.01^((half-1)/half) of the rate
    (1.1% for 80 epochs); 1/100 would be the next one's."""
    start = epochs // 2
    return {"lr_decay": 0.01 ** (1 / max(1, epochs - start)), "decay_start": start}


def inversion_eval_images(dataset: str | None = None) -> torch.Tensor:
    """The fixed test digits (1,000; quick: 200) on which lecture 5 logs G(E(x)) and E(G(z)) after each epoch: a
    uniform sample of the test split (:func:`dgsp.data.random_subset`), not its first, cleaner, digits."""
    x_test, _ = course_data("test", dataset)
    return random_subset(x_test, n=by_mode(1000, 200))[0]


def _table_run(build: Callable[[int], Model], name: str, full: int, dataset: str | None, epochs: int | None,
               quick: int = 3) -> Model:
    from dgsp.models.bigan import inversion_callback

    default = by_mode(full, quick)
    epochs = default if epochs is None else epochs
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: build(epochs))
    fit(model, x, epochs=epochs, batch_size=128, checkpoint=_checkpoint(name, epochs, default),
        callbacks=[inversion_callback(inversion_eval_images(dataset))], desc=name.removeprefix("05_"))
    return model.eval()


def mnist_bigan(dataset: str | None = None, epochs: int | None = None):
    """Lecture 5's BiGAN on permutation-invariant MNIST, :data:`BIGAN_EPOCHS` epochs (quick: 3), with dropout
    :data:`BIGAN_DROPOUT` after each hidden layer of D."""
    from dgsp.models.bigan import BiGAN

    return _table_run(lambda e: BiGAN(dropout=BIGAN_DROPOUT, **_decay(e)), "05_bigan", BIGAN_EPOCHS, dataset, epochs)


def mnist_latent_regressor(joint: bool = False, dataset: str | None = None, epochs: int | None = None):
    """Table 1's LR (``joint=False``: a GAN, and an encoder regressing z from G(z); its discriminator gives the
    "D" row) or JLR (``joint=True``: G also descends the regression loss, weight 0.25); same networks as the
    BiGAN, :data:`REGRESSOR_EPOCHS` epochs (quick: 3)."""
    from dgsp.models.bigan import LatentRegressor

    weight = 0.25 if joint else 0.0
    return _table_run(lambda e: LatentRegressor(joint_weight=weight, **_decay(e)),
                      "05_jlr" if joint else "05_lr", REGRESSOR_EPOCHS, dataset, epochs)


def mnist_table_autoencoder(loss: str = "l2", dataset: str | None = None, epochs: int | None = None):
    """Table 1's autoencoder rows: the BiGAN's E and G trained on the l2 or l1 reconstruction error, Adam 1e-3,
    :data:`AUTOENCODER_EPOCHS` epochs (quick: 3)."""
    from dgsp.models.bigan import AutoencoderBaseline

    return _table_run(lambda e: AutoencoderBaseline(loss=loss, **_decay(e)), f"05_ae_{loss}", AUTOENCODER_EPOCHS,
                      dataset, epochs)


# The 2-D toy of lecture 5: the curve of dgsp.models.bigan.curve (4,096 points) and a 1-d uniform latent, ReLU /
# LeakyReLU MLPs 128-128 without batch norm, batch 64, Adam 2e-4 with betas (0.5, 0.999), 150 epochs with the decay
# above. Median ||G(E(x)) - x||^2 on 500 points after 150 epochs (one seed): this setting 0.001 (corr(E(G(z)), z)
# 1.00); lr 1e-3 with batch 256 0.06 (0.92); lr 1e-3, betas (0.5, 0.9) 5.1 (the game oscillates); 256-256 at 5e-4 0.03.
# Quick mode trains the same 150 epochs (about 30 s): a shorter run can stop in the middle of the game's
# oscillations, where the result depends on the CPU's rounding. After 40 epochs two of six seeds had not inverted
# the curve on an AMD EPYC (median error 0.35 and 0.28); after 80, all six were at 0.03-0.15 there, but seed 0 on
# another CPU ended at 0.19 after passing 0.02 at epoch 55 (2026-12-02). With 150 epochs, whose decay runs over the
# last 75, that run settles at 0.0008, as the recorded one does.
TOY_BIGAN = dict(data_shape=(2,), latent_dim=1, hidden=(128, 128), norm=None, lr=2e-4, betas=(0.5, 0.999),
                 weight_decay=0.0)


def toy_bigan(epochs: int | None = None, n: int = 4096):
    """Lecture 5's BiGAN on the 2-D curve with a 1-D latent (:data:`TOY_BIGAN`), 150 epochs in both modes, logging
    the inversion errors on 500 of its points every 5 epochs. Returns the model (eval mode) and the data."""
    from dgsp.models.bigan import BiGAN, curve, inversion_callback

    default = 150  # quick mode too: a shorter run can stop mid-oscillation (see TOY_BIGAN)
    epochs = default if epochs is None else epochs
    x = curve(n, seed=0, device=device())
    model = _seeded(lambda: BiGAN(**TOY_BIGAN, **_decay(epochs)))
    fit(model, x, epochs=epochs, batch_size=64, callbacks=[inversion_callback(x[:500], 500)], eval_every=5,
        checkpoint=_checkpoint("05_toy_bigan", epochs, default) + (f"_n{n}" if n != 4096 else ""), desc="toy BiGAN")
    return model.eval(), x


# ----------------------------------------------------------------------------- lecture 6
# The four models of the Fisher AE paper's MNIST experiment (Sec. 4), with the same MLP encoder and decoder
# (784-512-512-8 and back, ReLU), d = 8, Adam 2e-4 with beta1 = 0.5 and batch 128 (the paper's settings). The Fisher AE
# has the FPE prior with K = 5 (dgsp.models.fisher_ae) and a Gaussian decoder of scale s = 0.2: with the paper's
# s = 1 the reconstruction term is too weak beside the posterior term and the decoder ignores z (3 epochs: BCE 211 nats
# per image, the mean digit's); s = 0.1, 0.2, 0.3 gave 120-125 nats after 3 epochs, and 0.2 was the most robust at
# sigma^2 = 0.5. 60 epochs each (the paper: 100) keep the four runs within the hour on a 2-core CPU
# (about 12, 8, 15 and 7 s per epoch). The VAE has a Bernoulli decoder and a N(0, I) prior, WAE-GAN is the AAE of
# lecture 4 with a deterministic encoder, WAE-MMD uses the IMQ kernel with lambda = 10; none binarises the images.
ROBUST_AES = ("fisher_ae", "vae", "wae_gan", "wae_mmd")
ROBUST_AE_EPOCHS = 60
ROBUST_AE = dict(z_dim=8, hidden=(512, 512), betas=(0.5, 0.999))
FISHER_AE = dict(ROBUST_AE, order=5, confine=1e-2, decoder_scale=0.2, lr=2e-4)


def robust_ae(kind: str, stability: float = 1.0) -> Model:
    """A fresh, untrained model of lecture 6: one of :data:`ROBUST_AES` on the shared networks (not on a device)."""
    from dgsp.models.aae import AAE
    from dgsp.models.fisher_ae import FisherAE
    from dgsp.models.vae import VAE
    from dgsp.models.wae import WAEMMD

    if kind not in ROBUST_AES:
        raise ValueError(f"unknown model {kind!r}; choose one of {ROBUST_AES}")
    if stability != 1.0 and kind != "fisher_ae":
        raise ValueError("only the Fisher AE has a stability term")
    if kind == "fisher_ae":
        return FisherAE(**FISHER_AE, stability=stability)
    if kind == "vae":
        return VAE(**ROBUST_AE, lr=2e-4, binarize=False)
    if kind == "wae_gan":
        return AAE(**ROBUST_AE, disc_hidden=(512, 512), posterior="deterministic", prior="gaussian", recon_lr=2e-4,
                   reg_lr=2e-4)
    return WAEMMD(**ROBUST_AE, lam=10.0, lr=2e-4)


def mnist_robust_ae(kind: str, dataset: str | None = None, epochs: int | None = None, stability: float = 1.0):
    """Lecture 6's MNIST model ``kind`` (:func:`robust_ae`), :data:`ROBUST_AE_EPOCHS` epochs (quick: 2)."""
    default = by_mode(ROBUST_AE_EPOCHS, 2)
    epochs = default if epochs is None else epochs
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: robust_ae(kind, stability))
    name = f"06_{kind}" + ("" if stability == 1.0 else f"_stab{stability:g}")
    fit(model, x, epochs=epochs, batch_size=128, checkpoint=_checkpoint(name, epochs, default), desc=kind)
    return model.eval()


# Lecture 6's toys: score matching in 1-D and SVGD in 2-D, both on lecture 2's bimodal densities (dgsp.divergences).
SCORE_MATCHING_ORDER = 4
# SVGD's particles against the grid integrals (2026-12-04; about 9 ms a step on a CPU): mean error 6.1% of sqrt(tr Cov)
# after 500 steps (quick mode), 3.0% after 2,000, 2.1% after 8,000; covariance error 0.75%, 0.84%, 0.74%; share of
# particles with x_1 < 0 (the density's: 59.5%) 56.4%, 57.6%, 58.2%.
SVGD_TOY = dict(n=500, steps=by_mode(2000, 500), step_size=0.2)


def score_matching_data(n: int = 5000, seed: int = 0) -> torch.Tensor:
    """n draws (float64, shape (n, 1)) of the 1-D bimodal density of lecture 2 (``divergences.bimodal(1)``): the
    data lecture 6 fits a polynomial exponential family to by score matching."""
    from dgsp.divergences import bimodal

    return bimodal(1).sample(n, generator=torch.Generator().manual_seed(seed))


def svgd_bimodal(n: int | None = None, steps: int | None = None, step_size: float | None = None, every: int = 0,
                 seed: int = 0) -> dict:
    """SVGD on lecture 2's 2-D bimodal density, given to it by its score (no normaliser): ``n`` particles from N(0, I)
    (:data:`SVGD_TOY`: 2,000 steps, quick mode 500). Returns the particles, the snapshots (every
    ``every`` steps), the density, the grid integrals of its mean and covariance, and the particles' relative
    errors: ||mean - grid mean|| / sqrt(tr Cov) and ||Cov - grid Cov||_F / ||grid Cov||_F."""
    from dgsp.divergences import bimodal
    from dgsp.score import grid_moments, svgd

    n = SVGD_TOY["n"] if n is None else check_count(n, "svgd_bimodal(n)", least=2)
    steps = SVGD_TOY["steps"] if steps is None else steps
    step_size = SVGD_TOY["step_size"] if step_size is None else step_size
    target = bimodal(2)
    log_p = lambda z: target.log_prob(z) + 3.0  # noqa: E731  any constant: SVGD needs the score only
    x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x, trail = svgd(target.score, x0, steps=steps, step_size=step_size, every=every)  # the score in closed form
    mean, cov = grid_moments(log_p, -9.0, 9.0, 401)
    return {"particles": x, "trail": trail, "target": target, "log_density": log_p, "grid_mean": mean,
            "grid_cov": cov, "mean_error": float((x.mean(0) - mean).norm() / cov.trace().sqrt()),
            "cov_error": float((torch.cov(x.T) - cov).norm() / cov.norm())}


# ----------------------------------------------------------------------------- lecture 7
# The EBM-GAN of dgsp.models.ebm_gan. Toys: lecture 3's ring and grid with wider modes (std 0.1), so that a density
# drawn on a 128 x 128 grid resolves them; ReLU MLPs 128-128-128, a 2-d latent, batch 256, Adam 1e-3 (D 2e-3) with
# betas (0.5, 0.999), 3,000 steps (quick: 400), the entropy term at weight 1 (eq. 3 exactly). Trials on ring8 after
# 3,000 steps (TV of exp(D) to the truth; share of G's samples within 3 std of a mode):
#   alpha 0.1,  r1 1:     TV 0.88, 1 mode of 8 (energies held in [-5, 5]: exp(D) cannot be sharp)
#   alpha 1e-3, r1 0.01:  TV 0.52, 8 modes, 68% high quality, 82% after 200 Langevin steps   <- the course's
#   alpha 1e-3, r1 0.1:   TV 0.71, 8 modes, 24%
#   alpha 1e-4, r1 1e-3:  TV 0.92, 1 mode (the energies run away)
#   the course's without the entropy term: TV 0.87, 8 modes, 66%
TOY_EBM_STD = 0.1
TOY_EBM = dict(latent_dim=2, hidden=(128, 128, 128), lr=1e-3, betas=(0.5, 0.999), alpha=1e-3, r1=1e-2)
TOY_EBM_DATA = 8192
# Langevin on a toy EBM (x <- x + eps/2 grad D + sqrt(eps) n), from 2,000 generator samples: ring8 after 200 steps,
# share within 3 std of a mode 68% -> 82% at eps = 1e-3, 79% at 1e-2. These trials are one seed each: the recorded
# run of lecture 7 (2026-12-01) has TV 0.72 on the ring and 74% -> 78% after the Langevin steps.
TOY_LANGEVIN = dict(steps=200, step_size=1e-3)


def ebm_toy(name: str):
    """Lecture 7's 2-D mixtures: ``"ring8"`` or ``"grid25"`` of :mod:`dgsp.data` with std :data:`TOY_EBM_STD`."""
    from dgsp import data

    if name not in ("ring8", "grid25"):
        raise ValueError(f"unknown toy {name!r}; choose 'ring8' or 'grid25'")
    return getattr(data, name)(std=TOY_EBM_STD)


def toy_ebm_gan(name: str, entropy: float = 1.0, steps: int | None = None):
    """The EBM-GAN on a lecture-7 toy (:data:`TOY_EBM`), 3,000 steps (quick: 400) of batch 256 on 8,192 points.
    Returns the model (eval mode) and the training points."""
    from dgsp.models.ebm_gan import EBMGAN

    default = by_mode(3000, 400)
    steps = default if steps is None else steps
    x = ebm_toy(name).sample(TOY_EBM_DATA, seed=0, device=device())
    model = _seeded(lambda: EBMGAN(**TOY_EBM, entropy=entropy))
    tag = "" if entropy == 1.0 else f"_entropy{entropy:g}"
    fit(model, x, epochs=None, max_steps=steps, batch_size=256,
        checkpoint=_checkpoint(f"07_toy_ebm_{name}{tag}", steps, default), desc=f"EBM-GAN {name}{tag}")
    return model.eval(), x


def toy_gan(name: str, steps: int | None = None):
    """Lecture 3's non-saturating GAN (:func:`dgsp.models.gan.toy_recipe`) on the same toy and for as many steps
    as :func:`toy_ebm_gan`: the standard GAN whose D lecture 7 draws beside the EBM's."""
    from dgsp.models.gan import toy_recipe

    default = by_mode(3000, 400)
    steps = default if steps is None else steps
    x = ebm_toy(name).sample(TOY_EBM_DATA, seed=0, device=device())
    seed_everything(0)
    model, _ = toy_recipe("nonsaturating", gen_steps=steps, n_data=len(x))
    model = model.to(device())
    fit(model, x, epochs=None, max_steps=steps, batch_size=256,
        checkpoint=_checkpoint(f"07_toy_gan_{name}", steps, default), desc=f"GAN {name}")
    return model.eval(), x


# MNIST: lecture 3's DCGAN pair with 64-d codes and 64 channels (D without batch norm: 138,561 parameters, so one AFV
# has 138,561 coordinates), batch 64, one G step then one D step, Adam 2e-4 for G and 4e-4 for D. The entropy term is
# off: with d = 784 the nearest-neighbour estimate dominates D early on (Frechet distance after 500 steps 728 with it,
# 465 without), and the batch norm in G stands in for it, as the paper says practice does. D's stabiliser is
# lecture 3's gradient penalty (weight 10, betas (0.5, 0.9)) rather than the toys' alpha and r1: a linear probe
# (L-BFGS) on the count-sketched AFVs of 10,000 training digits, tested on 2,000, after 2 epochs:
#   32 channels, alpha 1e-3, r1 0.01, betas (0, 0.999):  95.1% (96.5% after 8 epochs; Frechet 73 after 8)
#   64 channels, the same:                                96.1% (Adam probe), at 2.2x the time per step
#   32 channels, gradient penalty 10:                     97.2% (Frechet 124 after 2 epochs, against 210)
# 8 epochs (quick: 2), about 3.5 min each on a 2-core CPU. Extending this run to 12 epochs lowers the Frechet distance
# from 40.9 to 33.6 but leaves the probe where it was (20,000 training / 10,000 test digits: D's features 97.99%,
# AFVs 98.09%, the same as after 8 epochs), so the course keeps 8. A wider D probes better early
# (2026-12-02, 2 epochs, the same G, probe on 10,000 training / 2,000 test digits with a 32,768-bucket sketch):
#   D with 64 channels (this recipe, 138,561 parameters):   AFVs 96.30%, D's features 96.25%, 197 s of training
#   D with 128 channels (539,265 parameters):               AFVs 97.10%, D's features 96.90%, 495 s
# Trained for the full 8 epochs (242 s an epoch, 2.5x this recipe's on the same kind of CPU; Frechet 27.8) and
# probed on all 60,000 / 10,000 digits, the 128-channel D reaches 98.83% with its features and 98.94% with AFVs
# sketched to 24,576 coordinates that keep the first convolution and the head (14,721) exact; 98.92% from those
# 14,721 alone, 98.75% with every coordinate hashed to 16,384. Extended to 12 epochs: 98.81% and 98.80% (20,480
# buckets, the largest whose 70,000 AFVs fit the 8 GB budget). Retrained on another machine (2026-12-04, the same
# seed, 8 epochs at 300 s each, Frechet 25.4; the AFVs of all 70,000 digits in one pass of 586 s, float16 sketches):
# D's features 98.77%; AFVs 98.92% at 16,384 buckets (the 14,721 exact coordinates and 1,663 for conv2), 98.90% from
# the exact coordinates alone, 98.86% at 24,576 and 98.87% at 32,768 (the 64-channel recipe's D on the same
# machine: 98.66% and 98.63%). So the wider D gains about 0.3 points but stops 8-14 test digits short of 99%, more
# buckets for conv2 do not help, and the course keeps 64 channels (a quarter of the AFV cost).
# The AFV paper's probe (apple/ml-afv's classify_cifar10.py: dropout 0.5 on the AFVs, a squared hinge loss, Adam)
# was tried on the recipe's 16,384-d AFVs the same day (50,000 training digits, Adam with a cosine schedule, batch
# 128): 96.08% (lr 1e-4, 10 epochs), 95.00% (1e-5, 15), cross-entropy instead of the hinge 97.08%, dropout 0.1
# 97.42%, no dropout 96.86%, all below the L-BFGS probe's 98.63%: on standardised features dropout acts much like
# the L2 penalty the course's probe already has (Wager et al. 2013), and plain minibatch Adam does not reach its
# optimum in this budget.
EBM_MNIST = dict(data_shape=(1, 28, 28), latent_dim=GAN_LATENT, arch="dcgan", channels=64, lr=2e-4,
                 betas=(0.5, 0.9), alpha=0.0, r1=0.0, gp=10.0, entropy=0.0)
EBM_EPOCHS = 8


def mnist_ebm_gan(dataset: str | None = None, epochs: int | None = None):
    """Lecture 7's EBM-GAN on MNIST (:data:`EBM_MNIST`), :data:`EBM_EPOCHS` epochs (quick: 2), the Fréchet distance
    logged after each epoch and samples of fixed codes kept."""
    from dgsp.models.ebm_gan import EBMGAN

    default = by_mode(EBM_EPOCHS, 2)
    epochs = default if epochs is None else epochs
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: EBMGAN(**EBM_MNIST))
    codes = gan_snapshot_codes().to(model.device)
    fit(model, x, epochs=epochs, batch_size=64, callbacks=[frechet_callback(dataset)],
        snapshot=lambda m: m.sample(len(codes), z=codes), checkpoint=_checkpoint("07_ebm_gan", epochs, default),
        desc="EBM-GAN")
    return model.eval()


# AFVs of the MNIST EBM-GAN (dgsp.fisher): diag I and the centre from 5,000 generator samples (quick: 500; the
# reference code uses 1,024), AFVs streamed 256 at a time and count-sketched from 138,561 to 16,384 coordinates
# (quick: 8,192) for the linear probe, and to 2,048 for the 1-NN search: 60,000 x 16,384 floats are 3.9 GB, the
# full AFVs would be 33 GB. The sketch keeps the first convolution and the linear head exact ("exact", 7,361
# coordinates) and hashes the second convolution's 131,200 into the other 9,023 buckets. Measured on the 8-epoch
# D (20,000 training / 10,000 test digits, the course's probe): 98.09% with the head kept, 97.88% with every
# coordinate hashed, 97.98% with a strided subset of conv2 instead of its sketch (the reference code's choice),
# 97.99% for D's features; on all 60,000 (bench_afv): 98.65% against 98.45% with every coordinate hashed, and 98.67%
# for D's features. Signed square roots and L2 normalisation (Perronnin et al.'s "improved" Fisher vectors) and
# other penalties (1e-4, 1e-2) moved none of these by more than 0.15 points on 10,000 digits. Nor is the probe
# stopped short (2026-12-02, all 60,000 digits, the same recipe retrained on another CPU: AFVs 98.68%, D's features
# 98.56%): 300 L-BFGS iterations instead of 100 give 98.71% and 98.53%, and a penalty of 1e-4 with 300 iterations
# 98.70% and 98.55%. The sketch's cost, measured first on lecture 3's WGAN-GP critic (36,513 coordinates;
# 10,000 training / 2,000 test digits, Adam probe): accuracy 97.5% full, 97.3% at 16,384, 97.1% at 8,192,
# 96.1% at 4,096; Spearman agreement of pairwise distances 0.999, 0.998, 0.997. bench_afv re-measures it on the
# EBM-GAN. All of these trials hashed with an uneven rule (a bucket drawn from all k, then reduced modulo the free
# ones, so the first free buckets took twice the share); since 2026-12-03 the hashed coordinates spread evenly,
# and lecture 7's run of that day gives 98.63% for the AFVs (98.65% before) against 98.67% for D's features (with
# metrics.linear_probe's faster gradient, which moves the last digit of some rows).
AFV = dict(info_samples=by_mode(5000, 500), sketch_dim=by_mode(16384, 8192), exact=("net.0", "net.6"),
           nn_sketch_dim=2048, chunk=256)


def mnist_fisher_embedding(model, sketch_dim: int | None = None, info_samples: int | None = None):
    """The :class:`dgsp.fisher.FisherEmbedding` of an EBM-GAN's D: centre and diag I from its generator's seeded
    samples (:data:`AFV`), a seeded count sketch to ``sketch_dim`` coordinates (default ``AFV["sketch_dim"]``;
    0 keeps the full AFV) that keeps the layers named in ``AFV["exact"]`` whole."""
    from dgsp.fisher import FisherEmbedding
    from dgsp.metrics import sample_in_chunks

    info_samples = AFV["info_samples"] if info_samples is None else info_samples
    sketch_dim = AFV["sketch_dim"] if sketch_dim is None else sketch_dim
    fake = sample_in_chunks(model.sample, info_samples, seed=123)
    return FisherEmbedding.from_samples(model.discriminator.eval(), fake, sketch_dim=sketch_dim or None,
                                        chunk=AFV["chunk"], exact_params=AFV["exact"])


def fisher_gap_callback(train_images: torch.Tensor, held_out: torch.Tensor, n: int = 500,
                        dataset: str | None = None) -> Callable[[Model, int], dict]:
    """A ``fit`` callback for the overfitting monitor: with the current D's AFVs (centre and diag I from n generator
    samples), the Fisher set distances of n fresh samples to ``train_images`` and to ``held_out`` (n of each), and
    their Fréchet distances in the course classifier's features."""
    from dgsp import metrics
    from dgsp.fisher import FisherEmbedding, set_distance

    clf = metrics.mnist_classifier(dataset or resolve("mnist"))
    train_images, held_out = train_images[:n], held_out[:n]
    feats_train, feats_held = metrics.classifier_features(clf, train_images), metrics.classifier_features(clf, held_out)

    def callback(model: Model, epoch: int) -> dict:
        d = model.discriminator
        was = d.training
        d.eval()
        emb = FisherEmbedding.from_samples(d, metrics.sample_in_chunks(model.sample, n, seed=1000 + epoch))
        gen = metrics.sample_in_chunks(model.sample, n, seed=2000 + epoch)
        v_gen, v_train, v_held = (emb.vectors(x) for x in (gen, train_images, held_out))
        f_gen = metrics.classifier_features(clf, gen)
        d.train(was)
        return {"fisher_train": set_distance(v_gen, v_train), "fisher_held_out": set_distance(v_gen, v_held),
                "frechet_train": metrics.frechet_distance(f_gen, feats_train),
                "frechet_held_out": metrics.frechet_distance(f_gen, feats_held)}

    return callback


# The overfitting monitor: the same EBM-GAN on 1,000 training digits (quick: 200), 160 epochs (quick: 20) of 15
# steps (each digit seen 160 times, against 8 in the main run), monitored every 8 epochs (quick: 5) with 1,000
# generator samples against the 1,000 training digits and 1,000 held-out test digits (quick: 200 of each). Read by
# overfit_gap: the relative gap held-out / train - 1, averaged over the first and over the last three monitored
# epochs (quick: one). Why (2026-12-03):
#   one point is noisy: on the final D of a run monitored with 500 samples per set every 16 epochs, the callback
#   called with 8 sample seeds gave a gap of 8.4 on average with a standard deviation of 2.1 (6.1 to 11.7), and 7.6
#   with 0.8 at 1,000 samples (6.7 to 9.1); that run's last point read 2.5 and its first 4.5 (the run of
#   2026-12-01 with the same seed: 2.2 and 9.3);
#   the distances fall tenfold: retrained with this recipe (a screen, 369 s), Fisher(samples, train) goes 624,
#   206, 155 at epochs 8-24 and ends near 60. The raw gap, averaged as above, goes 6.8 -> 6.5, dominated by the
#   first point (13.9 of 624), while the relative gap goes 1.9% -> 11.0% (x5.7). With seed 1 instead of 0 (the
#   same screen): raw 22.2 -> 3.5, relative 1.6% -> 7.7% (x4.7). The earlier run at 500 samples and every 16
#   epochs, read the same way: relative 4.8% -> 7.6% (x1.6). The relative reading was chosen after the first of
#   these screens; the seed-1 screen and the older run are the checks that it is not a one-run accident. Lecture
#   7's run of this recipe (2026-12-03, seed 0 in another process, so not the screen's numbers): 2.7% -> 15.4%
#   (x5.6), raw 8.7 -> 8.2. The Frechet distances of the same snapshots, read the same way, grow less: 4.2% ->
#   8.8% (x2.1; the two screens x2.3 and x2.7, the 500-sample run x1.1). Lecture 7's run of 2026-12-04 on another
#   machine, same seed: 0.4% -> 7.2% (x16, large because the start is near zero), raw 4.9 -> 4.4; Frechet 2.0% ->
#   2.6% (x1.3). The gap opens in every run; how far is not steady from run to run.
OVERFIT = dict(n=by_mode(1000, 200), epochs=by_mode(160, 20), every=by_mode(8, 5), monitor=by_mode(1000, 200),
               window=by_mode(3, 1))


def mnist_ebm_gan_overfit(dataset: str | None = None, epochs: int | None = None):
    """Lecture 7's overfitting run (:data:`OVERFIT`): :data:`EBM_MNIST` on a small class-balanced training subset
    for many epochs, with :func:`fisher_gap_callback` logging the train / held-out Fisher and Fréchet distances."""
    from dgsp.models.ebm_gan import EBMGAN

    dataset = dataset or resolve("mnist")
    default = OVERFIT["epochs"]
    epochs = default if epochs is None else epochs
    x, _ = load(dataset, "train", n=OVERFIT["n"])
    held, _ = load(dataset, "test", n=OVERFIT["monitor"])
    model = _seeded(lambda: EBMGAN(**EBM_MNIST))
    name = f"07_ebm_gan_overfit_n{OVERFIT['n']}_monitor{OVERFIT['monitor']}_every{OVERFIT['every']}"
    fit(model, x, epochs=epochs, batch_size=64, eval_every=OVERFIT["every"],
        callbacks=[fisher_gap_callback(x.to(model.device), held.to(model.device), OVERFIT["monitor"], dataset)],
        checkpoint=_checkpoint(name, epochs, default), desc="EBM-GAN, overfitting")
    return model.eval()


def overfit_gap(history: History, window: int | None = None, metric: str = "fisher") -> dict:
    """The overfitting monitor's reading of a history logged by :func:`fisher_gap_callback`, for ``metric``
    ``"fisher"`` (the Fisher set distances) or ``"frechet"`` (the Fréchet distances of the same snapshots). At each
    monitored epoch: the gap held-out - train and the relative gap held-out / train - 1 (each epoch's D measures in
    its own units: the Fisher distances fall tenfold over the run). ``start`` and ``end`` are the relative gap's
    means over the first and the last ``window`` monitored epochs (default ``OVERFIT["window"]``), ``ratio`` is
    end / start where start > 0, and ``gap_start``, ``gap_end`` are the same means of the gap itself."""
    import numpy as np

    if metric not in ("fisher", "frechet"):
        raise ValueError(f"unknown metric {metric!r}; choose 'fisher' or 'frechet'")
    window = OVERFIT["window"] if window is None else window
    steps, train = history.series(f"{metric}_train")
    _, held = history.series(f"{metric}_held_out")
    train, held = np.asarray(train), np.asarray(held)
    if window < 1 or len(train) < 2 * window:
        raise ValueError(f"the monitor logged {len(train)} points; averaging the first and the last {window} needs "
                         f"at least {2 * window} that do not overlap")
    gap, relative = held - train, held / train - 1
    start, end = float(relative[:window].mean()), float(relative[-window:].mean())
    return {"steps": np.asarray(steps), "gap": gap, "relative": relative, "start": start, "end": end,
            "ratio": end / start if start > 0 else float("nan"),
            "gap_start": float(gap[:window].mean()), "gap_end": float(gap[-window:].mean())}
