"""Interactive controls for the notebooks.

Each widget is a thin wrapper: a *pure* function computes what to show from the
control values (unit tests call it directly, no browser), and :func:`live` ties
ipywidgets controls to it and redraws a matplotlib figure.
"""
from __future__ import annotations

from typing import Any, Callable

import matplotlib.pyplot as plt
import numpy as np
import torch

from dgsp.metrics import reconstruction_mse


def live(compute: Callable[..., Any], draw: Callable[[Any], plt.Figure], arrange: str = "row", **controls: Any):
    """Build a widget: on every change, ``draw(compute(**values))`` is shown.

    ``controls`` are ipywidgets (e.g. ``IntSlider``) keyed by ``compute``'s
    argument names. ``arrange`` places them: ``"row"`` (one row above the figure),
    ``"column"`` (stacked above it) or ``"side"`` (stacked to the left of it).
    Returns the ``ipywidgets.Box`` to display.
    """
    import ipywidgets as W
    from IPython.display import display

    if arrange not in ("row", "column", "side"):
        raise ValueError(f"arrange must be 'row', 'column' or 'side', got {arrange!r}")
    out = W.Output()

    def update(**values):
        with out:
            out.clear_output(wait=True)
            fig = draw(compute(**values))
            display(fig)
            plt.close(fig)

    box = W.interactive(update, **controls)  # builds the controls and draws once
    inputs = list(box.children[:-1])
    if arrange == "side":
        return W.HBox([W.VBox(inputs), out])
    return W.VBox([W.HBox(inputs) if arrange == "row" else W.VBox(inputs), out])


def _device_of(module: torch.nn.Module, default: torch.device | str = "cpu") -> torch.device:
    """The device of ``module``'s first parameter, or ``default`` for a module without parameters."""
    p = next(module.parameters(), None)
    return torch.device(default) if p is None else p.device


# ----------------------------------------------------------------------------- lecture 1
@torch.no_grad()
def reconstruction_panel(x: torch.Tensor, pca_model, k: int, noise: float,
                         models: dict[str, torch.nn.Module] | None = None, seed: int = 0) -> dict[str, Any]:
    """Corrupt ``x`` with Gaussian noise of std ``noise``; reconstruct it with PCA (first ``k``
    components of ``pca_model``) and with each autoencoder in ``models``.

    ``x``, the PCA and each model may live on any devices: every model runs on its own, and the
    returned rows of images (on the CPU) come with each row's squared error against the *clean* input.
    """
    from dgsp.models.autoencoder import PCA, corrupt

    if not 1 <= k <= len(pca_model.components):
        raise ValueError(f"k must be between 1 and {len(pca_model.components)}, got {k}")
    x = x.detach().cpu()
    g = torch.Generator().manual_seed(seed)
    noisy = corrupt(x, noise, "gaussian", generator=g)
    sub = PCA(pca_model.mean, pca_model.components[:k], pca_model.eigenvalues, pca_model.image_shape)
    pca_rec = sub.reconstruct(noisy.to(pca_model.mean.device)).cpu()
    rows = {"input": x, f"noisy (σ={noise:.2f})": noisy, f"PCA k={k}": pca_rec}
    for name, model in (models or {}).items():  # each model runs on its own device
        rows[name] = model(noisy.to(_device_of(model))).cpu()
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

    Returns the code ``z`` (CPU), the decoded mean image E[x|z] of shape (1, C, H, W) and ``dims``,
    the coordinates that were set (in the order of ``values``), for the title.
    """
    z = z_base.detach().clone().reshape(-1).to(_device_of(model))
    if len(z) != model.z_dim:
        raise ValueError(f"z_base must have {model.z_dim} entries, got {len(z)}")
    dims = [int(d) for d in values]
    for dim, value in zip(dims, values.values()):
        if not 0 <= dim < model.z_dim:
            raise ValueError(f"latent dimension {dim} out of range 0..{model.z_dim - 1}")
        z[dim] = float(value)
    model.eval()
    return {"z": z.cpu(), "image": model.mean_image(z[None]).cpu(), "dims": dims}


def latent_title(z: torch.Tensor, dims: list[int] | None = None, per_line: int = 2) -> str:
    """``"z[7]=+1.2, z[3]=-0.4"``: the coordinates ``dims`` of ``z`` (the ones the sliders move),
    ``per_line`` to a line; without ``dims``, the first four coordinates."""
    if not dims:
        shown = ", ".join(f"{v:+.1f}" for v in z[:4].tolist()) + (" …" if len(z) > 4 else "")
        return f"z = ({shown})"
    parts = [f"z[{d}]={float(z[d]):+.1f}" for d in dims]
    return "\n".join(", ".join(parts[i:i + per_line]) for i in range(0, len(parts), per_line))


def draw_latent_image(result: dict[str, Any]) -> plt.Figure:
    """Show the decoded image of :func:`latent_traversal_panel`, titled with the coordinates it set."""
    fig, ax = plt.subplots(figsize=(2.6, 2.8))
    ax.imshow(result["image"][0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(latent_title(result["z"], result.get("dims")), fontsize=8)
    return fig


def latent_traversal(model, z_base: torch.Tensor | None = None, dims: list[int] | None = None, lim: float = 3.0):
    """Sliders over latent coordinates ``dims`` (default: the first four), decoding live around ``z_base``
    (default 0). The sliders are stacked beside the image, wide enough to drag."""
    import ipywidgets as W

    z_base = torch.zeros(model.z_dim) if z_base is None else z_base.detach().cpu().reshape(-1)
    dims = list(range(min(4, model.z_dim))) if dims is None else [int(d) for d in dims]
    controls = {f"z{d}": W.FloatSlider(value=float(z_base[d]), min=-lim, max=lim, step=0.1, description=f"z[{d}]",
                                       continuous_update=True, layout=W.Layout(width="360px"),
                                       style={"description_width": "initial"}) for d in dims}
    return live(lambda **kw: latent_traversal_panel(model, z_base, {int(k[1:]): v for k, v in kw.items()}),
                draw_latent_image, arrange="side", **controls)


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
# The playground's defaults: the course's toy recipe (gan.toy_recipe: a 2-d latent code, the learning rate held
# for the first half of the run and then decayed to 5% of its start) with Adam's betas (0.5, 0.9) in place of its
# (0.5, 0.999), the non-saturating loss, k = 1 and two hidden layers of 64 units, so that the first run a student
# sees converges on ring8: 8/8 modes with 84-95% of the samples within 3 std of a mode (22 of 24 seeds 8/8, the
# other two 6-7/8) in about 4-5 s on a 2-core CPU. A lr of 3e-3 covers 8/8 less reliably (10 of 12 seeds), 3e-2
# far less (4 of 12 seeds 8/8, the others 1-7/8; 2026-12-04), 1e-3 is too slow for 2,000 steps; without the decay
# the samples never settle. WGAN-GP gets the toy penalty weight lam = 0.1.
PLAYGROUND: dict[str, Any] = {"loss": "nonsaturating", "lr": 1e-2, "n_critic": 1, "clip": 0.01, "lam": 0.1,
                              "decay": True, "steps": 2000, "batch_size": 128, "hidden": 64,
                              "betas": (0.5, 0.9), "final_lr": 0.05}


def plot_extent(real: torch.Tensor, fake: torch.Tensor, margin: float = 0.1, quantile: float = 0.99,
                max_scale: float = 3.0) -> tuple[float, float, float, float]:
    """The box ``(x0, x1, y0, y1)`` to draw 2-D samples in: it holds every ``real`` point and, on each axis,
    the central ``quantile`` of the ``fake`` ones, widened by ``margin`` of its size on every side. It is
    clipped to ``max_scale`` times the real data's box (about its centre), so that a few runaway generated
    points cannot shrink the data to a dot."""
    real, fake = real.detach().float().cpu(), fake.detach().float().cpu()
    lo = torch.minimum(real.min(0).values, fake.quantile(1 - quantile, dim=0))
    hi = torch.maximum(real.max(0).values, fake.quantile(quantile, dim=0))
    lo, hi = lo - margin * (hi - lo), hi + margin * (hi - lo)
    centre, half = (real.max(0).values + real.min(0).values) / 2, (real.max(0).values - real.min(0).values) / 2
    lo, hi = torch.maximum(lo, centre - max_scale * half), torch.minimum(hi, centre + max_scale * half)
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _segments(steps: int, most: int = 10) -> int:
    """The number of epochs (at most ``most``) to split ``steps`` generator updates into, exactly."""
    return max(d for d in range(1, most + 1) if steps % d == 0)


def gan_playground(loss: str = PLAYGROUND["loss"], lr: float = PLAYGROUND["lr"],
                   n_critic: int = PLAYGROUND["n_critic"], clip: float = PLAYGROUND["clip"], toy: str = "ring8",
                   steps: int = PLAYGROUND["steps"], batch_size: int = PLAYGROUND["batch_size"],
                   hidden: int = PLAYGROUND["hidden"], lam: float = PLAYGROUND["lam"],
                   decay: bool = PLAYGROUND["decay"], betas: tuple[float, float] = PLAYGROUND["betas"],
                   grid_size: int = 60, seed: int = 0) -> dict[str, Any]:
    """Train a small 2-D GAN for ``steps`` generator updates and return what to draw.

    ``loss`` is ``minimax``, ``nonsaturating`` (GAN; ``n_critic`` is Goodfellow's k), ``wgan``
    (RMSProp with weight clipping at ``clip``) or ``wgan-gp`` (penalty weight ``lam``). The model comes
    from :func:`dgsp.models.gan.toy_recipe` with two hidden layers of ``hidden`` units, ``batch_size``
    samples per discriminator step and Adam ``betas``; with ``decay`` the learning rate decays over the
    second half of the run to ``PLAYGROUND["final_lr"]`` of its start. The defaults are :data:`PLAYGROUND`.

    Returns real and generated samples, the discriminator's D(x) (GAN) or the critic's f(x) (WGAN) on a
    grid over :func:`plot_extent`, the loss history, the mode coverage and the training time in seconds.
    """
    import time

    from dgsp.core import seed_everything
    from dgsp.data import toy as make_toy
    from dgsp.metrics import mode_coverage
    from dgsp.models.gan import GENERATOR_LOSSES, toy_recipe
    from dgsp.train import fit

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    seed_everything(seed)
    target = make_toy(toy)
    is_gan = loss in GENERATOR_LOSSES
    overrides: dict[str, Any] = {"hidden": (hidden, hidden), "lr": lr, ("k" if is_gan else "n_critic"): n_critic}
    overrides.update({"clip": clip} if loss == "wgan" else {"betas": tuple(betas)})
    if loss == "wgan-gp":
        overrides["lam"] = lam
    epochs, per_step = _segments(steps), batch_size * n_critic
    model, schedule = toy_recipe(loss, gen_steps=steps, n_data=steps // epochs * per_step, m=batch_size,
                                 final_lr=PLAYGROUND["final_lr"] if decay else 1.0, **overrides)
    data = target.sample(steps // epochs * per_step, seed=seed, device="cpu")
    t0 = time.perf_counter()
    fit(model.cpu(), data, **schedule, seed=seed, progress=False)
    seconds = time.perf_counter() - t0
    real = target.sample(1000, seed=seed + 1, device="cpu")
    fake = model.sample(1000).cpu()
    x0, x1, y0, y1 = plot_extent(real, fake)
    xx, yy = torch.meshgrid(torch.linspace(x0, x1, grid_size), torch.linspace(y0, y1, grid_size), indexing="xy")
    with torch.no_grad():
        s = model.score(torch.stack([xx.flatten(), yy.flatten()], 1)).view(grid_size, grid_size)
    history = {k: model.history[k] for k in model.history.keys() if k not in ("epoch", "train_seconds")}
    return {"loss": loss, "real": real, "fake": fake, "xx": xx, "yy": yy, "extent": (x0, x1, y0, y1),
            "surface": torch.sigmoid(s) if is_gan else s, "surface_label": "D(x)" if is_gan else "critic f(x)",
            "history": history, "seconds": seconds,
            "coverage": mode_coverage(fake, target.modes, target.std) if target.modes is not None else None}


def _smooth(values: list[float], window: int) -> np.ndarray:
    """Running mean over ``window`` points (the first ``window - 1`` dropped)."""
    v = np.asarray(values, dtype=float)
    return np.convolve(v, np.ones(window) / window, mode="valid") if len(v) >= window else v


def draw_gan_playground(result: dict[str, Any]) -> plt.Figure:
    """Samples over the discriminator/critic surface (sized by :func:`plot_extent`), and the training curves."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    cs = ax.contourf(result["xx"], result["yy"], result["surface"], levels=20, cmap="coolwarm", alpha=0.8)
    fig.colorbar(cs, ax=ax, label=result["surface_label"])
    ax.scatter(*result["real"].T, s=3, c="k", alpha=0.4, label="data")
    ax.scatter(*result["fake"].T, s=3, c="gold", alpha=0.7, label="generated")
    x0, x1, y0, y1 = result["extent"]
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.legend(loc="best", markerscale=3, fontsize=8)
    fake = result["fake"]
    off = int(((fake[:, 0] < x0) | (fake[:, 0] > x1) | (fake[:, 1] < y0) | (fake[:, 1] > y1)).sum())
    cov = result["coverage"]
    extra = f" | modes {cov['modes_covered']}/{cov['n_modes']}, HQ {cov['high_quality']:.0%}" if cov else ""
    extra += f" | {off} samples off the plot" if off else ""
    ax.set_title(f"{result['loss']}: {result['seconds']:.1f} s{extra}", fontsize=10)
    window = max(1, max((len(v) for v in result["history"].values()), default=0) // 50)
    for name, values in result["history"].items():
        smooth = _smooth(values, window)
        ax2.plot(np.arange(len(smooth)) + len(values) - len(smooth), smooth, label=name, lw=1)
    ax2.set_xlabel("generator step")
    ax2.legend(fontsize=8)
    ax2.set_title(f"training curves (running mean over {window} steps)" if window > 1 else "training curves",
                  fontsize=10)
    fig.tight_layout()
    return fig


def gan_explorer(toy: str = "ring8", steps: int = PLAYGROUND["steps"]):
    """Controls for the loss, learning rate, n_critic, clip value, penalty weight, learning-rate decay and seed,
    starting from :data:`PLAYGROUND`; each change retrains (a few seconds; longer with larger n_critic)."""
    import ipywidgets as W

    wide = {"layout": W.Layout(width="360px"), "style": {"description_width": "initial"}}

    def choice(options: list[float], value: float, description: str) -> Any:
        return W.SelectionSlider(options=options, value=value, description=description, continuous_update=False,
                                 **wide)

    def run(loss: str, lr: float, n_critic: int, clip: float, lam: float, decay: bool, seed: int) -> dict[str, Any]:
        return gan_playground(loss, lr, n_critic, clip, toy=toy, steps=steps, lam=lam, decay=decay, seed=seed)

    return live(run, draw_gan_playground, arrange="column",
                loss=W.Dropdown(options=["minimax", "nonsaturating", "wgan", "wgan-gp"], value=PLAYGROUND["loss"],
                                description="loss", **wide),
                lr=choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], PLAYGROUND["lr"], "learning rate"),
                n_critic=W.IntSlider(value=PLAYGROUND["n_critic"], min=1, max=10, description="n_critic (k)",
                                     continuous_update=False, **wide),
                clip=choice([0.001, 0.003, 0.01, 0.03, 0.1, 0.3], PLAYGROUND["clip"], "clip (wgan)"),
                lam=choice([0.01, 0.1, 1.0, 10.0], PLAYGROUND["lam"], "λ (wgan-gp)"),
                decay=W.Checkbox(value=PLAYGROUND["decay"], description="lr decay in the second half", **wide),
                seed=W.BoundedIntText(value=0, min=0, max=999, description="seed", **wide))


# ----------------------------------------------------------------------------- lecture 4
@torch.no_grad()
def aae_code_panel(runs: dict[tuple[str, str], torch.nn.Module], x: torch.Tensor, labels: torch.Tensor,
                   prior: str, posterior: str, seed: int = 0) -> dict[str, Any]:
    """The 2-D codes of the images ``x`` under the trained AAE ``runs[(prior, posterior)]`` (one seeded draw of
    q(z|x) each: the codes the adversary matched to the prior), with as many seeded draws of its prior and the MMD²
    between the two (:func:`dgsp.metrics.mmd2`, median bandwidth).
    Nothing is trained here: ``runs`` holds models already trained (e.g. by ``dgsp.recipes.mnist_aae``)."""
    from dgsp.metrics import map_batches, mmd2

    if (prior, posterior) not in runs:
        raise ValueError(f"no trained AAE for prior={prior!r}, posterior={posterior!r}; available: {sorted(runs)}")
    model = runs[prior, posterior]
    g = torch.Generator().manual_seed(seed + 1)
    z = map_batches(lambda xb: model.sample_posterior(xb, g), x.to(_device_of(model))).cpu()
    if z.shape[1] != 2:
        raise ValueError(f"the panel draws 2-D codes; this model's code has {z.shape[1]} dimensions")
    draws = model.sample_prior(len(x), torch.Generator().manual_seed(seed)).cpu()
    return {"prior": prior, "posterior": posterior, "codes": z, "labels": labels.cpu(), "prior_draws": draws,
            "mmd2": mmd2(z, draws)}


def draw_aae_code_panel(result: dict[str, Any]) -> plt.Figure:
    """The codes coloured by digit over the prior's draws (grey)."""
    from dgsp.viz import latent_scatter

    fig, ax = plt.subplots(figsize=(5.6, 5))
    latent_scatter(result["codes"], result["labels"], ax=ax, background=result["prior_draws"], s=3,
                   title=f"{result['prior']} prior, {result['posterior']} q(z|x): MMD² {result['mmd2']:.4f}")
    lim = float(np.quantile(result["prior_draws"].abs().numpy(), 0.995)) * 1.6
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    fig.tight_layout()
    return fig


def aae_explorer(runs: dict[tuple[str, str], torch.nn.Module], x: torch.Tensor, labels: torch.Tensor):
    """Two dropdowns, the prior and the posterior, over the trained 2-D AAEs in ``runs``."""
    import ipywidgets as W

    priors = sorted({p for p, _ in runs})
    posteriors = sorted({q for _, q in runs})
    return live(lambda prior, posterior: aae_code_panel(runs, x, labels, prior, posterior), draw_aae_code_panel,
                prior=W.Dropdown(options=priors, value=priors[0], description="prior"),
                posterior=W.Dropdown(options=posteriors, value=posteriors[0], description="q(z|x)"))


# ----------------------------------------------------------------------------- lecture 5
@torch.no_grad()
def interpolation_panel(model, x: torch.Tensor, i: int, j: int, steps: int = 9) -> dict[str, Any]:
    """Walk the straight line in z from E(x_i) to E(x_j) and decode each point: G((1 - t) E(x_i) + t E(x_j)).
    ``model`` has ``encode`` and ``decode`` (a BiGAN, or any row of the lecture-5 table). Returns the two
    images, their reconstructions G(E(x)), the path's codes and its images."""
    from dgsp.models.bigan import interpolate_codes

    if not (0 <= i < len(x) and 0 <= j < len(x)):
        raise ValueError(f"indices must lie in [0, {len(x) - 1}], got i={i}, j={j}")
    ends = x[[i, j]].to(_device_of(model))
    z = model.encode(ends)
    path = interpolate_codes(z[0], z[1], steps)
    return {"i": i, "j": j, "ends": ends.cpu(), "codes": path.cpu(), "images": model.decode(path).cpu(),
            "reconstructions": model.decode(z).cpu()}


def draw_interpolation_panel(result: dict[str, Any]) -> plt.Figure:
    """x_i, then the decoded path from E(x_i) to E(x_j), then x_j, in one row."""
    images = result["images"]
    n = len(images)
    fig, axes = plt.subplots(1, n + 2, figsize=(1.1 * (n + 2), 1.6))
    tiles = [result["ends"][0], *images, result["ends"][1]]
    titles = [f"x[{result['i']}]", *[f"t={t:.2f}" for t in np.linspace(0, 1, n)], f"x[{result['j']}]"]
    for ax, img, title in zip(axes, tiles, titles):
        ax.imshow(img.reshape(img.shape[-2:]).numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    for ax in (axes[0], axes[-1]):
        for side in ax.spines.values():
            side.set_visible(True)
    fig.suptitle("G((1 - t) E(x_i) + t E(x_j)): the ends are the data, the path is the generator", fontsize=9)
    fig.tight_layout()
    return fig


def interpolation_explorer(model, x: torch.Tensor, i: int = 0, j: int = 1, steps: int = 9):
    """Two index boxes (which test digits) and a slider (how many steps) for :func:`interpolation_panel`."""
    import ipywidgets as W

    last = len(x) - 1
    return live(lambda i, j, steps: interpolation_panel(model, x, i, j, steps), draw_interpolation_panel,
                i=W.BoundedIntText(value=i, min=0, max=last, description="x_i index"),
                j=W.BoundedIntText(value=j, min=0, max=last, description="x_j index"),
                steps=W.IntSlider(value=steps, min=3, max=13, description="steps"))


# ----------------------------------------------------------------------------- lecture 6
def noise_panel(models: dict[str, torch.nn.Module], x: torch.Tensor, variance: float, seed: int = 0) -> dict[str, Any]:
    """Corrupt the test digits ``x`` with N(0, σ² I) (the same draw for every model) and reconstruct them with each
    model; returns the clean and noisy images, the reconstructions and each model's normalised BCE against the
    clean images (the paper's Figures 1-2)."""
    from dgsp.models.fisher_ae import noisy_copy, normalised_bce

    if not models:
        raise ValueError("give at least one model, as a dict name -> model")
    if not 0 <= variance <= 4:
        raise ValueError(f"the noise variance must lie in [0, 4], got {variance}")
    x = x.cpu()
    noisy = noisy_copy(x, variance, seed)
    with torch.no_grad():
        recons = {name: m(noisy.to(_device_of(m))).cpu() for name, m in models.items()}
    return {"variance": variance, "clean": x, "noisy": noisy, "reconstructions": recons,
            "bce": {name: normalised_bce(x, r) for name, r in recons.items()}}


def draw_noise_panel(result: dict[str, Any]) -> plt.Figure:
    """Rows: the clean digits, their noisy copies (clipped to [0, 1] for display), then each model's
    reconstruction with its BCE."""
    from dgsp.viz import compare_rows

    names = list(result["reconstructions"])
    rows = [result["clean"], result["noisy"].clamp(0, 1), *result["reconstructions"].values()]
    labels = ["clean", f"σ² = {result['variance']:g}", *[f"{n}\nBCE {result['bce'][n]:.3f}" for n in names]]
    fig = compare_rows(rows, labels, n=len(result["clean"]))
    fig.suptitle("Reconstructions of noisy test digits (BCE against the clean digits, nats per pixel)", fontsize=9)
    return fig


def noise_explorer(models: dict[str, torch.nn.Module], x: torch.Tensor, variance: float = 0.2):
    """A slider over the noise variance σ² for :func:`noise_panel`."""
    import ipywidgets as W

    return live(lambda variance: noise_panel(models, x, variance), draw_noise_panel,
                variance=W.FloatSlider(value=variance, min=0.0, max=1.0, step=0.05, description="σ²"))


# ----------------------------------------------------------------------------- lecture 7: Langevin on an EBM's D
def langevin_panel(model, toy, start: torch.Tensor, steps: int, step_size: float, seed: int = 0) -> dict[str, Any]:
    """Run ``steps`` Langevin steps of size ``step_size`` on the EBM's D from ``start`` (the generator's samples) and
    score both ends by mode coverage on the toy; returns the points, D on a grid and the two coverages."""
    from dgsp.metrics import mode_coverage
    from dgsp.models.ebm_gan import grid_2d
    from dgsp.score import langevin

    if not 0 <= steps <= 5000:
        raise ValueError(f"steps must lie in [0, 5000], got {steps}")
    if not 0 < step_size <= 1:
        raise ValueError(f"the step size must lie in (0, 1], got {step_size}")
    lim = float(toy.modes.abs().max()) + 1.0
    points, _ = grid_2d(lim, 100, device=_device_of(model))
    with torch.no_grad():
        energy = model.log_density(points).reshape(100, 100).T.cpu()
    after = start if steps == 0 else langevin(model.log_density, start, steps, step_size,
                                              generator=torch.Generator().manual_seed(seed))[0]
    return {"lim": lim, "d": energy, "before": start.cpu(), "after": after.cpu(), "steps": steps,
            "step_size": step_size, "coverage_before": mode_coverage(start, toy.modes, toy.std),
            "coverage_after": mode_coverage(after, toy.modes, toy.std)}


def draw_langevin_panel(result: dict[str, Any]) -> plt.Figure:
    """D on the grid with the generator's samples (left) and the Langevin chains' ends (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharex=True, sharey=True)
    lim = result["lim"]
    for ax, key, title in ((axes[0], "before", "generator samples"),
                           (axes[1], "after", f"after {result['steps']} Langevin steps, ε = {result['step_size']:g}")):
        ax.imshow(result["d"], origin="lower", extent=(-lim, lim, -lim, lim), cmap="viridis")
        ax.scatter(*result[key].T, s=2, c="w", alpha=0.6)
        cov = result[f"coverage_{key}"]
        ax.set_title(f"{title}\n{cov['modes_covered']}/{cov['n_modes']} modes, "
                     f"{100 * cov['high_quality']:.0f}% high quality", fontsize=9)
        ax.set_aspect("equal")
    fig.suptitle("Langevin dynamics on the EBM (background: D(x), the log-density up to a constant)", fontsize=10)
    return fig


def langevin_explorer(model, toy, start: torch.Tensor, steps: int = 200, step_size: float = 1e-3):
    """Sliders over the number of Langevin steps and log10 of the step size for :func:`langevin_panel`."""
    import ipywidgets as W

    return live(lambda steps, log_eps: langevin_panel(model, toy, start, steps, 10 ** log_eps),
                draw_langevin_panel,
                steps=W.IntSlider(value=steps, min=0, max=1000, step=50, description="steps"),
                log_eps=W.FloatSlider(value=float(np.log10(step_size)), min=-4, max=-1, step=0.25,
                                      description="log10 ε"))
