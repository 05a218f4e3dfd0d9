"""Benchmark for lecture 5 (BiGAN), full MNIST, targets from the lecture-5 issue.

(a) Table 1 of Donahue et al. (2017), every row measured here with one protocol: 1-nearest-neighbour test accuracy
    on permutation-invariant MNIST, the 60,000 training features as the memory and all 10,000 test images as queries,
    Euclidean and cosine. Rows: BiGAN; D (the penultimate layer of the LR run's GAN discriminator); LR; JLR;
    AE l2; AE l1; and two baselines, raw pixels and the same encoder with random weights. Each encoder is read at its
    last hidden layer (1024-d), the layer behind the paper's numbers (the authors' code logs it as NNC_e-); each row
    is printed beside the paper's number. A second table reads the encoders at their 50-d output E(x) (recorded as
    nn1_<row>_code_<distance>). Target: BiGAN (Euclidean) >= 97.4% (the paper's 97.39) and above raw pixels.
(b) Inversion (Thm. 2) on the test images: median ||G(E(x)) - x||^2 below the median ||G(E(x')) - x||^2 for a random
    other test image x', and the per-dimension correlation of E(G(z)) with z.
(c) Time: the BiGAN trains within 60 min on the 2-core CPU, the other rows within 30 min together.

The runs are the course's recipes (dgsp.recipes.mnist_bigan, mnist_latent_regressor, mnist_table_autoencoder), so the
notebook loads the same checkpoints. Training times come from each run's history (a loaded run reports the time it
took to train).

Full run:   python benchmarks/bench_bigan.py
Smoke test: python benchmarks/bench_bigan.py --quick-check   (quick mode, embedded subset, nothing recorded)
"""
from __future__ import annotations

import time

from common import course_splits, parse_args, verdict

TARGET_BIGAN = 97.4
BUDGET_BIGAN_S, BUDGET_OTHERS_S = 60 * 60, 30 * 60


def main() -> None:
    args = parse_args(__doc__)

    import dgsp
    from dgsp import metrics, recipes
    from dgsp.models import bigan

    dataset, x_train, y_train, x_test, y_test = course_splits()
    runs = {"bigan": recipes.mnist_bigan(dataset),
            "lr": recipes.mnist_latent_regressor(False, dataset),
            "jlr": recipes.mnist_latent_regressor(True, dataset),
            "ae_l2": recipes.mnist_table_autoencoder("l2", dataset),
            "ae_l1": recipes.mnist_table_autoencoder("l1", dataset)}
    seconds = {name: model.history.training_seconds() for name, model in runs.items()}
    out: dict[str, float] = {}
    lines: list[str] = []
    for layer, suffix, title in (("hidden", "", "encoders at their last hidden layer (the paper's protocol)"),
                                 ("code", "_code", "encoders at their output E(x)")):
        features = bigan.table_features(runs["bigan"], runs["lr"], runs["jlr"], runs["ae_l2"], runs["ae_l1"], layer)
        t0 = time.perf_counter()
        table = bigan.one_nn_table(features, x_train, y_train, x_test, y_test)
        print(f"\n  {title}: 1-NN test accuracy, % ({time.perf_counter() - t0:.0f} s)")
        print(f"  {'row':9s} {'euclidean':>9s} {'cosine':>7s} {'paper':>6s}")
        for name, row in table.items():
            key = bigan.TABLE_KEYS[name] + suffix
            out[f"nn1_{key}_euclidean"], out[f"nn1_{key}_cosine"] = row["euclidean"], row["cosine"]
            paper = f"{bigan.PAPER_TABLE_1[name]:6.2f}" if name in bigan.PAPER_TABLE_1 and not suffix else "     -"
            print(f"  {name:9s} {row['euclidean']:9.2f} {row['cosine']:7.2f} {paper}   ({row['dim']}-d)", flush=True)
    acc, pixels = out["nn1_bigan_euclidean"], out["nn1_pixels_euclidean"]
    lines.append(f"BiGAN 1-NN (euclidean, E's last hidden layer) {acc:.2f}% >= {TARGET_BIGAN}% (paper 97.39%): "
                 f"{verdict(acc >= TARGET_BIGAN)}"
                 + ("" if acc >= TARGET_BIGAN else f" ({TARGET_BIGAN - acc:.2f} points short)"))
    lines.append(f"BiGAN 1-NN above raw pixels ({acc:.2f}% vs {pixels:.2f}%): {verdict(acc > pixels)}")

    inv = bigan.inversion_errors(runs["bigan"], x_test, n_latent=len(x_test))
    per_dim = inv.pop("z_corr_per_dim")
    out.update({f"inversion_{k}": v for k, v in inv.items()})
    out["inversion_z_corr_min"], out["inversion_z_corr_max"] = min(per_dim), max(per_dim)
    lines.append(f"inversion: median ||G(E(x)) - x||^2 {inv['x_error']:.1f} < {inv['x_error_other']:.1f} for another "
                 f"test image: {verdict(inv['x_error'] < inv['x_error_other'])}")
    lines.append(f"inversion: corr(E(G(z))_j, z_j) mean {inv['z_corr']:.3f} (per dimension {min(per_dim):.3f} to "
                 f"{max(per_dim):.3f}), median ||E(G(z)) - z||^2 {inv['z_error']:.2f} (||z||^2 ~ 16.7)")

    others = sum(s for name, s in seconds.items() if name != "bigan")
    for name, s in seconds.items():
        out[f"seconds_{name}"] = s
    lines.append(f"BiGAN training within 60 min: {verdict(seconds['bigan'] <= BUDGET_BIGAN_S)} "
                 f"({seconds['bigan'] / 60:.1f} min)")
    lines.append(f"other rows within 30 min together: {verdict(others <= BUDGET_OTHERS_S)} ({others / 60:.1f} min: "
                 + ", ".join(f"{k} {v / 60:.1f}" for k, v in seconds.items() if k != "bigan") + ")")
    if not args.quick_check:
        dgsp.results.record("bench_bigan", out, dataset=dataset, notes="benchmarks/bench_bigan.py")
    print("\n".join(["", "summary:"] + lines))


if __name__ == "__main__":
    main()
