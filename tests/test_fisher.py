"""Fisher scores, information and adversarial Fisher vectors (dgsp.fisher), for lecture 7."""
import pytest
import torch
from torch import nn

from dgsp import fisher


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1)).double()


def test_per_sample_gradients_equal_a_loop():
    net = _net()
    x = torch.randn(13, 2, 3, dtype=torch.float64)
    fast = fisher.per_sample_gradients(net, x, chunk=4)
    loop = []
    for xi in x:
        net.zero_grad()
        net(xi[None]).sum().backward()
        loop.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    loop = torch.stack(loop)
    assert fast.shape == (13, sum(p.numel() for p in net.parameters()))
    assert torch.allclose(fast, loop, rtol=1e-10, atol=1e-12)
    # a subset of the parameters: the last layer only
    last = fisher.per_sample_gradients(net, x, params=["3.weight", "3.bias"])
    assert torch.allclose(last, loop[:, -6:])


def test_rows_per_vmap_call_change_the_speed_not_the_gradients():
    """A small conv net, the kind whose per-sample weight gradients vmap turns into grouped convolutions."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 3 * 3, 1))
    x = torch.randn(40, 1, 7, 7)
    assert fisher.vmap_rows(x.device) == (32 if x.device.type == "cpu" else 256)
    default = fisher.per_sample_gradients(net, x)
    for chunk in (1, 7, 40, 64):
        assert torch.allclose(fisher.per_sample_gradients(net, x, chunk=chunk), default, rtol=1e-5, atol=1e-7)
    # the streaming functions hold `chunk` rows at a time whatever the width of a vmap call
    info, centre = fisher.fisher_information_diag(net, x, chunk=9)
    assert torch.allclose(centre, default.mean(0), atol=1e-6)
    assert torch.allclose(info, default.var(0, unbiased=False), rtol=1e-4, atol=1e-8)


def test_diagonal_information_is_the_average_outer_product():
    net = _net(1)
    samples = torch.randn(20, 6, dtype=torch.float64)
    info, centre = fisher.fisher_information_diag(net, samples, chunk=7)
    u = fisher.per_sample_gradients(net, samples) - fisher.per_sample_gradients(net, samples).mean(0)
    outer = torch.einsum("ni,nj->ij", u, u) / len(u)
    assert torch.allclose(info, torch.diagonal(outer)) and torch.allclose(centre, fisher.mean_gradient(net, samples))


def test_fisher_score_of_a_gaussian_family_is_the_log_likelihood_gradient():
    # f_mu(x) = mu x - x^2 / 2 is log N(x; mu, 1) up to log Z(mu) = mu^2 / 2 + const, so grad log p = x - mu
    class Family(nn.Module):
        def __init__(self):
            super().__init__()
            self.mu = nn.Parameter(torch.tensor(0.7, dtype=torch.float64))

        def forward(self, x):
            return self.mu * x[:, 0] - x[:, 0] ** 2 / 2

    model = Family()
    samples = 0.7 + torch.randn(400_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = torch.tensor([[-1.0], [0.0], [2.5]], dtype=torch.float64)
    u = fisher.fisher_scores(model, x, samples, chunk=100_000)
    assert torch.allclose(u[:, 0], x[:, 0] - 0.7, atol=0.01)
    info, _ = fisher.fisher_information_diag(model, samples, chunk=100_000)
    assert float(info) == pytest.approx(1.0, rel=0.01)  # the Fisher information of a unit-variance mean is 1


def test_afvs_distances_and_sets():
    net = _net(2)
    samples, x = torch.randn(50, 6, dtype=torch.float64), torch.randn(8, 6, dtype=torch.float64)
    info, centre = fisher.fisher_information_diag(net, samples)
    # the output bias shifts log p by a constant, which the normaliser absorbs: its score and information are 0
    assert float(info[-1]) == 0.0 and bool((info[:-1] > 0).all())
    with pytest.warns(UserWarning, match="1 of 41 Fisher-information entries"):
        v = fisher.adversarial_fisher_vectors(fisher.fisher_scores(net, x, samples, centre=centre), info)
    with pytest.warns(UserWarning, match="1 of 41"):
        chunks = torch.cat(list(fisher.fisher_vectors_in_chunks(net, x, info, centre, chunk=3)))
    assert torch.allclose(v, chunks)
    k = fisher.fisher_kernel(v, v)
    by_kernel = (torch.diagonal(k)[:, None] + torch.diagonal(k)[None, :] - 2 * k).clamp_min(0).sqrt()
    assert torch.allclose(fisher.fisher_distance(v, v), by_kernel, atol=1e-6)
    assert fisher.set_distance(v, v) == 0.0
    assert fisher.set_distance(v[:4], v[4:]) == pytest.approx(fisher.set_distance(v[4:], v[:4]))
    # the distance between the sets' mean AFVs (sets of different sizes, so sums would not do)
    assert fisher.set_distance(v[:3], v[3:]) == pytest.approx(float((v[:3].mean(0) - v[3:].mean(0)).norm()))


def test_dead_parameters_and_bad_input():
    info = torch.tensor([1.0, 0.0, float("nan"), 4.0])
    with pytest.warns(UserWarning, match="2 of 4 Fisher-information entries"):
        v = fisher.adversarial_fisher_vectors(torch.ones(2, 4), info)
    assert torch.equal(v, torch.tensor([[1.0, 0.0, 0.0, 0.5], [1.0, 0.0, 0.0, 0.5]]))
    with pytest.raises(ValueError, match="different sizes"):
        fisher.set_distance(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="non-empty"):
        fisher.set_distance(torch.zeros(0, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="unknown parameter names"):
        fisher.per_sample_gradients(_net(), torch.zeros(2, 6, dtype=torch.float64), params=["nope"])
    with pytest.raises(ValueError, match="non-finite"):
        fisher.per_sample_gradients(_net(), torch.full((2, 6), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="one number per input"):
        fisher.per_sample_gradients(nn.Linear(6, 2).double(), torch.zeros(2, 6, dtype=torch.float64))


def test_count_sketch_keeps_inner_products_on_average():
    a, b = torch.randn(2, 500, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    estimates = []
    for seed in range(300):
        s = fisher.CountSketch(500, 64, seed=seed)
        sa, sb = s(torch.stack([a, b]))
        estimates.append(float(sa @ sb))
    estimates = torch.tensor(estimates)
    assert float(estimates.mean()) == pytest.approx(float(a @ b), abs=4 * float(estimates.std()) / 300 ** 0.5)
    one = fisher.CountSketch(500, 64, seed=3)
    assert torch.equal(one(a[None]), fisher.CountSketch(500, 64, seed=3)(a[None]))  # seeded
    assert float(one(a[None]).norm() ** 2) == pytest.approx(float(a @ a), rel=0.6)
    with pytest.raises(ValueError, match=r"takes \(N, 500\)"):
        one(torch.zeros(2, 499))
    with pytest.raises(ValueError, match="positive sizes"):
        fisher.CountSketch(10, 0)


def test_count_sketch_keeps_exact_coordinates_and_hashes_the_rest():
    v = torch.randn(3, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    keep = torch.tensor([40, 2, 7])
    s = fisher.CountSketch(50, 12, seed=5, exact=keep)
    out = s(v)
    assert torch.equal(out[:, :3], v[:, keep])  # the kept coordinates, in order, untouched
    rest = torch.ones(50, dtype=torch.bool)
    rest[keep] = False
    assert bool((s.bucket[rest] >= 3).all())  # the others only in the remaining buckets
    assert torch.allclose(out[:, 3:].sum(1), (v[:, rest] * s.sign[rest].double()).sum(1))
    for bad, match in ((torch.tensor([1, 1]), "distinct"), (torch.tensor([50]), "distinct"),
                       (torch.arange(12), "no bucket")):
        with pytest.raises(ValueError, match=match):
            fisher.CountSketch(50, 12, exact=bad)



def test_count_sketch_spreads_the_hashed_coordinates_evenly_over_the_other_buckets():
    # 6 exact coordinates leave 10 buckets for 120,000 others: each should get a tenth, with either sign half the time
    s = fisher.CountSketch(120_006, 16, seed=0, exact=torch.arange(6))
    rest = s.bucket[6:]
    counts = torch.bincount(rest, minlength=16)
    assert int(counts[:6].sum()) == 0
    assert float((counts[6:].float() / len(rest) - 0.1).abs().max()) < 0.005  # sd of one share: 0.0009
    assert float(s.sign[6:].mean().abs()) < 0.01

def test_fisher_embedding_keeps_named_layers_exact_in_its_sketch():
    net = _net(4)
    samples, x = torch.randn(40, 6, dtype=torch.float64), torch.randn(11, 6, dtype=torch.float64)
    names = [n for n, _ in net.named_parameters()]
    full = fisher.FisherEmbedding.from_samples(net, samples)
    last = names[-1].rsplit(".", 1)[0]  # the output layer's prefix: its weight and bias
    coords = fisher.parameter_coordinates(net, [last])
    assert len(coords) == sum(p.numel() for n, p in net.named_parameters() if n.startswith(last + "."))
    emb = fisher.FisherEmbedding.from_samples(net, samples, sketch_dim=20, exact_params=[last])
    assert torch.allclose(emb.vectors(x)[:, :len(coords)], full.vectors(x)[:, coords])
    with pytest.raises(ValueError, match="no parameter is named"):
        fisher.parameter_coordinates(net, ["head"])


def test_fisher_embedding_streams_the_afvs_and_class_means():
    net = _net(4)
    samples, x = torch.randn(40, 6, dtype=torch.float64), torch.randn(11, 6, dtype=torch.float64)
    emb = fisher.FisherEmbedding.from_samples(net, samples, chunk=4)
    assert emb.dead_parameters() == 1 and emb.dim == 41  # the output bias
    with pytest.warns(UserWarning):
        direct = fisher.adversarial_fisher_vectors(fisher.fisher_scores(net, x, samples), emb.info_diag)
    assert torch.allclose(emb.vectors(x), direct)
    groups = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1])
    means = emb.group_means(x, groups)
    assert torch.allclose(means, torch.stack([direct[groups == g].mean(0) for g in range(3)]))
    sketched = fisher.FisherEmbedding.from_samples(net, samples, sketch_dim=16, seed=1)
    assert sketched.dim == 16 and torch.allclose(sketched.vectors(x), sketched.sketch(direct))
    with pytest.raises(ValueError, match=r"groups \[3\] are empty"):
        emb.group_means(x, groups, n_groups=4)
    with pytest.raises(ValueError, match="11 inputs but 3 group labels"):
        emb.group_means(x, groups[:3])
