"""Lecture 5: BiGAN, adversarial feature learning, and the baselines of its MNIST table.

A GAN learns G: z -> x but no way back. A BiGAN adds an encoder E: x -> z and lets the discriminator judge
pairs: real pairs (x, E(x)), x ~ P_X, against generated pairs (G(z), z), z ~ P_Z. Read this file next to the
slides: the value V(D, G, E), the optimal D, the JS identity, the training step, then the four baselines that
learn an encoder without a joint game (latent regressor LR, joint latent regressor JLR, autoencoders).

References
----------
* Donahue, Krähenbühl and Darrell (2017), *Adversarial Feature Learning*, ICLR (slides by P. Ménard, 2018):
  the value V(D, G, E) (eq. 3 of the paper; the game min_{G,E} max_D V is eq. 2; slide "Minimax objective"),
  the optimal discriminator D*_EG = dP_EX / d(P_EX + P_GZ) (Prop. 1), V(D*, G, E) = 2 JS(P_EX || P_GZ) - log 4
  in their unweighted convention (Prop. 2; the slides' 1/2-weighted V gives JS - log 2), the global optimum
  P_EX = P_GZ, the
  inversion theorem G(E(x)) = x and E(G(z)) = z almost surely (Thm. 2), the "inverted" non-saturating
  objective (Sec. 3.4), the latent regressor baselines (Sec. 4.1) and the MNIST 1-NN table (Table 1).
* Their released code (jeffdonahue/bigan, ``train_mnist.sh``) for the settings the paper leaves out: a
  50-d uniform latent on [-1, 1], 1024-1024 fully connected networks with batch norm, Adam with lr 2e-4 and
  beta1 = 0.5, L2 weight decay 2.5e-5, latent-regression costs averaged over the latent's dimensions, and
  JLR's weight 0.25 on the gradient that the latent loss sends to G. Where the course differs from that code
  (batch norm on every hidden layer, z entering D at its input, a linear encoder output, a squared error for
  the latent regressors instead of its sigmoid cross-entropy), lecture 5's settings table says so.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from dgsp.adversarial import discriminator_loss, generator_loss_nonsaturating
from dgsp.core import check_count, rand_like
from dgsp.data import check_images
from dgsp.divergences import js_grid
from dgsp.models.gan import optimal_discriminator
from dgsp.nets import MLP, check_shape, weight_dtype
from dgsp.train import Model

IMAGE = (1, 28, 28)


# ----------------------------------------------------------------------------- the game on pairs (slides, Prop. 1)
def joint_optimal_discriminator(p_xe: torch.Tensor, p_gz: torch.Tensor) -> torch.Tensor:
    """D*_{G,E}(x, z) = dP_XE / (dP_XE + dP_GZ) (Prop. 1): the GAN's optimal D, applied to joint densities."""
    return optimal_discriminator(p_xe, p_gz)


def joint_value(d: torch.Tensor, p_xe: torch.Tensor, p_gz: torch.Tensor) -> torch.Tensor:
    """The slides' value V(D, G, E) = 1/2 E_{P_XE} log D + 1/2 E_{P_GZ} log(1 - D) of a discrete joint
    distribution (each pair drawn from either side with probability 1/2, Y ~ B(1/2)). Zero-mass cells add 0.
    At D = D* it equals JS(P_XE, P_GZ) - log 2 (the paper's unweighted V is twice this: 2 JS - log 4)."""
    a = torch.where(p_xe > 0, p_xe * d.clamp_min(1e-300).log(), torch.zeros_like(p_xe))
    b = torch.where(p_gz > 0, p_gz * (1 - d).clamp_min(1e-300).log(), torch.zeros_like(p_gz))
    return 0.5 * (a.sum() + b.sum())


def joint_js(p_xe: torch.Tensor, p_gz: torch.Tensor) -> float:
    """JS(P_XE, P_GZ) of two discrete joint distributions (in nats, at most log 2)."""
    return js_grid(p_xe.flatten(), p_gz.flatten(), 1.0)


# ----------------------------------------------------------------------------- networks (paper Sec. 4.2, App. C.1)
def uniform_latent(n: int, dim: int, device: Any = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ U[-1, 1]^dim, shape (n, dim); with a (CPU) ``generator`` the draw is reproducible on any device."""
    n, dim = check_count(n, "uniform_latent(n)"), check_count(dim, "uniform_latent(dim)")
    return 2 * rand_like(torch.empty(n, dim, device=device), generator) - 1


def encoder_net(data_shape: Sequence[int], latent_dim: int, hidden: Sequence[int], norm: str | None) -> MLP:
    """E: x -> z, fully connected, LeakyReLU(0.2), a linear output (the paper's permutation-invariant E)."""
    return MLP(tuple(data_shape), list(hidden), latent_dim, act="leaky_relu", norm=norm)


def generator_net(data_shape: Sequence[int], latent_dim: int, hidden: Sequence[int], norm: str | None) -> MLP:
    """G: z -> x, fully connected, ReLU; sigmoid pixels for images, a linear output for points."""
    return MLP(latent_dim, list(hidden), tuple(data_shape), act="relu", norm=norm,
               out_act="sigmoid" if len(data_shape) == 3 else None)


class JointDiscriminator(nn.Module):
    """D(x, z): the pair is concatenated, [flatten(x), z], and read by one LeakyReLU MLP to a logit; ``dropout``
    after each hidden layer (active in training mode only)."""

    def __init__(self, data_shape: Sequence[int], latent_dim: int, hidden: Sequence[int], norm: str | None,
                 dropout: float = 0.0):
        super().__init__()
        self.data_shape, self.latent_dim = tuple(data_shape), latent_dim
        self.net = MLP(int(torch.Size(data_shape).numel()) + latent_dim, list(hidden), 1, act="leaky_relu", norm=norm,
                       dropout=dropout)

    def pair(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.data_shape), "the joint discriminator's x", weight_dtype(self))
        check_shape(z, (len(x), self.latent_dim), "the joint discriminator's z", weight_dtype(self))
        return torch.cat([x.flatten(1), z], 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.pair(x, z)).reshape(len(x))


def penultimate(mlp: MLP, x: torch.Tensor) -> torch.Tensor:
    """The activations of an MLP's last hidden layer (the features the table's "D" row uses)."""
    return mlp.net[:-2](x.flatten(1))


def scale_gradient(x: torch.Tensor, weight: float) -> torch.Tensor:
    """x in the forward pass; ``weight`` times the incoming gradient in the backward pass."""
    return x if weight == 1 else weight * x + (1 - weight) * x.detach()


# ----------------------------------------------------------------------------- a model with E and G
class EncoderGenerator(Model):
    """What every row of Table 1 has: an encoder E: x -> z and a generator / decoder G: z -> x, of the
    same shapes, with the course's API (``encode``, ``decode``, ``reconstruct``, ``sample``, ``features``)."""

    def __init__(self, *, data_shape: Sequence[int], latent_dim: int, hidden: Sequence[int], norm: str | None,
                 **hparams: Any):
        super().__init__(data_shape=list(data_shape), latent_dim=latent_dim, hidden=list(hidden), norm=norm, **hparams)
        if latent_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"latent_dim and every hidden size must be >= 1, got {latent_dim} and {tuple(hidden)}")
        self.data_shape, self.latent_dim = tuple(data_shape), latent_dim
        self.encoder = encoder_net(data_shape, latent_dim, hidden, norm)
        self.generator = generator_net(data_shape, latent_dim, hidden, norm)

    def adam(self, params) -> torch.optim.Adam:
        """Adam with the model's rate, betas and L2 weight decay (the authors' optimiser)."""
        h = self.hparams
        return torch.optim.Adam(params, lr=h["lr"], betas=tuple(h["betas"]), weight_decay=h["weight_decay"])

    def check_data(self, data: tuple[torch.Tensor, ...]) -> None:
        """Called once by :func:`dgsp.train.fit`: finite float data of the model's shape (images in [0, 1])."""
        check_images(data[0], self.data_shape, f"the {type(self).__name__}", unit_range=len(self.data_shape) == 3)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ P_Z = U[-1, 1]^latent_dim."""
        return uniform_latent(n, self.latent_dim, self.device, generator)

    def _eval(self, net: nn.Module, x: torch.Tensor,
              apply: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """``net(x)`` (or ``apply(net, x)``) without gradients, ``net`` in eval mode (batch norm's running
        statistics)."""
        was = net.training
        net.eval()
        with torch.no_grad():
            out = net(x.to(self.device)) if apply is None else apply(net, x.to(self.device))
        net.train(was)
        return out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """E(x), shape (N, latent_dim), in eval mode (batch norm with its running statistics)."""
        check_shape(x, (None, *self.data_shape), f"{type(self).__name__}.encode", weight_dtype(self),
                    finite=True)
        return self._eval(self.encoder, x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z), shape (N, *data_shape), in eval mode."""
        check_shape(z, (None, self.latent_dim), f"{type(self).__name__}.decode (a latent code)", weight_dtype(self))
        return self._eval(self.generator, z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x))."""
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples G(z), z ~ P_Z drawn with ``generator``."""
        return self.decode(self.noise(n, generator))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The code E(x), shape (N, latent_dim): the representation the later lectures reuse."""
        return self.encode(x)

    def hidden_features(self, x: torch.Tensor) -> torch.Tensor:
        """E's last hidden layer (1024-d for the paper's E), in eval mode: the features Table 1 scores. The authors'
        code logs 1-NN accuracy on both E(x) (``NNC_e``) and this layer (``NNC_e-``); after their 400 epochs it
        prints 92.10% and 97.35%, and the paper's 97.39% is the latter."""
        check_shape(x, (None, *self.data_shape), f"{type(self).__name__}.hidden_features", weight_dtype(self),
                    finite=True)
        return self._eval(self.encoder, x, penultimate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)


def two_player_step(model: EncoderGenerator, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One simultaneous update of both players from one batch's losses: D descends ``loss_d`` and (G, E) descend
    ``loss_ge``, each gradient taken at the current weights of the other player (as in the authors' code)."""
    ge = [*model.generator.parameters(), *model.encoder.parameters()]
    opt_d, opt_ge = model.optimizers["d"], model.optimizers["ge"]
    opt_d.zero_grad(set_to_none=True)
    opt_ge.zero_grad(set_to_none=True)
    terms["loss_d"].backward(inputs=list(model.discriminator.parameters()))
    terms["loss_ge"].backward(inputs=ge)
    opt_d.step()
    opt_ge.step()
    return {k: v.detach() for k, v in terms.items()}


class BiGAN(EncoderGenerator):
    """Donahue et al. (2017): min over (G, E), max over D of V(D, G, E) = E_x log D(x, E(x)) + E_z log(1 - D(G(z), z)).

    One :meth:`training_step` (:func:`two_player_step`) moves D one step up V and, from the same batch, G and E one
    step down the "inverted" objective of Sec. 3.4: -E_x log(1 - D(x, E(x))) - E_z log D(G(z), z), the
    non-saturating loss with the labels of the two kinds of pair swapped (same fixed point as the minimax loss,
    stronger gradients early on).

    ``dropout`` regularises D only (after each of its hidden layers, as in the discriminator of ALI, Dumoulin et
    al. 2017); the paper's BiGAN has none (0, the default).
    """

    def __init__(self, data_shape: Sequence[int] = IMAGE, latent_dim: int = 50, hidden: Sequence[int] = (1024, 1024),
                 norm: str | None = "batch", lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999),
                 weight_decay: float = 2.5e-5, lr_decay: float = 1.0, decay_start: int = 0, dropout: float = 0.0):
        super().__init__(data_shape=data_shape, latent_dim=latent_dim, hidden=hidden, norm=norm, lr=lr,
                         betas=list(betas), weight_decay=weight_decay, lr_decay=lr_decay, decay_start=decay_start,
                         dropout=dropout)
        self.discriminator = JointDiscriminator(data_shape, latent_dim, hidden, norm, dropout)
        self.optimizers = {"d": self.adam(self.discriminator.parameters()),
                           "ge": self.adam([*self.generator.parameters(), *self.encoder.parameters()])}

    def joint_logits(self, x: torch.Tensor, z_x: torch.Tensor, x_z: torch.Tensor, z: torch.Tensor):
        """D's logits on the real pairs (x, E(x)) and on the generated pairs (G(z), z)."""
        return self.discriminator(x, z_x), self.discriminator(x_z, z)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """-V(D, G, E) for D, and the inverted objective for (G, E), on one batch; plus the mean D on each side."""
        z = self.noise(len(x))
        e_x, g_z = self.encoder(x), self.generator(z)
        real, fake = self.joint_logits(x, e_x.detach(), g_z.detach(), z)
        loss_d = discriminator_loss(real, fake)                        # D: pairs (x, E(x)) are "real"
        real_ge, fake_ge = self.joint_logits(x, e_x, g_z, z)
        loss_ge = discriminator_loss(fake_ge, real_ge)                  # G, E: the labels swapped (Sec. 3.4)
        return {"loss_d": loss_d, "loss_ge": loss_ge, "value": -loss_d.detach(),
                "d_real": torch.sigmoid(real.detach()).mean(), "d_fake": torch.sigmoid(fake.detach()).mean()}

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        return two_player_step(self, self.loss(batch[0]))


class LatentRegressor(EncoderGenerator):
    """The latent regressor baselines of Sec. 4.1: a plain GAN (G against D(x)), and an encoder trained to
    regress z from G(z): min_E E_z ||E(G(z)) - z||^2 / d (the authors' code uses a sigmoid cross-entropy
    between sigmoid(E(G(z))) and (z + 1) / 2 instead).

    ``joint_weight = 0`` is LR: G never sees the regression loss, so G and D are an ordinary GAN (whose D's
    penultimate features are Table 1's "D" row). ``joint_weight > 0`` is JLR: G also descends the regression
    loss, its gradient scaled by ``joint_weight`` (0.25 in the authors' code), so G keeps its codes recoverable.
    """

    def __init__(self, data_shape: Sequence[int] = IMAGE, latent_dim: int = 50, hidden: Sequence[int] = (1024, 1024),
                 norm: str | None = "batch", joint_weight: float = 0.0, lr: float = 2e-4,
                 betas: tuple[float, float] = (0.5, 0.999), weight_decay: float = 2.5e-5, lr_decay: float = 1.0,
                 decay_start: int = 0):
        if joint_weight < 0:
            raise ValueError(f"joint_weight must be >= 0, got {joint_weight}")
        super().__init__(data_shape=data_shape, latent_dim=latent_dim, hidden=hidden, norm=norm,
                         joint_weight=joint_weight, lr=lr, betas=list(betas), weight_decay=weight_decay,
                         lr_decay=lr_decay, decay_start=decay_start)
        self.discriminator = MLP(tuple(data_shape), list(hidden), 1, act="leaky_relu", norm=norm)
        self.optimizers = {"d": self.adam(self.discriminator.parameters()),
                           "ge": self.adam([*self.generator.parameters(), *self.encoder.parameters()])}

    def discriminator_features(self, x: torch.Tensor) -> torch.Tensor:
        """The GAN discriminator's last hidden layer on x (eval mode): Table 1's "D" features."""
        check_shape(x, (None, *self.data_shape), "discriminator_features", weight_dtype(self), finite=True)
        return self._eval(self.discriminator, x, penultimate)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The GAN's D and G losses (eq. 1, non-saturating G) and the latent regression loss on one batch."""
        z = self.noise(len(x))
        g_z = self.generator(z)
        real, fake = self.discriminator(x).reshape(-1), self.discriminator(g_z.detach()).reshape(-1)
        loss_d = discriminator_loss(real, fake)
        loss_g = generator_loss_nonsaturating(self.discriminator(g_z).reshape(-1))
        z_hat = self.encoder(scale_gradient(g_z, self.hparams["joint_weight"]))
        latent = latent_regression_loss(z_hat, z)
        return {"loss_d": loss_d, "loss_ge": loss_g + latent, "loss_g": loss_g.detach(), "latent": latent.detach(),
                "d_real": torch.sigmoid(real.detach()).mean(), "d_fake": torch.sigmoid(fake.detach()).mean()}

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        return two_player_step(self, self.loss(batch[0]))


def latent_regression_loss(z_hat: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """||E(G(z)) - z||^2 averaged over the latent's dimensions and the batch (Sec. 4.1, LR and JLR; the course's
    choice of loss, where the authors' code has a sigmoid cross-entropy)."""
    if z_hat.shape != z.shape:
        raise ValueError(f"predicted codes {tuple(z_hat.shape)} and codes {tuple(z.shape)} differ in shape")
    return ((z_hat - z) ** 2).mean()


RECONSTRUCTION = {"l2": lambda x_hat, x: ((x_hat - x) ** 2).flatten(1).sum(1).mean(),
                  "l1": lambda x_hat, x: (x_hat - x).abs().flatten(1).sum(1).mean()}


class AutoencoderBaseline(EncoderGenerator):
    """Table 1's autoencoder rows: the same E and G trained on ||G(E(x)) - x||_2^2 (``loss="l2"``) or
    ||G(E(x)) - x||_1 (``"l1"``), summed over pixels; no adversary."""

    def __init__(self, data_shape: Sequence[int] = IMAGE, latent_dim: int = 50, hidden: Sequence[int] = (1024, 1024),
                 norm: str | None = "batch", loss: str = "l2", lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0, lr_decay: float = 1.0,
                 decay_start: int = 0):
        if loss not in RECONSTRUCTION:
            raise ValueError(f"unknown reconstruction loss {loss!r}; choose one of {sorted(RECONSTRUCTION)}")
        super().__init__(data_shape=data_shape, latent_dim=latent_dim, hidden=hidden, norm=norm, loss=loss, lr=lr,
                         betas=list(betas), weight_decay=weight_decay, lr_decay=lr_decay, decay_start=decay_start)
        self.optimizers = {"ae": self.adam(self.parameters())}

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The reconstruction loss of G(E(x)) on one batch."""
        return {"loss": RECONSTRUCTION[self.hparams["loss"]](self.generator(self.encoder(x)), x)}

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        terms = self.loss(batch[0])
        opt = self.optimizers["ae"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        return {"loss": terms["loss"].detach()}


def random_encoder(data_shape: Sequence[int] = IMAGE, latent_dim: int = 50, hidden: Sequence[int] = (1024, 1024),
                   seed: int = 0) -> EncoderGenerator:
    """Table 1's untrained baseline: the same encoder with its random initial weights (in eval mode), drawn with
    ``seed`` without touching the caller's random-number state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoencoderBaseline(data_shape, latent_dim, hidden).eval()


# ----------------------------------------------------------------------------- the inversion theorem, measured
@torch.no_grad()
def inversion_errors(model: EncoderGenerator, x: torch.Tensor, n_latent: int | None = None,
                     seed: int = 0) -> dict[str, float]:
    """How far (G, E) is from inverting each other (Thm. 2), on data ``x`` and on fresh codes z ~ P_Z:

    * ``x_error``: median ||G(E(x)) - x||^2 over the data;
    * ``x_error_other``: the same against another data point, median ||G(E(x')) - x||^2 for x' a random
      other row (a reconstruction that were only "a typical digit" would score the same on both);
    * ``z_error``: median ||E(G(z)) - z||^2; ``z_corr``: the correlation of E(G(z))_j with z_j, averaged over j
      (``z_corr_per_dim`` lists them).
    """
    if len(x) < 2:
        raise ValueError(f"inversion_errors needs at least 2 data points, got {len(x)}")
    g = torch.Generator().manual_seed(seed)
    x = x.to(model.device)
    x_hat = model.reconstruct(x)
    other = (torch.arange(len(x)) + torch.randint(1, len(x), (len(x),), generator=g)) % len(x)  # never itself
    err = ((x_hat - x) ** 2).flatten(1).sum(1)
    err_other = ((x_hat[other.to(x.device)] - x) ** 2).flatten(1).sum(1)
    z = model.noise(n_latent or len(x), g)
    z_hat = model.encode(model.decode(z))
    zc, hc = z - z.mean(0), z_hat - z_hat.mean(0)
    corr = (zc * hc).sum(0) / (zc.norm(dim=0) * hc.norm(dim=0)).clamp_min(1e-12)
    return {"x_error": float(err.median()), "x_error_other": float(err_other.median()),
            "z_error": float(((z_hat - z) ** 2).sum(1).median()), "z_corr": float(corr.mean()),
            "z_corr_per_dim": corr.cpu().tolist()}


def inversion_callback(x_eval: torch.Tensor, n_latent: int = 1000):
    """A :func:`dgsp.train.fit` callback that logs :func:`inversion_errors` (without the per-dimension list)
    after each epoch, for the inversion-over-training figure."""
    def callback(model: Model, epoch: int) -> dict[str, float]:
        out = inversion_errors(model, x_eval, n_latent)
        out.pop("z_corr_per_dim")
        return out
    return callback


# ----------------------------------------------------------------------------- Table 1: features scored by 1-NN
PAPER_TABLE_1 = {"BiGAN": 97.39, "D": 97.30, "LR": 97.44, "JLR": 97.13, "AE (l2)": 97.58, "AE (l1)": 97.63}
# each row's short name in figures/results.json (e.g. nn1_bigan_euclidean)
TABLE_KEYS = {"BiGAN": "bigan", "D": "d", "LR": "lr", "JLR": "jlr", "AE (l2)": "ae_l2", "AE (l1)": "ae_l1",
              "pixels": "pixels", "random E": "random"}


TABLE_LAYERS = ("hidden", "code")


def table_features(bigan: BiGAN, lr: LatentRegressor, jlr: LatentRegressor, ae_l2: AutoencoderBaseline,
                   ae_l1: AutoencoderBaseline,
                   layer: str = "hidden") -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The feature maps of Table 1's rows, in its order, plus two baselines: raw pixels, and the same encoder with
    random weights. "D" is the penultimate layer of the LR run's discriminator (a plain GAN's: LR never changes G).

    ``layer="hidden"`` reads every encoder at its last hidden layer (:meth:`EncoderGenerator.hidden_features`), the
    layer behind the paper's numbers; ``layer="code"`` reads E(x) instead and returns only the six encoder rows
    (BiGAN, LR, JLR, the two AEs and the random E), since D and pixels have no code."""
    if layer not in TABLE_LAYERS:
        raise ValueError(f"unknown layer {layer!r}; choose one of {TABLE_LAYERS}")
    rand = random_encoder(bigan.data_shape, bigan.latent_dim, bigan.hparams["hidden"]).to(bigan.device)
    encoders = {"BiGAN": bigan, "LR": lr, "JLR": jlr, "AE (l2)": ae_l2, "AE (l1)": ae_l1, "random E": rand}
    if layer == "code":
        return {name: m.features for name, m in encoders.items()}
    return {"BiGAN": bigan.hidden_features, "D": lr.discriminator_features,
            **{name: encoders[name].hidden_features for name in ("LR", "JLR", "AE (l2)", "AE (l1)")},
            "pixels": lambda x: x.flatten(1), "random E": rand.hidden_features}


def one_nn_table(features: dict[str, Callable[[torch.Tensor], torch.Tensor]], x_train: torch.Tensor,
                 y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                 distances: Sequence[str] = ("euclidean", "cosine")) -> dict[str, dict[str, float]]:
    """Table 1's protocol for every row: 1-NN test accuracy (%) with the training set's features as the memory and
    every test image as a query (:func:`dgsp.metrics.one_nn_accuracy`), for each distance; plus each row's
    feature size. Returns {row: {"euclidean": ..., "cosine": ..., "dim": ...}}."""
    from dgsp.metrics import map_batches, one_nn_accuracy

    table = {}
    for name, feature in features.items():
        f_train, f_test = map_batches(feature, x_train), map_batches(feature, x_test)
        table[name] = {d: 100 * one_nn_accuracy(f_train, y_train, f_test, y_test, d) for d in distances}
        table[name]["dim"] = f_train.shape[1]
    return table


# ----------------------------------------------------------------------------- the toy: a curve with a 1-D latent
def curve(n: int, seed: int = 0, noise: float = 0.02, device: Any = "cpu") -> torch.Tensor:
    """n points near the curve t -> (t, 0.6 sin(pi t)), t ~ U[-1, 1], plus Gaussian noise of std ``noise``: a
    1-D manifold in the plane that a BiGAN with a 1-D uniform latent can represent up to the noise (G(z) = the
    curve at z, E = its inverse; with noise > 0 the data are 2-D and the exact optimum P_XE = P_GZ is out of
    reach)."""
    n = check_count(n, "curve(n)")
    g = torch.Generator().manual_seed(seed)
    t = 2 * torch.rand(n, generator=g) - 1
    x = torch.stack([t, 0.6 * torch.sin(torch.pi * t)], 1)
    return (x + noise * torch.randn(n, 2, generator=g)).to(device)


def first_layer_filters(net: MLP, n: int = 36, image_shape: Sequence[int] = (28, 28), seed: int = 0) -> torch.Tensor:
    """The first linear layer's weights as images (Figure 3's shape): for E and D, rows of W (what a unit looks
    for in x; D's rows are cut to their x part), for G, columns of the last layer's W (what a unit paints).
    ``n`` units drawn with ``seed``, each scaled to [0, 1] for display; shape (n, 1, *image_shape)."""
    n = check_count(n, "first_layer_filters(n)")
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    size = int(torch.Size(image_shape).numel())
    if linears[0].in_features >= size:
        w = linears[0].weight.detach()[:, :size]           # E, D: (units, pixels [+ z])
    elif linears[-1].out_features == size:
        w = linears[-1].weight.detach().T                  # G: (units, pixels)
    else:
        raise ValueError(f"neither the first layer's input nor the last layer's output has {size} pixels")
    pick = torch.randperm(len(w), generator=torch.Generator().manual_seed(seed))[:n]
    w = w[pick].cpu()
    lo, hi = w.min(1, keepdim=True).values, w.max(1, keepdim=True).values
    return ((w - lo) / (hi - lo).clamp_min(1e-12)).view(-1, 1, *image_shape)


def interpolate_codes(z1: torch.Tensor, z2: torch.Tensor, steps: int) -> torch.Tensor:
    """The straight path (1 - t) z1 + t z2, t = 0, 1/(steps-1), ..., 1; shape (steps, d)."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    if z1.shape != z2.shape or z1.dim() != 1:
        raise ValueError(f"z1 and z2 must be two codes of the same size, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    t = torch.linspace(0, 1, steps, device=z1.device, dtype=z1.dtype)[:, None]
    return (1 - t) * z1 + t * z2

