"""Lecture 5 pieces: the joint game's optimum, the 1-NN helper, E/G/D shapes, LR/JLR losses, the toy, bad input
(dgsp.models.bigan, dgsp.metrics.one_nn_accuracy, dgsp.widgets.interpolation_panel)."""
import math

import pytest
import torch

from dgsp import metrics, widgets
from dgsp.models import bigan
from dgsp.train import fit


def _small(cls=bigan.BiGAN, **kw):
    torch.manual_seed(0)
    return cls(latent_dim=5, hidden=(32, 32), **kw)


def test_optimal_joint_discriminator_and_js_on_a_discrete_joint():
    # x in {0, 1, 2}, z in {0, 1}: P_XE puts the mass of p_x on the pairs (x, E(x)), E = (0, 1, 1);
    # P_GZ puts the mass of p_z on (G(z), z), G = (0, 2).
    p_xe = torch.zeros(3, 2, dtype=torch.float64)
    p_xe[0, 0], p_xe[1, 1], p_xe[2, 1] = 0.5, 0.3, 0.2
    p_gz = torch.zeros(3, 2, dtype=torch.float64)
    p_gz[0, 0], p_gz[2, 1] = 0.4, 0.6
    d_star = bigan.joint_optimal_discriminator(p_xe, p_gz)
    assert float(d_star[0, 0]) == pytest.approx(0.5 / 0.9)
    assert float(d_star[1, 1]) == 1.0 and float(d_star[2, 1]) == pytest.approx(0.25)
    v = float(bigan.joint_value(d_star, p_xe, p_gz))
    # closed form of JS: 1/2 sum p log(2p/(p+q)) + 1/2 sum q log(2q/(p+q)) over the cells
    js = 0.5 * (0.5 * math.log(1.0 / 0.9) + 0.3 * math.log(2) + 0.2 * math.log(0.4 / 0.8)) \
        + 0.5 * (0.4 * math.log(0.8 / 0.9) + 0.6 * math.log(1.2 / 0.8))
    assert bigan.joint_js(p_xe, p_gz) == pytest.approx(js)
    assert v == pytest.approx(js - math.log(2))  # the slides' 1/2-weighted value at D*
    for d in (torch.full_like(d_star, 0.5), (d_star * 0.9 + 0.05)):  # any other D does worse
        assert float(bigan.joint_value(d, p_xe, p_gz)) < v
    # at the optimum P_XE = P_GZ: D* = 1/2 and V = -log 2
    assert float(bigan.joint_value(bigan.joint_optimal_discriminator(p_xe, p_xe), p_xe, p_xe)) == \
        pytest.approx(-math.log(2))


def test_one_nn_on_hand_built_points():
    memory = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 3.0]])
    labels = torch.tensor([0, 1, 2])
    queries = torch.tensor([[1.0, 0.0], [9.0, 1.0], [0.0, 2.0], [5.0, 5.0]])
    assert metrics.nearest_neighbours(memory, queries, chunk=2)[:, 0].tolist() == [0, 1, 2, 2]
    assert metrics.one_nn_accuracy(memory, labels, queries, torch.tensor([0, 1, 2, 1])) == 0.75
    # cosine ignores the length: (5, 5) is 45 degrees from (10, 0) and from (0, 3); (1, 0.1) is closest to (10, 0)
    mem = torch.tensor([[10.0, 0.0], [0.0, 3.0]])
    assert metrics.nearest_neighbours(mem, torch.tensor([[1.0, 0.1], [0.1, 100.0]]), metric="cosine")[:, 0].tolist() \
        == [0, 1]
    assert metrics.nearest_neighbours(memory, queries, k=2)[1].tolist() == [1, 0]  # dist^2 2, then 82 (not 85)


def test_one_nn_bad_input():
    m, y = torch.randn(5, 3), torch.arange(5)
    with pytest.raises(ValueError, match="5 training features but 4 training labels"):
        metrics.one_nn_accuracy(m, y[:4], m, y)
    with pytest.raises(ValueError, match="non-empty memory"):
        metrics.one_nn_accuracy(m[:0], y[:0], m, y)
    with pytest.raises(ValueError, match="3 features but queries have 2"):
        metrics.nearest_neighbours(m, torch.randn(2, 2))
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.nearest_neighbours(m, m, metric="manhattan")
    bad = m.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        metrics.nearest_neighbours(bad, m)


def test_shapes_and_joint_concatenation():
    model = _small()
    x = torch.rand(6, 1, 28, 28)
    z = model.noise(6, torch.Generator().manual_seed(0))
    assert z.shape == (6, 5) and float(z.min()) >= -1 and float(z.max()) <= 1
    assert model.encode(x).shape == (6, 5) and model.decode(z).shape == (6, 1, 28, 28)
    assert model.sample(4, torch.Generator().manual_seed(1)).shape == (4, 1, 28, 28)
    pair = model.discriminator.pair(x, z)
    assert pair.shape == (6, 784 + 5)
    assert torch.equal(pair[:, :784], x.flatten(1)) and torch.equal(pair[:, 784:], z)
    assert model.discriminator(x, z).shape == (6,)
    g = model.decode(z)
    assert float(g.min()) >= 0 and float(g.max()) <= 1  # sigmoid pixels
    same = model.sample(3, torch.Generator().manual_seed(7))
    assert torch.equal(same, model.sample(3, torch.Generator().manual_seed(7)))


def test_a_training_step_moves_every_player(assert_moved):
    for cls, kw in ((bigan.BiGAN, {}), (bigan.LatentRegressor, {"joint_weight": 0.25})):
        model = _small(cls, **kw)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        out = model.training_step((torch.rand(16, 1, 28, 28),))
        assert all(math.isfinite(float(v)) for v in out.values())
        assert_moved(before, model, "encoder", "generator", "discriminator")


def test_dropout_regularises_d_alone_and_only_in_training():
    """The recipe's dropout sits after each hidden layer of D, nowhere in E or G: D is random in training mode and
    deterministic in eval mode, where it equals the same network without dropout."""
    from dgsp import recipes

    model = _small(dropout=0.5)
    drops = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 2 and all(name.startswith("discriminator.") for name in drops)
    assert model.hparams["dropout"] == 0.5 and _small().hparams["dropout"] == 0.0
    plain = _small()  # same seed, same weights: dropout adds no parameter
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))
    x, z = torch.rand(8, 1, 28, 28), torch.rand(8, 5) * 2 - 1
    model.eval(), plain.eval()
    assert torch.allclose(model.discriminator(x, z), plain.discriminator(x, z))
    model.train()
    assert not torch.equal(model.discriminator(x, z), model.discriminator(x, z))
    assert 0 < recipes.BIGAN_DROPOUT < 1
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="dropout must be in"):
            bigan.BiGAN(dropout=bad)


def test_table_recipes_build_the_documented_models(monkeypatch):
    """Each Table 1 recipe hands fit the model its docstring names (BiGAN with the recipe's dropout in D, LR / JLR
    with their weights), the decay schedule of its epochs, and its own checkpoint; fit itself is stubbed here."""
    from dgsp import recipes

    calls = {}
    monkeypatch.setattr(recipes, "course_data", lambda split, dataset=None: (torch.rand(8, 1, 28, 28), None))
    monkeypatch.setattr(recipes, "fit", lambda model, x, **kw: calls.update({kw["checkpoint"]: kw["epochs"]}))
    bg = recipes.mnist_bigan(epochs=6)
    lr, jlr = recipes.mnist_latent_regressor(False, epochs=4), recipes.mnist_latent_regressor(True, epochs=4)
    assert isinstance(bg, bigan.BiGAN) and bg.hparams["dropout"] == recipes.BIGAN_DROPOUT
    assert bg.hparams["decay_start"] == 3 and math.isclose(bg.hparams["lr_decay"], 0.01 ** (1 / 3))
    assert lr.hparams["joint_weight"] == 0 and jlr.hparams["joint_weight"] == 0.25
    assert calls == {"05_bigan_e6": 6, "05_lr_e4": 4, "05_jlr_e4": 4}
    assert not bg.training  # handed back in eval mode


def test_inversion_eval_images_are_a_uniform_draw_not_the_head_of_the_test_split(monkeypatch):
    """The digits the training curves are logged on come from data.random_subset, fixed across calls: full MNIST's
    test split is not shuffled, and its first half is the cleaner one."""
    from dgsp import by_mode, data, recipes

    x_test = torch.arange(5000.0)[:, None, None, None].expand(5000, 1, 28, 28)
    monkeypatch.setattr(recipes, "course_data", lambda split, dataset=None: (x_test, None))
    shown = recipes.inversion_eval_images()
    assert shown.shape == (by_mode(1000, 200), 1, 28, 28)
    assert torch.equal(shown, recipes.inversion_eval_images())  # the same digits after every epoch
    assert torch.equal(shown, data.random_subset(x_test, n=len(shown))[0])
    index = shown[:, 0, 0, 0]
    assert index.unique().numel() == len(shown)
    assert (index >= 2500).any() and (index < 2500).any() and not torch.equal(index, index.sort().values)


def _step_with(model, x, zero: str | None = None):
    """One two_player_step from the seeded loss, with the term ``zero`` (if any) multiplied by 0."""
    torch.manual_seed(5)
    terms = model.loss(x)
    if zero is not None:
        terms[zero] = terms[zero] * 0
    bigan.two_player_step(model, terms)
    return model.state_dict()


@pytest.mark.parametrize("cls, kw", [(bigan.BiGAN, {}), (bigan.BiGAN, {"dropout": 0.2}),
                                     (bigan.LatentRegressor, {"joint_weight": 0.25})])
def test_each_player_moves_by_its_own_loss_only(cls, kw):
    """D's step depends on loss_d alone, and (G, E)'s on loss_ge alone: zeroing the other player's loss leaves a
    player's new weights exactly as they are after the full step (D's loss must not leak into G or E)."""
    import copy

    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model = _small(cls, **kw)
    full = _step_with(copy.deepcopy(model), x)
    no_ge = _step_with(copy.deepcopy(model), x, "loss_ge")
    no_d = _step_with(copy.deepcopy(model), x, "loss_d")
    for k, v in full.items():
        if not k.endswith("weight"):
            continue
        same_as = no_ge if k.startswith("discriminator") else no_d
        assert torch.equal(v, same_as[k]), f"{cls.__name__}: {k} depends on the other player's loss"
    assert any(not torch.equal(full[k], no_ge[k]) for k in full if k.startswith("generator") and k.endswith("weight"))


def test_latent_regression_loss_and_joint_weight():
    z, z_hat = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.0, 1.0]])
    assert float(bigan.latent_regression_loss(z_hat, z)) == pytest.approx((1 + 4) / 2)  # averaged over dimensions
    with pytest.raises(ValueError, match="differ in shape"):
        bigan.latent_regression_loss(z_hat, z[:, :1])
    x = torch.tensor([2.0], requires_grad=True)
    (bigan.scale_gradient(x, 0.25) * 3).sum().backward()
    assert float(x.grad) == pytest.approx(0.75)  # value unchanged, gradient scaled

    # LR: G gets no gradient from the regression loss; JLR: it gets the regression's gradient times joint_weight.
    # LatentRegressor.loss itself, with its adversarial term for G switched off so that only the regression is left
    x = torch.rand(8, 1, 28, 28)
    grads = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bigan, "generator_loss_nonsaturating", lambda logits: 0 * logits.sum())
        for w in (0.0, 0.25, 0.5):
            model = _small(bigan.LatentRegressor, joint_weight=w)
            torch.manual_seed(1)
            model.loss(x)["loss_ge"].backward(inputs=[*model.generator.parameters(), *model.encoder.parameters()])
            grads[w] = torch.cat([p.grad.flatten() for p in model.generator.parameters()])
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters()
                       if p.dim() > 1)
    assert grads[0.0].abs().sum() == 0 and grads[0.25].abs().sum() > 0
    torch.testing.assert_close(grads[0.5], 2 * grads[0.25])  # the same models and draws: linear in the weight
    assert _small(bigan.LatentRegressor).discriminator_features(x).shape == (8, 32)


def test_autoencoder_rows_and_random_encoder():
    x = torch.rand(4, 1, 28, 28)
    for loss in ("l2", "l1"):
        model = _small(bigan.AutoencoderBaseline, loss=loss)
        x_hat = model.generator(model.encoder(x))
        expected = ((x_hat - x) ** 2).sum((1, 2, 3)).mean() if loss == "l2" else (x_hat - x).abs().sum((1, 2, 3)).mean()
        assert float(model.loss(x)["loss"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    with pytest.raises(ValueError, match="choose one of"):
        bigan.AutoencoderBaseline(loss="huber")
    a, b = bigan.random_encoder(latent_dim=5, hidden=(16,)), bigan.random_encoder(latent_dim=5, hidden=(16,))
    assert torch.equal(a.features(x), b.features(x)) and not a.training


def test_hidden_features_and_the_two_table_layers():
    x = torch.rand(6, 1, 28, 28)
    model = _small()
    model.train()
    hidden = model.hidden_features(x)
    assert hidden.shape == (6, 32) and model.encoder.training      # read in eval mode, mode restored
    model.encoder.eval()
    with torch.no_grad():                                          # E(x) = the last linear layer of these features
        assert torch.allclose(model.encoder.net[-2](hidden), model.encoder(x), atol=1e-6)
        assert torch.equal(hidden, bigan.penultimate(model.encoder, x))
    rows = [_small(), _small(bigan.LatentRegressor), _small(bigan.LatentRegressor, joint_weight=0.25),
            _small(bigan.AutoencoderBaseline), _small(bigan.AutoencoderBaseline, loss="l1")]
    hidden_rows, code_rows = (bigan.table_features(*rows, layer=layer) for layer in ("hidden", "code"))
    assert list(hidden_rows) == ["BiGAN", "D", "LR", "JLR", "AE (l2)", "AE (l1)", "pixels", "random E"]
    assert list(code_rows) == ["BiGAN", "LR", "JLR", "AE (l2)", "AE (l1)", "random E"]
    assert {k: v(x).shape[1] for k, v in hidden_rows.items()} == {**{k: 32 for k in hidden_rows}, "pixels": 784}
    assert {v(x).shape[1] for v in code_rows.values()} == {5}
    with pytest.raises(ValueError, match="unknown layer 'output'"):
        bigan.table_features(*rows, layer="output")
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 1, 28, 28\)"):
        model.hidden_features(torch.zeros(3, 784))


def test_bad_input_is_a_clear_error():
    model = _small()
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 5\)"):
        model.decode(torch.zeros(3, 7))
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 1, 28, 28\)"):
        model.encode(torch.zeros(3, 784))
    with pytest.raises(ValueError, match="float32 weights but got torch.float64"):
        model.encode(torch.zeros(3, 1, 28, 28, dtype=torch.float64))
    bad = torch.rand(20, 1, 28, 28)
    bad[3, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        fit(model, bad, epochs=1, batch_size=10, progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit(model, torch.rand(20, 1, 28, 28) * 255, epochs=1, batch_size=10, progress=False)
    with pytest.raises(ValueError, match="latent_dim and every hidden size"):
        bigan.BiGAN(latent_dim=0)
    with pytest.raises(ValueError, match="joint_weight"):
        bigan.LatentRegressor(joint_weight=-1)
    with pytest.raises(ValueError, match=r"uniform_latent\(n\) needs a whole number >= 1"):
        bigan.uniform_latent(0, 3)
    with pytest.raises(ValueError, match="at least 2 steps"):
        bigan.interpolate_codes(torch.zeros(3), torch.ones(3), 1)


def test_toy_bigan_learns_to_invert():
    """The course's toy recipe (150 epochs, the run notebook 05 loads): reconstructions G(E(x)) beat another
    point's, E(G(z)) tracks z."""
    from dgsp import recipes

    model, x = recipes.toy_bigan()
    x_error = model.history["x_error"]
    assert len(x_error) == 30  # logged every 5 epochs
    after = bigan.inversion_errors(model, x[:500])
    assert after["x_error"] < 0.5 * x_error[0] and after["x_error"] < 0.25 * after["x_error_other"]
    assert abs(after["z_corr"]) > 0.9


def test_filters_and_interpolation_panel():
    model = _small()
    for net in (model.encoder, model.generator, model.discriminator.net):
        f = bigan.first_layer_filters(net, n=6)
        assert f.shape == (6, 1, 28, 28) and float(f.min()) == 0 and float(f.max()) == 1
    with pytest.raises(ValueError, match="pixels"):
        bigan.first_layer_filters(bigan.JointDiscriminator((2,), 1, (8,), None).net)
    with pytest.raises(ValueError, match=r"first_layer_filters\(n\) needs a whole number"):
        bigan.first_layer_filters(model.encoder, n=0)
    x = torch.rand(5, 1, 28, 28)
    out = widgets.interpolation_panel(model.eval(), x, 1, 3, steps=4)
    assert out["images"].shape == (4, 1, 28, 28) and out["codes"].shape == (4, 5)
    assert torch.allclose(out["codes"][0], model.encode(x[1:2])[0]) and torch.allclose(out["codes"][-1],
                                                                                        model.encode(x[3:4])[0])
    assert torch.allclose(out["images"][0], out["reconstructions"][0], atol=1e-6)
    fig = widgets.draw_interpolation_panel(out)
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="indices must lie"):
        widgets.interpolation_panel(model, x, 0, 5)
