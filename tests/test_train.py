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
    train.save_checkpoint(path, m, epoch=2, step=8, config={"a": 1}, finished=True)
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # the temp file was renamed away
    fresh = _model(lr=0.1)
    meta = train.load_checkpoint(path, fresh)
    assert meta == {"config": {"a": 1}, "epoch": 2, "step": 8, "finished": True}
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
    other = nn.Linear(3, 3)
    torch.save({"model": other.state_dict()}, path)
    with pytest.raises(ValueError, match="bad.pt does not fit this network"):
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
    # the run's clock counts on across the resume: epochs 3-4 start from where epoch 2 had got to
    t = resumed.history["train_seconds"]
    assert t == sorted(t) and resumed.history.training_seconds() == t[-1]
    first = interrupted.history["train_seconds"]
    assert t[:2] == first and t[2] > first[1]


def test_training_seconds_of_an_older_checkpoint_sums_its_pieces():
    h = train.History()
    for t in (1.0, 2.0, 0.5, 1.5, 0.25):  # "time" restarted at 0 at each of two resumes
        h.log(0, {"time": t})
    assert h.training_seconds() == 3.75
    assert math.isnan(train.History().training_seconds())


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
    with pytest.raises(ValueError, match="epochs must be positive"):
        fit(_model(), _data(), epochs=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        fit(_model(), _data(), epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="needs epochs, max_steps or max_seconds"):
        fit(_model(), _data())
    x, y = _data()
    with pytest.raises(ValueError, match="same length"):
        fit(_model(), (x, y[:10]), epochs=1)
    bad = x.clone()
    bad[5, 0] = float("nan")
    bad[9, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite.*2 bad rows, the first is row 5"):
        fit(_model(), (bad, y), epochs=1)
    with pytest.raises(ValueError, match=r"dtype torch.float64 but the model's weights are torch.float32"):
        fit(_model(), (x.double(), y), epochs=1)
    with pytest.raises(ValueError, match="empty"):
        fit(_model(), (x[:0], y[:0]), epochs=1)
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


def test_model_without_parameters_has_a_device():
    class Empty(Model):
        pass

    assert Empty().device == dgsp.device()


class Noisy(Model):
    """A stochastic model (fresh noise every step, from torch's global generator and from its own),
    so a resumed run matches the uninterrupted one only if the random-number states are restored."""

    def __init__(self, interrupt_at: int = -1):
        super().__init__(interrupt_at=interrupt_at)
        self.lin = nn.Linear(1, 1)
        self.gen = torch.Generator().manual_seed(7)
        self.optimizers = {"adam": torch.optim.Adam(self.parameters(), lr=0.05)}
        self.calls = 0

    def training_step(self, batch):
        self.calls += 1
        if self.calls == self.hparams["interrupt_at"]:
            raise KeyboardInterrupt
        x, y = batch
        noise = torch.randn_like(x) + torch.randn(x.shape, generator=self.gen).to(x.device)
        loss = ((self.lin(x + 0.3 * noise) - y) ** 2).mean()
        opt = self.optimizers["adam"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}


def _noisy(**kw):
    torch.manual_seed(0)
    return Noisy(**kw).to(dgsp.device())


def test_resume_of_a_stochastic_model_is_exact():
    reference = _noisy()  # seeds torch, then builds
    fit(reference, _data(), epochs=4, batch_size=16)
    interrupted = _noisy(interrupt_at=10)  # stops in epoch 3; the checkpoint holds the end of epoch 2
    fit(interrupted, _data(), epochs=4, batch_size=16, checkpoint="test_resume_noisy")
    torch.manual_seed(123)  # whatever happens in between, the saved states take over
    resumed = _noisy(interrupt_at=10)  # the same config (hparams), with the interrupt already behind it
    resumed.calls = 100
    fit(resumed, _data(), epochs=4, batch_size=16, checkpoint="test_resume_noisy")
    assert resumed.calls == 108  # epochs 3 and 4 only
    assert torch.equal(resumed.lin.weight, reference.lin.weight)
    assert resumed.history["loss"] == reference.history["loss"]


def test_finished_run_is_extended_not_retrained(capsys):
    name = "test_extend_regression"
    short = _model()
    fit(short, _data(), epochs=2, batch_size=16, checkpoint=name)
    longer = _model()
    fit(longer, _data(), epochs=4, batch_size=16, checkpoint=name)
    assert longer.calls == 8 and "extending the finished run" in capsys.readouterr().out
    reference = _model()
    fit(reference, _data(), epochs=4, batch_size=16)
    assert torch.allclose(longer.lin.weight, reference.lin.weight)
    assert longer.history["epoch"] == [1, 2, 3, 4]
    again = _model()
    fit(again, _data(), epochs=4, batch_size=16, checkpoint=name)
    assert again.calls == 0  # now a cache hit for 4 epochs


def test_cache_key_is_the_data_content_and_the_network():
    x, y = _data()
    swapped = x.clone()
    swapped[[0, 1]] = swapped[[1, 0]]  # same shapes, same sums, other content
    assert train.data_fingerprint([x]) != train.data_fingerprint([swapped])
    assert train.data_fingerprint([x]) == train.data_fingerprint([x.clone()])
    name = "test_cache_content"
    fit(_model(), (x, y), epochs=1, batch_size=16, checkpoint=name)
    other = _model()
    fit(other, (swapped, y), epochs=1, batch_size=16, checkpoint=name)
    assert other.calls == 4  # a miss: retrained

    class Wider(Regression):  # same class name and hparams, different network: a clean miss
        def __init__(self):
            super().__init__()
            self.extra = nn.Linear(1, 2)

    Wider.__name__ = "Regression"
    fit(_model(), (x, y), epochs=1, batch_size=16, checkpoint=name)
    wide = Wider().to(dgsp.device())
    fit(wide, (x, y), epochs=1, batch_size=16, checkpoint=name)
    assert wide.calls == 4


def test_unusable_checkpoint_is_set_aside_in_one_line(capsys):
    name = "test_bad_checkpoint"
    path = train.checkpoint_path(name)
    path.write_bytes(b"garbage")
    m = _model()
    fit(m, _data(), epochs=1, batch_size=16, checkpoint=name)
    out = capsys.readouterr().out
    assert m.calls == 4 and path.with_name(path.name + ".bad").is_file()
    assert out.count("\n") == 1 and "moved it to test_bad_checkpoint.pt.bad" in out
    # a checkpoint whose tensors do not fit the network (same config written by hand)
    meta = train.load_checkpoint_meta(path)
    state = torch.load(path, weights_only=True)
    state["model"] = {"lin.weight": torch.zeros(2, 2), "lin.bias": torch.full((1,), 5.0)}  # the bias fits
    torch.save(state, path)
    assert train.load_checkpoint_meta(path)["config"] == meta["config"]
    m2 = _model()
    fit(m2, _data(), epochs=1, batch_size=16, checkpoint=name)
    assert m2.calls == 4 and "does not fit this network" in capsys.readouterr().out
    fresh = _model()
    fit(fresh, _data(), epochs=1, batch_size=16)
    assert torch.equal(m2.lin.weight, fresh.lin.weight)  # the failed load left no trace: a clean fresh start
    assert torch.equal(m2.lin.bias, fresh.lin.bias)


def test_snapshots_are_kept_with_the_run():
    name = "test_snapshots_regression"
    probe = torch.linspace(-1, 1, 5)[:, None].to(dgsp.device())
    m = _model()
    h = fit(m, _data(), epochs=4, batch_size=16, checkpoint=name, eval_every=2, snapshot=lambda mod: mod.lin(probe))
    assert sorted(h.snapshots) == [0, 2, 4] and h.snapshots[4].device.type == "cpu"
    cached = _model()
    h2 = fit(cached, _data(), epochs=4, batch_size=16, checkpoint=name, eval_every=2,
             snapshot=lambda mod: mod.lin(probe))
    assert cached.calls == 0 and all(torch.equal(h.snapshots[k], h2.snapshots[k]) for k in h.snapshots)


def test_step_and_time_budgets():
    m = _model()
    h = fit(m, _data(), epochs=10, batch_size=16, max_steps=6)
    assert m.calls == 6 and len(h["loss"]) == 6 and h["epoch"] == [1, 2]
    m = _model()
    fit(m, _data(), max_steps=9, batch_size=16, checkpoint="test_budget")
    assert m.calls == 9
    cached = _model()
    fit(cached, _data(), max_steps=9, batch_size=16, checkpoint="test_budget")
    assert cached.calls == 0
    m = _model()
    fit(m, _data(), max_seconds=0.2, batch_size=16, callbacks=[lambda model, e: {"evaluated": 1.0}])
    assert m.calls > 0 and m.history["evaluated"]


class TwoStreams(Model):
    """Records which rows of each stream it sees."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.seen = {"main": [], "side": []}

    def training_step(self, batch):
        for name in ("main", "side"):
            self.seen[name] += batch[name][0][:, 0].tolist()
        return {"n_side": float(len(batch["side"][0]))}


def test_fit_takes_several_streams():
    main = torch.arange(40.0)[:, None]
    side = (1000 + torch.arange(6.0))[:, None], torch.arange(6)
    m = TwoStreams()
    fit(m, {"main": main, "side": side}, epochs=2, batch_size={"main": 10, "side": 4})
    assert len(m.seen["main"]) == 80 and sorted(m.seen["main"][:40]) == list(range(40))
    assert len(m.seen["side"]) == 32 and set(m.seen["side"]) == set(1000.0 + torch.arange(6.0).numpy())
    assert m.history["n_side"] == [4.0] * 8
    with pytest.raises(ValueError, match="no entry for data stream 'side'"):
        fit(TwoStreams(), {"main": main, "side": side}, epochs=1, batch_size={"main": 10})


def test_metrics_are_copied_to_the_host_once_per_log_every_steps(monkeypatch):
    calls = []
    real = torch.Tensor.tolist

    def spy(self):
        calls.append(self.numel())
        return real(self)

    monkeypatch.setattr(torch.Tensor, "tolist", spy)
    m = _noisy()
    fit(m, _data(), epochs=2, batch_size=8, log_every=4)  # 16 steps
    assert len(m.history["loss"]) == 16 and len(calls) == 4 and calls == [4, 4, 4, 4]


def test_fit_says_once_when_a_gpu_is_left_idle(monkeypatch, capsys):
    monkeypatch.setattr(train, "default_device", lambda: torch.device("cuda"))
    monkeypatch.setattr(train, "_warned_cpu", False)
    cpu_model = Regression()
    fit(cpu_model, _data(), epochs=1, batch_size=16)
    fit(Regression(), _data(), epochs=1, batch_size=16)
    out = capsys.readouterr().out
    assert out.count("did you forget model.to(dgsp.device())") == 1


def test_small_models_train_on_one_thread_and_the_count_is_restored():
    seen = []

    class Probe(Regression):
        def training_step(self, batch):
            seen.append(torch.get_num_threads())
            return super().training_step(batch)

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # so that "one thread" differs from torch's own count even on a one-core host
    try:
        fit(Probe().cpu(), _data(), epochs=1, batch_size=16)
        assert set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        fit(Probe().cpu(), _data(), epochs=1, batch_size=16, threads=None)
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(before)
