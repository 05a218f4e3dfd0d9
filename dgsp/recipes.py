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

from dgsp.core import by_mode, device, seed_everything
from dgsp.data import binarize, load, resolve
from dgsp.train import Model, fit

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
    """The fixed binarised test digits (300; quick: 100) on which lecture 2 reports test ELBOs."""
    x_test, _ = course_data("test", dataset)
    return binarize(x_test[:by_mode(300, 100)], generator=torch.Generator().manual_seed(1))


def test_elbo_callback(x_eval: torch.Tensor) -> Callable[[Model, int], dict]:
    """A ``fit`` callback logging ``test_elbo``: the ELBO on ``x_eval`` with a fixed seed."""
    from dgsp.models.vae import rate_distortion

    return lambda model, epoch: {"test_elbo": rate_distortion(model, x_eval,
                                                              generator=torch.Generator().manual_seed(0))["elbo"]}


def mnist_vae(dataset: str | None = None, epochs: int | None = None):
    """Lecture 2's VAE: Burda et al.'s 784-200-200-50 MLP with a Bernoulli decoder on dynamically binarised
    digits, Adam 1e-3, batch 100, 20 epochs (quick: 5), the test ELBO logged after every epoch."""
    from dgsp.models.vae import VAE

    default = by_mode(20, 5)
    epochs = default if epochs is None else epochs
    x, _ = course_data("train", dataset)
    model = _seeded(lambda: VAE(z_dim=50, hidden=(200, 200)))
    fit(model, x, epochs=epochs, batch_size=100, callbacks=[test_elbo_callback(vae_eval_images(dataset))],
        checkpoint=_checkpoint("02_vae_mlp_z50", epochs, default), desc="VAE")
    return model


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
