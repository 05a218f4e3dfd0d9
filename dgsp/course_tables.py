"""The course's closing tables (lecture 7): every lecture's MNIST model scored under one protocol.

* **Representations** (:func:`representation_features`, :func:`representation_table`): a feature map of each
  lecture, frozen, scored on the test set by a 1-nearest-neighbour classifier whose memory is the training set
  (BiGAN's Table 1 protocol, :func:`dgsp.metrics.one_nn_accuracy`) and by a linear probe trained on the training set
  (:func:`dgsp.metrics.linear_probe`, the same settings for every row).
* **Samples** (:func:`sample_table`): the Fréchet distance of 5,000 samples (quick: 1,000) to as many test digits in
  the course classifier's features, and the share of the rarest class among the samples (lecture 3's protocol,
  :func:`dgsp.metrics.sample_quality`).

Every model comes from its recipe in :mod:`dgsp.recipes`, so a model trained by its own lecture is loaded from its
checkpoint and a missing one is trained here first.
"""
from __future__ import annotations

from typing import Callable

import torch

from dgsp import metrics, recipes
from dgsp.core import by_mode, device
from dgsp.data import load, resolve

Features = tuple[torch.Tensor, torch.Tensor]  # (training features, test features)

# name -> (lecture, what the features are)
REPRESENTATIONS: dict[str, tuple[int, str]] = {
    "pixels": (0, "the 784 pixels"),
    "pca": (1, "50 principal components (scikit-learn PCA)"),
    "ae": (5, "the l2 autoencoder's 50-d code (lecture 5's Table 1 row, the BiGAN's networks)"),
    "vae": (2, "the VAE's posterior mean (50-d)"),
    "aae": (4, "the clustering AAE's 16-way softmax and 10-d style (26-d)"),
    "bigan": (5, "the BiGAN encoder E(x) (50-d)"),
    "gan_d": (3, "the NS-GAN discriminator's last hidden layer (3,136-d)"),
    "ebm_d": (7, "the EBM-GAN discriminator's last hidden layer (6,272-d)"),
}
SAMPLERS: dict[str, tuple[int, str]] = {
    "vae": (2, "VAE, decoder means of z ~ N(0, I)"),
    "gan_ns": (3, "NS-GAN (gradient-penalised D)"),
    "wgangp": (3, "WGAN-GP"),
    "aae": (4, "AAE, 2-d Gaussian prior"),
    "bigan": (5, "BiGAN generator"),
    "fisher_ae": (6, "Fisher AE, score-matched prior, exact draws"),
    "ebm_gan": (7, "EBM-GAN generator"),
    "ebm_gan_langevin": (7, "EBM-GAN, generator + Langevin on D"),
}

# Langevin on the MNIST EBM (lecture 7): x <- x + eps/2 grad D(x) + sqrt(eps) n from G's samples, pixels kept in [0, 1].
MNIST_LANGEVIN = dict(steps=20, step_size=1e-4)


def _check(name: str, table: dict) -> None:
    if name not in table:
        raise ValueError(f"unknown row {name!r}; choose one of {list(table)}")


def last_hidden(discriminator: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The features a DCGAN discriminator's linear head reads (everything but its last layer)."""
    body = discriminator.net[:-1]
    return lambda x: body(x).flatten(1)


def representation_features(name: str, x_train: torch.Tensor, x_test: torch.Tensor,
                            dataset: str | None = None) -> Features:
    """The frozen features of row ``name`` of :data:`REPRESENTATIONS` for the training and test images."""
    _check(name, REPRESENTATIONS)
    if name == "pixels":
        return x_train.flatten(1), x_test.flatten(1)
    if name == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(50, random_state=0).fit(x_train.flatten(1).cpu().numpy())
        return tuple(torch.as_tensor(pca.transform(x.flatten(1).cpu().numpy()), dtype=torch.float32)
                     for x in (x_train, x_test))
    if name == "ae":
        fn = recipes.mnist_table_autoencoder("l2", dataset).encode
    elif name == "vae":
        model = recipes.mnist_vae(dataset)
        fn = lambda x: model.encode(x)[0]  # noqa: E731
    elif name == "aae":
        model = recipes.mnist_cluster_aae(16, dataset)
        fn = lambda x: (lambda out: torch.cat([out["y"], out["mu"]], 1))(model.encode_all(x))  # noqa: E731
    elif name == "bigan":
        fn = recipes.mnist_bigan(dataset).features
    elif name == "gan_d":
        fn = last_hidden(recipes.mnist_gan("gan_ns_gp", dataset).discriminator.eval())
    else:
        fn = last_hidden(recipes.mnist_ebm_gan(dataset).discriminator.eval())
    with torch.no_grad():
        return metrics.map_batches(fn, x_train), metrics.map_batches(fn, x_test)


def representation_table(rows: dict[str, Features], y_train: torch.Tensor, y_test: torch.Tensor,
                         nn_rows: dict[str, Features] | None = None, probe: dict | None = None,
                         one_nn: bool = True) -> dict[str, dict]:
    """1-NN and linear-probe test accuracy of each row's features (``nn_rows`` may give other features for the
    1-NN, e.g. a smaller sketch of a very wide row; ``one_nn=False`` skips the 1-NN). ``probe`` overrides
    :func:`dgsp.metrics.linear_probe`'s settings, the same for every row."""
    out = {}
    for name, (f_train, f_test) in rows.items():
        out[name] = {"dim": f_train.shape[1],
                     "linear_probe": metrics.linear_probe(f_train, y_train, f_test, y_test, **(probe or {}))}
        if one_nn:
            nn_train, nn_test = (nn_rows or {}).get(name, (f_train, f_test))
            out[name]["one_nn"] = metrics.one_nn_accuracy(nn_train, y_train, nn_test, y_test)
    return out


def score_representations(names, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                          y_test: torch.Tensor, dataset: str | None = None, probe: dict | None = None,
                          one_nn: bool = True) -> dict[str, dict]:
    """:func:`representation_table` for rows of :data:`REPRESENTATIONS`, computing each row's features just before
    scoring them and dropping them after, so that only one row's features are held at a time."""
    out = {}
    for name in names:
        feats = representation_features(name, x_train, x_test, dataset)
        out.update(representation_table({name: feats}, y_train, y_test, probe=probe, one_nn=one_nn))
        del feats
    return out


def sampler(name: str, dataset: str | None = None) -> Callable[..., torch.Tensor]:
    """``sample(n, generator=)`` of row ``name`` of :data:`SAMPLERS` (images in [0, 1], shape (n, 1, 28, 28))."""
    _check(name, SAMPLERS)
    if name == "vae":
        return recipes.mnist_vae(dataset).sample
    if name in ("gan_ns", "wgangp"):
        return recipes.mnist_gan("gan_ns_gp" if name == "gan_ns" else "wgangp", dataset).sample
    if name == "aae":
        return recipes.mnist_aae(dataset=dataset).sample
    if name == "bigan":
        return recipes.mnist_bigan(dataset).sample
    if name == "fisher_ae":
        from dgsp.models.fisher_ae import score_matched_prior

        model = recipes.mnist_robust_ae("fisher_ae", dataset)
        x, _ = recipes.course_data("train", dataset)
        prior = score_matched_prior(metrics.map_batches(model.encode, x.to(model.device)), 4)
        return lambda n, generator=None: model.sample(n, generator=generator, prior=prior, exact=True)
    model = recipes.mnist_ebm_gan(dataset)
    if name == "ebm_gan":
        return model.sample
    return lambda n, generator=None: langevin_samples(model, model.sample(n, generator=generator), generator)


def langevin_samples(model, start: torch.Tensor, generator: torch.Generator | None = None,
                     steps: int | None = None, step_size: float | None = None) -> torch.Tensor:
    """:data:`MNIST_LANGEVIN` steps of Langevin dynamics on the EBM's D from ``start``, pixels clamped to [0, 1]."""
    from dgsp.score import langevin

    steps = MNIST_LANGEVIN["steps"] if steps is None else steps
    step_size = MNIST_LANGEVIN["step_size"] if step_size is None else step_size
    out, _ = langevin(model.log_density, start, steps, step_size, generator=generator, clamp=(0.0, 1.0))
    return out


def samplers(dataset: str | None = None, rows: tuple[str, ...] | None = None) -> dict[str, Callable[..., torch.Tensor]]:
    """:func:`sampler` for each row (default: all of :data:`SAMPLERS`), built once, to score and to show."""
    return {name: sampler(name, dataset) for name in rows or tuple(SAMPLERS)}


def sample_table(dataset: str | None = None, rows: tuple[str, ...] | None = None, n: int | None = None,
                 draws: dict[str, Callable[..., torch.Tensor]] | None = None) -> dict[str, dict]:
    """Fréchet distance and rarest-class share of each sampler's n samples (5,000; quick: 1,000) against as many
    test digits, in the course classifier's features; a seeded draw per row. ``draws`` (from :func:`samplers`)
    reuses samplers already built; by default they are built here."""
    dataset = dataset or resolve("mnist")
    if draws is None:
        draws = samplers(dataset, rows)
    else:
        for name in rows or ():
            _check(name, draws)
        draws = {name: draws[name] for name in rows or draws}
    clf = metrics.mnist_classifier(dataset)
    x_test, _ = recipes.course_data("test", dataset)
    n = min(len(x_test), by_mode(5000, 1000)) if n is None else n
    ref = metrics.classifier_features(clf, load(dataset, "test", n=n)[0])
    out = {}
    for name, draw in draws.items():
        images = metrics.sample_in_chunks(draw, n, seed=0).to(device())
        out[name] = metrics.sample_quality(clf, images, ref)
    return out
