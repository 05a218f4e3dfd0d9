"""Networks shared by every lecture: an MLP builder and DCGAN-style conv nets for 28x28.

Each network checks its input shape first and raises a readable ``ValueError``
instead of a matrix-size error from deep inside torch.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from dgsp.core import inputs_are_checked
from dgsp.data import check_finite_rows

ACTIVATIONS = {
    "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid, "elu": nn.ELU, "softplus": nn.Softplus, "identity": nn.Identity,
}


def activation(name: str | None) -> nn.Module:
    """An activation module by name (``None`` means identity)."""
    if name is None:
        return nn.Identity()
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def check_shape(x: torch.Tensor, expected: Sequence[int | None], who: str,
                dtype: torch.dtype | None = None, finite: bool = False, device: torch.device | None = None) -> None:
    """Raise a clear error unless ``x.shape`` matches ``expected`` (None = any size) and, if given, ``x`` has
    the floating-point ``dtype`` of the network's weights and lies on their ``device``. ``finite=True`` (the
    models' public entry points, e.g. ``encode``) also rejects NaN or inf rows, except inside
    :func:`dgsp.core.inputs_checked` (training)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{who} expects a torch.Tensor, got {type(x).__name__}")
    ok = x.dim() == len(expected) and all(e is None or e == s for e, s in zip(expected, x.shape))
    if not ok:
        want = "(" + ", ".join("N" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{who} expects input of shape {want}, got {tuple(x.shape)}")
    if dtype is not None and x.dtype != dtype:
        raise ValueError(f"{who} has {dtype} weights but got {x.dtype} input; convert it with x.to({dtype})")
    if device is not None and x.device != device:
        raise ValueError(f"{who} has its weights on {device} but got input on {x.device}; move one to the other's "
                         f"device: x.to(model.device), or model.to(dgsp.device()) for the course's device")
    if finite and not inputs_are_checked():
        check_finite_rows(x, f"the input given to {who}")


def weight_dtype(net: nn.Module) -> torch.dtype | None:
    """The dtype of a network's first parameter (None for a network without parameters)."""
    p = next(net.parameters(), None)
    return None if p is None else p.dtype


def weight_device(net: nn.Module) -> torch.device | None:
    """The device of a network's first parameter (None for a network without parameters)."""
    p = next(net.parameters(), None)
    return None if p is None else p.device


def _norm(kind: str | None, features: int, conv: bool) -> nn.Module:
    if kind is None:
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(features) if conv else nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.GroupNorm(1, features) if conv else nn.LayerNorm(features)
    raise ValueError(f"unknown norm {kind!r}; choose None, 'batch' or 'layer'")


class MLP(nn.Module):
    """A fully connected network ``in_shape -> hidden... -> out_shape``.

    Inputs of shape (N, *in_shape) are flattened; outputs are reshaped to
    (N, *out_shape). ``out_act`` is applied last (e.g. ``"sigmoid"`` for pixels).
    """

    def __init__(self, in_shape: int | Sequence[int], hidden: Sequence[int], out_shape: int | Sequence[int],
                 act: str = "relu", out_act: str | None = None, norm: str | None = None,
                 dropout: float = 0.0):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_shape = (in_shape,) if isinstance(in_shape, int) else tuple(in_shape)
        self.out_shape = (out_shape,) if isinstance(out_shape, int) else tuple(out_shape)
        sizes = [math.prod(self.in_shape), *hidden, math.prod(self.out_shape)]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers += [_norm(norm, b, conv=False), activation(act)]
                if dropout:
                    layers.append(nn.Dropout(dropout))
        layers.append(activation(out_act))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.in_shape), type(self).__name__, weight_dtype(self), device=weight_device(self))
        return self.net(x.flatten(1)).view(-1, *self.out_shape)


class ConvEncoder(nn.Module):
    """DCGAN-style encoder / discriminator: (N, 1, 28, 28) -> (N, out_dim).

    Two stride-2 convolutions (28 -> 14 -> 7) with LeakyReLU, then a linear head.
    ``norm=None`` gives a critic suitable for a gradient penalty (no batch norm).
    """

    def __init__(self, out_dim: int, channels: int = 64, norm: str | None = "batch",
                 in_channels: int = 1):
        super().__init__()
        c = channels
        self.in_channels = in_channels
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, c, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, 2, 1), _norm(norm, 2 * c, conv=True), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * c * 7 * 7, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, self.in_channels, 28, 28), type(self).__name__, weight_dtype(self),
                    device=weight_device(self))
        return self.net(x)


class ConvDecoder(nn.Module):
    """DCGAN-style decoder / generator: (N, in_dim) -> (N, 1, 28, 28).

    A linear layer to 7x7 feature maps, then two stride-2 transposed
    convolutions (7 -> 14 -> 28). ``out_act`` is applied to the pixels.
    """

    def __init__(self, in_dim: int, channels: int = 64, out_act: str | None = "sigmoid",
                 norm: str | None = "batch", out_channels: int = 1):
        super().__init__()
        c = channels
        self.in_dim = in_dim
        self.net = nn.Sequential(
            nn.Linear(in_dim, 2 * c * 7 * 7), _norm(norm, 2 * c * 7 * 7, conv=False), nn.ReLU(),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), _norm(norm, c, conv=True), nn.ReLU(),
            nn.ConvTranspose2d(c, out_channels, 4, 2, 1), activation(out_act),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_shape(z, (None, self.in_dim), type(self).__name__, weight_dtype(self), device=weight_device(self))
        return self.net(z)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
