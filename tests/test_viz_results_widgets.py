import json

import matplotlib.pyplot as plt
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
    fig, _ = plt.subplots()
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
    results.record("01_test", {"mse": 1.5, "angle": 2}, dataset="mnist5k")
    results.record("02_test", {"nll": 90.0}, dataset="mnist")
    table = json.loads((tmp_path / "figures" / "results.json").read_text())
    assert table["01_test"]["metrics"] == {"mse": 1.5, "angle": 2.0}
    assert table["01_test"]["mode"] == "full" and table["01_test"]["dataset"] == "mnist5k"
    assert table["01_test"]["device"].startswith(str(dgsp.device()))
    md = (tmp_path / "figures" / "RESULTS.md").read_text()
    assert "## 02_test" in md and "| nll | 90 |" in md and "| mse | 1.5 |" in md
    with pytest.raises(ValueError, match="numbers"):
        results.record("bad", {"x": "high"}, dataset="mnist")


def test_reconstruction_panel_is_pure():
    x, _ = dgsp.data.load("mnist5k", "test", n=20)
    p = pca(x, 10)
    model = Autoencoder(code_dim=4, arch="mlp", hidden=(16,)).eval()
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
