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

    box = W.interactive(update, **controls)  # builds the controls and draws once
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
    rows = {"input": x, f"noisy (σ={noise:.2f})": noisy, f"PCA k={k}": sub.reconstruct(noisy)}
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


# ---- lecture 2: VAE latent traversal and the β trade-off
@torch.no_grad()
def latent_traversal_panel(model, z_base: torch.Tensor, values: dict[int, float]) -> dict[str, Any]:
    """Set latent coordinates ``values`` (dim -> value) in a copy of ``z_base`` (z_dim,) and decode.

    Returns the code and the decoded mean image E[x|z] of shape (1, C, H, W).
    """
    z = z_base.detach().clone().reshape(-1).to(model.device)
    if len(z) != model.z_dim:
        raise ValueError(f"z_base must have {model.z_dim} entries, got {len(z)}")
    for dim, value in values.items():
        if not 0 <= int(dim) < model.z_dim:
            raise ValueError(f"latent dimension {dim} out of range 0..{model.z_dim - 1}")
        z[int(dim)] = float(value)
    model.eval()
    return {"z": z.cpu(), "image": model.mean_image(z[None]).cpu()}


def draw_latent_image(result: dict[str, Any]) -> plt.Figure:
    """Show the decoded image of :func:`latent_traversal_panel` with its code in the title."""
    fig, ax = plt.subplots(figsize=(2.6, 2.8))
    ax.imshow(result["image"][0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    shown = ", ".join(f"{v:+.1f}" for v in result["z"][:4].tolist()) + (" …" if len(result["z"]) > 4 else "")
    ax.set_title(f"z = ({shown})", fontsize=8)
    return fig


def latent_traversal(model, z_base: torch.Tensor | None = None, dims: list[int] | None = None, lim: float = 3.0):
    """Sliders over latent coordinates ``dims`` (default: the first four), decoding live around ``z_base`` (default 0)."""
    import ipywidgets as W

    z_base = torch.zeros(model.z_dim) if z_base is None else z_base.detach().cpu().reshape(-1)
    dims = list(range(min(4, model.z_dim))) if dims is None else list(dims)
    controls = {f"z{d}": W.FloatSlider(value=float(z_base[d]), min=-lim, max=lim, step=0.1, description=f"z[{d}]",
                                       continuous_update=True) for d in dims}
    return live(lambda **kw: latent_traversal_panel(model, z_base, {int(k[1:]): v for k, v in kw.items()}),
                draw_latent_image, **controls)


def beta_panel(runs: dict[float, dict[str, Any]], beta: float) -> dict[str, Any]:
    """Select the precomputed run for ``beta`` (no training, no network call: instant).

    ``runs`` maps β to a summary from :func:`dgsp.models.vae.run_summary` (rate, distortion,
    inputs, reconstructions, samples). Returns the selected run and the whole rate-distortion curve.
    """
    if not runs:
        raise ValueError("no runs given")
    if beta not in runs:
        raise ValueError(f"no precomputed run for beta={beta}; available: {sorted(runs)}")
    betas = sorted(runs)
    curve = {"beta": betas, "rate": [runs[b]["rate"] for b in betas],
             "distortion": [runs[b]["distortion"] for b in betas]}
    return {"beta": beta, "run": runs[beta], "curve": curve}


def draw_beta_panel(result: dict[str, Any]) -> plt.Figure:
    """Rate-distortion curve with the chosen β highlighted, next to its reconstructions and samples."""
    from dgsp.viz import image_grid

    run, curve = result["run"], result["curve"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    axes[0].plot(curve["rate"], curve["distortion"], "o-", color="0.5")
    for b, r, d in zip(curve["beta"], curve["rate"], curve["distortion"]):
        axes[0].annotate(f"β={b:g}", (r, d), textcoords="offset points", xytext=(4, 4), fontsize=7)
    axes[0].plot([run["rate"]], [run["distortion"]], "o", color="crimson", ms=10)
    axes[0].set_xlabel("rate  KL(q(z|x)||p(z))  [nats]")
    axes[0].set_ylabel("distortion  −E log p(x|z)  [nats]")
    axes[0].set_title(f"β = {result['beta']:g}: R = {run['rate']:.1f}, D = {run['distortion']:.1f}")
    pairs = torch.cat([run["inputs"][:8], run["recons"][:8]])
    image_grid(pairs, nrow=8, ax=axes[1], title="inputs / reconstructions")
    image_grid(run["samples"][:16], nrow=8, ax=axes[2], title="samples from the prior")
    fig.tight_layout()
    return fig


def beta_explorer(runs: dict[float, dict[str, Any]]):
    """A slider over the precomputed β values showing the rate-distortion trade-off."""
    import ipywidgets as W

    betas = sorted(runs)
    default = 1.0 if 1.0 in runs else betas[len(betas) // 2]
    return live(lambda beta: beta_panel(runs, beta), draw_beta_panel,
                beta=W.SelectionSlider(options=betas, value=default, description="β", continuous_update=False))


# ----------------------------------------------------------------------------- lecture 3
def gan_playground(loss: str = "wgan-gp", lr: float = 1e-3, n_critic: int = 5, clip: float = 0.01,
                   toy: str = "ring8", steps: int = 300, batch_size: int = 128, hidden: int = 64,
                   grid_size: int = 60, seed: int = 0) -> dict[str, Any]:
    """Train a small 2-D GAN for ``steps`` generator updates and return what to draw.

    ``loss`` is ``minimax``, ``nonsaturating`` (GAN; ``n_critic`` is Goodfellow's k), ``wgan``
    (RMSProp with weight clipping at ``clip``) or ``wgan-gp``. Returns real and generated samples,
    the discriminator's D(x) (GAN) or the critic's f(x) (WGAN) on a grid, the loss history, the
    mode coverage and the wall time in seconds.
    """
    import time

    from dgsp.core import seed_everything
    from dgsp.data import toy as make_toy
    from dgsp.metrics import mode_coverage
    from dgsp.models.gan import GENERATOR_LOSSES, make_model
    from dgsp.train import fit

    seed_everything(seed)
    target = make_toy(toy)
    kwargs: dict[str, Any] = {"hidden": (hidden, hidden), "lr": lr, "latent_dim": 2}
    kwargs.update({"k": n_critic} if loss in GENERATOR_LOSSES else {"n_critic": n_critic})
    if loss == "wgan":
        kwargs["clip"] = clip
    model = make_model(loss, **kwargs).cpu()
    per_step = batch_size * n_critic
    data = target.sample(steps * per_step, seed=seed, device="cpu")
    t0 = time.perf_counter()
    fit(model, data, epochs=1, batch_size=per_step, seed=seed, progress=False)
    seconds = time.perf_counter() - t0
    real = target.sample(1000, seed=seed + 1, device="cpu")
    fake = model.sample(1000).cpu()
    lim = float(target.modes.abs().max()) * 1.5 if target.modes is not None else 3.0
    ticks = torch.linspace(-lim, lim, grid_size)
    xx, yy = torch.meshgrid(ticks, ticks, indexing="xy")
    with torch.no_grad():
        s = model.score(torch.stack([xx.flatten(), yy.flatten()], 1)).view(grid_size, grid_size)
    is_gan = loss in GENERATOR_LOSSES
    history = {k: model.history[k] for k in model.history.keys() if k not in ("epoch", "time")}
    return {"loss": loss, "real": real, "fake": fake, "xx": xx, "yy": yy,
            "surface": torch.sigmoid(s) if is_gan else s, "surface_label": "D(x)" if is_gan else "critic f(x)",
            "history": history, "seconds": seconds,
            "coverage": mode_coverage(fake, target.modes, target.std) if target.modes is not None else None}


def draw_gan_playground(result: dict[str, Any]) -> plt.Figure:
    """Samples over the discriminator/critic surface, and the training curves."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    cs = ax.contourf(result["xx"], result["yy"], result["surface"], levels=20, cmap="coolwarm", alpha=0.8)
    fig.colorbar(cs, ax=ax, label=result["surface_label"])
    ax.scatter(*result["real"].T, s=3, c="k", alpha=0.4, label="data")
    ax.scatter(*result["fake"].T, s=3, c="gold", alpha=0.7, label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=3, fontsize=8)
    cov = result["coverage"]
    extra = f" | modes {cov['modes_covered']}/{cov['n_modes']}, HQ {cov['high_quality']:.0%}" if cov else ""
    ax.set_title(f"{result['loss']}: {result['seconds']:.1f} s{extra}", fontsize=10)
    for name, values in result["history"].items():
        ax2.plot(values, label=name, lw=1)
    ax2.set_xlabel("generator step")
    ax2.legend(fontsize=8)
    ax2.set_title("training curves", fontsize=10)
    fig.tight_layout()
    return fig


def gan_explorer(toy: str = "ring8", steps: int = 300):
    """Controls for the loss, learning rate, n_critic and clip value; each change retrains (a few seconds)."""
    import ipywidgets as W

    return live(lambda loss, lr, n_critic, clip: gan_playground(loss, lr, n_critic, clip, toy=toy, steps=steps),
                draw_gan_playground,
                loss=W.Dropdown(options=["minimax", "nonsaturating", "wgan", "wgan-gp"], value="wgan-gp",
                                description="loss"),
                lr=W.FloatLogSlider(value=1e-3, base=10, min=-5, max=-2, step=0.25, description="lr",
                                    continuous_update=False),
                n_critic=W.IntSlider(value=5, min=1, max=10, description="n_critic", continuous_update=False),
                clip=W.FloatLogSlider(value=0.01, base=10, min=-3, max=0, step=0.25, description="clip",
                                      continuous_update=False))
