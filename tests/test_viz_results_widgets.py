import json
import os
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import dgsp
from dgsp import results, viz, widgets
from dgsp.models.autoencoder import Autoencoder, pca


def test_savefig_goes_to_temp_in_quick_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("DGSP_HOME", str(tmp_path))
    fig, ax = plt.subplots()
    path = viz.savefig(fig, "test_plot")
    plt.close(fig)
    assert path.is_file() and path.suffix == ".png" and tmp_path not in path.parents
    with pytest.raises(ValueError, match="plain file name"):
        viz.savefig(fig, "../up")


def test_savefig_full_mode_writes_figures(monkeypatch, tmp_path):
    monkeypatch.setenv("DGSP_HOME", str(tmp_path))
    monkeypatch.setenv("DGSP_QUICK", "0")
    monkeypatch.delenv("DGSP_PUBLISH", raising=False)
    fig, _ = plt.subplots()
    assert viz.savefig(fig, "full") == tmp_path / "build" / "figures" / "full.png"  # an interactive run
    monkeypatch.setenv("DGSP_PUBLISH", "1")  # make course
    assert viz.savefig(fig, "full") == tmp_path / "figures" / "full.png"
    plt.close(fig)


def test_plots_return_axes_and_check_shapes():
    ax = viz.image_grid(torch.rand(6, 1, 28, 28), nrow=3)
    assert ax.images
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        viz.image_grid(torch.rand(6, 28, 28))
    ax = viz.latent_scatter(torch.randn(30, 2), torch.arange(30) % 3)
    assert len(ax.collections) == 3
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        viz.latent_scatter(torch.randn(30, 3))
    h = dgsp.train.History()
    for i in range(50):
        h.log(i, {"loss": 1.0 / (i + 1)})
    ax = viz.training_curves(h, ["loss"], smooth=5)
    assert len(ax.lines[0].get_xdata()) == 46
    fig = viz.compare_rows([torch.rand(4, 1, 8, 8)] * 2, ["a", "b"], n=4)
    assert len(fig.axes) == 2
    plt.close("all")


def test_results_record_and_markdown(monkeypatch, tmp_path):
    monkeypatch.setenv("DGSP_HOME", str(tmp_path))
    monkeypatch.setenv("DGSP_QUICK", "0")
    monkeypatch.setenv("DGSP_PUBLISH", "1")  # into the committed figures/, as make course does
    results.record("01_test", {"mse": 1.5, "angle": 2}, dataset="mnist5k")
    results.record("02_test", {"nll": 90.0, "used": np.int64(7), "nmi": np.float32(0.5)}, dataset="mnist")
    table = json.loads((tmp_path / "figures" / "results.json").read_text())
    assert table["01_test"]["metrics"] == {"mse": 1.5, "angle": 2.0}
    assert table["02_test"]["metrics"] == {"nll": 90.0, "used": 7.0, "nmi": 0.5}  # NumPy scalars become floats
    assert table["01_test"]["mode"] == "full" and table["01_test"]["dataset"] == "mnist5k"
    assert table["01_test"]["device"].startswith(str(dgsp.device()))
    md = (tmp_path / "figures" / "RESULTS.md").read_text()
    assert "## 02_test" in md and "| nll | 90 |" in md and "| mse | 1.5 |" in md
    with pytest.raises(ValueError, match="numbers"):
        results.record("bad", {"x": "high"}, dataset="mnist")


def test_recorded_numbers_are_shared_only_when_the_same_classifier_scored_them(monkeypatch, tmp_path):
    monkeypatch.setenv("DGSP_HOME", str(tmp_path))
    monkeypatch.setenv("DGSP_QUICK", "0")
    monkeypatch.setenv("DGSP_PUBLISH", "1")
    results.record("03_test", {"frechet_gan": 72.0, "classifier_test_accuracy": 0.9859}, dataset="mnist")
    results.record("05_test", {"frechet_bigan": 300.0}, dataset="mnist")  # no classifier recorded
    assert results.scored_by_same_classifier("03_test", 0.9859)["frechet_gan"] == 72.0
    with pytest.warns(UserWarning, match="another classifier"):
        assert results.scored_by_same_classifier("03_test", 0.9870) == {}
    with pytest.warns(UserWarning, match="not recorded"):
        assert results.scored_by_same_classifier("05_test", 0.9870) == {}
    assert results.scored_by_same_classifier("never_run", 0.9870) == {}  # nothing recorded: nothing to warn about


def test_results_record_from_several_processes_keeps_every_entry(monkeypatch, tmp_path):
    """A notebook and a benchmark may record at the same moment: each entry must survive."""
    env = {**os.environ, "DGSP_HOME": str(tmp_path), "DGSP_QUICK": "0", "DGSP_PUBLISH": "1"}
    code = ("import sys; from dgsp import results\n"
            "for i in range(15): results.record(f'{sys.argv[1]}_{i}', {'x': i}, dataset='mnist')")
    procs = [subprocess.Popen([sys.executable, "-c", code, f"p{k}"], env=env) for k in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    table = json.loads((tmp_path / "figures" / "results.json").read_text())
    assert set(table) == {f"p{k}_{i}" for k in range(4) for i in range(15)}
    assert not list((tmp_path / "figures").glob("*.tmp"))


def test_reconstruction_panel_is_pure():
    x, _ = dgsp.data.load("mnist5k", "test", n=20)  # on dgsp.device(): CUDA where there is one
    p = pca(x, 10)
    model = Autoencoder(code_dim=4, arch="mlp", hidden=(16,)).to(x.device).eval()
    out = widgets.reconstruction_panel(x[:5], p, k=3, noise=0.0, models={"ae": model})
    assert list(out["rows"]) == ["input", "noisy (σ=0.00)", "PCA k=3", "ae"]
    assert out["mse"]["noisy (σ=0.00)"] == 0.0
    assert out["mse"]["PCA k=3"] > 0
    again = widgets.reconstruction_panel(x[:5], p, k=3, noise=0.4)
    assert again["mse"] == widgets.reconstruction_panel(x[:5], p, k=3, noise=0.4)["mse"]  # seeded
    more = widgets.reconstruction_panel(x[:5], p, k=10, noise=0.0)
    assert more["mse"]["PCA k=10"] < out["mse"]["PCA k=3"]
    fig = widgets.draw_reconstruction_panel(out)
    assert len(fig.axes) == 4
    plt.close(fig)
    with pytest.raises(ValueError, match="k must be between"):
        widgets.reconstruction_panel(x[:5], p, k=11, noise=0.0)


def test_reconstruction_panel_runs_each_model_on_its_own_device():
    x, _ = dgsp.data.load("mnist5k", "test", n=20)
    p = pca(x, 6)
    on_data = Autoencoder(code_dim=4, arch="mlp", hidden=(16,)).to(x.device).eval()
    on_cpu = Autoencoder(code_dim=4, arch="mlp", hidden=(16,)).eval()
    models = {"data device": on_data, "cpu": on_cpu, "identity": torch.nn.Identity()}  # no parameters
    out = widgets.reconstruction_panel(x[:5], p, k=3, noise=0.2, models=models)
    assert all(img.device.type == "cpu" for img in out["rows"].values())  # ready to draw
    noisy = out["rows"]["noisy (σ=0.20)"]
    torch.testing.assert_close(out["rows"]["identity"], noisy)
    torch.testing.assert_close(out["rows"]["cpu"], on_cpu(noisy))
    assert out["mse"]["identity"] == out["mse"]["noisy (σ=0.20)"]


def test_latent_title_names_the_moved_dims():
    from dgsp.models.vae import VAE

    model = VAE(z_dim=8, hidden=(16,))
    base = torch.linspace(-1, 1, 8)
    out = widgets.latent_traversal_panel(model, base, {7: 1.2, 3: -0.4})
    assert out["dims"] == [7, 3]
    title = widgets.latent_title(out["z"], out["dims"])
    assert "z[7]=+1.2" in title and "z[3]=-0.4" in title and "z[0]" not in title
    moved = widgets.latent_traversal_panel(model, base, {7: -2.5, 3: -0.4})
    assert widgets.latent_title(moved["z"], moved["dims"]) != title and "z[7]=-2.5" in \
        widgets.latent_title(moved["z"], moved["dims"])
    fig = widgets.draw_latent_image(out)
    assert fig.axes[0].get_title() == title
    plt.close(fig)
    assert widgets.latent_title(out["z"]).startswith("z = (")  # no dims: the first coordinates


def test_latent_traversal_sliders_are_wide_and_stacked():
    import ipywidgets

    from dgsp.models.vae import VAE

    model = VAE(z_dim=8, hidden=(16,))
    box = widgets.latent_traversal(model, torch.zeros(8), dims=[6, 2, 5])
    sliders = box.children[0].children
    assert isinstance(box, ipywidgets.HBox) and isinstance(box.children[0], ipywidgets.VBox)
    assert [s.description for s in sliders] == ["z[6]", "z[2]", "z[5]"]
    assert all(s.layout.width for s in sliders)
    plt.close("all")
    with pytest.raises(ValueError, match="arrange"):
        widgets.live(lambda a: a, lambda r: plt.figure(), arrange="grid", a=ipywidgets.IntSlider())


def test_plot_extent_holds_the_samples_but_ignores_runaways():
    ring = dgsp.data.toy("ring8")
    real, fake = ring.sample(500, seed=0), 1.3 * ring.sample(500, seed=1)
    x0, x1, y0, y1 = widgets.plot_extent(real, fake)
    for pts in (real, fake):
        assert x0 < float(pts[:, 0].min()) and float(pts[:, 0].max()) < x1
        assert y0 < float(pts[:, 1].min()) and float(pts[:, 1].max()) < y1
    runaway = torch.cat([real, torch.tensor([[1e4, -1e4]], device=real.device)])  # toys sample on dgsp.device()
    x0, x1, y0, y1 = widgets.plot_extent(real, runaway)
    assert x1 <= 3 * 2.1 and y0 >= -3 * 2.1  # at most max_scale times the data's box
    assert x0 < float(real[:, 0].min()) and float(real[:, 0].max()) < x1


def test_gan_playground_defaults_match_the_docs():
    import inspect

    params = inspect.signature(widgets.gan_playground).parameters
    for name in ("loss", "lr", "n_critic", "clip", "lam", "decay", "steps", "batch_size", "hidden", "betas"):
        assert params[name].default == widgets.PLAYGROUND[name], name
    assert widgets.PLAYGROUND["loss"] == "nonsaturating" and widgets.PLAYGROUND["decay"]
    controls = widgets.gan_explorer(steps=2).children[0].children
    plt.close("all")
    values = {c.description: c.value for c in controls}
    assert values["loss"] == "nonsaturating" and values["learning rate"] == widgets.PLAYGROUND["lr"]
    assert values["λ (wgan-gp)"] == widgets.PLAYGROUND["lam"] and values["n_critic (k)"] == 1


def test_gan_playground_defaults_converge_on_the_ring():
    """What a student sees first: all 8 modes, most samples within 3 std of a mode (a few seconds)."""
    out = widgets.gan_playground(grid_size=20)
    cov = out["coverage"]
    assert cov["modes_covered"] == 8 and cov["high_quality"] > 0.6, cov
    x0, x1, y0, y1 = out["extent"]
    def inside(pts):
        return ((x0 <= pts[:, 0]) & (pts[:, 0] <= x1) & (y0 <= pts[:, 1]) & (pts[:, 1] <= y1)).float().mean()

    assert inside(out["real"]) == 1 and inside(out["fake"]) > 0.98
    assert len(out["history"]["loss_g"]) == widgets.PLAYGROUND["steps"]
    plt.close(widgets.draw_gan_playground(out))


def test_reconstruction_explorer_builds():
    import ipywidgets

    x, _ = dgsp.data.load("mnist5k", "test", n=20)
    box = widgets.reconstruction_explorer(x[:5], pca(x, 8))
    assert isinstance(box, ipywidgets.VBox)
    plt.close("all")


def test_rescale_stretches_each_image():
    w = torch.stack([torch.linspace(-2, 3, 16), torch.full((16,), 7.0)]).view(2, 1, 4, 4)
    out = viz.rescale(w)
    assert float(out[0].min()) == 0.0 and float(out[0].max()) == 1.0
    assert torch.equal(out[1], torch.zeros(1, 4, 4))  # a constant image stays finite
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        viz.rescale(torch.zeros(4, 4))
