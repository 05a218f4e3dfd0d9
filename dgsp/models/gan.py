"""Lecture 3: generative adversarial networks and Wasserstein GANs.

The losses and penalties (eq. 1, WGAN eq. 3, the gradient penalty, clipping) live in :mod:`dgsp.adversarial`,
shared with lectures 4, 5 and 7; this file holds the GAN models and the lecture's theory helpers.

References
----------
* Paik (2018), *Deep Learning: A Statistical Perspective*, lecture notes, slides
  "Generative adversarial network: Discriminator and Generator", "GAN algorithm",
  "Implementation of GAN", "Wasserstein GAN: Distance", "Distance: Example",
  "Wasserstein GAN algorithm" and "Family of distance functions".
* Donahue et al. (2017), *Adversarial Feature Learning* (BiGAN), slides "Minimax
  objective" and "Optimal discriminator".
* Goodfellow et al. (2014), *Generative Adversarial Nets*: the value function
  V(D, G) (eq. 1), the optimal discriminator D*_G = p_data / (p_data + p_g)
  (Prop. 1), C(G) = -log 4 + 2 JS(p_data || p_g) (Thm. 1), Algorithm 1, and the
  non-saturating generator objective max log D(G(z)) (Sec. 3).
* Radford et al. (2016), DCGAN: Adam with lr 2e-4 and beta1 = 0.5.
* Arjovsky et al. (2017), *Wasserstein GAN*: the parallel-lines Example 1, the
  Kantorovich-Rubinstein dual (eq. 2-3), Algorithm 1 (RMSProp, lr 5e-5, clip
  c = 0.01, n_critic = 5).
* Gulrajani et al. (2017), *Improved Training of Wasserstein GANs*: the gradient
  penalty (eq. 3) on interpolates, Algorithm 1 (lambda = 10, n_critic = 5, Adam
  lr 1e-4, betas (0, 0.9)); their 2-D toy experiments (Sec. 3, Fig. 1, and their
  released toy code: lambda = 0.1, three hidden ReLU layers, Adam betas (0.5, 0.9)),
  behind :func:`toy_recipe`.
* Srivastava et al. (2017), VEEGAN, Sec. 5.1: the ring / grid mode-coverage protocol.
* Fedus et al. (2018), *Many Paths to Equilibrium*, and Kurach et al. (2019), *A Large-Scale Study on
  Regularization and Normalization in GANs*: the gradient penalty as a regulariser of the ordinary
  (non-saturating) GAN's discriminator, behind ``GAN(gp=...)`` and :data:`MNIST_GAN`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from dgsp.adversarial import (GENERATOR_LOSSES, clip_weights, critic_loss, discriminator_loss, gradient_penalty,
                              has_batch_norm, wasserstein_generator_loss)
from dgsp.core import check_count, randn_like
from dgsp.divergences import js_grid
from dgsp.nets import MLP, ConvDecoder, ConvEncoder
from dgsp.train import Model

LOG2 = math.log(2.0)
LOSSES = ("minimax", "nonsaturating", "wgan", "wgan-gp")


# ----------------------------------------------------------------------------- the minimax game
def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """D*_G(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al. 2014, Prop. 1).

    Where both densities vanish the value is irrelevant to V; we return 1/2 there.
    """
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(1e-300), torch.full_like(total, 0.5))


def value_function(d_real: torch.Tensor, d_fake: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Monte-Carlo V(D, G) = E_x log D(x) + E_z log(1 - D(G(z))) (eq. 1), from probabilities D(.)."""
    return d_real.clamp_min(eps).log().mean() + (1 - d_fake).clamp_min(eps).log().mean()


def value_on_grid(d: torch.Tensor, p_data: torch.Tensor, p_g: torch.Tensor, dx: float) -> torch.Tensor:
    """V(D, G) = int p_data log D + p_g log(1 - D) dx by a Riemann sum on a grid (eq. 1).

    Terms with zero density contribute 0 (the convention 0 log 0 = 0).
    """
    a = torch.where(p_data > 0, p_data * d.clamp_min(1e-300).log(), torch.zeros_like(p_data))
    b = torch.where(p_g > 0, p_g * (1 - d).clamp_min(1e-300).log(), torch.zeros_like(p_g))
    return (a + b).sum() * dx


def js_on_grid(p: torch.Tensor, q: torch.Tensor, dx: float) -> float:
    """JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q)/2, by a Riemann sum (in nats, <= log 2);
    :func:`dgsp.divergences.js_grid`."""
    return js_grid(p, q, dx)


def virtual_training_criterion(js: float | torch.Tensor) -> float | torch.Tensor:
    """C(G) = max_D V(D, G) = -log 4 + 2 JS(p_data || p_g) (Goodfellow et al. 2014, Thm. 1)."""
    return -math.log(4.0) + 2 * js


# ----------------------------------------------------------------------------- the generator's gradient
def generator_loss_gradient(loss: str, d_fake: torch.Tensor) -> torch.Tensor:
    """d(generator loss)/d(logit) at discriminator outputs ``d_fake`` = D(G(z)), per sample.

    Analytically -D for the minimax loss (it vanishes as D(G(z)) -> 0) and -(1 - D) for the
    non-saturating loss (it stays near -1 there); computed here by autograd.
    """
    if loss not in GENERATOR_LOSSES:
        raise ValueError(f"unknown generator loss {loss!r}; choose one of {sorted(GENERATOR_LOSSES)}")
    logits = torch.logit(d_fake.double().clamp(1e-12, 1 - 1e-12)).requires_grad_(True)
    per_sample = GENERATOR_LOSSES[loss](logits[:, None]) * len(logits)  # undo the mean
    (grad,) = torch.autograd.grad(per_sample, logits)
    return grad


# ----------------------------------------------------------------------------- why Wasserstein
def parallel_lines_distances(theta: float | np.ndarray) -> dict[str, np.ndarray]:
    """Distances between P_0 = law of (0, Z) and P_theta = law of (theta, Z), Z ~ U[0, 1]
    (Arjovsky et al. 2017, Example 1): W = |theta|; for theta != 0 JS = log 2 (with the
    1/2-weighted definition), KL = +inf and TV = 1; all four are 0 at theta = 0."""
    theta = np.asarray(theta, dtype=float)
    apart = theta != 0
    return {
        "W": np.abs(theta),
        "JS": np.where(apart, LOG2, 0.0),
        "KL": np.where(apart, np.inf, 0.0),
        "TV": np.where(apart, 1.0, 0.0),
    }


def parallel_lines(theta: float, n: int, seed: int = 0, device: Any = None) -> torch.Tensor:
    """``n`` samples (theta, Z), Z ~ U[0, 1], of shape (n, 2)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(n, generator=g)
    return torch.stack([torch.full_like(z, float(theta)), z], 1).to(device or "cpu")


# ----------------------------------------------------------------------------- networks
def mlp_pair(data_dim: int, latent_dim: int, hidden: Sequence[int]) -> tuple[nn.Module, nn.Module]:
    """Generator z -> x and discriminator x -> score for 2-D toys: ReLU MLP and LeakyReLU MLP."""
    return (MLP(latent_dim, list(hidden), data_dim, act="relu"),
            MLP(data_dim, list(hidden), 1, act="leaky_relu"))


def dcgan_pair(latent_dim: int, channels: int, critic_norm: str | None) -> tuple[nn.Module, nn.Module]:
    """DCGAN-style generator (transposed convs, batch norm, sigmoid pixels) and discriminator
    (strided convs, LeakyReLU; ``critic_norm=None`` for a WGAN critic, no batch norm)."""
    return (ConvDecoder(latent_dim, channels=channels, out_act="sigmoid", norm="batch"),
            ConvEncoder(1, channels=channels, norm=critic_norm))


# ----------------------------------------------------------------------------- models
class AdversarialModel(Model):
    """A generator G: z ~ N(0, I) -> x and a discriminator / critic D: x -> score (a logit or f_w(x)).

    ``arch="mlp"`` for vectors (2-D toys), ``arch="dcgan"`` for (1, 28, 28) images; or pass your own
    ``generator`` and ``discriminator``. Their shapes are checked at construction with a dummy
    forward pass, and every batch is checked against ``data_shape`` before a step.
    One :meth:`training_step` consumes a batch of ``n_critic * m`` real samples: one chunk of m
    per discriminator update, in the order of the paper's algorithm.
    ``lr_decay`` and ``decay_start`` (every model takes them) multiply both learning rates by ``lr_decay``
    after each epoch from epoch ``decay_start`` on (``Model.on_epoch_end``); by default the rate is constant.
    """

    critic_norm: str | None = None

    def __init__(self, *, data_shape: Sequence[int], latent_dim: int, arch: str, hidden: Sequence[int],
                 channels: int, n_critic: int, generator: nn.Module | None = None,
                 discriminator: nn.Module | None = None, **hparams: Any):
        custom = {} if generator is None and discriminator is None else {
            "generator": repr(generator), "discriminator": repr(discriminator)}
        super().__init__(data_shape=list(data_shape), latent_dim=latent_dim, arch=arch, hidden=list(hidden),
                         channels=channels, n_critic=n_critic, **hparams, **custom)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        if generator is None or discriminator is None:
            if arch == "mlp":
                if len(self.data_shape) != 1:
                    raise ValueError(f"arch='mlp' is for vector data; got data_shape {self.data_shape}")
                g, d = mlp_pair(self.data_shape[0], latent_dim, hidden)
            elif arch == "dcgan":
                if self.data_shape != (1, 28, 28):
                    raise ValueError(f"arch='dcgan' is built for (1, 28, 28) images; got data_shape {self.data_shape}")
                g, d = dcgan_pair(latent_dim, channels, self.critic_norm)
            else:
                raise ValueError(f"unknown arch {arch!r}; choose 'mlp' or 'dcgan'")
            generator = generator if generator is not None else g
            discriminator = discriminator if discriminator is not None else d
        self.generator = generator
        self.discriminator = discriminator
        self._check_networks()

    # -- shapes
    @torch.no_grad()
    def _check_networks(self) -> None:
        """A dummy forward z -> G(z) -> D(G(z)) that turns any mismatch into a readable ValueError."""
        was = (self.generator.training, self.discriminator.training)
        self.generator.eval()
        self.discriminator.eval()
        try:
            try:
                x = self.generator(torch.zeros(2, self.latent_dim, device=next(self.generator.parameters()).device))
            except (ValueError, RuntimeError) as err:
                raise ValueError(f"the generator cannot take latent codes of size {self.latent_dim}: {err}") from err
            if tuple(x.shape[1:]) != self.data_shape:
                raise ValueError(f"the generator produces samples of shape {tuple(x.shape[1:])} but the data "
                                 f"(and the discriminator's input) have shape {self.data_shape}")
            try:
                s = self.discriminator(x)
            except (ValueError, RuntimeError) as err:
                raise ValueError(f"the discriminator cannot take the generator's samples of shape "
                                 f"{tuple(x.shape[1:])}: {err}") from err
            if s.numel() != 2:
                raise ValueError(f"the discriminator must return one score per sample, got shape {tuple(s.shape)}")
        finally:
            self.generator.train(was[0])
            self.discriminator.train(was[1])

    def _real_chunks(self, batch: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        x = batch[0]
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"{type(self).__name__} was built for data of shape {self.data_shape}, "
                             f"got a batch of shape {tuple(x.shape)}")
        k = self.hparams["n_critic"]
        if len(x) < k or len(x) % k:
            raise ValueError(f"a batch must hold a multiple of n_critic={k} samples (one equal chunk per critic "
                             f"step), got {len(x)}; use batch_size = n_critic * m")
        return list(x.chunk(k))

    # -- sampling
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I), shape (n, latent_dim); with a (CPU) ``generator`` the draw is reproducible."""
        n = check_count(n, f"{type(self).__name__}.noise(n)")
        return randn_like(torch.empty(n, self.latent_dim, device=self.device), generator)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's logit or the critic's value f(x), shape (N,)."""
        return self.discriminator(x).reshape(len(x))

    @torch.no_grad()
    def sample(self, n: int, z: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples G(z), z ~ N(0, I) drawn with ``generator`` (or G of the given codes), generator in eval mode."""
        was = self.generator.training
        self.generator.eval()
        out = self.generator(self.noise(n, generator) if z is None else z.to(self.device))
        self.generator.train(was)
        return out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)


class GAN(AdversarialModel):
    """Goodfellow et al. (2014), Algorithm 1: k discriminator ascents on eq. 1, then one generator step.

    ``loss="minimax"`` descends E log(1 - D(G(z))) (saturates); ``"nonsaturating"`` descends
    -E log D(G(z)). Both use Adam(lr, betas) as in DCGAN (Radford et al. 2016).

    ``gp > 0`` adds Gulrajani et al.'s penalty gp * E(||grad_x D(x_hat)|| - 1)^2 (on the logit) to the
    discriminator's loss. The loss is still eq. 1: the penalty only regularises D, as in the non-saturating
    GAN with gradient penalty of Fedus et al. (2018) and Kurach et al. (2019). The penalty needs each
    sample's score to depend on that sample alone, so the DCGAN discriminator then has no batch norm.
    """

    critic_norm = "batch"

    def __init__(self, data_shape: Sequence[int] = (2,), latent_dim: int = 8, arch: str = "mlp",
                 hidden: Sequence[int] = (128, 128, 128), channels: int = 32, loss: str = "nonsaturating",
                 lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999), k: int = 1,
                 lr_decay: float = 1.0, decay_start: int = 0, gp: float = 0.0, generator: nn.Module | None = None,
                 discriminator: nn.Module | None = None):
        if loss not in GENERATOR_LOSSES:
            raise ValueError(f"unknown GAN loss {loss!r}; choose one of {sorted(GENERATOR_LOSSES)}")
        if gp < 0:
            raise ValueError(f"the gradient-penalty weight gp must be >= 0, got {gp}")
        if gp and discriminator is not None and has_batch_norm(discriminator):
            raise ValueError("gp > 0 needs per-sample discriminator scores; this discriminator has batch norm")
        self.critic_norm = None if gp else "batch"
        super().__init__(data_shape=data_shape, latent_dim=latent_dim, arch=arch, hidden=hidden,
                         channels=channels, n_critic=k, generator=generator, discriminator=discriminator,
                         loss=loss, lr=lr, betas=list(betas), lr_decay=lr_decay, decay_start=decay_start,
                         **({"gp": gp} if gp else {}))  # gp = 0: the config (and cache key) of before
        self.optimizers = {"d": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=tuple(betas)),
                           "g": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=tuple(betas))}

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        opt_d, opt_g = self.optimizers["d"], self.optimizers["g"]
        for x in self._real_chunks(batch):  # k steps of ascent on V (descent on -V)
            fake = self.generator(self.noise(len(x))).detach()
            real_logits, fake_logits = self.score(x), self.score(fake)
            loss_d = discriminator_loss(real_logits, fake_logits)
            penalty = gradient_penalty(self.score, x, fake, lam=self.hparams["gp"]) if self.hparams.get("gp") else 0
            opt_d.zero_grad(set_to_none=True)
            (loss_d + penalty).backward()
            opt_d.step()
        fake_logits = self.score(self.generator(self.noise(len(x))))
        loss_g = GENERATOR_LOSSES[self.hparams["loss"]](fake_logits)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "value": -loss_d.detach(),  # V(D, G) on the last discriminator batch
                "d_real": torch.sigmoid(real_logits.detach()).mean(),
                "d_fake": torch.sigmoid(fake_logits.detach()).mean()}


class WGAN(AdversarialModel):
    """Arjovsky et al. (2017), Algorithm 1: n_critic RMSProp steps on the critic with weight clipping
    to [-c, c], then one RMSProp step on the generator. Defaults lr 5e-5, c 0.01, n_critic 5.

    The logged ``wasserstein`` is E f(x) - E f(G(z)) on the last critic batch. Its best value is at most
    K * W(P_r, P_theta), K the (unknown) Lipschitz constant the clipping allows, and proportional to W only if
    the clipped networks contain a maximiser (eq. 3).
    """

    def __init__(self, data_shape: Sequence[int] = (2,), latent_dim: int = 8, arch: str = "mlp",
                 hidden: Sequence[int] = (128, 128, 128), channels: int = 32, lr: float = 5e-5,
                 clip: float = 0.01, n_critic: int = 5, lr_decay: float = 1.0, decay_start: int = 0,
                 generator: nn.Module | None = None, discriminator: nn.Module | None = None):
        super().__init__(data_shape=data_shape, latent_dim=latent_dim, arch=arch, hidden=hidden,
                         channels=channels, n_critic=n_critic, generator=generator,
                         discriminator=discriminator, lr=lr, clip=clip, lr_decay=lr_decay,
                         decay_start=decay_start)
        if clip <= 0:
            raise ValueError(f"clip must be positive, got {clip}")
        self.optimizers = {"d": torch.optim.RMSprop(self.discriminator.parameters(), lr=lr),
                           "g": torch.optim.RMSprop(self.generator.parameters(), lr=lr)}
        clip_weights(self.discriminator, clip)  # w_0 in the compact set from the start

    def critic_step(self, x: torch.Tensor) -> torch.Tensor:
        """Lines 3-7: one RMSProp step on -(E f(x) - E f(G(z))), then clipping; returns the objective."""
        fake = self.generator(self.noise(len(x))).detach()
        loss = critic_loss(self.score(x), self.score(fake))
        opt = self.optimizers["d"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        clip_weights(self.discriminator, self.hparams["clip"])
        return -loss.detach()

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        for x in self._real_chunks(batch):
            w_est = self.critic_step(x)
        loss_g = wasserstein_generator_loss(self.score(self.generator(self.noise(len(x)))))  # lines 9-11
        opt = self.optimizers["g"]
        opt.zero_grad(set_to_none=True)
        loss_g.backward()
        opt.step()
        return {"wasserstein": w_est, "loss_g": loss_g.detach()}


class WGANGP(WGAN):
    """Gulrajani et al. (2017), Algorithm 1: the critic minimises E f(G(z)) - E f(x) + lam E(||grad f(x_hat)||-1)^2
    with Adam(lr 1e-4, betas (0, 0.9)), n_critic 5, lam 10; no clipping and no batch norm in the critic."""

    def __init__(self, data_shape: Sequence[int] = (2,), latent_dim: int = 8, arch: str = "mlp",
                 hidden: Sequence[int] = (128, 128, 128), channels: int = 32, lr: float = 1e-4,
                 betas: tuple[float, float] = (0.0, 0.9), lam: float = 10.0, n_critic: int = 5,
                 lr_decay: float = 1.0, decay_start: int = 0, generator: nn.Module | None = None,
                 discriminator: nn.Module | None = None):
        AdversarialModel.__init__(self, data_shape=data_shape, latent_dim=latent_dim, arch=arch, hidden=hidden,
                                  channels=channels, n_critic=n_critic, generator=generator,
                                  discriminator=discriminator, lr=lr, betas=list(betas), lam=lam,
                                  lr_decay=lr_decay, decay_start=decay_start)
        self.optimizers = {"d": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=tuple(betas)),
                           "g": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=tuple(betas))}

    def critic_step(self, x: torch.Tensor) -> torch.Tensor:
        """Lines 2-9: critic loss on real, fake and interpolates, plus the gradient penalty; one Adam step."""
        fake = self.generator(self.noise(len(x))).detach()
        w_est = -critic_loss(self.score(x), self.score(fake))
        loss = -w_est + gradient_penalty(self.score, x, fake, lam=self.hparams["lam"])
        opt = self.optimizers["d"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return w_est.detach()


def make_model(loss: str, **kwargs: Any) -> AdversarialModel:
    """A model by its loss name: ``minimax``, ``nonsaturating`` (GAN), ``wgan`` (clipping) or ``wgan-gp``."""
    if loss in GENERATOR_LOSSES:
        return GAN(loss=loss, **kwargs)
    if loss == "wgan":
        return WGAN(**kwargs)
    if loss == "wgan-gp":
        return WGANGP(**kwargs)
    raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")


# ----------------------------------------------------------------------------- the course's 2-D toy recipe
TOY_LR = {"minimax": 1e-3, "nonsaturating": 1e-3, "wgan": 5e-4, "wgan-gp": 1e-3}


def toy_recipe(loss: str, *, gen_steps: int, n_data: int, m: int = 256, final_lr: float = 0.05,
               **overrides: Any) -> tuple[AdversarialModel, dict[str, int]]:
    """The course's setting for the 2-D mixtures, after the toy experiments of Gulrajani et al. (2017, Sec. 3
    and Fig. 1, and their released toy code): MLPs with three hidden layers (512 units in their code, 128 here;
    a ReLU generator, a LeakyReLU discriminator), a 2-d latent code, m = 256 samples per discriminator step,
    Adam with beta1 = 0.5 (RMSProp for clipped WGAN), and for WGAN-GP the toy penalty weight lam = 0.1 (10 is
    their value for images). The learning rate is ``TOY_LR[loss]`` for the first half of the run, then decays
    geometrically to ``final_lr`` times that by the end, which lets the generator settle its samples onto the modes.

    Returns the model and the ``fit`` arguments (``epochs``, ``batch_size``) that give about ``gen_steps``
    generator updates on ``n_data`` training points. ``overrides`` go to :func:`make_model`.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    n_critic = overrides.get("k", 1) if loss in GENERATOR_LOSSES else overrides.get("n_critic", 5)
    batch = m * n_critic
    if n_data < batch:
        raise ValueError(f"n_data={n_data} is smaller than one training step's batch ({batch})")
    epochs = max(1, round(gen_steps / (n_data // batch)))
    start = epochs // 2
    kwargs: dict[str, Any] = dict(latent_dim=2, hidden=(128, 128, 128), lr=TOY_LR[loss],
                                  lr_decay=final_lr ** (1 / max(1, epochs - start)), decay_start=start)
    if loss in GENERATOR_LOSSES:
        kwargs["betas"] = (0.5, 0.999)
    elif loss == "wgan-gp":
        kwargs.update(betas=(0.5, 0.9), lam=0.1)
    kwargs.update(overrides)
    return make_model(loss, **kwargs), {"epochs": epochs, "batch_size": batch}


# WGAN-GP on MNIST in the course: Gulrajani et al.'s MNIST betas (0.5, 0.9) with DCGAN's rate 2e-4 (their 1e-4
# needs more generator steps than a CPU budget allows); lam = 10 and n_critic = 5 as in their Algorithm 1.
MNIST_WGANGP = {"lr": 2e-4, "betas": (0.5, 0.9)}

# The non-saturating GAN on MNIST in the course: DCGAN's lr 2e-4 and beta1 = 0.5, with the gradient penalty
# (weight 10) on a discriminator without batch norm and Gulrajani's beta2 = 0.9. With DCGAN's batch-norm
# discriminator and no penalty, D wins (mean D(G(z)) ~ 0.05-0.15), the Frechet distance stalls near 100 and
# one digit class falls below 3% of the samples; the penalty keeps D(x) and D(G(z)) near 1/2 and the classes balanced.
MNIST_GAN = {"lr": 2e-4, "betas": (0.5, 0.9), "gp": 10.0}


# ----------------------------------------------------------------------------- a discriminator for a fixed G
class FixedGeneratorCritic(Model):
    """The inner maximisation alone: a discriminator (``objective="gan"``, eq. 1) or a gradient-penalised
    critic (``"wgan-gp"``, the Kantorovich-Rubinstein dual of WGAN eq. 3) trained to tell two fixed
    samples apart. Train it with ``fit(model, (real, fake), ...)``; :meth:`estimate` returns the
    value it reaches: V(D, G) (-> 2 JS - log 4 at D*) or E f(real) - E f(fake) (-> W)."""

    def __init__(self, data_dim: int = 1, hidden: Sequence[int] = (64, 64), objective: str = "gan",
                 lr: float = 1e-3, lam: float = 10.0):
        super().__init__(data_dim=data_dim, hidden=list(hidden), objective=objective, lr=lr, lam=lam)
        if objective not in ("gan", "wgan-gp"):
            raise ValueError(f"unknown objective {objective!r}; choose 'gan' or 'wgan-gp'")
        self.net = MLP(data_dim, list(hidden), 1, act="leaky_relu")
        betas = (0.5, 0.999) if objective == "gan" else (0.0, 0.9)
        self.optimizers = {"d": torch.optim.Adam(self.net.parameters(), lr=lr, betas=betas)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logit (gan) or critic value (wgan-gp), shape (N,)."""
        return self.net(x).reshape(len(x))

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) = sigmoid(logit): the probability that x is real (gan objective)."""
        return torch.sigmoid(self(x))

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        real, fake = batch
        if self.hparams["objective"] == "gan":
            loss = discriminator_loss(self(real), self(fake))
        else:
            loss = critic_loss(self(real), self(fake)) + gradient_penalty(self, real, fake, lam=self.hparams["lam"])
        opt = self.optimizers["d"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def estimate(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        """V(D, G) (gan) or E f(real) - E f(fake) (wgan-gp) on the given samples."""
        if self.hparams["objective"] == "gan":
            return float(value_function(self.discriminate(real), self.discriminate(fake)))
        return float(self(real).mean() - self(fake).mean())
