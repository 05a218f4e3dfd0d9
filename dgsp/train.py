"""One training loop for every model in the course.

A model is an ``nn.Module`` that owns its optimisers and implements
``training_step(batch) -> dict of metrics``: one update (or, for adversarial
models, one round of alternating updates exactly as the paper orders them), and
the numbers to log, as 0-d tensors (or floats). :func:`fit` does everything else:
epochs, batches of device tensors (one stream or several), progress bars, a history
of every metric, evaluation callbacks, snapshots, a NaN/inf guard, Ctrl-C, step and
time budgets, and checkpoints (atomic writes, ``weights_only`` loads, exact resume
with the random-number states, extension of a finished run, and a cache keyed on the
data's content and the network's structure).

Metrics stay on the device while training: ``fit`` copies them to the host once every
``log_every`` steps, so a small network on a GPU is never stalled by a per-step sync.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from dgsp.core import cpu_threads, inputs_checked, is_quick, output_dir
from dgsp.core import device as default_device
from dgsp.data import batches, check_finite_rows, num_batches

Data = torch.Tensor | Sequence[torch.Tensor] | Mapping[str, torch.Tensor | Sequence[torch.Tensor]]


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

    def training_step(self, batch: Any) -> dict[str, torch.Tensor | float]:
        """One optimisation step on ``batch``; returns the metrics to log (0-d tensors or floats).

        ``batch`` is a tuple of aligned tensors, or, when :func:`fit` gets several named data
        streams, a dict ``name -> tuple`` with one batch of each stream.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement training_step(batch)")

    def check_data(self, data: Any) -> None:
        """Called once by :func:`fit` with the whole training data (shaped like a batch), before any step:
        models override it to reject bad input with a clear message once, instead of checking every batch."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called by :func:`fit` after every epoch (0-based). By default: if the model has a
        ``lr_decay`` hyper-parameter, set every optimiser's rate to lr0 * lr_decay^max(0, epoch + 1 - s),
        where ``s`` is the ``decay_start`` hyper-parameter (default 0: decay from the second epoch on; with
        ``s`` > 0 the first ``s + 1`` epochs run at lr0). Stateless, so a resumed run gets the
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
        """The device of the model's parameters (or buffers); ``dgsp.device()`` for a model with neither."""
        tensor = next(self.parameters(), None)
        if tensor is None:
            tensor = next(self.buffers(), None)
        return default_device() if tensor is None else tensor.device


class History:
    """Every logged metric, as parallel lists: ``steps[name][i]`` and ``values[name][i]``; plus
    ``snapshots``: {epoch: tensor} kept by :func:`fit`'s ``snapshot`` argument (epoch 0 = before training)."""

    def __init__(self, data: dict | None = None):
        data = data or {}
        self.steps: dict[str, list[int]] = {k: list(v) for k, v in data.get("steps", {}).items()}
        self.values: dict[str, list[float]] = {k: list(v) for k, v in data.get("values", {}).items()}
        self.snapshots: dict[int, torch.Tensor] = {int(k): v for k, v in data.get("snapshots", {}).items()}

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
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

    def training_seconds(self) -> float:
        """The run's training wall time in seconds, NaN if none was logged. :func:`fit` logs ``train_seconds`` after
        every epoch, counting on across resumes. Checkpoints from before it logged ``time``, the seconds since that
        call of ``fit`` started, which restart at each resume: their pieces are summed (a drop marks a resume)."""
        if "train_seconds" in self.values:
            return self.values["train_seconds"][-1]
        if "time" not in self.values:
            return float("nan")
        total, last = 0.0, 0.0
        for t in self.values["time"]:
            if t < last:  # an older resumed fit: its clock started again
                total += last
            last = t
        return total + last

    def state_dict(self) -> dict:
        return {"steps": self.steps, "values": self.values, "snapshots": self.snapshots}


# ----------------------------------------------------------------------------- checkpoints
def checkpoint_path(name: str) -> Path:
    """Where checkpoint ``name`` lives: ``checkpoints/`` (full mode) or a private temp folder (quick)."""
    if not name or any(c in name for c in "/\\"):
        raise ValueError(f"checkpoint name must be a plain file name, got {name!r}")
    return output_dir("checkpoints") / f"{name}.pt"


def _generators(model: Model) -> dict[str, torch.Generator]:
    """The model's own random-number generators (attributes holding a ``torch.Generator``)."""
    return {k: v for k, v in vars(model).items() if isinstance(v, torch.Generator)}


def rng_state(model: Model) -> dict:
    """The random-number states a training run consumes: torch's CPU and CUDA generators and the model's own."""
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "model": {k: g.get_state() for k, g in _generators(model).items()}}


def set_rng_state(model: Model, state: dict) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only where the same devices exist)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    for k, g in _generators(model).items():
        if k in state["model"]:
            g.set_state(state["model"][k])


def save_checkpoint(path: str | Path, model: Model, *, epoch: int, config: dict, finished: bool,
                    step: int | None = None) -> None:
    """Write model, optimisers, history, random-number states and config atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizers": {k: opt.state_dict() for k, opt in model.optimizers.items()},
        "history": model.history.state_dict(),
        "rng": rng_state(model),
        "config": config,
        "epoch": int(epoch),
        "step": int(step) if step is not None else None,
        "finished": bool(finished),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {path} could not be read ({type(err).__name__})") from err
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"checkpoint {path} could not be read (not a dgsp checkpoint)")
    return state


def load_checkpoint(path: str | Path, model: Model, *, restore_rng: bool = False) -> dict:
    """Load a checkpoint into ``model`` (``weights_only=True``); return its metadata.

    A file that cannot be read, or whose tensors do not fit the network, raises a ``ValueError``
    naming the file. ``restore_rng=True`` also restores the random-number states (exact resume).
    """
    path = Path(path)
    state = _read(path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        model.load_state_dict(state["model"])
        for name, opt in model.optimizers.items():
            if name in state["optimizers"]:
                opt.load_state_dict(state["optimizers"][name])
    except (RuntimeError, ValueError, KeyError) as err:
        model.load_state_dict(before)  # load_state_dict copies the tensors that fit before it complains
        first = str(err).strip().splitlines()[0][:160]
        raise ValueError(f"checkpoint {path} does not fit this network ({first})") from err
    model.history = History(state["history"])
    if restore_rng and state.get("rng"):
        set_rng_state(model, state["rng"])
    meta = {k: state.get(k) for k in ("config", "epoch", "finished")}
    meta["step"] = state.get("step")
    return meta


def load_checkpoint_meta(path: str | Path) -> dict:
    """Read only the metadata (config, epoch, step, finished) of a checkpoint."""
    state = _read(Path(path))
    return {k: state.get(k) for k in ("config", "epoch", "step", "finished")}


def _set_aside(path: Path, reason: str) -> None:
    """Move an unusable checkpoint to ``<name>.pt.bad`` and say so in one line."""
    bad = path.with_name(path.name + ".bad")
    os.replace(path, bad)
    print(f"dgsp: {reason}; moved it to {bad.name} and training from scratch")


def data_fingerprint(tensors: Sequence[torch.Tensor]) -> str:
    """A hash of the training data's content (every byte, with shapes and dtypes): two data sets that differ
    in one pixel, or in the order of their rows, get different keys. About 0.1 s for full MNIST on a CPU."""
    h = hashlib.blake2b(digest_size=12)
    for t in tensors:
        t = t.detach().contiguous().cpu()
        h.update(f"{tuple(t.shape)}:{t.dtype}|".encode())
        h.update(t.view(torch.uint8).numpy() if t.numel() else b"")
    return h.hexdigest()


def network_fingerprint(model: nn.Module) -> str:
    """A hash of the network's structure: the names, shapes and dtypes of every parameter and buffer."""
    parts = [f"{k}:{tuple(v.shape)}:{v.dtype}" for k, v in model.state_dict().items()]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def run_config(model: Model, streams: Mapping[str, Sequence[torch.Tensor]], *, epochs: int | None,
               batch_size: int | Mapping[str, int], seed: int, max_steps: int | None = None,
               max_seconds: float | None = None) -> dict:
    """What identifies a training run for the cache: model class, hparams and network structure, the data's
    content, the schedule, and the mode."""
    data = {name: data_fingerprint(ts) for name, ts in streams.items()}
    config = {"model": type(model).__name__, "hparams": model.hparams, "network": network_fingerprint(model),
              "data": data["data"] if list(data) == ["data"] else data, "epochs": epochs,
              "batch_size": batch_size, "seed": seed, "quick": is_quick()}
    if max_steps is not None or max_seconds is not None:
        config.update(max_steps=max_steps, max_seconds=max_seconds)
    return json.loads(json.dumps(config, default=str))


def _extends(meta: dict, config: dict) -> bool:
    """True when ``config`` asks for more epochs of the checkpointed run and nothing else changed
    (runs with a step or time budget are never extended: they stop inside an epoch)."""
    old = meta["config"]
    if not isinstance(old, dict) or "max_steps" in old or "max_steps" in config or config["epochs"] is None:
        return False
    strip = lambda c: {k: v for k, v in c.items() if k != "epochs"}  # noqa: E731
    return strip(old) == strip(config) and meta["epoch"] <= config["epochs"]


# ----------------------------------------------------------------------------- data streams
def _as_streams(data: Data, batch_size: int | Mapping[str, int]) -> tuple[dict, dict[str, int]]:
    """Normalise ``data`` to {name: tuple of tensors} and ``batch_size`` to {name: int}."""
    if isinstance(data, Mapping):
        if not data:
            raise ValueError("fit needs at least one data stream, got an empty dict")
        streams = {str(k): (v,) if isinstance(v, torch.Tensor) else tuple(v) for k, v in data.items()}
    else:
        streams = {"data": (data,) if isinstance(data, torch.Tensor) else tuple(data)}
    sizes = dict(batch_size) if isinstance(batch_size, Mapping) else {k: batch_size for k in streams}
    for name, tensors in streams.items():
        if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
            raise ValueError(f"data stream {name!r} must be a tensor or a tuple of tensors")
        if len(tensors[0]) == 0:
            raise ValueError(f"data stream {name!r} is empty")
        if name not in sizes:
            raise ValueError(f"batch_size has no entry for data stream {name!r}")
        if not isinstance(sizes[name], int) or sizes[name] <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {sizes[name]!r} for stream {name!r}")
    return streams, sizes


def _cycle(tensors: tuple[torch.Tensor, ...], batch_size: int, seed: int, start: int) -> Iterator[tuple]:
    """An endless stream of batches from ``tensors``, reshuffled on every pass, starting at overall batch
    ``start``: a pure function of (seed, start), so a resumed run sees the same batches."""
    per_pass = num_batches(len(tensors[0]), batch_size, drop_last=len(tensors[0]) >= batch_size)
    p, offset = divmod(start, per_pass)
    while True:
        it = batches(*tensors, batch_size=batch_size, seed=seed + 7919, epoch=p, drop_last=True)
        for i, batch in enumerate(it):
            if i >= offset:
                yield batch
        p, offset = p + 1, 0


def _check_data(model: Model, streams: dict[str, tuple[torch.Tensor, ...]]) -> None:
    """Clear errors before training: floating data of the wrong dtype, or with NaN/inf rows."""
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    for name, tensors in streams.items():
        for i, t in enumerate(tensors):
            if not t.is_floating_point():
                continue
            where = f"tensor {i} of data stream {name!r}" if name != "data" else f"data tensor {i}"
            if dtype is not None and t.dtype != dtype:
                raise ValueError(f"{where} has dtype {t.dtype} but the model's weights are {dtype}; "
                                 f"convert it first (e.g. x.to({dtype}))")
            check_finite_rows(t, where)


_warned_cpu = False


def _warn_if_gpu_idle(dev: torch.device) -> None:
    global _warned_cpu
    if dev.type == "cpu" and default_device().type != "cpu" and not _warned_cpu:
        _warned_cpu = True
        print(f"dgsp: the model is on the CPU although {default_device()} is available; "
              "did you forget model.to(dgsp.device())?")


# ----------------------------------------------------------------------------- the loop
def _check_finite(metrics: Mapping[str, float], step: int, epoch: int, ckpt: Path | None) -> None:
    for name, value in metrics.items():
        if not math.isfinite(value):
            where = f"the last good checkpoint is {ckpt}" if ckpt and ckpt.exists() else "no checkpoint was kept"
            raise NonFiniteLossError(
                f"training stopped: metric {name!r} became {value} at step {step} (epoch {epoch + 1}); {where}. "
                "Try a smaller learning rate.")


class _Logger:
    """Keeps each step's metrics on the device and copies them to the host in one transfer every ``every``
    steps (and at epoch ends): one sync per ``every`` steps instead of one per metric per step."""

    def __init__(self, model: Model, every: int, ckpt: Path | None):
        self.model, self.every, self.ckpt = model, max(1, every), ckpt
        self.pending: list[tuple[int, int, dict]] = []
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, step: int, epoch: int, metrics: Mapping[str, Any]) -> None:
        self.pending.append((step, epoch, dict(metrics)))
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        tensors = [v.detach().reshape(()).float() for _, _, m in self.pending for v in m.values()
                   if isinstance(v, torch.Tensor)]
        host = iter(torch.stack(tensors).tolist()) if tensors else iter(())
        for step, epoch, metrics in self.pending:
            values = {k: next(host) if isinstance(v, torch.Tensor) else float(v) for k, v in metrics.items()}
            _check_finite(values, step, epoch, self.ckpt)
            self.model.history.log(step, values)
            for k, v in values.items():
                self.sums[k] = self.sums.get(k, 0.0) + v
            self.count += 1
        self.pending.clear()

    def epoch_means(self) -> dict[str, float]:
        self.flush()
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


def fit(model: Model, data: Data, *, epochs: int | None = None, batch_size: int | Mapping[str, int] = 128,
        seed: int = 0, callbacks: Iterable[Callable[[Model, int], dict | None]] = (), eval_every: int = 1,
        checkpoint: str | None = None, cache: bool = True, drop_last: bool = True,
        progress: bool | None = None, desc: str | None = None,
        snapshot: Callable[[Model], torch.Tensor] | None = None, max_steps: int | None = None,
        max_seconds: float | None = None, log_every: int = 50, threads: int | str | None = "auto") -> History:
    """Train ``model`` on ``data``; return its :class:`History`.

    ``data`` is a tensor, a tuple of aligned tensors (e.g. ``(x, y)``), or a dict of named streams
    (e.g. ``{"unlabelled": x, "labelled": (x_l, y_l)}``). The first stream defines an epoch; the others
    cycle alongside it with their own shuffles, and ``training_step`` then gets a dict ``name -> batch``
    (``batch_size`` may be a dict too). Everything is moved to the model's device once. Each epoch shuffles
    with a permutation fixed by ``(seed, epoch)``.

    Training stops after ``epochs`` epochs, or earlier at a budget: ``max_steps`` training steps or
    ``max_seconds`` of wall time (``epochs=None`` with a budget trains until the budget is spent).
    After every ``eval_every`` epochs each callback ``cb(model, epoch)`` may return extra metrics to log
    (e.g. a test loss), and ``snapshot(model)`` (e.g. samples from fixed codes) is kept in
    ``history.snapshots[epoch]`` (epoch 0: before training), saved with the checkpoint.

    With ``checkpoint="name"`` the run is saved after every epoch, with the random-number states, so an
    interrupted run (Ctrl-C returns the model trained so far) resumes exactly where it stopped. A finished
    run with the same config is loaded without training (``cache=False`` retrains it); asking for more
    epochs with everything else unchanged continues a finished run. The config covers the model's class,
    hyper-parameters and network structure and the data's content. An unreadable checkpoint, or one
    that no longer fits the network, is moved aside to ``<name>.pt.bad`` and training starts fresh.

    ``threads`` sets torch's CPU threads while training: ``"auto"`` uses one thread for a small model on the
    CPU (fewer than :data:`SMALL_MODEL` parameters), whose matrices are too small to share between cores
    (splitting them costs more than it saves, and far more when other processes load the machine);
    ``None`` leaves torch's setting alone.
    """
    if threads == "auto":
        small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL
        threads = 1 if small and model.device.type == "cpu" else None
    with cpu_threads(threads):
        return _fit(model, data, epochs=epochs, batch_size=batch_size, seed=seed, callbacks=callbacks,
                    eval_every=eval_every, checkpoint=checkpoint, cache=cache, drop_last=drop_last,
                    progress=progress, desc=desc, snapshot=snapshot, max_steps=max_steps,
                    max_seconds=max_seconds, log_every=log_every)


SMALL_MODEL = 100_000


def _fit(model: Model, data: Data, *, epochs, batch_size, seed, callbacks, eval_every, checkpoint, cache,
         drop_last, progress, desc, snapshot, max_steps, max_seconds, log_every) -> History:
    if epochs is None and max_steps is None and max_seconds is None:
        raise ValueError("fit needs epochs, max_steps or max_seconds")
    for arg, value in (("epochs", epochs), ("max_steps", max_steps), ("max_seconds", max_seconds),
                       ("eval_every", eval_every), ("log_every", log_every)):
        if value is not None and not value > 0:
            raise ValueError(f"{arg} must be positive, got {value}")
    streams, sizes = _as_streams(data, batch_size)
    dev = model.device
    _warn_if_gpu_idle(dev)
    streams = {k: tuple(t.to(dev) for t in ts) for k, ts in streams.items()}
    for name, ts in streams.items():
        if any(len(t) != len(ts[0]) for t in ts):
            raise ValueError(f"the tensors of data stream {name!r} must have the same length, "
                             f"got {[len(t) for t in ts]}")
    _check_data(model, streams)
    model.check_data(streams["data"] if list(streams) == ["data"] else streams)
    config = run_config(model, streams, epochs=epochs, batch_size=batch_size, seed=seed, max_steps=max_steps,
                        max_seconds=max_seconds)
    path = checkpoint_path(checkpoint) if checkpoint else None

    start_epoch, step = 0, 0
    if path is not None and path.exists():
        try:
            meta = load_checkpoint_meta(path)
        except ValueError as err:
            _set_aside(path, str(err))
            meta = None
        if meta is None:
            pass
        elif meta["config"] == config and meta["finished"] and not cache:
            print(f"dgsp: cache=False, retraining '{checkpoint}' from scratch")
        elif meta["config"] == config or _extends(meta, config):
            try:
                meta = load_checkpoint(path, model, restore_rng=True)
            except ValueError as err:
                _set_aside(path, str(err))
            else:
                if meta["config"] == config and meta["finished"]:
                    print(f"dgsp: loaded finished run '{checkpoint}' from {path} (no training needed)")
                    model.eval()
                    return model.history
                start_epoch, step = meta["epoch"], meta["step"]
                verb = "extending the finished run" if meta["finished"] else "resuming"
                print(f"dgsp: {verb} '{checkpoint}' from epoch {start_epoch}")
        else:
            print(f"dgsp: checkpoint '{checkpoint}' has a different config; training from scratch")

    main_name, *others = streams
    main, main_bs = streams[main_name], sizes[main_name]
    n_batches = num_batches(len(main[0]), main_bs, drop_last)
    if step is None:  # a checkpoint written before steps were recorded
        step = start_epoch * n_batches
    show = (not is_quick()) if progress is None else progress
    if snapshot is not None and start_epoch == 0:
        model.history.snapshots[0] = _take_snapshot(model, snapshot)
    model.train()
    for e in range(start_epoch):  # replay epoch-end schedules of a resumed run
        model.on_epoch_end(e)
    logger = _Logger(model, log_every, path)
    extra_streams = {k: _cycle(streams[k], sizes[k], seed + 1 + i, step) for i, k in enumerate(others)}
    done = model.history.training_seconds() if start_epoch else 0.0  # a resumed run's clock counts on
    t0 = time.perf_counter() - (done if math.isfinite(done) else 0.0)
    epoch, stop = start_epoch, False
    try:
        bar = tqdm(desc=desc or type(model).__name__, disable=not show, initial=start_epoch, total=epochs)
        for epoch in (range(start_epoch, epochs) if epochs is not None else _count(start_epoch)):
            for batch in batches(*main, batch_size=main_bs, seed=seed, epoch=epoch, drop_last=drop_last):
                if extra_streams:
                    batch = {main_name: batch, **{k: next(it) for k, it in extra_streams.items()}}
                with inputs_checked():  # the batch comes from data checked above (_check_data, check_data)
                    logger.add(step, epoch, model.training_step(batch))
                step += 1
                if (max_steps is not None and step >= max_steps) or \
                        (max_seconds is not None and time.perf_counter() - t0 >= max_seconds):
                    stop = True
                    break
            means = logger.epoch_means()
            if stop:  # a budget ended the run inside this epoch
                _end_of_run(model, callbacks, snapshot, logger, step, epoch, path, t0)
                if path is not None:
                    save_checkpoint(path, model, epoch=epoch + 1, step=step, config=config, finished=True)
                break
            model.on_epoch_end(epoch)
            if (epoch + 1) % eval_every == 0 or (epochs is not None and epoch + 1 == epochs):
                means.update(_evaluate(model, callbacks, snapshot, step, epoch, path))
            model.history.log(step, {"epoch": epoch + 1, "train_seconds": time.perf_counter() - t0})
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in list(means.items())[:4]})
            if path is not None:
                save_checkpoint(path, model, epoch=epoch + 1, step=step, config=config,
                                finished=epochs is not None and epoch + 1 == epochs)
        bar.close()
    except KeyboardInterrupt:
        # The checkpoint on disk (end of the last complete epoch) stays as it is: resuming from a
        # half-finished epoch would replay some batches, so the saved state is always an epoch boundary.
        logger.flush()
        kept = f"; checkpoint {path} holds the end of epoch {epoch}" if path is not None and path.exists() else ""
        print(f"dgsp: interrupted at step {step} (epoch {epoch + 1}); returning the model trained so far{kept}")
    model.eval()
    return model.history


def _count(start: int) -> Iterator[int]:
    while True:
        yield start
        start += 1


def _take_snapshot(model: Model, snapshot: Callable[[Model], torch.Tensor]) -> torch.Tensor:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = snapshot(model).detach().cpu()
    model.train(was)
    return out


def _evaluate(model: Model, callbacks: Iterable[Callable], snapshot: Callable | None, step: int, epoch: int,
              path: Path | None) -> dict[str, float]:
    """Run the callbacks (logging what they return) and take a snapshot, with the model in eval mode."""
    model.eval()
    logged: dict[str, float] = {}
    with torch.enable_grad():
        for cb in callbacks:
            extra = {k: float(v) for k, v in (cb(model, epoch) or {}).items()}
            _check_finite(extra, step, epoch, path)
            model.history.log(step, extra)
            logged.update(extra)
    if snapshot is not None:
        model.history.snapshots[epoch + 1] = _take_snapshot(model, snapshot)
    model.train()
    return logged


def _end_of_run(model: Model, callbacks, snapshot, logger: _Logger, step: int, epoch: int, path: Path | None,
                t0: float) -> None:
    logger.flush()
    _evaluate(model, callbacks, snapshot, step, epoch, path)
    model.history.log(step, {"epoch": epoch + 1, "train_seconds": time.perf_counter() - t0})
