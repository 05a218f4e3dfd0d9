"""Interactive controls for the notebooks.

Each widget is a thin wrapper: a *pure* function computes what to show from the
control values (unit tests call it directly, no browser), and :func:`live` ties
ipywidgets controls to it and redraws a matplotlib figure.
"""
from __future__ import annotations

from typing import Any, Callable

import matplotlib.pyplot as plt
import torch

from dgsp.metrics import reconstruction_mse


def live(compute: Callable[..., Any], draw: Callable[[Any], plt.Figure], **controls: Any):
    """Build a widget: on every change, ``draw(compute(**values))`` is shown.

    ``controls`` are ipywidgets (e.g. ``IntSlider``) keyed by ``compute``'s
    argument names. Returns the ``ipywidgets.VBox`` to display.
    """
    import ipywidgets as W
    from IPython.display import display

    out = W.Output()

    def update(**values):
        with out:
            out.clear_output(wait=True)
            fig = draw(compute(**values))
            display(fig)
            plt.close(fig)

    box = W.interactive(update, **controls)
    update(**{k: c.value for k, c in controls.items()})
    return W.VBox([W.HBox(list(box.children[:-1])), out])


# ----------------------------------------------------------------------------- lecture 1
@torch.no_grad()
def reconstruction_panel(x: torch.Tensor, pca_model, k: int, noise: float,
                         models: dict[str, torch.nn.Module] | None = None, seed: int = 0) -> dict[str, Any]:
    """Corrupt ``x`` with Gaussian noise of std ``noise``; reconstruct it with PCA (first ``k``
    components of ``pca_model``) and with each autoencoder in ``models``.

    Returns rows of images and each row's squared error against the *clean* input.
    """
    from dgsp.models.autoencoder import PCA, corrupt

    if not 1 <= k <= len(pca_model.components):
        raise ValueError(f"k must be between 1 and {len(pca_model.components)}, got {k}")
    g = torch.Generator().manual_seed(seed)
    noisy = corrupt(x, noise, "gaussian", generator=g)
    sub = PCA(pca_model.mean, pca_model.components[:k], pca_model.eigenvalues, pca_model.image_shape)
    rows = {"input": x, f"noisy (σ={noise:.2f})": noisy, f"PCA k={k}": sub.reconstruct(noisy).clamp(0, 1)}
    for name, model in (models or {}).items():
        rows[name] = model(noisy)
    mse = {name: reconstruction_mse(x, img) for name, img in rows.items() if name != "input"}
    return {"rows": rows, "mse": mse}


def draw_reconstruction_panel(result: dict[str, Any]) -> plt.Figure:
    """Draw :func:`reconstruction_panel`'s rows with their errors in the labels."""
    from dgsp.viz import compare_rows

    labels = [name if name == "input" else f"{name}\nMSE {result['mse'][name]:.1f}" for name in result["rows"]]
    return compare_rows(list(result["rows"].values()), labels, n=min(10, len(result["rows"]["input"])))


def reconstruction_explorer(x: torch.Tensor, pca_model, models: dict[str, torch.nn.Module] | None = None):
    """Sliders for the PCA rank k and the noise level, redrawing reconstructions and errors."""
    import ipywidgets as W

    return live(lambda k, noise: reconstruction_panel(x, pca_model, k, noise, models),
                draw_reconstruction_panel,
                k=W.IntSlider(value=min(16, len(pca_model.components)), min=1, max=len(pca_model.components),
                              description="PCA k", continuous_update=False),
                noise=W.FloatSlider(value=0.3, min=0.0, max=0.8, step=0.05, description="noise σ",
                                    continuous_update=False))
