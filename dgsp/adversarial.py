"""Losses and penalties shared by every adversarial model of the course.

Lecture 3 (GAN, WGAN), lecture 4 (a discriminator on codes), lecture 5 (a discriminator on pairs (x, z))
and lecture 7 (an energy) all train a network D against samples, with one of these objectives. Each
function takes D's raw outputs (logits for a GAN, critic values f(x) for a WGAN), so it does not matter what
D looks at: the penalty and the input gradient accept a tensor or a tuple of tensors (e.g. ``(x, z)``).

References
----------
* Goodfellow et al. (2014), *Generative Adversarial Nets*: the value function V(D, G) (eq. 1) and the
  non-saturating generator objective (Sec. 3).
* Arjovsky et al. (2017), *Wasserstein GAN*: the critic objective (eq. 3) and weight clipping (Algorithm 1).
* Gulrajani et al. (2017), *Improved Training of Wasserstein GANs*: the gradient penalty (eq. 3).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Inputs = torch.Tensor | tuple[torch.Tensor, ...]


# ----------------------------------------------------------------------------- the GAN game (eq. 1)
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-V(D, G): the discriminator maximises eq. 1, i.e. minimises the binary cross-entropy
    -log D(x) - log(1 - D(G(z))), written stably with D = sigmoid(logit)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """The saturating loss E log(1 - D(G(z))) of eq. 1, minimised by G: log(1 - sigmoid(a)) = -softplus(a)."""
    return -F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating loss -E log D(G(z)) (Goodfellow et al. 2014, Sec. 3): same fixed point, strong
    gradients early on, when D confidently rejects the samples."""
    return F.softplus(-fake_logits).mean()


GENERATOR_LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "minimax": generator_loss_minimax, "nonsaturating": generator_loss_nonsaturating,
}


# ----------------------------------------------------------------------------- the Wasserstein game (eq. 3)
def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Minus the Kantorovich-Rubinstein objective E f(x) - E f(G(z)) (WGAN eq. 3; Algorithm 1 line 5)."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """-E f(G(z)) (WGAN Algorithm 1, line 10): the generator raises the critic's score of its samples."""
    return -fake_scores.mean()


# ----------------------------------------------------------------------------- keeping D smooth
def _as_tuple(x: Inputs) -> tuple[torch.Tensor, ...]:
    return (x,) if isinstance(x, torch.Tensor) else tuple(x)


def input_gradient(critic: Callable[..., torch.Tensor], x: Inputs, create_graph: bool = False) -> torch.Tensor:
    """grad_x critic(x) for every sample, flattened to (N, total input size); with a tuple input the
    gradients of all parts are concatenated. Each sample's score must depend on that sample alone (no batch
    norm), so the gradient of the summed scores holds every per-sample gradient at once."""
    parts = tuple(t.detach().requires_grad_(True) for t in _as_tuple(x))
    scores = critic(*parts) if len(parts) > 1 else critic(parts[0])
    grads = torch.autograd.grad(scores.sum(), parts, create_graph=create_graph)
    return torch.cat([g.flatten(1) for g in grads], dim=1)


def gradient_penalty(critic: Callable[..., torch.Tensor], real: Inputs, fake: Inputs, lam: float = 10.0,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """lam * E (||grad f(x_hat)||_2 - 1)^2 on x_hat = eps x + (1 - eps) x_fake, eps ~ U[0, 1] per sample
    (Gulrajani et al. 2017, eq. 3 and Algorithm 1 lines 4-7).

    ``real`` and ``fake`` are tensors, or tuples of tensors that the critic takes together (a pair (x, z));
    a tuple is interpolated with one eps per sample for all its parts. The gradient is kept in the graph
    (``create_graph``), so the penalty itself can be differentiated with respect to the critic's weights.
    """
    real_t, fake_t = _as_tuple(real), _as_tuple(fake)
    if len(real_t) != len(fake_t) or any(r.shape != f.shape for r, f in zip(real_t, fake_t)):
        raise ValueError(f"real {[tuple(r.shape) for r in real_t]} and fake {[tuple(f.shape) for f in fake_t]} "
                         "batches must have the same shapes")
    n = len(real_t[0])
    if eps is None:
        eps = torch.rand(n, device=real_t[0].device, dtype=real_t[0].dtype)
    eps = eps.reshape(n)
    x_hat = tuple(e * r + (1 - e) * f for r, f in zip(real_t, fake_t)
                  for e in [eps.view(n, *([1] * (r.dim() - 1)))])
    norms = input_gradient(critic, x_hat if len(x_hat) > 1 else x_hat[0], create_graph=True).norm(dim=1)
    return lam * ((norms - 1) ** 2).mean()


@torch.no_grad()
def clip_weights(critic: nn.Module, c: float) -> None:
    """w <- clip(w, -c, c) for every critic parameter (WGAN Algorithm 1, line 7)."""
    if c <= 0:
        raise ValueError(f"clip value must be positive, got {c}")
    for p in critic.parameters():
        p.clamp_(-c, c)


def has_batch_norm(net: nn.Module) -> bool:
    """True if ``net`` normalises over the batch: its outputs then mix samples, which a per-sample gradient
    penalty (and a per-sample input gradient) cannot allow."""
    return any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)) for m in net.modules())
