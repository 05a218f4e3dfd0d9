"""Benchmark for lecture 3 (GAN / WGAN / WGAN-GP).

(a) 2-D toys: mode coverage (VEEGAN protocol, dgsp.metrics.mode_coverage) of every loss on ring8 and
    grid25. Target: WGAN-GP covers 8/8 ring modes and >= 20/25 grid modes with >= 80% high-quality samples.
(b) MNIST: Fréchet distance in dgsp's classifier feature space for the non-saturating GAN (DCGAN's batch-norm
    discriminator, and the course's recipe gan.MNIST_GAN with a gradient-penalised one), WGAN-GP and the
    lecture-2 VAE (mean images and Bernoulli draws), beside the real-vs-real floor. Targets, for the course's
    recipes (NS-GAN + GP, WGAN-GP): both below the VAE's better score; no class below 5% in the generated
    class histograms.
(c) Throughput: dgsp's GAN step (device tensors, dgsp.train.fit) against the same networks trained with
    a reference-style loop (TensorDataset + DataLoader), same batch size; ratio from one run.

Full run:   python benchmarks/bench_gan.py   (about 25 min for the toys and 60 min for MNIST on one CPU core;
            --skip toys|mnist|throughput runs parts alone, each recorded in its own section)
Smoke test: python benchmarks/bench_gan.py --quick-check
"""
from __future__ import annotations

import os
import argparse
import time

from common import verdict  # first: a quick check sets quick mode before dgsp is imported

import numpy as np
import torch

import dgsp
from dgsp import metrics
from dgsp.models import gan
from dgsp.train import fit

os.environ.setdefault("DGSP_PUBLISH", "1")  # a benchmark records into the committed figures/results.json


def toy_benchmark(args) -> dict[str, float]:
    out: dict[str, float] = {}
    for toy_name in args.toys:
        target = dgsp.data.toy(toy_name)
        data = target.sample(args.toy_n, seed=0, device=dgsp.device())
        for loss in args.losses:
            dgsp.seed_everything(args.seed)
            overrides = {} if args.toy_hidden is None else {"hidden": tuple(args.toy_hidden)}
            model, schedule = gan.toy_recipe(loss, gen_steps=args.toy_steps, n_data=args.toy_n, **overrides)
            model.to(dgsp.device())
            t0 = time.perf_counter()
            fit(model, data, **schedule, seed=args.seed, progress=False,
                checkpoint=None if args.quick_check else f"bench_03_{toy_name}_{loss}")
            cov = metrics.mode_coverage(model.sample(2500), target.modes, target.std)
            print(f"  {toy_name:7s} {loss:14s} modes {cov['modes_covered']:2d}/{cov['n_modes']:2d}  "
                  f"high-quality {cov['high_quality']:6.1%}  ({len(model.history['loss_g'])} generator steps, "
                  f"{time.perf_counter() - t0:.0f} s)", flush=True)
            out[f"{toy_name}_{loss}_modes"] = cov["modes_covered"]
            out[f"{toy_name}_{loss}_high_quality"] = cov["high_quality"]
    if "wgan-gp" in args.losses and set(args.toys) >= {"ring8", "grid25"}:
        ok = (out["ring8_wgan-gp_modes"] == 8 and out["grid25_wgan-gp_modes"] >= 20
              and min(out["ring8_wgan-gp_high_quality"], out["grid25_wgan-gp_high_quality"]) >= 0.8)
        print(f"  target (WGAN-GP: 8/8 ring, >= 20/25 grid, >= 80% high quality): {verdict(ok)}")
        out["toy_target_met"] = float(ok)
    return out


def mnist_benchmark(args) -> tuple[dict[str, float], str]:
    dataset = dgsp.data.resolve("mnist")
    x_train, _ = dgsp.recipes.course_data("train", dataset)
    x_test, _ = dgsp.data.load(dataset, "test", n=args.eval_n if args.eval_n < 10_000 else None)
    clf = metrics.mnist_classifier(dataset)
    test_feats = metrics.classifier_features(clf, x_test)
    n_eval = len(x_test)
    floor = metrics.frechet_distance(test_feats, metrics.classifier_features(clf, x_train[:n_eval]))
    out = {"classifier_test_accuracy": clf.test_accuracy, "frechet_floor_real": floor}
    print(f"  classifier accuracy {clf.test_accuracy:.3f}; Fréchet floor (real test vs real train) {floor:.2f}")
    # the course's recipes (dgsp.recipes.mnist_gan), trained longer than in the notebook: gan_ns is DCGAN's
    # plain batch-norm discriminator, reported but not held to the targets
    epochs = {"gan_ns": args.gan_epochs, "gan_ns_gp": args.gan_epochs, "wgangp": args.wgangp_epochs}
    samplers = {}
    for name in dgsp.recipes.MNIST_GANS:
        t0 = time.perf_counter()
        model = dgsp.recipes.mnist_gan(name, dataset, epochs=epochs[name])
        samplers[name] = model.sample
        print(f"  trained (or loaded) {name} in {time.perf_counter() - t0:.0f} s "
              f"({len(model.history['loss_g'])} generator steps)")
    if not args.no_vae:
        vae = dgsp.recipes.mnist_vae(dataset, epochs=args.vae_epochs)  # notebook 02's run when it is cached
        samplers["vae_mean"] = lambda n, generator=None: vae.sample(n, generator=generator, mean=True)  # E[x | z]
        samplers["vae_draw"] = lambda n, generator=None: vae.sample(n, generator=generator, mean=False)  # Bernoulli
    for name, sample in samplers.items():
        fake = metrics.sample_in_chunks(sample, n_eval)
        fd = metrics.frechet_distance(metrics.classifier_features(clf, fake), test_feats)
        hist = metrics.class_histogram(clf, fake)
        out[f"frechet_{name}"] = fd
        out[f"min_class_share_{name}"] = float(hist.min())
        print(f"  {name:9s} Fréchet {fd:8.2f}  class shares {np.round(hist * 100).astype(int).tolist()} %  "
              f"(min {hist.min():.1%}{'' if hist.min() >= 0.05 else ' < 5%'})")
    # the targets hold the course's recipes (gan.MNIST_GAN, gan.MNIST_WGANGP); plain DCGAN is reported beside them
    ok_hist = min(out["min_class_share_gan_ns_gp"], out["min_class_share_wgangp"]) >= 0.05
    print(f"  target (no generated class below 5%, NS-GAN + GP and WGAN-GP): {verdict(ok_hist)}"
          f"; plain DCGAN NS-GAN: {'met' if out['min_class_share_gan_ns'] >= 0.05 else 'not met'}")
    out["class_target_met"] = float(ok_hist)
    if not args.no_vae:
        vae_best = min(out["frechet_vae_mean"], out["frechet_vae_draw"])
        ok_fd = max(out["frechet_gan_ns_gp"], out["frechet_wgangp"]) < vae_best
        print(f"  target (NS-GAN + GP and WGAN-GP Fréchet below the VAE's best, {vae_best:.2f}): "
              f"{verdict(ok_fd)}; plain DCGAN NS-GAN: "
              f"{'below' if out['frechet_gan_ns'] < vae_best else 'not below'}")
        out["frechet_target_met"] = float(ok_fd)
    return out, dataset


def reference_loop_rate(gen, disc, x_cpu: torch.Tensor, batch: int, steps: int, fresh_noise: bool = False) -> float:
    """A DCGAN loop as common PyTorch reference scripts write it: TensorDataset + DataLoader, BCE losses.

    Those scripts reuse the discriminator's fake batch for the generator step; ``fresh_noise=True``
    draws new codes for it, as Goodfellow et al.'s Algorithm 1 (and dgsp's ``GAN``) do, so that only
    the data pipeline and loop differ."""
    from torch.utils.data import DataLoader, TensorDataset

    dev = dgsp.device()
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = DataLoader(TensorDataset(x_cpu), batch_size=batch, shuffle=True, drop_last=True)
    criterion = torch.nn.BCEWithLogitsLoss()
    done, t0 = 0, None
    while done < steps + 5:
        for (real,) in loader:
            if done == 5:
                t0 = time.perf_counter()  # after a short warm-up
            real = real.to(dev)
            ones = torch.ones(len(real), 1, device=dev)
            zeros = torch.zeros(len(real), 1, device=dev)
            fake = gen(torch.randn(len(real), 64, device=dev))
            opt_d.zero_grad()
            loss_d = criterion(disc(real), ones) + criterion(disc(fake.detach()), zeros)
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            if fresh_noise:
                fake = gen(torch.randn(len(real), 64, device=dev))
            loss_g = criterion(disc(fake), ones)
            loss_g.backward()
            opt_g.step()
            loss_d.item(), loss_g.item()
            done += 1
            if done >= steps + 5:
                break
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def throughput_benchmark(args) -> dict[str, float]:
    x, _ = dgsp.data.load("mnist", "train", n=max(args.throughput_steps + 10, 20) * 64)
    dgsp.seed_everything(0)
    model = gan.GAN(data_shape=(1, 28, 28), arch="dcgan", latent_dim=64, channels=args.channels).to(dgsp.device())
    fit(model, x[: 5 * 64], epochs=1, batch_size=64, progress=False)  # warm-up
    t0 = time.perf_counter()
    fit(model, x[: args.throughput_steps * 64], epochs=1, batch_size=64, progress=False)
    if dgsp.device().type == "cuda":
        torch.cuda.synchronize()
    dgsp_rate = args.throughput_steps / (time.perf_counter() - t0)
    dgsp.seed_everything(0)
    ref = gan.GAN(data_shape=(1, 28, 28), arch="dcgan", latent_dim=64, channels=args.channels).to(dgsp.device())
    ref_rate = reference_loop_rate(ref.generator, ref.discriminator, x.cpu(), 64, args.throughput_steps)
    dgsp.seed_everything(0)
    same = gan.GAN(data_shape=(1, 28, 28), arch="dcgan", latent_dim=64, channels=args.channels).to(dgsp.device())
    same_rate = reference_loop_rate(same.generator, same.discriminator, x.cpu(), 64, args.throughput_steps,
                                    fresh_noise=True)
    print(f"  dgsp GAN step {dgsp_rate:.1f} steps/s | DataLoader reference loop {ref_rate:.1f} steps/s "
          f"(ratio {dgsp_rate / ref_rate:.2f}; the reference reuses its fake batch for the generator step) | "
          f"same algorithm with a DataLoader {same_rate:.1f} steps/s (ratio {dgsp_rate / same_rate:.2f})")
    return {"throughput_dgsp_steps_per_s": dgsp_rate, "throughput_reference_steps_per_s": ref_rate,
            "throughput_ratio": dgsp_rate / ref_rate, "throughput_same_algorithm_steps_per_s": same_rate,
            "throughput_ratio_same_algorithm": dgsp_rate / same_rate}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--toys", nargs="+", default=["ring8", "grid25"])
    p.add_argument("--losses", nargs="+", default=list(gan.LOSSES), choices=gan.LOSSES)
    p.add_argument("--toy-steps", type=int, default=8_000, help="generator steps per toy run")
    p.add_argument("--toy-n", type=int, default=100_000, help="toy training samples")
    p.add_argument("--toy-hidden", type=int, nargs="+", default=None,
                   help="hidden widths (default: gan.toy_recipe's three layers of 128)")
    p.add_argument("--eval-n", type=int, default=10_000, help="digits for Fréchet distances")
    p.add_argument("--gan-epochs", type=int, default=10)
    p.add_argument("--wgangp-epochs", type=int, default=20)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--vae-epochs", type=int, default=20, help="the lecture-2 VAE's epochs (notebook 02: 20)")
    p.add_argument("--no-vae", action="store_true")
    p.add_argument("--throughput-steps", type=int, default=200)
    p.add_argument("--skip", nargs="*", default=[], choices=["toys", "mnist", "throughput"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick-check", action="store_true", help="tiny settings: checks that everything runs")
    args = p.parse_args()
    if args.quick_check:  # quick mode (set by common): the recipes' small data, a temp folder for checkpoints
        args.toy_steps, args.toy_n, args.toy_hidden = 30, 4000, [32, 32]
        args.eval_n = 500
        args.gan_epochs, args.wgangp_epochs, args.vae_epochs, args.throughput_steps = 1, 1, 1, 10
    print(f"device {dgsp.device()} | torch threads {torch.get_num_threads()}")
    quick = "quick check (tiny settings); " if args.quick_check else ""
    if "toys" not in args.skip:  # each part is recorded under its own section, so parts can be rerun alone
        print("(a) mode coverage on 2-D toys")
        toys = toy_benchmark(args)
        dgsp.results.record("bench_03_gan_toys", toys, dataset="+".join(args.toys),
                            notes=f"{quick}gan.toy_recipe, {args.toy_steps} generator steps, {args.toy_n} points, "
                                  f"seed {args.seed}")
    if "mnist" not in args.skip:
        print("(b) MNIST Fréchet distances and class histograms")
        mnist_out, dataset = mnist_benchmark(args)
        dgsp.results.record("bench_03_gan_mnist", mnist_out, dataset=dataset,
                            notes=f"{quick}GAN {args.gan_epochs} epochs, WGAN-GP {args.wgangp_epochs} epochs, "
                                  f"{args.eval_n} samples per score")
    if "throughput" not in args.skip:
        print("(c) throughput")
        dgsp.results.record("bench_03_gan_throughput", throughput_benchmark(args),
                            dataset=dgsp.data.resolve("mnist"), notes=f"{quick}{args.throughput_steps} steps, batch 64")

if __name__ == "__main__":
    main()
