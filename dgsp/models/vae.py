"""Lecture 2: the variational autoencoder (Kingma and Welling 2014) and its importance-weighted bound.

The model: prior p(z) = N(0, I); decoder p_θ(x|z) Bernoulli (logits) or Gaussian; encoder
q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x)) with a mean head and a log-variance head on a shared body
(slides "Variational Autoencoder: Example"). Training maximises the ELBO

    L(θ, φ; x) = E_q[log p_θ(x|z)] − β KL(q_φ(z|x) || p(z))          (Kingma and Welling 2014, eq. 3)

with one reparameterised sample z = μ + σ ⊙ ε per image for the first term and the closed-form
Gaussian KL for the second: the SGVB estimator of eq. 7, in its Gaussian form eq. 10
(β = 1; β ≠ 1 is Higgins et al. 2017).
Test log-likelihoods use the importance-weighted bound (Burda et al. 2016, eqs. 8-9)

    log p(x) ≥ L_k = E[log (1/k) Σ_i p(x, z_i) / q(z_i|x)],   z_i ~ q(z|x),

which equals the ELBO at k = 1 and increases to log p(x) as k → ∞.

References
----------
* Paik (2018), lecture notes, slides "Variational Inference: ELBO as a penalized expected
  likelihood", "Reparameterization trick", "Variational Autoencoder: Example".
* Kingma and Welling (2014), *Auto-Encoding Variational Bayes*, eqs. 3, 7, 10 and Appendix B.
* Burda, Grosse and Salakhutdinov (2016), *Importance Weighted Autoencoders*, eqs. 8-9.
* Higgins et al. (2017), *β-VAE*; Alemi et al. (2018), *Fixing a Broken ELBO* (rate and distortion).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dgsp.core import check_count, rand_like, randn_like
from dgsp.data import binarize as dynamic_binarize
from dgsp.data import check_images
from dgsp.divergences import gaussian_kl, log_normal_diag
from dgsp.nets import MLP, ConvDecoder, ConvEncoder, check_shape
from dgsp.train import Model

__all__ = ["reparameterize", "gaussian_kl", "bernoulli_log_likelihood", "gaussian_log_likelihood",
           "elbo", "log_importance_weights", "iwae_bound", "rate_distortion", "run_summary",
           "latent_traversal_grid", "active_units", "VAE"]


# ----------------------------------------------------------------------------- the pieces
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I): a draw from N(μ, diag σ²) that is differentiable in (μ, log σ²)
    (slide "Reparameterization trick"; Kingma and Welling 2014, §2.4)."""
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have the same shape")
    return mu + (0.5 * logvar).exp() * randn_like(mu, generator)


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log p(x|z) = Σ_pixels [x log π + (1 − x) log(1 − π)] with π = sigmoid(logits); one value per image.

    Computed from logits (a numerically stable −BCE); x must lie in [0, 1].
    """
    if x.shape != logits.shape:
        raise ValueError(f"images {tuple(x.shape)} and logits {tuple(logits.shape)} do not match")
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag e^logvar) summed over pixels; one value per image (logvar broadcasts)."""
    if x.shape != mean.shape:
        raise ValueError(f"images {tuple(x.shape)} and means {tuple(mean.shape)} do not match")
    return log_normal_diag(x.flatten(1), mean.flatten(1), logvar.expand_as(mean).flatten(1))


# ----------------------------------------------------------------------------- the model
class VAE(Model):
    """A VAE with a Gaussian encoder and a Bernoulli or Gaussian decoder.

    arch: ``mlp`` (encoder image -> hidden... -> 2·z_dim, decoder z -> reversed hidden -> image;
          the default hidden=(200, 200) with z_dim=50 is Burda et al.'s 784-200-200-50) or
          ``conv`` (the DCGAN-style nets of :mod:`dgsp.nets`).
    likelihood: ``bernoulli`` (the decoder outputs logits; images must be in [0, 1]) or
          ``gaussian`` (the decoder outputs a mean in (0, 1) via a sigmoid; the per-pixel
          log-variance is ``obs_logvar`` if given, otherwise a learned parameter kept ≥ ``min_logvar``).
    beta: the weight of the KL term; ``warmup_steps`` > 0 ramps it linearly from 0 (KL annealing).
    binarize: dynamically binarise every training batch (a fresh Bernoulli draw per step).
    lr_decay: multiplies the learning rate by this factor after every epoch (``Model.on_epoch_end``).
    betas: Adam's (β1, β2).
    """

    def __init__(self, z_dim: int = 50, arch: str = "mlp", hidden: tuple[int, ...] = (200, 200),
                 likelihood: str = "bernoulli", beta: float = 1.0, binarize: bool = True, lr: float = 1e-3,
                 lr_decay: float = 1.0, warmup_steps: int = 0, act: str = "relu", channels: int = 32,
                 obs_logvar: float | None = None, min_logvar: float = -6.0,
                 image_shape: tuple[int, int, int] = (1, 28, 28), betas: tuple[float, float] = (0.9, 0.999)):
        extra = {} if tuple(betas) == (0.9, 0.999) else {"betas": list(betas)}  # the cache key of older runs stays
        super().__init__(z_dim=z_dim, arch=arch, hidden=list(hidden), likelihood=likelihood, beta=beta,
                         binarize=binarize, lr=lr, lr_decay=lr_decay, warmup_steps=warmup_steps, act=act,
                         channels=channels, obs_logvar=obs_logvar, min_logvar=min_logvar,
                         image_shape=list(image_shape), **extra)
        if z_dim < 1:
            raise ValueError(f"z_dim must be positive, got {z_dim}")
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"unknown likelihood {likelihood!r}; choose 'bernoulli' or 'gaussian'")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.z_dim = z_dim
        self.image_shape = tuple(image_shape)
        if arch == "mlp":
            self.encoder = MLP(self.image_shape, list(hidden), 2 * z_dim, act=act)
            self.decoder = MLP(z_dim, list(reversed(hidden)), self.image_shape, act=act)
        elif arch == "conv":
            if self.image_shape != (1, 28, 28):
                raise ValueError("the conv VAE is built for (1, 28, 28) images")
            self.encoder = ConvEncoder(2 * z_dim, channels=channels, norm=None)
            self.decoder = ConvDecoder(z_dim, channels=channels, out_act=None, norm=None)
        else:
            raise ValueError(f"unknown arch {arch!r}; choose 'mlp' or 'conv'")
        if likelihood == "gaussian" and obs_logvar is None:
            self.decoder_logvar = nn.Parameter(torch.zeros(self.image_shape))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.optimizers = {"vae": torch.optim.Adam(self.parameters(), lr=lr, betas=tuple(betas))}

    # -- the two conditionals
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q_φ(z|x) = N(μ, diag e^logvar): returns (μ, logvar), each (N, z_dim)."""
        check_shape(x, (None, *self.image_shape), type(self).__name__, finite=True)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's raw output for codes (N, z_dim): Bernoulli logits, or the Gaussian mean."""
        check_shape(z, (None, self.z_dim), f"{type(self).__name__}.decode")
        out = self.decoder(z)
        return out if self.hparams["likelihood"] == "bernoulli" else torch.sigmoid(out)

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] in [0, 1]: sigmoid of the logits, or the Gaussian mean."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.hparams["likelihood"] == "bernoulli" else out

    def obs_logvar(self) -> torch.Tensor:
        """The Gaussian decoder's per-pixel log-variance (fixed or learned, clamped below)."""
        h = self.hparams
        if h["obs_logvar"] is not None:
            return torch.full(self.image_shape, float(h["obs_logvar"]), device=self.device)
        return self.decoder_logvar.clamp(min=h["min_logvar"])

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p_θ(x|z), one value per row (x and z have the same number of rows)."""
        out = self.decode(z)
        if self.hparams["likelihood"] == "bernoulli":
            return bernoulli_log_likelihood(x, out)
        return gaussian_log_likelihood(x, out, self.obs_logvar())

    def check_images(self, x: torch.Tensor) -> None:
        """Shape, dtype and finiteness, and values in [0, 1] for the Bernoulli decoder (a clear error, not a
        NaN later): :func:`dgsp.data.check_images`."""
        check_images(x, self.image_shape, f"the {type(self).__name__}",
                     unit_range=self.hparams["likelihood"] == "bernoulli")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction E[x|z = μ(x)] (the encoder mean, no sampling)."""
        return self.mean_image(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, mean: bool = True) -> torch.Tensor:
        """n images from the model: z ~ N(0, I), then E[x|z] (``mean=True``) or a draw x ~ p(x|z)."""
        n = check_count(n, f"{type(self).__name__}.sample(n)")
        z = randn_like(torch.empty(n, self.z_dim, device=self.device), generator)
        probs = self.mean_image(z)
        if mean:
            return probs
        if self.hparams["likelihood"] == "bernoulli":
            return (rand_like(probs, generator) < probs).float() \
                if generator is not None else torch.bernoulli(probs)
        return probs + (0.5 * self.obs_logvar()).exp() * randn_like(probs, generator)

    # -- training
    def current_beta(self) -> float:
        """β, ramped linearly from 0 over the first ``warmup_steps`` steps if KL warm-up is on."""
        return float(self._beta())

    def _beta(self) -> torch.Tensor | float:
        """β as training uses it: a device tensor during warm-up, so that no step waits for the host."""
        h = self.hparams
        if h["warmup_steps"] <= 0:
            return float(h["beta"])
        return float(h["beta"]) * (self.steps_done / h["warmup_steps"]).clamp(max=1.0)

    def check_data(self, data: tuple[torch.Tensor, ...]) -> None:
        """Called once by :func:`dgsp.train.fit` on the whole training set (the steps then skip the checks)."""
        self.check_images(data[0])

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        x = batch[0]
        if self.hparams["binarize"]:
            x = dynamic_binarize(x, check=False)
        terms = elbo(self, x, beta=self._beta(), check=False)
        opt = self.optimizers["vae"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].mean().backward()
        opt.step()
        self.steps_done += 1
        return {name: terms[name].detach().mean() for name in ("loss", "elbo", "recon", "kl")}


# ----------------------------------------------------------------------------- bounds
def elbo(model: VAE, x: torch.Tensor, beta: float | torch.Tensor = 1.0, analytic_kl: bool = True,
         generator: torch.Generator | None = None, check: bool = True) -> dict[str, torch.Tensor]:
    """The per-image ELBO = reconstruction − KL, with one reparameterised sample z ~ q(z|x).

    ``recon`` = log p(x|z) (the SGVB estimate of E_q[log p(x|z)], Kingma and Welling 2014, eq. 7);
    ``kl`` = KL(q(z|x) || N(0, I)) in closed form (eq. 10) or, with ``analytic_kl=False``, its
    one-sample estimate log q(z|x) − log p(z) (eq. 6's generic estimator).
    ``elbo`` = recon − kl (β = 1); ``loss`` = −(recon − β kl), the β-weighted training objective.
    ``check=False`` skips :meth:`VAE.check_images` (training checks its data once, in ``fit``).
    """
    if check:
        model.check_images(x)
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, generator)
    recon = model.log_likelihood(x, z)
    if analytic_kl:
        kl = gaussian_kl(mu, logvar)
    else:
        kl = log_normal_diag(z, mu, logvar) - log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
    return {"elbo": recon - kl, "recon": recon, "kl": kl, "loss": -(recon - beta * kl)}


def log_importance_weights(model: VAE, x: torch.Tensor, k: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x) for k draws z_i ~ q(z|x): shape (N, k).

    Draws are made in image-major order, so with the same generator the first column matches
    :func:`elbo`'s sample when N = 1 or k = 1.
    """
    mu, logvar = model.encode(x)
    n, d = mu.shape
    mu_k = mu[:, None, :].expand(n, k, d).reshape(n * k, d)
    logvar_k = logvar[:, None, :].expand(n, k, d).reshape(n * k, d)
    z = reparameterize(mu_k, logvar_k, generator)
    x_k = x[:, None].expand(n, k, *x.shape[1:]).reshape(n * k, *x.shape[1:])
    log_w = (model.log_likelihood(x_k, z) + log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
             - log_normal_diag(z, mu_k, logvar_k))
    return log_w.view(n, k)


@torch.no_grad()
def iwae_bound(model: VAE, x: torch.Tensor, k: int, batch: int = 100, max_rows: int = 20_000,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """The importance-weighted bound L_k = log (1/k) Σ_i w_i per image (Burda et al. 2016, eqs. 8-9).

    Images go ``batch`` at a time and their k samples in chunks of at most ``max_rows`` decoder
    rows, so k = 1000 or 5000 fits in memory; the log-weights of one image are combined with
    logsumexp. L_1 is the ELBO; L_k increases with k towards log p(x). Returns (N,) in nats.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    model.check_images(x)
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(x), batch):
        xb = x[start:start + batch]
        per_chunk = max(1, min(k, max_rows // len(xb)))
        log_w = [log_importance_weights(model, xb, min(per_chunk, k - done), generator)
                 for done in range(0, k, per_chunk)]
        out.append(torch.logsumexp(torch.cat(log_w, dim=1), dim=1) - math.log(k))
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def rate_distortion(model: VAE, x: torch.Tensor, batch: int = 500,
                    generator: torch.Generator | None = None) -> dict[str, float]:
    """Average rate R = KL(q(z|x) || p(z)) and distortion D = −E_q[log p(x|z)] in nats per image
    (Alemi et al. 2018); −ELBO = D + R."""
    rate, dist = 0.0, 0.0
    for start in range(0, len(x), batch):
        t = elbo(model, x[start:start + batch], generator=generator)
        rate += float(t["kl"].sum())
        dist -= float(t["recon"].sum())
    return {"rate": rate / len(x), "distortion": dist / len(x), "elbo": -(rate + dist) / len(x)}


@torch.no_grad()
def run_summary(model: VAE, x_eval: torch.Tensor, x_show: torch.Tensor, n_samples: int = 16,
                seed: int = 0) -> dict:
    """What the β explorer shows for one trained model, computed once and kept on the CPU: rate, distortion,
    ELBO on ``x_eval``, reconstructions of ``x_show`` and prior samples."""
    g = torch.Generator().manual_seed(seed)
    model.eval()
    summary = rate_distortion(model, x_eval, generator=g)
    summary.update(inputs=x_show.cpu(), recons=model(x_show).cpu(), samples=model.sample(n_samples, generator=g).cpu())
    return summary


@torch.no_grad()
def latent_traversal_grid(model: VAE, z_base: torch.Tensor, dims: list[int],
                          values: torch.Tensor | list[float]) -> torch.Tensor:
    """Decode z_base with one coordinate at a time swept over ``values``: (len(dims)·len(values), C, H, W),
    one row per latent dimension."""
    values = torch.as_tensor(values, dtype=torch.float32)
    z_base = z_base.detach().reshape(1, -1).to(model.device)
    if z_base.shape[1] != model.z_dim:
        raise ValueError(f"z_base must have {model.z_dim} entries, got {z_base.shape[1]}")
    codes = z_base.repeat(len(dims) * len(values), 1)
    for row, d in enumerate(dims):
        codes[row * len(values):(row + 1) * len(values), d] = values.to(model.device)
    return model.mean_image(codes)


@torch.no_grad()
def active_units(model: VAE, x: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across the data, Cov_x(E_q[z_j]) > threshold
    (Burda et al. 2016, §5.2); the other dimensions have collapsed to the prior."""
    mu = torch.cat([model.encode(x[i:i + 500])[0] for i in range(0, len(x), 500)])
    return int((mu.var(0) > threshold).sum())
