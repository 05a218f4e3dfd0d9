import random
from pathlib import Path

import numpy as np
import pytest
import torch

import dgsp


def test_device_default_and_override(monkeypatch):
    monkeypatch.delenv("DGSP_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert dgsp.device().type == expected
    monkeypatch.setenv("DGSP_DEVICE", "cpu")
    assert dgsp.device() == torch.device("cpu")


def test_device_bad_override(monkeypatch):
    monkeypatch.setenv("DGSP_DEVICE", "tpu")
    with pytest.raises(ValueError, match="DGSP_DEVICE"):
        dgsp.device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("DGSP_DEVICE", "cuda")
        with pytest.raises(ValueError, match="not available"):
            dgsp.device()


def test_seed_everything_is_deterministic():
    dgsp.seed_everything(3)
    a = (random.random(), np.random.rand(), torch.rand(3))
    g = dgsp.seed_everything(3)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    assert torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("value,quick", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_quick_mode_switch(monkeypatch, value, quick):
    monkeypatch.setenv("DGSP_QUICK", value)
    assert dgsp.is_quick() is quick
    assert dgsp.by_mode(full="big", quick="small") == ("small" if quick else "big")


def test_outputs_go_to_temp_in_quick_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("DGSP_HOME", str(tmp_path))
    monkeypatch.setenv("DGSP_QUICK", "1")
    quick_dir = dgsp.output_dir("figures")
    assert tmp_path not in quick_dir.parents
    monkeypatch.setenv("DGSP_QUICK", "0")
    monkeypatch.delenv("DGSP_PUBLISH", raising=False)
    # an interactive full-mode run (make lab) never writes into the committed figures/ ...
    assert dgsp.output_dir("figures") == tmp_path / "build" / "figures"
    assert dgsp.output_dir("checkpoints") == tmp_path / "checkpoints"  # ... but shares the checkpoint cache
    monkeypatch.setenv("DGSP_PUBLISH", "1")  # make course publishes
    assert dgsp.output_dir("figures") == tmp_path / "figures"


def test_quick_mode_folder_is_removed_at_exit(tmp_path):
    import subprocess
    import sys

    code = "import dgsp; print(dgsp.output_dir('figures'))"
    env = {k: v for k, v in __import__("os").environ.items() if k != "DGSP_QUICK_DIR"}
    env.update(DGSP_QUICK="1", DGSP_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    folder = Path(out.stdout.strip())
    assert folder.name == "figures" and not folder.parent.exists()
    # a folder named by DGSP_QUICK_DIR (make test: one per test run) is used by every process and kept
    shared = tmp_path / "shared-quick"
    env["DGSP_QUICK_DIR"] = str(shared)
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert Path(out.stdout.strip()) == shared / "figures" and (shared / "figures").is_dir()


def test_seed_everything_deterministic_flag(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    before = torch.are_deterministic_algorithms_enabled()
    try:
        dgsp.seed_everything(0, deterministic=True)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


def test_project_dir_finds_pyproject(monkeypatch):
    monkeypatch.delenv("DGSP_HOME", raising=False)
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root / "notebooks")
    assert dgsp.project_dir() == root


def test_check_count_accepts_whole_numbers_and_names_the_caller():
    from dgsp.core import check_count

    assert check_count(3, "f(n)") == 3 and check_count(np.int64(2), "f(n)", least=2) == 2
    for bad in (0, -1, 2.5, True, "3", None):
        with pytest.raises(ValueError, match=r"f\(n\) needs a whole number >= 1"):
            check_count(bad, "f(n)")
    with pytest.raises(ValueError, match=">= 2, got 1"):
        check_count(1, "f(n)", least=2)


def _samplers():
    """Every public way the course draws n samples, as (name, draw(n))."""
    from dgsp import divergences as dv
    from dgsp.models import aae, bigan, fisher_ae, gan, vae

    mix = dv.bimodal(dim=2)
    fit = dv.GaussianFit(mean=torch.zeros(2, dtype=torch.float64), cov=torch.eye(2, dtype=torch.float64),
                         direction="forward")
    prior = fisher_ae.FPEPrior(dim=2)
    return {
        "VAE.sample": vae.VAE().sample,
        "GAN.noise": gan.make_model("nonsaturating").noise,
        "GAN.sample": gan.make_model("wgan-gp").sample,
        "AAE.sample": aae.AAE().sample,
        "sample_prior": lambda n: aae.sample_prior("swiss_roll", n),
        "categorical_prior": lambda n: aae.categorical_prior(n, 10),
        "FPEPrior.sample": lambda n: prior.sample(n, steps=1),
        "FPEPrior.sample_exact": prior.sample_exact,
        "toy sample": dgsp.data.toy("ring8").sample,
        "GaussianMixture.sample": mix.sample,
        "GaussianFit.sample": fit.sample,
        "gan_snapshot_codes": dgsp.recipes.gan_snapshot_codes,
        "uniform_latent": lambda n: bigan.uniform_latent(n, 3),
        "bigan.curve": bigan.curve,
        "sample_in_chunks": lambda n: dgsp.metrics.sample_in_chunks(lambda m, generator: torch.zeros(m, 2), n),
    }


@pytest.mark.parametrize("name", list(_samplers()))
def test_sampling_zero_negative_or_fractional_counts_is_a_clear_error(name):
    draw = _samplers()[name]
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="whole number"):
            draw(bad)
    assert len(draw(4)) == 4


def test_cluster_count_and_empty_cluster_error_are_clear_errors():
    from dgsp.models.aae import categorical_prior, cluster_error

    with pytest.raises(ValueError, match=r"categorical_prior\(k\)"):
        categorical_prior(5, 0)
    with pytest.raises(ValueError, match="needs training and test points"):
        cluster_error([], [], [0], [0])


def _image_entry_points():
    """Every public method of the course that reads images, as (name, call(x))."""
    from dgsp.models import aae, autoencoder, bigan, fisher_ae, vae

    clustering = aae.AAE(z_dim=2, hidden=(16,), disc_hidden=(16,), n_classes=4)
    regressor = bigan.LatentRegressor(hidden=(16, 16))
    return {
        "Autoencoder.encode": autoencoder.Autoencoder(code_dim=2, hidden=(16,)).encode,
        "VAE.encode": lambda x: vae.VAE(z_dim=2, hidden=(16,)).encode(x)[0],  # (mu, logvar)
        "AAE.encode": aae.AAE(hidden=(16,), disc_hidden=(16,)).encode,
        "AAE.classify": clustering.classify,
        "FisherAE.encode": fisher_ae.FisherAE(z_dim=2, hidden=(16,)).encode,
        "BiGAN.encode": bigan.BiGAN(hidden=(16, 16)).encode,
        "BiGAN.hidden_features": bigan.BiGAN(hidden=(16, 16)).hidden_features,
        "LatentRegressor.discriminator_features": regressor.discriminator_features,
        "DigitClassifier.features": dgsp.metrics.DigitClassifier().features,
    }


@pytest.mark.parametrize("name", list(_image_entry_points()))
def test_non_finite_images_are_a_clear_error(name):
    call = _image_entry_points()[name]
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert len(call(x)) == 5
        for bad in (float("nan"), float("inf")):
            x[3, 0, 10, 10] = bad
            with pytest.raises(ValueError, match="non-finite values.*1 bad rows, the first is row 3"):
                call(x)


def test_inputs_checked_skips_the_finiteness_test_only_inside_the_block():
    from dgsp.core import inputs_are_checked, inputs_checked
    from dgsp.nets import check_shape

    x = torch.tensor([[1.0, float("nan")]])
    assert not inputs_are_checked()
    with inputs_checked():
        with inputs_checked():
            check_shape(x, (None, 2), "f", finite=True)  # whoever opened the block checked its data
        assert inputs_are_checked()
    assert not inputs_are_checked()
    check_shape(x, (None, 2), "f")  # a shape check alone says nothing about values
    with pytest.raises(ValueError, match="the input given to f has non-finite values"):
        check_shape(x, (None, 2), "f", finite=True)


def test_training_steps_skip_the_test_but_fit_still_checks_its_data(monkeypatch):
    """Inside fit every batch comes from data checked once, so encode does not test batches again
    (on a GPU each test would make the host wait)."""
    from dgsp import nets
    from dgsp.models.autoencoder import Autoencoder

    calls = []
    monkeypatch.setattr(nets, "check_finite_rows", lambda x, who: calls.append(who))
    model = Autoencoder(code_dim=2, hidden=(8,))
    dgsp.train.fit(model, torch.rand(64, 1, 28, 28), epochs=1, batch_size=16, progress=False)
    assert calls == []
    model.encode(torch.rand(3, 1, 28, 28))
    assert len(calls) == 1
    bad = torch.rand(64, 1, 28, 28)
    bad[7, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="row 7"):
        dgsp.train.fit(Autoencoder(code_dim=2, hidden=(8,)), bad, epochs=1, batch_size=16, progress=False)


def test_samplers_refuse_a_generator_that_is_not_a_cpu_generator():
    """Seeded noise is drawn on the CPU and moved (the same samples on every device): a seed passed as an int, or a
    generator on another device (tests/test_cuda.py), is a clear error at every model's sample, not torch's."""
    from dgsp.core import randn_like
    from dgsp.models import aae, bigan, gan
    from dgsp.models.ebm_gan import EBMGAN
    from dgsp.models.fisher_ae import FisherAE
    from dgsp.models.vae import VAE

    samplers = {
        "VAE": VAE(z_dim=2, hidden=(8,)).sample,
        "GAN": gan.GAN(data_shape=(2,), latent_dim=2, hidden=(8,)).sample,
        "EBM-GAN": EBMGAN(latent_dim=2, hidden=(8,)).sample,
        "BiGAN": bigan.BiGAN(latent_dim=3, hidden=(8,)).sample,
        "AAE": aae.AAE(z_dim=2, hidden=(8,), disc_hidden=(8,)).sample,
        "AAE with labels": aae.AAE(z_dim=2, hidden=(8,), disc_hidden=(8,), n_classes=10).sample,
        "Fisher AE (exact prior)": lambda n, generator: FisherAE(z_dim=2, hidden=(8,)).sample(
            n, generator=generator, exact=True),
        "Fisher AE (SVGD)": lambda n, generator: FisherAE(z_dim=2, hidden=(8,)).sample(n, generator=generator, steps=1),
        "randn_like": lambda n, generator: randn_like(torch.empty(n, 2), generator),
    }
    for name, sample in samplers.items():
        with pytest.raises(ValueError, match=r"pass a CPU generator, torch.Generator\(\).manual_seed\(seed\); got 7"):
            sample(3, generator=7)
        assert len(sample(3, generator=torch.Generator().manual_seed(0))) == 3, name


def test_full_float32_turns_tensorfloat32_off_inside_and_restores_it():
    from dgsp.core import full_float32

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    with pytest.raises(RuntimeError, match="inside"):
        with full_float32():
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
            raise RuntimeError("inside")
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before
