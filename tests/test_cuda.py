"""Smoke tests on a CUDA GPU: a training step of each model family, a widget's pure function, and a
checkpoint written on the GPU and loaded on the CPU. Skipped where no GPU exists (CI has none)."""
import pytest
import torch

import dgsp
from dgsp import train, widgets
from dgsp.models import gan
from dgsp.models.autoencoder import Autoencoder, pca
from dgsp.models.vae import VAE

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def _images(n=16):
    return torch.rand(n, 1, 28, 28, device=CUDA)


@pytest.mark.parametrize("build", [
    lambda: Autoencoder(code_dim=4, arch="conv", channels=8),
    lambda: VAE(z_dim=4, hidden=(32,)),
    lambda: gan.GAN(data_shape=(1, 28, 28), arch="dcgan", latent_dim=8, channels=8),
    lambda: gan.GAN(data_shape=(1, 28, 28), arch="dcgan", latent_dim=8, channels=8, gp=10.0),
    lambda: gan.WGANGP(data_shape=(1, 28, 28), arch="dcgan", latent_dim=8, channels=8, n_critic=2),
], ids=["conv-ae", "vae", "gan", "gan-gp", "wgan-gp"])
def test_one_training_step_on_the_gpu(build):
    model = build().to(CUDA)
    metrics = model.training_step((_images(16),))
    assert all(v.device.type == "cuda" for v in metrics.values() if isinstance(v, torch.Tensor))
    assert all(torch.isfinite(torch.as_tensor(v)).item() for v in metrics.values())


def test_fit_on_the_gpu_keeps_metrics_on_the_device_until_logged(monkeypatch):
    copies = []  # every device-to-host copy of logged metrics goes through Tensor.tolist
    real = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: copies.append(self.numel()) or real(self))
    model = VAE(z_dim=4, hidden=(32,)).to(CUDA)
    history = train.fit(model, _images(64), epochs=2, batch_size=16, log_every=3)
    assert len(history["loss"]) == 8 and all(isinstance(v, float) for v in history["loss"])
    # 8 steps x 4 metrics, copied in one block per 3 steps and one at each epoch's end: 4 copies, not 8 or 32
    assert sum(copies) == 8 * 4 and len(copies) == 4, copies


def test_widget_pure_function_on_gpu_data():
    x = _images(8)
    out = widgets.reconstruction_panel(x, pca(x, 4), k=2, noise=0.1,
                                       models={"ae": Autoencoder(code_dim=2, arch="mlp", hidden=(16,)).to(CUDA)})
    assert set(out["mse"]) == {"noisy (σ=0.10)", "PCA k=2", "ae"}


def test_checkpoint_written_on_the_gpu_loads_on_the_cpu(tmp_path):
    model = Autoencoder(code_dim=2, arch="mlp", hidden=(16,)).to(CUDA)
    train.fit(model, _images(32), epochs=1, batch_size=16)
    path = tmp_path / "gpu.pt"
    train.save_checkpoint(path, model, epoch=1, config={}, finished=True)
    cpu = Autoencoder(code_dim=2, arch="mlp", hidden=(16,))
    train.load_checkpoint(path, cpu, restore_rng=True)
    assert cpu.device.type == "cpu"
    for a, b in zip(model.state_dict().values(), cpu.state_dict().values()):
        assert torch.equal(a.cpu(), b)
    assert dgsp.device().type == "cuda"
