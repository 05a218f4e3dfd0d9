"""One training loop for every model in the course.

A model is an ``nn.Module`` that owns its optimisers and implements
``training_step(batch) -> dict[str, float]``: one update (or, for adversarial
models, one round of alternating updates exactly as the paper orders them), and
the numbers to log. :func:`fit` does everything else: epochs, batches of device
tensors, progress bars, a history of every metric, evaluation callbacks, a
NaN/inf guard, Ctrl-C, and checkpoints (atomic writes, ``weights_only`` loads,
resume, and a cache that skips training when a finished run's config matches).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from dgsp.core import device as default_device
from dgsp.core import is_quick, output_dir
from dgsp.data import batches, num_batches


class NonFiniteLossError(RuntimeError):
    """Raised when a logged metric becomes NaN or infinite during training."""


class Model(nn.Module):
    """Base class for course models: hyper-parameters, optimisers, a history.

    Subclasses call ``super().__init__(**hparams)`` with plain numbers/strings
    (they identify a run for the checkpoint cache), build their networks, put
    their optimisers in ``self.optimizers`` (a dict name -> optimiser) and
    implement :meth:`training_step`.
    """

    def __init__(self, **hparams: Any):
        super().__init__()
        self.hparams = dict(hparams)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.history = History()

    def training_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the metrics to log."""
        raise NotImplementedError(f"{type(self).__name__} must implement training_step(batch)")

    def on_epoch_end(self, epoch: int) -> None:
        """Called by :func:`fit` after every epoch (0-based). By default: if the model has a
        ``lr_decay`` hyper-parameter, set every optimiser's rate to lr0 * lr_decay^(epoch + 1 - s),
        where ``s`` is the ``decay_start`` hyper-parameter (default 0: decay from the first epoch;
        the rate stays at lr0 for the first ``s`` epochs). Stateless, so a resumed run gets the
        same schedule."""
        decay = self.hparams.get("lr_decay", 1.0)
        if decay == 1.0:
            return
        exponent = max(0, epoch + 1 - self.hparams.get("decay_start", 0))
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * decay ** exponent

    @property
    def device(self) -> torch.device:
        """The device the model's parameters live on."""
        return next(self.parameters()).device


class History:
    """Every logged metric, as parallel lists: ``steps[name][i]`` and ``values[name][i]``."""

    def __init__(self, data: dict | None = None):
        self.steps: dict[str, list[int]] = {k: list(v) for k, v in (data or {}).get("steps", {}).items()}
        self.values: dict[str, list[float]] = {k: list(v) for k, v in (data or {}).get("values", {}).items()}

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record each metric at training step ``step``."""
        for name, value in metrics.items():
            self.steps.setdefault(name, []).append(int(step))
            self.values.setdefault(name, []).append(float(value))

    def __getitem__(self, name: str) -> list[float]:
        if name not in self.values:
            raise KeyError(f"no metric {name!r} in history; logged: {sorted(self.values)}")
        return self.values[name]

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def keys(self) -> list[str]:
        return list(self.values)

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one metric, for plotting."""
        return self.steps[name], self[name]

    def last(self, name: str) -> float:
        """The most recent value of a metric."""
        return self[name][-1]

    def state_dict(self) -> dict:
        return {"steps": self.steps, "values": self.values}


# ----------------------------------------------------------------------------- checkpoints
def checkpoint_path(name: str) -> Path:
    """Where checkpoint ``name`` lives: ``checkpoints/`` (full mode) or a private temp folder (quick)."""
    if not name or any(c in name for c in "/\\"):
        raise ValueError(f"checkpoint name must be a plain file name, got {name!r}")
    return output_dir("checkpoints") / f"{name}.pt"


def save_checkpoint(path: str | Path, model: Model, *, epoch: int, config: dict, finished: bool) -> None:
    """Write model, optimisers, history and config atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizers": {k: opt.state_dict() for k, opt in model.optimizers.items()},
        "history": model.history.state_dict(),
        "config": config,
        "epoch": int(epoch),
        "finished": bool(finished),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, model: Model) -> dict:
    """Load a checkpoint into ``model`` (with ``weights_only=True``); return its metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=model.device, weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {path} could not be read ({err})") from err
    model.load_state_dict(state["model"])
    for name, opt in model.optimizers.items():
        if name in state["optimizers"]:
            opt.load_state_dict(state["optimizers"][name])
    model.history = History(state["history"])
    return {k: state[k] for k in ("config", "epoch", "finished")}


def _fingerprint(tensors: Sequence[torch.Tensor]) -> str:
    """A cheap content hash of the training data (shapes, dtypes and sums)."""
    parts = [f"{tuple(t.shape)}:{t.dtype}:{float(t.double().sum()):.6e}:{float(t.double().flatten()[::97].sum()):.6e}"
             for t in tensors]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def run_config(model: Model, data: Sequence[torch.Tensor], *, epochs: int, batch_size: int, seed: int) -> dict:
    """What identifies a training run for the cache: model class and hparams, data, schedule, mode."""
    return json.loads(json.dumps({
        "model": type(model).__name__, "hparams": model.hparams, "data": _fingerprint(data),
        "epochs": epochs, "batch_size": batch_size, "seed": seed, "quick": is_quick(),
    }, default=str))


# ----------------------------------------------------------------------------- the loop
def _check_finite(metrics: dict[str, float], step: int, epoch: int, ckpt: Path | None) -> None:
    for name, value in metrics.items():
        if not math.isfinite(value):
            where = f"the last good checkpoint is {ckpt}" if ckpt and ckpt.exists() else "no checkpoint was kept"
            raise NonFiniteLossError(
                f"training stopped: metric {name!r} became {value} at step {step} (epoch {epoch + 1}); {where}. "
                "Try a smaller learning rate.")


def fit(model: Model, data: torch.Tensor | Sequence[torch.Tensor], *, epochs: int, batch_size: int = 128,
        seed: int = 0, callbacks: Iterable[Callable[[Model, int], dict | None]] = (), eval_every: int = 1,
        checkpoint: str | None = None, cache: bool = True, drop_last: bool = True,
        progress: bool | None = None, desc: str | None = None) -> History:
    """Train ``model`` on ``data`` for ``epochs`` epochs; return its :class:`History`.

    ``data`` is a tensor or a tuple of aligned tensors (e.g. ``(x, y)``); they are
    moved to the model's device once. Each epoch shuffles with a permutation fixed
    by ``(seed, epoch)``. After every ``eval_every`` epochs each callback
    ``cb(model, epoch)`` may return extra metrics to log (e.g. a test loss).

    With ``checkpoint="name"`` the run is saved after every epoch (Ctrl-C returns the model
    trained so far and leaves the last epoch's checkpoint to resume from).
    If a checkpoint with the same config exists it is resumed, or, when finished
    and ``cache=True``, simply loaded (no training); ``cache=False`` retrains a finished run. Quick mode keeps its
    checkpoints in a private temp folder, so it never reuses a full-mode run.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
    dev = next(model.parameters()).device if any(True for _ in model.parameters()) else default_device()
    tensors = tuple(t.to(dev) for t in tensors)
    config = run_config(model, tensors, epochs=epochs, batch_size=batch_size, seed=seed)
    path = checkpoint_path(checkpoint) if checkpoint else None

    start_epoch = 0
    if path is not None and path.exists():
        meta = load_checkpoint_meta(path)
        if meta.get("config") == config and meta.get("finished") and not cache:
            print(f"dgsp: cache=False, retraining '{checkpoint}' from scratch")
        elif meta.get("config") == config:
            meta = load_checkpoint(path, model)
            if meta["finished"]:
                print(f"dgsp: loaded finished run '{checkpoint}' from {path} (no training needed)")
                model.eval()
                return model.history
            start_epoch = meta["epoch"]
            print(f"dgsp: resuming '{checkpoint}' from epoch {start_epoch}")
        else:
            print(f"dgsp: checkpoint '{checkpoint}' has a different config; training from scratch")

    show = (not is_quick()) if progress is None else progress
    n_batches = num_batches(len(tensors[0]), batch_size, drop_last)
    step = start_epoch * n_batches
    epoch = start_epoch
    model.train()
    for e in range(start_epoch):  # replay epoch-end schedules of a resumed run
        model.on_epoch_end(e)
    t0 = time.perf_counter()
    try:
        bar = tqdm(range(start_epoch, epochs), desc=desc or type(model).__name__, disable=not show,
                   initial=start_epoch, total=epochs)
        for epoch in bar:
            sums: dict[str, float] = {}
            for batch in batches(*tensors, batch_size=batch_size, seed=seed, epoch=epoch, drop_last=drop_last):
                metrics = model.training_step(batch)
                _check_finite(metrics, step, epoch, path)
                model.history.log(step, metrics)
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                step += 1
            means = {k: v / max(n_batches, 1) for k, v in sums.items()}
            model.on_epoch_end(epoch)
            if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
                model.eval()
                with torch.enable_grad():
                    for cb in callbacks:
                        extra = cb(model, epoch) or {}
                        _check_finite(extra, step, epoch, path)
                        model.history.log(step, extra)
                        means.update(extra)
                model.train()
            model.history.log(step, {"epoch": epoch + 1, "time": time.perf_counter() - t0})
            bar.set_postfix({k: f"{v:.4g}" for k, v in list(means.items())[:4]})
            if path is not None:
                save_checkpoint(path, model, epoch=epoch + 1, config=config, finished=epoch + 1 == epochs)
    except KeyboardInterrupt:
        # The checkpoint on disk (end of the last complete epoch) stays as it is: resuming from a
        # half-finished epoch would replay some batches, so the saved state is always an epoch boundary.
        kept = f"; checkpoint {path} holds the end of epoch {epoch}" if path is not None and path.exists() else ""
        print(f"dgsp: interrupted at step {step} (epoch {epoch + 1}); returning the model trained so far{kept}")
    model.eval()
    return model.history


def load_checkpoint_meta(path: str | Path) -> dict:
    """Read only the metadata (config, epoch, finished) of a checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {path} could not be read ({err})") from err
    return {k: state.get(k) for k in ("config", "epoch", "finished")}
