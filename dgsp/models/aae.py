"""Lecture 4: adversarial autoencoders (Makhzani, Shlens, Jaitly, Goodfellow and Frey 2015).

An autoencoder whose *aggregated posterior*

    q(z) = ∫ q(z|x) p_d(x) dx                                          (Makhzani et al., Sec. 2)

is pushed towards a prior p(z) by a GAN played on the codes: a discriminator D tells codes of data
apart from draws of p(z), and the encoder, acting as D's generator, learns to fool it. Every minibatch
runs the paper's phases in order (Sec. 2):

1. **reconstruction**: encoder and decoder descend the reconstruction error;
2. **regularisation**: D ascends eq. 1 of the GAN paper on (p(z) draws: real, encoder codes: fake), then
   the encoder descends the non-saturating generator loss;
3. (semi-supervised only, Sec. 5) **classification**: the encoder's q(y|x) descends the cross-entropy on
   a labelled minibatch.

Compared with the VAE (Sec. 2.1), whose KL term splits into −entropy + cross-entropy(q(z), p(z)), the
adversary replaces both and needs only *samples* of p(z), never its density.

The losses come from :mod:`dgsp.adversarial`, shared with lectures 3, 5 and 7.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from dgsp.adversarial import discriminator_loss, generator_loss_nonsaturating
from dgsp.core import as_numpy, check_count, check_generator, randn_like
from dgsp.data import check_images
from dgsp.nets import MLP, check_shape
from dgsp.train import Model

POSTERIORS = ("deterministic", "gaussian", "universal")


# ----------------------------------------------------------------------------- priors: samplers only
def _normal(n: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(n, dim, generator=generator)


def gaussian_prior(n: int, dim: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """n draws of N(0, I_dim), on the CPU."""
    return _normal(n, dim, generator)


def mixture_prior(n: int, k: int = 10, radius: float = 4.0, std: tuple[float, float] = (1.0, 0.25),
                  generator: torch.Generator | None = None, component: torch.Tensor | None = None) -> torch.Tensor:
    """n draws of an equal-weight mixture of ``k`` 2-D Gaussians whose means sit on a circle of ``radius``,
    each stretched along its radius (standard deviations ``std`` = (radial, tangential)), as in the paper's
    Figure 2/4. ``component`` (n,) picks the mixture components instead of drawing them."""
    if component is None:
        component = torch.randint(k, (n,), generator=generator)
    angle = component.float() * (2 * math.pi / k)
    radial = torch.stack([angle.cos(), angle.sin()], 1)
    tangential = torch.stack([-angle.sin(), angle.cos()], 1)
    eps = _normal(n, 2, generator)
    return radius * radial + std[0] * eps[:, :1] * radial + std[1] * eps[:, 1:] * tangential


def swiss_roll_prior(n: int, turns: float = 1.5, noise: float = 0.05, generator: torch.Generator | None = None,
                     position: torch.Tensor | None = None) -> torch.Tensor:
    """n draws on a 2-D swiss roll: t ~ U[0, 1] along the curve, radius growing with t, a little Gaussian noise.
    ``position`` (n,) in [0, 1] places the points instead of drawing t."""
    t = torch.rand(n, generator=generator) if position is None else position.float()
    angle = 2 * math.pi * turns * torch.sqrt(t)  # sqrt spreads the points outwards; per unit length of the
    # spiral they are densest at the outer end and thin out towards the centre (the radius starts at 0.5)
    r = 0.5 + 3.5 * torch.sqrt(t)
    return torch.stack([r * angle.cos(), r * angle.sin()], 1) + noise * _normal(n, 2, generator)


PRIORS: dict[str, Callable[..., torch.Tensor]] = {
    "gaussian": gaussian_prior, "mixture": mixture_prior, "swiss_roll": swiss_roll_prior}


def sample_prior(name: str, n: int, dim: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """n draws of a prior by name (``gaussian``, ``mixture``, ``swiss_roll``; the last two are 2-D)."""
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; choose one of {sorted(PRIORS)}")
    if name != "gaussian" and dim != 2:
        raise ValueError(f"the {name} prior is 2-D; got dim={dim}")
    n = check_count(n, f"sample_prior({name!r}, n)")
    check_generator(generator, f"sample_prior({name!r})")
    if name == "gaussian":
        return gaussian_prior(n, dim, generator)
    return PRIORS[name](n, generator=generator)


def categorical_prior(n: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n one-hot draws of Cat(1/k, ..., 1/k), shape (n, k) (the label prior of Sec. 5-6)."""
    n, k = check_count(n, "categorical_prior(n)"), check_count(k, "categorical_prior(k)")
    check_generator(generator, "categorical_prior")
    return F.one_hot(torch.randint(k, (n,), generator=generator), k).float()


# ----------------------------------------------------------------------------- the phases, as losses
def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Phase 1: the Bernoulli negative log-likelihood −log p(x|z) summed over pixels, averaged over the batch
    (the decoder outputs logits; x in [0, 1])."""
    if logits.shape != x.shape:
        raise ValueError(f"decoder output {tuple(logits.shape)} does not match the images {tuple(x.shape)}")
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()


def code_discriminator_loss(disc: Callable[[torch.Tensor], torch.Tensor], prior_codes: torch.Tensor,
                            codes: torch.Tensor) -> torch.Tensor:
    """Phase 2, first half: −V(D, G) for the discriminator on codes, with draws of p(z) as the real sample and
    the encoder's codes (detached: only D learns here) as the fake one."""
    return discriminator_loss(disc(prior_codes).reshape(-1), disc(codes.detach()).reshape(-1))


def encoder_adversarial_loss(disc: Callable[[torch.Tensor], torch.Tensor], codes: torch.Tensor) -> torch.Tensor:
    """Phase 2, second half: the encoder, as D's generator, descends the non-saturating loss −E log D(q(x))."""
    return generator_loss_nonsaturating(disc(codes).reshape(-1))


def instance_noise(disc: Callable[[torch.Tensor], torch.Tensor], std: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """D that sees its input plus Gaussian noise of standard deviation ``std`` (*instance noise*, Sønderby et al.
    2016; Arjovsky and Bottou 2017): real and fake samples are both blurred, so their distributions overlap and
    D's gradient is informative everywhere. For the categorical adversary it matters most: the prior's one-hot
    corners become smooth bumps, so a corner no code uses pulls the encoder's softmax towards it."""
    if std == 0:
        return disc
    return lambda v: disc(v + std * torch.randn_like(v))


def cluster_error(train_clusters: np.ndarray | torch.Tensor, train_labels: np.ndarray | torch.Tensor,
                  test_clusters: np.ndarray | torch.Tensor, test_labels: np.ndarray | torch.Tensor) -> float:
    """Clustering error by majority vote, the usual rule of the clustering literature: each cluster takes the
    majority label of the training points assigned to it; the error is the share of test points whose cluster's
    label is wrong. A cluster no training point uses counts as wrong for every test point in it. The AAE paper
    itself labels each cluster by one example (:func:`cluster_error_confident`)."""
    trc, trl, tec, tel = map(as_numpy, (train_clusters, train_labels, test_clusters, test_labels))
    if len(trc) != len(trl) or len(tec) != len(tel):
        raise ValueError(f"clusters and labels must have the same length, got {len(trc)}/{len(trl)} (train) "
                         f"and {len(tec)}/{len(tel)} (test)")
    if len(trc) == 0 or len(tec) == 0:
        raise ValueError(f"cluster_error needs training and test points, got {len(trc)} and {len(tec)}")
    label_of = {c: np.bincount(trl[trc == c]).argmax() for c in np.unique(trc)}
    predicted = np.array([label_of.get(c, -1) for c in tec])
    return float((predicted != tel).mean())


def cluster_error_confident(scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                            test_clusters: np.ndarray | torch.Tensor, test_labels: np.ndarray | torch.Tensor) -> float:
    """The AAE paper's clustering error (Sec. 6): cluster k takes the label of the single labelled example x_n
    that maximises q(y=k | x_n), and the error is the share of test points whose cluster's label is wrong.
    ``scores`` is (N, K): q(y | x) of the labelled examples (for k-means, minus the distance to each centre).
    It asks more of a clusterer than a majority vote: one example decides, so a cluster whose most confident
    member is atypical mislabels all of it."""
    sc, lab, tec, tel = map(as_numpy, (scores, labels, test_clusters, test_labels))
    if sc.ndim != 2 or len(sc) != len(lab) or len(tec) != len(tel):
        raise ValueError(f"scores must be (N, K) with N labels, and test clusters match test labels; got scores "
                         f"{sc.shape}, {len(lab)} labels, {len(tec)} test clusters and {len(tel)} test labels")
    if len(sc) == 0 or len(tec) == 0 or sc.shape[1] == 0:
        raise ValueError(f"cluster_error_confident needs labelled examples, clusters and test points, got "
                         f"scores {sc.shape} and {len(tec)} test points")
    if tec.min() < 0 or tec.max() >= sc.shape[1]:
        raise ValueError(f"test clusters must lie in 0..{sc.shape[1] - 1}, got {tec.min()}..{tec.max()}")
    label_of = lab[sc.argmax(0)]  # the label of each cluster's most confident example
    return float((label_of[tec] != tel).mean())


# ----------------------------------------------------------------------------- the model
class AAE(Model):
    """An adversarial autoencoder on (1, 28, 28) images with an MLP encoder, decoder and code discriminator.

    ``posterior``: ``deterministic`` (z = f(x)), ``gaussian`` (z = μ(x) + σ(x) ε, reparameterised) or
    ``universal`` (z = f(x, η) with noise η ~ N(0, I) fed to the encoder with the image), Sec. 2.
    ``prior``: ``gaussian`` (any ``z_dim``), ``mixture`` or ``swiss_roll`` (2-D); ``prior_scale`` stretches it.
    ``n_classes`` > 0 gives the label-aware models: ``supervised=True`` feeds the true label's one-hot
    vector to the decoder (Sec. 4); otherwise the encoder also outputs q(y|x) (softmax over ``n_classes``)
    with a second adversary imposing Cat(1/K) on it (Sec. 5 semi-supervised, trained with labelled
    batches; Sec. 6 clustering, without).
    ``cluster_heads`` (Sec. 7, dimensionality reduction; needs a label head): the decoder gets
    y W + z instead of (y, z), where the rows of W are learned ``z_dim``-dimensional cluster heads kept at
    least ``head_margin`` apart by :func:`cluster_head_penalty`; :meth:`embed` returns y W + z.
    ``recon_lr`` and ``reg_lr`` are Adam's rates for phase 1 and for phases 2 and 3; every rate is multiplied by
    ``lr_decay`` after each epoch (:meth:`dgsp.train.Model.on_epoch_end`). ``disc_noise`` > 0 adds Gaussian
    noise of that standard deviation to every input of the code discriminators (:func:`instance_noise`).
    """

    def __init__(self, z_dim: int = 2, hidden: tuple[int, ...] = (512, 512), disc_hidden: tuple[int, ...] = (512, 512),
                 posterior: str = "deterministic", prior: str = "gaussian", prior_scale: float = 1.0,
                 n_classes: int = 0, supervised: bool = False, noise_dim: int = 8, recon_lr: float = 1e-3,
                 reg_lr: float = 1e-4, betas: tuple[float, float] = (0.5, 0.999), adversarial: bool = True,
                 cluster_heads: bool = False, head_margin: float = 6.0, lr_decay: float = 1.0,
                 disc_noise: float = 0.0, image_shape: tuple[int, int, int] = (1, 28, 28)):
        extra = {}  # options added later enter the hyper-parameters (the cache key) only when used
        if cluster_heads:
            extra.update(cluster_heads=True, head_margin=head_margin)
        if lr_decay != 1.0:
            extra.update(lr_decay=lr_decay)
        if disc_noise:
            extra.update(disc_noise=disc_noise)
        super().__init__(z_dim=z_dim, hidden=list(hidden), disc_hidden=list(disc_hidden), posterior=posterior,
                         prior=prior, prior_scale=prior_scale, n_classes=n_classes, supervised=supervised,
                         noise_dim=noise_dim, recon_lr=recon_lr, reg_lr=reg_lr, betas=list(betas),
                         adversarial=adversarial, image_shape=list(image_shape), **extra)
        if posterior not in POSTERIORS:
            raise ValueError(f"unknown posterior {posterior!r}; choose one of {POSTERIORS}")
        if prior not in PRIORS:
            raise ValueError(f"unknown prior {prior!r}; choose one of {sorted(PRIORS)}")
        if prior != "gaussian" and z_dim != 2:
            raise ValueError(f"the {prior} prior is 2-D; got z_dim={z_dim}")
        if z_dim < 1 or n_classes < 0 or (supervised and n_classes < 2):
            raise ValueError(f"need z_dim >= 1 and, for a supervised model, n_classes >= 2; got z_dim={z_dim}, "
                             f"n_classes={n_classes}")
        self.z_dim, self.n_classes, self.image_shape = z_dim, n_classes, tuple(image_shape)
        self.label_head = n_classes > 0 and not supervised  # q(y|x): semi-supervised or clustering
        if cluster_heads and not self.label_head:
            raise ValueError("cluster_heads needs a label head: n_classes > 0 and supervised=False")
        pixels = math.prod(self.image_shape)
        in_dim = pixels + (noise_dim if posterior == "universal" else 0)
        out_dim = (2 * z_dim if posterior == "gaussian" else z_dim) + (n_classes if self.label_head else 0)
        self.encoder = MLP(in_dim, list(hidden), out_dim, act="relu")
        self.heads = None
        if cluster_heads:  # W (Sec. 7): one learned head per cluster, starting evenly spaced on a circle
            if z_dim < 2:
                raise ValueError(f"cluster heads need z_dim >= 2; got {z_dim}")
            angle = torch.arange(n_classes) * (2 * math.pi / n_classes)
            radius = head_margin / (2 * math.sin(math.pi / n_classes))  # neighbours start `head_margin` apart
            start = torch.zeros(n_classes, z_dim)
            start[:, 0], start[:, 1] = radius * angle.cos(), radius * angle.sin()
            self.heads = torch.nn.Parameter(start)
        decoder_in = z_dim if cluster_heads else z_dim + n_classes
        self.decoder = MLP(decoder_in, list(reversed(hidden)), self.image_shape, act="relu")
        self.disc_z = MLP(z_dim, list(disc_hidden), 1, act="leaky_relu")
        self.disc_y = MLP(n_classes, list(disc_hidden), 1, act="leaky_relu") if self.label_head else None
        enc_dec = [*self.encoder.parameters(), *self.decoder.parameters(), *([self.heads] if cluster_heads else [])]
        discs = [*self.disc_z.parameters(), *(self.disc_y.parameters() if self.disc_y is not None else [])]
        self.optimizers = {
            "recon": torch.optim.Adam(enc_dec, lr=recon_lr, betas=tuple(betas)),
            "disc": torch.optim.Adam(discs, lr=reg_lr, betas=tuple(betas)),
            "gen": torch.optim.Adam(self.encoder.parameters(), lr=reg_lr, betas=tuple(betas)),
        }
        if self.label_head:
            self.optimizers["label"] = torch.optim.Adam(self.encoder.parameters(), lr=reg_lr, betas=tuple(betas))

    # -- the two maps
    def encode_all(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The encoder's outputs: ``z`` (a draw of q(z|x)), ``mu`` (its mean or the deterministic code), with a
        Gaussian posterior ``logvar`` (log sigma^2 of q(z|x)) and, with a label head, ``y_logits`` and
        ``y`` = softmax(y_logits)."""
        check_shape(x, (None, *self.image_shape), type(self).__name__, finite=True)
        h = self.hparams
        inp = x.flatten(1)
        if h["posterior"] == "universal":
            inp = torch.cat([inp, randn_like(torch.empty(len(x), h["noise_dim"], device=x.device), generator)], 1)
        out = self.encoder(inp)
        if self.label_head:
            out, y_logits = out[:, :-self.n_classes], out[:, -self.n_classes:]
        if h["posterior"] == "gaussian":
            mu, logvar = out.chunk(2, dim=1)
            z = mu + (0.5 * logvar).exp() * randn_like(mu, generator)
        else:
            mu = z = out
        res = {"z": z, "mu": mu}
        if h["posterior"] == "gaussian":
            res["logvar"] = logvar
        if self.label_head:
            res.update(y_logits=y_logits, y=torch.softmax(y_logits, 1))
        return res

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of each image: the mean of q(z|x) (with a universal posterior, one draw of η)."""
        return self.encode_all(x)["mu"]

    @torch.no_grad()
    def sample_posterior(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw z ~ q(z|x) for each image: the codes that the adversary sees, whose law over the data is the
        aggregated posterior q(z) (Sec. 2). For a deterministic encoder this is :meth:`encode`; for a Gaussian
        one it is μ(x) + σ(x) ε, which is wider than the means alone."""
        return self.encode_all(x, generator)["z"]

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel probabilities of p(x|z) (and of the one-hot or soft label ``y`` for label-aware models)."""
        return torch.sigmoid(self._logits(z, y))

    def _logits(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        check_shape(z, (None, self.z_dim), f"{type(self).__name__}.decode")
        if self.n_classes:
            if y is None:
                raise ValueError(f"this model's decoder also takes a label: pass y of shape (N, {self.n_classes})")
            check_shape(y, (len(z), self.n_classes), f"{type(self).__name__}.decode (labels)")
            z = z + y.to(z.dtype) @ self.heads if self.heads is not None else torch.cat([y.to(z.dtype), z], 1)
        return self.decoder(z)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 2-D (``z_dim``) picture of each image for dimensionality reduction (Sec. 7): y W + z with cluster
        heads, else the code z."""
        out = self.encode_all(x)
        return out["mu"] + out["y"] @ self.heads if self.heads is not None else out["mu"]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstructions from the code means (a supervised model needs the labels ``y``, as integers)."""
        out = self.encode_all(x)
        if self.hparams["supervised"]:
            if y is None:
                raise ValueError("a supervised AAE reconstructs from the code and the label: pass y")
            return self.decode(out["mu"], F.one_hot(y, self.n_classes).float())
        return self.decode(out["mu"], out.get("y"))

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws of p(z), on the model's device."""
        h = self.hparams
        return (h["prior_scale"] * sample_prior(h["prior"], n, self.z_dim, generator)).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
        """n images decoded from prior draws (label-aware models: labels ``y``, else drawn from Cat(1/K))."""
        z = self.sample_prior(n, generator)
        if self.n_classes:
            labels = torch.randint(self.n_classes, (n,), generator=generator) if y is None else y.cpu()
            return self.decode(z, F.one_hot(labels, self.n_classes).float().to(self.device))
        return self.decode(z)

    @torch.no_grad()
    def label_probs(self, x: torch.Tensor) -> torch.Tensor:
        """q(y|x), shape (N, n_classes): the softmax of the label head."""
        return self._label_head_outputs(x)["y"]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """argmax q(y|x): the predicted class (or cluster) of each image."""
        return self._label_head_outputs(x)["y_logits"].argmax(1)

    def _label_head_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.label_head:
            raise ValueError("this AAE has no label head (use n_classes > 0 without supervised=True)")
        return self.encode_all(x)

    # -- training
    def check_data(self, data: Any) -> None:
        """Called once by ``fit``: finite float images in [0, 1], and labels that fit ``n_classes``."""
        streams = data if isinstance(data, dict) else {"data": data}
        for name, tensors in streams.items():
            check_images(tensors[0], self.image_shape, f"the {type(self).__name__} ({name})", unit_range=True)
            if len(tensors) > 1:
                check_labels(tensors[1], len(tensors[0]), self.n_classes)
        if self.hparams["supervised"] and any(len(t) < 2 for t in streams.values()):
            raise ValueError("a supervised AAE trains on (images, labels)")

    def _step(self, name: str, loss: torch.Tensor) -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """Phase 1 (reconstruction), phase 2 (each adversary: D, then the encoder as generator) and, with a
        ``labelled`` stream, phase 3 (cross-entropy of q(y|x)), in that order."""
        streams = batch if isinstance(batch, dict) else {"data": batch}
        labelled = streams.get("labelled")
        x, *rest = streams.get("unlabelled", streams.get("data", labelled))
        onehot = F.one_hot(rest[0], self.n_classes).float() if self.hparams["supervised"] else None
        # phase 1: reconstruction
        out = self.encode_all(x)
        rec = reconstruction_loss(self._logits(out["z"], onehot if onehot is not None else out.get("y")), x)
        if self.heads is not None:
            rec = rec + cluster_head_penalty(self.heads, self.hparams["head_margin"])
        self._step("recon", rec)
        logs = {"recon": rec.detach()}
        if not self.hparams["adversarial"]:  # the plain autoencoder with the same networks, for comparison
            return logs
        # phase 2: regularisation, on fresh codes of the updated encoder
        out = self.encode_all(x)
        noise = self.hparams.get("disc_noise", 0.0)
        disc_z, disc_y = instance_noise(self.disc_z, noise), instance_noise(self.disc_y, noise)
        loss_d = code_discriminator_loss(disc_z, self.sample_prior(len(x)), out["z"])
        if self.label_head:
            prior_y = categorical_prior(len(x), self.n_classes).to(x.device)
            loss_d = loss_d + code_discriminator_loss(disc_y, prior_y, out["y"])
        self._step("disc", loss_d)
        loss_g = encoder_adversarial_loss(disc_z, out["z"])  # against the updated discriminator
        if self.label_head:
            loss_g = loss_g + encoder_adversarial_loss(disc_y, out["y"])
        self._step("gen", loss_g)
        logs.update(loss_d=loss_d.detach(), loss_g=loss_g.detach())
        # phase 3: semi-supervised classification on the labelled minibatch
        if labelled is not None and self.label_head:
            xl, yl = labelled
            ce = F.cross_entropy(self.encode_all(xl)["y_logits"], yl)
            self._step("label", ce)
            logs["cross_entropy"] = ce.detach()
        return logs


class LabelOnly(AAE):
    """The baseline for the semi-supervised AAE: the *same* encoder network with its label head, trained only by
    phase 3 (cross-entropy on the labelled minibatch); no decoder loss, no adversary. It trains on a dict with
    a ``labelled`` stream, or on (images, labels)."""

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        xl, yl = batch["labelled"] if isinstance(batch, dict) else batch
        ce = F.cross_entropy(self.encode_all(xl)["y_logits"], yl)
        self._step("label", ce)
        return {"cross_entropy": ce.detach()}


def cluster_head_penalty(heads: torch.Tensor, margin: float) -> torch.Tensor:
    """Sec. 7's extra cost on the cluster heads W (K, d): Σ_{i<j} max(0, margin − ‖w_i − w_j‖), which pushes
    any two heads closer than ``margin`` apart and leaves the others alone."""
    i, j = torch.triu_indices(len(heads), len(heads), offset=1)
    return F.relu(margin - (heads[i] - heads[j]).norm(dim=1)).sum()


def check_labels(y: torch.Tensor, n: int, n_classes: int) -> None:
    """Integer labels, one per image, each in 0 .. n_classes - 1: a clear error before training otherwise."""
    if y.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"labels must be integers (torch.int64), got {y.dtype}")
    if len(y) != n:
        raise ValueError(f"got labels for {len(y)} of {n} images")
    if n_classes < 1:
        raise ValueError("labels were given but the model has n_classes=0")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}; got the range {int(y.min())}..{int(y.max())}")
