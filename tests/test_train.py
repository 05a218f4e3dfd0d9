import math

import pytest
import torch
from torch import nn

import dgsp
from dgsp import train
from dgsp.train import Model, NonFiniteLossError, fit


class Regression(Model):
    """y = w x + b by least squares: tiny, deterministic, and its loss is known to fall."""

    def __init__(self, lr: float = 0.1, fail_at: int = -1, interrupt_at: int = -1):
        super().__init__(lr=lr, fail_at=fail_at, interrupt_at=interrupt_at)
        self.lin = nn.Linear(1, 1)
        self.optimizers = {"sgd": torch.optim.SGD(self.parameters(), lr=lr, momentum=0.9)}
        self.calls = 0

    def training_step(self, batch):
        x, y = batch
        self.calls += 1
        if self.calls == self.hparams["interrupt_at"]:
            raise KeyboardInterrupt
        opt = self.optimizers["sgd"]
        opt.zero_grad()
        loss = ((self.lin(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        value = float("nan") if self.calls == self.hparams["fail_at"] else float(loss.detach())
        return {"loss": value}


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, generator=g)
    return x, 3 * x - 1 + 0.01 * torch.randn(n, 1, generator=g)


def _model(**kw):
    torch.manual_seed(0)
    return Regression(**kw).to(dgsp.device())


def test_fit_trains_and_logs_history():
    m = _model()
    h = fit(m, _data(), epochs=20, batch_size=16)
    assert h["loss"][-1] < 0.01 < h["loss"][0]
    assert len(h["loss"]) == 20 * 4 and h["epoch"] == list(range(1, 21))
    assert h.steps["loss"][:3] == [0, 1, 2]
    assert abs(float(m.lin.weight.detach()) - 3) < 0.05


def test_fit_is_seeded():
    a, b = _model(), _model()
    fit(a, _data(), epochs=3, batch_size=8, seed=5)
    fit(b, _data(), epochs=3, batch_size=8, seed=5)
    assert torch.equal(a.lin.weight, b.lin.weight)


def test_callbacks_are_logged():
    m = _model()
    h = fit(m, _data(), epochs=4, batch_size=16, eval_every=2,
            callbacks=[lambda model, epoch: {"w": float(model.lin.weight.detach())}])
    assert len(h["w"]) == 2


def test_checkpoint_round_trip(tmp_path):
    m = _model()
    fit(m, _data(), epochs=2, batch_size=16)
    path = tmp_path / "run.pt"
    train.save_checkpoint(path, m, epoch=2, config={"a": 1}, finished=True)
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # the temp file was renamed away
    fresh = _model(lr=0.1)
    meta = train.load_checkpoint(path, fresh)
    assert meta == {"config": {"a": 1}, "epoch": 2, "finished": True}
    assert torch.equal(fresh.lin.weight, m.lin.weight)
    assert fresh.history["loss"] == m.history["loss"]
    assert fresh.optimizers["sgd"].state_dict()["state"][0]["momentum_buffer"].shape == (1, 1)


def test_checkpoints_use_weights_only(tmp_path, monkeypatch):
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    m = _model()
    path = tmp_path / "run.pt"
    train.save_checkpoint(path, m, epoch=0, config={}, finished=False)
    monkeypatch.setattr(torch, "load", spy)
    train.load_checkpoint(path, m)
    assert seen.get("weights_only") is True


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt could not be read"):
        train.load_checkpoint(path, _model())
    with pytest.raises(FileNotFoundError):
        train.load_checkpoint(tmp_path / "missing.pt", _model())


def test_cache_hit_and_miss():
    name = "test_cache_regression"
    first = _model()
    fit(first, _data(), epochs=3, batch_size=16, checkpoint=name)
    hit = _model()
    fit(hit, _data(), epochs=3, batch_size=16, checkpoint=name)
    assert hit.calls == 0 and torch.equal(hit.lin.weight, first.lin.weight)
    assert hit.history["loss"] == first.history["loss"]
    miss = _model(lr=0.05)  # different hyper-parameters: retrain
    fit(miss, _data(), epochs=3, batch_size=16, checkpoint=name)
    assert miss.calls == 12
    no_cache = _model(lr=0.05)  # same config, finished, but cache=False: train again
    fit(no_cache, _data(), epochs=3, batch_size=16, checkpoint=name, cache=False)
    assert no_cache.calls == 12 and torch.equal(no_cache.lin.weight, miss.lin.weight)
    assert not hit.training  # a cached model comes back in eval mode, like a trained one


def test_interrupt_returns_model_and_resume_matches_uninterrupted():
    name = "test_resume_regression"
    reference = _model()
    fit(reference, _data(), epochs=4, batch_size=16)
    interrupted = _model(interrupt_at=10)  # stops during epoch 3 (4 steps per epoch)
    h = fit(interrupted, _data(), epochs=4, batch_size=16, checkpoint=name)
    assert h["epoch"] == [1, 2]
    meta = train.load_checkpoint_meta(train.checkpoint_path(name))
    assert meta["epoch"] == 2 and meta["finished"] is False
    # resuming needs the same config, so resume with the same hyper-parameters
    resumed = _model(interrupt_at=10)
    resumed.calls = 100  # past the interrupt
    fit(resumed, _data(), epochs=4, batch_size=16, checkpoint=name)
    assert torch.allclose(resumed.lin.weight, reference.lin.weight)
    assert resumed.history["epoch"] == [1, 2, 3, 4]


def test_nan_guard_names_metric_and_step_and_keeps_last_good_checkpoint():
    name = "test_nan_regression"
    m = _model(fail_at=7)  # the 7th step is step 6 (0-based), in epoch 2
    with pytest.raises(NonFiniteLossError, match=r"'loss' became nan at step 6 \(epoch 2\).*last good checkpoint"):
        fit(m, _data(), epochs=3, batch_size=16, checkpoint=name)
    meta = train.load_checkpoint(train.checkpoint_path(name), _model())
    assert meta["epoch"] == 1 and meta["finished"] is False


def test_quick_mode_never_reuses_a_full_mode_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("DGSP_HOME", str(tmp_path))
    monkeypatch.setenv("DGSP_QUICK", "0")
    full = _model()
    fit(full, _data(), epochs=2, batch_size=16, checkpoint="shared_name")
    assert (tmp_path / "checkpoints" / "shared_name.pt").is_file()
    full_config = train.load_checkpoint_meta(tmp_path / "checkpoints" / "shared_name.pt")["config"]
    monkeypatch.setenv("DGSP_QUICK", "1")
    assert tmp_path not in train.checkpoint_path("shared_name").parents
    quick = _model()
    fit(quick, _data(), epochs=2, batch_size=16, checkpoint="shared_name")
    assert quick.calls == 8
    assert full_config["quick"] is False


def test_bad_arguments():
    with pytest.raises(ValueError, match="epochs"):
        fit(_model(), _data(), epochs=-1)
    with pytest.raises(ValueError, match="plain file name"):
        train.checkpoint_path("../escape")


def test_base_model_requires_training_step():
    class Empty(Model):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(1))

    with pytest.raises(NotImplementedError, match="training_step"):
        fit(Empty(), torch.zeros(4, 1), epochs=1, batch_size=2)


def test_history_api():
    h = train.History()
    h.log(0, {"a": 1.0})
    h.log(5, {"a": 2.0, "b": 3.0})
    assert h.series("a") == ([0, 5], [1.0, 2.0]) and h.last("b") == 3.0 and "b" in h
    assert train.History(h.state_dict()).values == h.values
    with pytest.raises(KeyError, match="logged"):
        h["c"]
    assert math.isclose(sum(h["a"]), 3.0)


def test_lr_decay_waits_for_decay_start():
    model = _model(lr=0.1)
    model.hparams.update(lr_decay=0.5, decay_start=2)
    lrs = []
    for epoch in range(4):
        model.on_epoch_end(epoch)
        lrs.append(model.optimizers["sgd"].param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.025])  # constant for two epochs, then halved each epoch
