"""Fisher scores, Fisher information and adversarial Fisher vectors, for any density model given as a network.

A model here is an ``nn.Module`` ``f_θ`` whose output, one number per input, is a log-density up to a constant:
p_θ(x) = exp(f_θ(x)) / Z(θ). Lecture 7's EBM-GAN discriminator D is one (p ∝ e^D); so is any unnormalised model.

* **Fisher score** (Zhai et al. 2019, eq. 4): U_x = ∇_θ log p_θ(x) = ∇_θ f_θ(x) − ∇_θ log Z(θ), and
  ∇_θ log Z = E_{p_θ} ∇_θ f_θ. That expectation is over the model; an EBM-GAN's generator samples the model, so it
  is estimated with generated samples: U_x = ∇_θ D(x) − mean_i ∇_θ D(G(z_i)) (eq. 5).
* **Fisher information** I = E_{p_θ}[U Uᵀ] (eq. 5), here its diagonal, estimated on the generated samples.
* **Adversarial Fisher vector** V_x = diag(I)^{-1/2} U_x (eq. 6). The Fisher kernel U_xᵀ I⁻¹ U_y becomes, with the
  diagonal, the dot product V_xᵀ V_y. The Fisher distance (U_x − U_y)ᵀ I⁻¹ (U_x − U_y) becomes ‖V_x − V_y‖²; the
  course reports its square root, the Euclidean distance ‖V_x − V_y‖, and the distance between two sets is the
  distance between their mean AFVs.

Per-sample gradients come from ``torch.func`` (``functional_call`` + ``vmap`` + ``grad``): one vectorised pass per
few rows (:func:`vmap_rows`), never a Python loop over samples. The parameter vector of a network has up to millions
of entries, so the functions take ``chunk`` (rows held at a time) and ``params`` (the names of the parameters to
differentiate, default all), and :func:`fisher_vectors_in_chunks` yields AFVs chunk by chunk for consumers that
cannot hold them all.
:class:`FisherEmbedding` bundles a model with its centre and information and streams AFVs through an optional
:class:`CountSketch`, a seeded projection to fewer coordinates that keeps inner products in expectation (a
Johnson-Lindenstrauss-type map that needs O(P) memory, not a P x k matrix).
"""
from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from dgsp.data import check_finite_rows


def _selected(model: nn.Module, params: Sequence[str] | None) -> dict[str, torch.Tensor]:
    named = dict(model.named_parameters())
    if params is None:
        return {k: v.detach() for k, v in named.items()}
    unknown = [p for p in params if p not in named]
    if unknown:
        raise ValueError(f"unknown parameter names {unknown}; the model has {list(named)}")
    if not params:
        raise ValueError("params is empty: name at least one parameter")
    return {k: named[k].detach() for k in params}


def _check_inputs(x: torch.Tensor, who: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{who} expects a non-empty batch of inputs (N, ...), got {shape}")
    check_finite_rows(x.flatten(1), f"the inputs given to {who}")


def vmap_rows(device: torch.device) -> int:
    """Rows per ``vmap`` call of :func:`per_sample_gradients`. Under vmap a convolution's per-sample weight gradient
    becomes one grouped convolution with a group per row, which a CPU runs fastest in small groups: for lecture 7's
    D at batch 256 on a 2-core CPU (2026-12-03, best of 3), 32 rows a call took 102 ms, 16 rows 108, 64 rows 155,
    256 rows 173 (the loop over rows: 195 ms), with identical gradients. A GPU wants wide calls: 256 there."""
    return 32 if device.type == "cpu" else 256


def per_sample_gradients(model: nn.Module, x: torch.Tensor, params: Sequence[str] | None = None,
                         chunk: int | None = None) -> torch.Tensor:
    """∇_θ f_θ(x_i) for each row, flattened and concatenated over the selected parameters: (N, P), computed
    ``chunk`` rows per ``vmap`` call (default :func:`vmap_rows` of x's device).

    The model must map a batch (N, ...) to N numbers (or (N, 1)) and treat the rows independently (put batch norm
    in eval mode first)."""
    _check_inputs(x, "per_sample_gradients")
    chunk = vmap_rows(x.device) if chunk is None else chunk
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    chosen = _selected(model, params)
    frozen = {k: v.detach() for k, v in model.named_parameters() if k not in chosen}
    buffers = dict(model.named_buffers())

    def f(theta: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, ({**frozen, **theta}, buffers), (xi[None],))
        if out.numel() != 1:
            raise ValueError(f"the model must return one number per input, got shape {tuple(out.shape)} for one row")
        return out.reshape(())

    per_row = vmap(grad(f), in_dims=(None, 0))
    sizes = [v.numel() for v in chosen.values()]
    first = next(iter(chosen.values()))
    grads = torch.empty(len(x), sum(sizes), device=first.device, dtype=first.dtype)
    for i in range(0, len(x), chunk):  # each chunk's gradients are written once, straight into their columns
        g = per_row(chosen, x[i:i + chunk])
        for k, start, size in zip(chosen, itertools.accumulate([0] + sizes), sizes):
            grads[i:i + len(g[k]), start:start + size] = g[k].reshape(len(g[k]), size)
    return grads


def mean_gradient(model: nn.Module, x: torch.Tensor, params: Sequence[str] | None = None,
                  chunk: int = 256) -> torch.Tensor:
    """mean_i ∇_θ f_θ(x_i), (P,): the estimate of ∇_θ log Z = E_p ∇_θ f_θ when the x_i are samples of the model."""
    total = None
    for i in range(0, len(x), chunk):
        g = per_sample_gradients(model, x[i:i + chunk], params).sum(0)
        total = g if total is None else total + g
    return total / len(x)


def fisher_scores(model: nn.Module, x: torch.Tensor, model_samples: torch.Tensor, params: Sequence[str] | None = None,
                  chunk: int = 256, centre: torch.Tensor | None = None) -> torch.Tensor:
    """U_x = ∇_θ f_θ(x) − mean_i ∇_θ f_θ(x̃_i) for each row of x, with x̃ samples of the model (eqs. 4-5): (N, P).
    ``centre`` (the mean gradient on the model samples) may be passed to avoid recomputing it."""
    if centre is None:
        _check_inputs(model_samples, "fisher_scores (model samples)")
        centre = mean_gradient(model, model_samples, params, chunk)
    return per_sample_gradients(model, x, params) - centre


def fisher_information_diag(model: nn.Module, model_samples: torch.Tensor, params: Sequence[str] | None = None,
                            chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """diag I = mean_i U_{x̃_i}² over model samples x̃ (eq. 5, its diagonal), with the centre mean_i ∇_θ f_θ(x̃_i).
    Returns (diag I, centre).

    One pass over the samples: with g_i = ∇_θ f_θ(x̃_i), mean_i (g_i − ḡ)² = mean_i g_i² − ḡ², both sums kept in
    float64 so that the subtraction does not cancel away small variances."""
    _check_inputs(model_samples, "fisher_information_diag")
    if len(model_samples) < 2:
        raise ValueError("the Fisher information needs at least 2 model samples")
    total = squares = None
    for i in range(0, len(model_samples), chunk):
        g = per_sample_gradients(model, model_samples[i:i + chunk], params)
        s, q = g.sum(0, dtype=torch.float64), (g * g).sum(0, dtype=torch.float64)
        total, squares = (s, q) if total is None else (total + s, squares + q)
    n = len(model_samples)
    centre = total / n
    info = (squares / n - centre ** 2).clamp_min(0)
    return info.to(g.dtype), centre.to(g.dtype)


def inverse_sqrt_information(info_diag: torch.Tensor, floor: float = 1e-12) -> torch.Tensor:
    """diag(I)^{-1/2}, with 0 where an entry is zero, below ``floor`` or not finite: such coordinates carry no
    information and are dropped from the AFV, and a warning says how many. A parameter whose gradient is the same
    for every input has zero information: the output bias of D (∂D/∂b = 1, so U_{x,b} = 1 − E_p[1] = 0; it only
    moves log Z), or a unit that never fires."""
    bad = ~torch.isfinite(info_diag) | (info_diag <= floor)
    if bad.any():
        warnings.warn(f"{int(bad.sum())} of {len(info_diag)} Fisher-information entries are zero or not finite "
                      "(parameters whose gradient is the same for every input, such as an output bias, or unused "
                      "ones); their AFV coordinates are set to 0", stacklevel=2)
    return torch.where(bad, torch.zeros_like(info_diag), info_diag.clamp_min(floor).rsqrt())


def adversarial_fisher_vectors(scores: torch.Tensor, info_diag: torch.Tensor) -> torch.Tensor:
    """V_x = diag(I)^{-1/2} U_x (eq. 6), row by row."""
    if scores.dim() != 2 or scores.shape[1] != len(info_diag):
        raise ValueError(f"scores (N, P) and diag(I) (P,) must agree; got {tuple(scores.shape)} and "
                         f"{tuple(info_diag.shape)}")
    return scores * inverse_sqrt_information(info_diag)


def fisher_vectors_in_chunks(model: nn.Module, x: torch.Tensor, info_diag: torch.Tensor, centre: torch.Tensor,
                             params: Sequence[str] | None = None, chunk: int = 256) -> Iterator[torch.Tensor]:
    """The AFVs of x, ``chunk`` rows at a time, for consumers that cannot hold all N x P of them."""
    scale = inverse_sqrt_information(info_diag)
    for i in range(0, len(x), chunk):
        yield per_sample_gradients(model, x[i:i + chunk], params).sub_(centre).mul_(scale)  # in place


def fisher_kernel(v_a: torch.Tensor, v_b: torch.Tensor) -> torch.Tensor:
    """K(x, y) = U_xᵀ diag(I)⁻¹ U_y = V_xᵀ V_y for all pairs of rows: (N_a, N_b)."""
    _check_pair(v_a, v_b)
    return v_a @ v_b.T


def fisher_distance(v_a: torch.Tensor, v_b: torch.Tensor) -> torch.Tensor:
    """sqrt(K(x,x) + K(y,y) − 2K(x,y)) = ‖V_x − V_y‖ for all pairs of rows: (N_a, N_b). This is the square root of
    the Fisher distance (U_x − U_y)ᵀ I⁻¹ (U_x − U_y), with diag(I) for I and the zero-information coordinates
    dropped."""
    _check_pair(v_a, v_b)
    return torch.cdist(v_a, v_b)


def set_distance(v_a: torch.Tensor, v_b: torch.Tensor) -> float:
    """The Fisher distance between two sets: ‖mean V_a − mean V_b‖ (the distance between their mean AFVs)."""
    _check_pair(v_a, v_b)
    return float((v_a.mean(0) - v_b.mean(0)).norm())


def _check_pair(v_a: torch.Tensor, v_b: torch.Tensor) -> None:
    for name, v in (("first", v_a), ("second", v_b)):
        if not isinstance(v, torch.Tensor) or v.dim() != 2 or len(v) == 0:
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"the {name} set must be a non-empty (N, P) tensor of Fisher vectors, got {shape}")
    if v_a.shape[1] != v_b.shape[1]:
        raise ValueError(f"the two sets have Fisher vectors of different sizes: {v_a.shape[1]} and {v_b.shape[1]}")


def parameter_coordinates(model: nn.Module, names: Sequence[str], params: Sequence[str] | None = None) -> torch.Tensor:
    """The positions, in the flattened score vector of :func:`per_sample_gradients`, of the parameters whose names
    equal or start with one of ``names`` (e.g. ``"net.6"`` for both the weight and the bias of layer 6)."""
    chosen = _selected(model, params)
    idx, start = [], 0
    matched = set()
    for name, p in chosen.items():
        hit = [n for n in names if name == n or name.startswith(n + ".")]
        if hit:
            idx.append(torch.arange(start, start + p.numel()))
            matched.update(hit)
        start += p.numel()
    missing = [n for n in names if n not in matched]
    if missing:
        raise ValueError(f"no parameter is named {missing} or starts with it; the parameters are {list(chosen)}")
    return torch.cat(idx) if idx else torch.empty(0, dtype=torch.long)


# ----------------------------------------------------------------------------- streaming AFVs into a smaller space
class CountSketch:
    """A seeded count sketch R^P -> R^k (Charikar, Chen and Farach-Colton 2002; "feature hashing", Weinberger et al.
    2009): coordinate j of v is added, with a random sign s_j, to bucket h_j. For any a, b, E[<Sa, Sb>] = <a, b>,
    and distances are kept to within a relative error of order 1/sqrt(k). It stores 2P integers instead of a
    P x k matrix, and sketching a sketch is again a sketch.

    ``exact`` (coordinate indices) keeps some coordinates as they are: they take the first buckets, one each with
    sign +1, and the other coordinates are hashed into the remaining ``out_dim - len(exact)`` buckets. Used to keep
    a small layer whole (e.g. a discriminator's linear head) while its large layers are hashed."""

    def __init__(self, in_dim: int, out_dim: int, seed: int = 0, exact: torch.Tensor | None = None):
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"a sketch needs positive sizes, got {in_dim} -> {out_dim}")
        exact = torch.zeros(0, dtype=torch.long) if exact is None else torch.as_tensor(exact).long().flatten()
        if len(exact):
            if exact.unique().numel() != len(exact) or int(exact.min()) < 0 or int(exact.max()) >= in_dim:
                raise ValueError(f"exact must hold distinct coordinate indices in [0, {in_dim}), got {len(exact)} "
                                 f"indices in [{int(exact.min())}, {int(exact.max())}]")
            if len(exact) >= out_dim:
                raise ValueError(f"{len(exact)} exact coordinates leave no bucket for the others in {out_dim}")
        g = torch.Generator().manual_seed(seed)
        self.in_dim, self.out_dim = in_dim, out_dim
        # the hashed coordinates go uniformly into the buckets after the exact ones
        self.bucket = len(exact) + torch.randint(0, out_dim - len(exact), (in_dim,), generator=g)
        self.sign = torch.randint(0, 2, (in_dim,), generator=g).float() * 2 - 1
        self.bucket[exact] = torch.arange(len(exact))
        self.sign[exact] = 1.0

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        if v.dim() != 2 or v.shape[1] != self.in_dim:
            raise ValueError(f"the sketch takes (N, {self.in_dim}) rows, got {tuple(v.shape)}")
        bucket, sign = self.bucket.to(v.device), self.sign.to(v.device, v.dtype)
        return torch.zeros(len(v), self.out_dim, device=v.device, dtype=v.dtype).index_add_(1, bucket, v * sign)


@dataclass
class FisherEmbedding:
    """A density model with the two statistics its AFVs need, estimated once on model samples (eq. 5):
    the centre mean_i grad f(x~_i) and diag I. :meth:`vectors` streams V_x = diag(I)^{-1/2}(grad f(x) - centre),
    sketched to ``sketch.out_dim`` coordinates if a sketch is set; :meth:`group_means` gives the exact (unsketched)
    mean AFV of each group, for set distances."""

    model: nn.Module
    info_diag: torch.Tensor
    centre: torch.Tensor
    params: Sequence[str] | None = None
    sketch: CountSketch | None = None
    chunk: int = 256

    @classmethod
    def from_samples(cls, model: nn.Module, model_samples: torch.Tensor, params: Sequence[str] | None = None,
                     sketch_dim: int | None = None, seed: int = 0, chunk: int = 256,
                     exact_params: Sequence[str] = ()) -> "FisherEmbedding":
        """Estimate diag I and the centre on ``model_samples``; ``sketch_dim`` adds a seeded count sketch, which
        keeps the coordinates of the parameters named in ``exact_params`` (or starting with one of those names,
        e.g. a layer's prefix) exact and hashes the rest."""
        info, centre = fisher_information_diag(model, model_samples, params, chunk)
        sketch = None
        if sketch_dim is not None and sketch_dim < len(info):
            sketch = CountSketch(len(info), sketch_dim, seed, exact=parameter_coordinates(model, exact_params, params))
        return cls(model, info, centre, params, sketch, chunk)

    @property
    def dim(self) -> int:
        """The number of AFV coordinates :meth:`vectors` returns."""
        return self.sketch.out_dim if self.sketch is not None else len(self.info_diag)

    def vectors(self, x: torch.Tensor, out_device: str | torch.device = "cpu") -> torch.Tensor:
        """The (sketched) AFVs of the rows of x, (N, dim), gathered on ``out_device``; never more than ``chunk``
        full AFVs exist at once."""
        out = torch.empty(len(x), self.dim, device=out_device, dtype=self.info_diag.dtype)  # filled in place
        start = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dead coordinates: see dead_parameters(), not a warning per chunk
            for v in fisher_vectors_in_chunks(self.model, x, self.info_diag, self.centre, self.params, self.chunk):
                out[start:start + len(v)] = v if self.sketch is None else self.sketch(v)
                start += len(v)
        return out

    def group_means(self, x: torch.Tensor, groups: torch.Tensor, n_groups: int | None = None) -> torch.Tensor:
        """The mean full AFV of each group of rows (``groups`` holds integer labels 0..G-1): (G, P)."""
        if len(groups) != len(x):
            raise ValueError(f"{len(x)} inputs but {len(groups)} group labels")
        n_groups = int(groups.max()) + 1 if n_groups is None else n_groups
        sums = torch.zeros(n_groups, len(self.info_diag), device=self.info_diag.device, dtype=self.info_diag.dtype)
        start = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for v in fisher_vectors_in_chunks(self.model, x, self.info_diag, self.centre, self.params, self.chunk):
                sums.index_add_(0, groups[start:start + len(v)].to(sums.device).long(), v)
                start += len(v)
        counts = torch.bincount(groups.long().cpu(), minlength=n_groups).to(sums)
        if (counts == 0).any():
            raise ValueError(f"groups {torch.nonzero(counts == 0).flatten().tolist()} are empty")
        return sums / counts[:, None]

    def dead_parameters(self) -> int:
        """How many coordinates have zero (or non-finite) Fisher information and are left out of the AFVs."""
        return int((~torch.isfinite(self.info_diag) | (self.info_diag <= 1e-12)).sum())
