import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA

import dgsp
from dgsp.metrics import principal_angles, reconstruction_mse
from dgsp.models.autoencoder import Autoencoder, corrupt, keep_top_k, l1_penalty, pca, reconstruction_loss


def _low_rank(n=2000, d=20, r=3, seed=0):
    """Data near a 3-dimensional subspace of R^20 with well separated variances."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, r, generator=g))
    scores = torch.randn(n, r, generator=g) * torch.tensor([3.0, 2.0, 1.0])
    return scores @ basis.T + 0.05 * torch.randn(n, d, generator=g) + 0.5


def test_pca_matches_scikit_learn():
    x = _low_rank()
    ours = pca(x, 3)
    sk = SkPCA(n_components=3).fit(x.numpy())
    n = len(x)
    # scikit-learn divides by n - 1, we divide by n
    assert np.allclose(ours.eigenvalues[:3].numpy() * n / (n - 1), sk.explained_variance_, rtol=1e-5)
    for ours_pc, sk_pc in zip(ours.components.numpy(), sk.components_):
        assert abs(abs(ours_pc @ sk_pc) - 1) < 1e-6  # equal up to sign
    assert np.allclose(ours.encode(x).abs().numpy(), np.abs(sk.transform(x.numpy())), atol=1e-4)


def test_pca_optimal_mse_is_sum_of_discarded_eigenvalues():
    x = _low_rank()
    for k in (1, 2, 3, 5):
        p = pca(x, k)
        assert np.isclose(reconstruction_mse(x, p.reconstruct(x)), p.optimal_mse(), rtol=1e-4)


def test_pca_images_keep_shape_and_errors():
    x, _ = dgsp.data.load("digits", n=200)
    p = pca(x, 5)
    assert p.reconstruct(x).shape == x.shape and p.encode(x).shape == (200, 5)
    with pytest.raises(ValueError, match="k must be between"):
        pca(x, 0)
    with pytest.raises(ValueError, match="k must be between"):
        pca(x, 65)


def test_linear_autoencoder_finds_the_principal_subspace():
    """Baldi and Hornik: gradient descent on the linear AE's squared error reaches PCA's subspace."""
    dgsp.seed_everything(0)
    x = _low_rank(d=20).view(-1, 1, 4, 5)
    model = Autoencoder(code_dim=3, arch="linear", lr=1e-2, lr_decay=0.95, image_shape=(1, 4, 5))
    dgsp.train.fit(model, x, epochs=40, batch_size=64)
    p = pca(x, 3)
    angles = principal_angles(model.decoder_basis(), p.components.T)
    assert angles.max() < 2.0
    ae = reconstruction_mse(x, model(x).detach())
    # the excess over the optimum is under 0.5% of the total variance
    assert p.optimal_mse() - 1e-4 <= ae < p.optimal_mse() + 0.005 * float(p.eigenvalues.sum())


@pytest.mark.parametrize("arch", ["linear", "mlp", "conv"])
def test_autoencoder_shapes_and_one_step(arch, assert_moved):
    dgsp.seed_everything(0)
    model = Autoencoder(code_dim=4, arch=arch, hidden=(32,), channels=8)
    x = torch.rand(8, 1, 28, 28)
    assert model.encode(x).shape == (8, 4) and model(x).shape == x.shape
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = {k: float(v) for k, v in model.training_step((x,)).items()}
    assert_moved(before, model, "encoder", "decoder")
    assert set(metrics) == {"loss", "recon", "l1"} and all(np.isfinite(list(metrics.values())))


def test_bce_model_outputs_probabilities():
    model = Autoencoder(code_dim=2, arch="mlp", hidden=(16,), loss="bce")
    out = model(torch.rand(4, 1, 28, 28)).detach()
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_autoencoder_errors():
    with pytest.raises(ValueError, match="unknown arch"):
        Autoencoder(arch="transformer")
    with pytest.raises(ValueError, match="unknown loss"):
        Autoencoder(loss="l1")
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 1, 28, 28\)"):
        Autoencoder(code_dim=2, arch="mlp", hidden=(8,)).encode(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="linear autoencoder only"):
        Autoencoder(code_dim=2, arch="mlp", hidden=(8,)).decoder_basis()
    for arch in ("linear", "mlp", "conv"):  # float64 images: a dgsp message, not a matmul error from torch
        with pytest.raises(ValueError, match="float32 weights but got torch.float64 input"):
            Autoencoder(code_dim=2, arch=arch, hidden=(8,), channels=4)(torch.rand(2, 1, 28, 28, dtype=torch.float64))
    with pytest.raises(ValueError, match="float64"):
        dgsp.train.fit(Autoencoder(code_dim=2, arch="mlp", hidden=(8,)), torch.rand(4, 1, 28, 28).double(), epochs=1,
                       batch_size=2)
    with pytest.raises(ValueError, match="expects input of shape"):
        dgsp.train.fit(Autoencoder(code_dim=2, arch="mlp", hidden=(8,)), torch.rand(4, 1, 8, 8), epochs=1, batch_size=2)


def test_sparse_penalty_and_k_sparse_codes():
    z = torch.tensor([[1.0, -3.0, 0.5, 2.0], [0.1, 0.2, 0.3, 0.4]])
    assert float(l1_penalty(z)) == pytest.approx((6.5 + 1.0) / 2)
    kept = keep_top_k(z, 2)
    assert torch.equal(kept, torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.3, 0.4]]))
    with pytest.raises(ValueError, match="k must be between"):
        keep_top_k(z, 5)
    model = Autoencoder(code_dim=16, arch="linear", code_act="relu", k_sparse=3)
    assert int((model.encode(torch.rand(5, 1, 28, 28)) != 0).sum(1).max()) <= 3


def test_l1_weight_reaches_the_loss():
    x = torch.rand(6, 1, 28, 28)
    dgsp.seed_everything(1)
    plain = Autoencoder(code_dim=8, arch="linear", code_act="relu")
    dgsp.seed_everything(1)
    sparse = Autoencoder(code_dim=8, arch="linear", code_act="relu", l1=2.0)
    a, b = plain.loss(x), sparse.loss(x)
    assert torch.isclose(b["loss"], a["recon"] + 2.0 * b["l1"])


def test_corrupt():
    x = torch.full((500, 1, 8, 8), 0.5)
    g = torch.Generator().manual_seed(0)
    noisy = corrupt(x, 0.2, "gaussian", generator=g)
    assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1 and abs(float((noisy - x).std()) - 0.2) < 0.02
    masked = corrupt(x, 0.3, "mask", generator=g)
    assert abs(float((masked == 0).float().mean()) - 0.3) < 0.02
    assert corrupt(x, 0.0) is x
    with pytest.raises(ValueError, match="out of range"):
        corrupt(x, 1.5, "mask")
    with pytest.raises(ValueError, match="unknown noise"):
        corrupt(x, 0.1, "salt")


def test_reconstruction_loss():
    x = torch.rand(3, 1, 2, 2)
    assert float(reconstruction_loss(x, x)) == 0
    assert float(reconstruction_loss(x + 1, x)) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="does not match"):
        reconstruction_loss(x[:, :, :1], x)
