"""Lecture 7: a GAN read as variational training of an energy-based model (EBM-GAN).

The discriminator is a log-density up to a constant: D(x) = -E(x), p_D(x) = exp(D(x)) / Z(D). The generator G is
the variational distribution q = p_G of the bound (Zhai et al. 2019, eq. 2-3):

    -log-likelihood of p_D  =  E_data[-D(x)] + log Z  >=  E_data[-D(x)] + E_q[D(x)] + H(q)        (eq. 2, Jensen)

with equality when q ∝ exp(D). Training alternates, in the order of eq. 3:

1. **G maximises the bound over q** (the inner max of eq. 3): E_z D(G(z)) + H(p_G), i.e. G minimises
   KL(p_G || p_D) up to log Z. The entropy has no closed form for an implicit p_G; the course uses the
   Kozachenko-Leonenko nearest-neighbour estimate (:func:`knn_entropy`), differentiable in the samples, weighted
   by ``entropy`` (1 is eq. 3 exactly). The paper notes that practice replaces H(p_G) by batch norm in G; the
   toys use the estimate, the MNIST generator only its batch norm (``entropy=0``, see dgsp.recipes.EBM_MNIST).
2. **D takes one step down the bound** (the outer min): loss E_z D(G(z)) - E_data D(x), the maximum-likelihood
   gradient of the EBM with the model expectation estimated by G's samples. Two stabilisers keep that game
   bounded: a penalty alpha E[D(x)^2 + D(G(z))^2] on the energies' size (Du and Mordatch 2019, Sec. 3.3) and a
   zero-centred gradient penalty r1/2 E_data ||grad_x D(x)||^2 on the data (Mescheder et al. 2018, eq. 9), which
   penalises sharpness: at the true log-density of a Gaussian mode of width sigma in d dimensions it costs
   r1 d / (2 sigma^2). ``gp`` adds instead (or as well)
   lecture 3's gradient penalty on interpolates (Gulrajani et al. 2017), which keeps D close to 1-Lipschitz: a
   smoother, blunter density, and a richer feature map (see :data:`dgsp.recipes.EBM_MNIST`).

So D is both a critic and a density model: exp(D) normalised on a grid is a density estimate (:func:`grid_density_2d`),
and Langevin dynamics on D (:func:`dgsp.score.langevin`) samples p_D starting from G's samples. The Fisher scores,
information and AFVs of D live in :mod:`dgsp.fisher`.

References
----------
* Zhai, Talbott, Guestrin and Susskind (2019), *Adversarial Fisher Vectors for Unsupervised Representation
  Learning*, NeurIPS: eqs. 2-6; their released code (apple/ml-afv) updates G before D, with Adam betas (0, 0.999)
  and a D rate twice G's.
* Kozachenko and Leonenko (1987), *Sample estimate of the entropy of a random vector*: the 1-NN estimator.
* Du and Mordatch (2019), *Implicit Generation and Generalization in Energy-Based Models*: the energy-size penalty.
* Mescheder, Geiger and Nowozin (2018), *Which Training Methods for GANs do actually Converge?*: the R1 penalty.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from dgsp.adversarial import gradient_penalty, has_batch_norm, input_gradient
from dgsp.models.gan import AdversarialModel


# ----------------------------------------------------------------------------- the entropy term of eq. 3
def knn_entropy(x: torch.Tensor) -> torch.Tensor:
    """Kozachenko-Leonenko estimate of the differential entropy (nats) of the distribution behind the rows of x:

        H ≈ d mean_i log rho_i + log V_d + log(n - 1) + gamma,

    rho_i the distance from x_i to its nearest other row, V_d the volume of the unit ball in R^d, gamma Euler's
    constant. Differentiable in x: its gradient pushes each sample away from its nearest neighbour."""
    if x.dim() < 2 or len(x) < 2:
        raise ValueError(f"knn_entropy needs at least 2 samples of shape (n, ...), got {tuple(x.shape)}")
    flat = x.flatten(1)
    n, d = flat.shape
    self_distance = torch.diag(torch.full((n,), float("inf"), device=x.device, dtype=flat.dtype))  # no self-match
    dist = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist") + self_distance
    rho = dist.min(dim=1).values.clamp_min(1e-12)
    log_unit_ball = (d / 2) * math.log(math.pi) - math.lgamma(d / 2 + 1)
    return d * rho.log().mean() + log_unit_ball + math.log(n - 1) + 0.5772156649015329


# ----------------------------------------------------------------------------- the model
class EBMGAN(AdversarialModel):
    """An EBM p_D ∝ exp(D) trained against its variational sampler G by eq. 3 (see the module docstring).

    ``arch="mlp"`` for 2-D toys, ``arch="dcgan"`` for MNIST (the course's DCGAN pair of lecture 3; D without batch
    norm, since each energy must depend on its own image). One :meth:`training_step` is one G step then one D step
    on a batch of m real samples. ``lr_d`` defaults to twice ``lr`` (the reference code's D rate)."""

    critic_norm = None

    def __init__(self, data_shape: Sequence[int] = (2,), latent_dim: int = 8, arch: str = "mlp",
                 hidden: Sequence[int] = (128, 128, 128), channels: int = 32, lr: float = 2e-4,
                 lr_d: float | None = None, betas: tuple[float, float] = (0.0, 0.999), entropy: float = 1.0,
                 alpha: float = 0.1, r1: float = 1.0, gp: float = 0.0, lr_decay: float = 1.0, decay_start: int = 0,
                 generator: nn.Module | None = None, discriminator: nn.Module | None = None):
        for name, value in (("entropy", entropy), ("alpha", alpha), ("r1", r1), ("gp", gp)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if discriminator is not None and has_batch_norm(discriminator):
            raise ValueError("an energy D(x) must depend on x alone; this discriminator has batch norm")
        lr_d = 2 * lr if lr_d is None else lr_d
        super().__init__(data_shape=data_shape, latent_dim=latent_dim, arch=arch, hidden=hidden, channels=channels,
                         n_critic=1, generator=generator, discriminator=discriminator, lr=lr, lr_d=lr_d,
                         betas=list(betas), entropy=entropy, alpha=alpha, r1=r1, lr_decay=lr_decay,
                         decay_start=decay_start, **({"gp": gp} if gp else {}))
        self.optimizers = {"g": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=tuple(betas)),
                           "d": torch.optim.Adam(self.discriminator.parameters(), lr=lr_d, betas=tuple(betas))}

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) = log p_D(x) + log Z, one number per row: the unnormalised log-density of the EBM."""
        return self.score(x)

    def generator_loss(self, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-(E D(G(z)) + entropy * H(p_G)): minus the inner objective of eq. 3. Returns (loss, entropy estimate)."""
        h = knn_entropy(fake) if self.hparams["entropy"] else torch.zeros((), device=fake.device)
        return -self.log_density(fake).mean() - self.hparams["entropy"] * h, h

    def energy_loss(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """E D(G(z)) - E_data D(x) (eq. 3's outer objective in D, the EBM's likelihood gradient) plus the two
        stabilisers. Returns (loss, the bound's data term E D(x) - E D(G(z)))."""
        d_real, d_fake = self.log_density(real), self.log_density(fake)
        gap = d_real.mean() - d_fake.mean()
        loss = -gap + self.hparams["alpha"] * (d_real ** 2 + d_fake ** 2).mean()
        if self.hparams["r1"]:
            grads = input_gradient(self.log_density, real, create_graph=True)
            loss = loss + 0.5 * self.hparams["r1"] * (grads ** 2).sum(1).mean()
        if self.hparams.get("gp"):
            loss = loss + gradient_penalty(self.log_density, real, fake, lam=self.hparams["gp"])
        return loss, gap

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        (x,) = self._real_chunks(batch)
        opt_g, opt_d = self.optimizers["g"], self.optimizers["d"]
        loss_g, h = self.generator_loss(self.generator(self.noise(len(x))))  # 1. G: the inner max of eq. 3
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        fake = self.generator(self.noise(len(x))).detach()                   # 2. D: one step on the outer min
        loss_d, gap = self.energy_loss(x, fake)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "gap": gap.detach(), "entropy": h.detach()}


# ----------------------------------------------------------------------------- a density on a 2-D grid
def grid_2d(lim: float, n: int = 128, device: Any = None) -> tuple[torch.Tensor, float]:
    """The n x n cell centres of the square [-lim, lim]^2, as (n*n, 2) points, and the cell area."""
    if n < 2 or lim <= 0:
        raise ValueError(f"need n >= 2 cells and lim > 0, got n={n}, lim={lim}")
    ticks = torch.linspace(-lim, lim, n, device=device)
    return torch.cartesian_prod(ticks, ticks), float((ticks[1] - ticks[0]) ** 2)


@torch.no_grad()
def grid_density_2d(log_density, points: torch.Tensor, cell: float) -> torch.Tensor:
    """exp(log_density) on grid points, normalised to integrate to 1 over the grid (a Riemann sum)."""
    logp = torch.cat([log_density(p).double().reshape(-1) for p in points.split(4096)])
    dens = (logp - logp.max()).exp()
    return dens / (dens.sum() * cell)

