"""Benchmark for lecture 7 (EBM-GAN and adversarial Fisher vectors), full MNIST, targets from the lecture-7 issue.

1. AFV linear-probe test accuracy >= 99.0%, and above every other row of the representation table (pixels, PCA, AE,
   VAE, AAE, BiGAN encoder, the NS-GAN's and the EBM-GAN's discriminator features), all with the same probe
   (dgsp.metrics.linear_probe) in this run. (The 1-NN column and the sample table are lecture 7's notebook's.)
2. Per-sample Fisher scores (torch.func: vmap of grad) equal a per-sample autograd loop to 1e-5 (relative) and are
   >= 10x faster than that loop at batch 256. Printed beside it: the ceiling, the loop's time over one ordinary
   batched backward pass of the same 256 images (the same arithmetic, summed over the batch), which no per-sample
   method can beat by much. Each time is the best of three calls: on the 2-core CPU the loop's time ranged from
   195 to 591 ms between runs, as other processes' load comes and goes.
3. The whole AFV evaluation (diag I and centre, the AFVs of the 70,000 images, the probe, the class distance matrix)
   within 30 min on the 2-core CPU and under 8 GB peak memory (the process's maximum resident set).
4. The overfitting monitor: the gap between Fisher(generated, held-out) and Fisher(generated, train) at the end of
   the overfitting run over the gap at its start is > 1 (the gap grows). The gap is taken relative to the train
   distance (held-out / train - 1), as the distances themselves fall tenfold over the run, and each end is its mean
   over three monitored epochs, as one point is noisy (recipes.overfit_gap).
Also measured: what the count sketch costs against the full AFV on a subset (probe accuracy, Spearman agreement of
pairwise distances) and the closest pair of digit classes.

Full run:   python benchmarks/bench_afv.py
Part of it: python benchmarks/bench_afv.py --rows pixels ebm_d --skip-overfit   (recorded as bench_afv_partial: the
            table's other rows need every lecture's model, which a fresh machine trains first, about two hours)
Part 2 alone: python benchmarks/bench_afv.py --speed-only   (recorded as bench_afv_speed with the device's name: the
            recipe's D, seeded and untrained, since the timing and the equality do not depend on the weights; for a
            GPU, where the whole benchmark would first train every lecture's model)
Smoke test: python benchmarks/bench_afv.py --quick-check   (quick mode, embedded subset, nothing recorded)
"""
from __future__ import annotations

import resource
import time

from common import course_splits, parse_args, verdict

BUDGET_S = 30 * 60
MEMORY_GB = 8.0


def peak_memory_gb() -> float:
    """The process's maximum resident set so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def loop_gradients(model, x):
    """The reference: one autograd call per sample, as a library must not do it."""
    import torch

    params = list(model.parameters())
    rows = []
    for xi in x:
        grads = torch.autograd.grad(model(xi[None]).sum(), params)
        rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows)


def best_of(repeats: int, fn, *args):
    """``fn(*args)`` and its fastest wall time over ``repeats`` calls (as timeit does: the slower calls measure the
    machine's other load, not the code). On a GPU each call is waited for, so the time is the work's, not the
    launch's."""
    import torch

    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return out, best


def per_sample_speed(d, x) -> tuple[dict[str, float], list[str]]:
    """Part 2 on D and a batch x (256 test digits): the per-sample scores' error against the loop, the three
    times and the two ratios, and the two verdict lines (printed as well). All in full float32: on a GPU, cuDNN's
    default TensorFloat-32 convolutions alone put the two methods 3e-4 apart (measured on an H200)."""
    import torch

    from dgsp import fisher
    from dgsp.core import full_float32

    xb = x.to(next(d.parameters()).device)
    with full_float32():
        fisher.per_sample_gradients(d, xb[:8])  # warm up
        fast, t_fast = best_of(3, fisher.per_sample_gradients, d, xb)
        slow, t_loop = best_of(3, loop_gradients, d, xb)
        # the batch's summed gradient: the same arithmetic in one ordinary backward pass, the floor
        _, t_batched = best_of(3, lambda: torch.autograd.grad(d(xb).sum(), list(d.parameters())))
    rel = float((fast - slow).norm() / slow.norm())
    out = dict(per_sample_rel_error=rel, per_sample_speedup=t_loop / t_fast, per_sample_seconds_vmap=t_fast,
               per_sample_seconds_loop=t_loop, per_sample_seconds_batched_backward=t_batched,
               per_sample_speedup_ceiling=t_loop / t_batched, per_sample_batch=float(len(xb)))
    lines = [f"per-sample scores equal the loop to {rel:.1e} (<= 1e-5): {verdict(rel <= 1e-5)}",
             f"vmap {t_fast * 1e3:.1f} ms vs loop {t_loop * 1e3:.0f} ms at batch {len(xb)}: {t_loop / t_fast:.1f}x "
             f"(>= 10x): {verdict(t_loop / t_fast >= 10)}; ceiling here (one batched backward, "
             f"{t_batched * 1e3:.1f} ms): {t_loop / t_batched:.1f}x"]
    print("\n".join(lines), flush=True)
    return out, lines


def main() -> None:
    def arguments(ap):
        ap.add_argument("--rows", nargs="+", default=None,
                        help="rows of dgsp.course_tables.REPRESENTATIONS to score beside the AFV (default: all)")
        ap.add_argument("--skip-overfit", action="store_true", help="leave out the overfitting monitor (part 4)")
        ap.add_argument("--speed-only", action="store_true",
                        help="part 2 alone, on the recipe's untrained D (recorded as bench_afv_speed)")

    args = parse_args(__doc__, arguments)  # before dgsp is imported: it sets quick mode

    import torch
    from scipy.stats import spearmanr

    import dgsp
    from dgsp import course_tables, fisher, metrics, recipes

    known = list(course_tables.REPRESENTATIONS)
    if args.rows is not None and set(args.rows) - set(known):  # nargs="+": never an empty list
        raise SystemExit(f"--rows takes names from {known}; got {args.rows}")
    default = args.rows in (None, known) and not args.skip_overfit
    args.rows = args.rows or known
    dataset, x_train, y_train, x_test, y_test = course_splits()
    out: dict[str, float] = {}
    lines: list[str] = []

    if args.speed_only:
        from dgsp.models.ebm_gan import EBMGAN

        dgsp.seed_everything(0)
        d = EBMGAN(**recipes.EBM_MNIST).to(dgsp.device()).discriminator.eval()
        out, lines = per_sample_speed(d, x_test[:256])
        on_gpu = dgsp.device().type == "cuda"
        where = torch.cuda.get_device_name() if on_gpu else f"CPU, {torch.get_num_threads()} threads"
        print("\n".join(["", f"summary ({where}):"] + lines))
        if not args.quick_check:
            dgsp.results.record("bench_afv_speed", out, dataset=dataset,
                                notes=f"benchmarks/bench_afv.py --speed-only on {where}; the recipe's D, untrained")
        return

    model = recipes.mnist_ebm_gan(dataset)
    out["seconds_ebm_gan"] = model.history.training_seconds()
    out["frechet_ebm_gan_training"] = model.history.last("frechet")
    d = model.discriminator.eval()
    n_params = sum(p.numel() for p in d.parameters())

    # 2. per-sample scores against a loop, batch 256
    speed, speed_lines = per_sample_speed(d, x_test[:256])
    out.update(speed)
    lines += speed_lines

    # 3. the AFV evaluation, timed as a whole
    t_start = time.perf_counter()
    emb = recipes.mnist_fisher_embedding(model)
    out["afv_dead_parameters"] = emb.dead_parameters()
    v_train = emb.vectors(x_train)
    v_test = emb.vectors(x_test)
    t_vectors = time.perf_counter() - t_start
    acc_afv = metrics.linear_probe(v_train, y_train, v_test, y_test)
    class_means = emb.group_means(x_test, y_test, 10)
    class_dist = fisher.fisher_distance(class_means, class_means)
    seconds_afv = time.perf_counter() - t_start
    out.update(afv_params=n_params, afv_sketch_dim=emb.dim, afv_linear_probe=acc_afv, seconds_afv_vectors=t_vectors,
               seconds_afv_evaluation=seconds_afv, afv_peak_memory_gb=peak_memory_gb())
    print(f"AFVs: {n_params} parameters, {emb.dead_parameters()} with zero information, sketched to {emb.dim}; "
          f"{len(x_train) + len(x_test)} images in {t_vectors:.0f} s; probe {100 * acc_afv:.2f}%", flush=True)

    # the class matrix: which digits the model puts close
    pairs = [(float(class_dist[a, b]), a, b) for a in range(10) for b in range(a + 1, 10)]
    pairs.sort()
    out["class_distance_closest_pair"] = pairs[0][1] * 10 + pairs[0][2]
    print("closest digit pairs: " + ", ".join(f"{a}-{b} ({dist:.1f})" for dist, a, b in pairs[:4]), flush=True)

    # 1. the representation table
    # (the 1-NN column and the sample table are the notebook's: it records them under 07_ebm_gan_afv)
    table = {"afv": {"dim": emb.dim, "linear_probe": acc_afv}}
    del v_train, v_test
    table.update(course_tables.score_representations(args.rows, x_train, y_train, x_test, y_test, dataset,
                                                     one_nn=False))
    for name, r in table.items():
        out[f"probe_{name}"] = r["linear_probe"]
        print(f"  {name:7s} {r['dim']:6d}-d   linear probe {100 * r['linear_probe']:6.2f}%", flush=True)
    best_other = max(r["linear_probe"] for k, r in table.items() if k != "afv")
    ok = acc_afv >= 0.99 and acc_afv > best_other
    rows = "every other row" if default else f"the rows scored here ({', '.join(args.rows)})"
    lines.append(f"AFV linear probe {100 * acc_afv:.2f}% (>= 99.0% and above {rows}, best other "
                 f"{100 * best_other:.2f}%): {verdict(ok)}")
    ok = seconds_afv <= BUDGET_S and out["afv_peak_memory_gb"] <= MEMORY_GB
    lines.append(f"AFV evaluation {seconds_afv / 60:.1f} min (<= 30) and peak memory "
                 f"{out['afv_peak_memory_gb']:.2f} GB (<= 8): {verdict(ok)}")

    # the sketch's cost against the full AFV, on a subset
    n_sub, n_sub_test = dgsp.by_mode(5000, 1000), dgsp.by_mode(1000, 500)  # full AFVs: 2.8 GB
    full = recipes.mnist_fisher_embedding(model, sketch_dim=0)
    f_train, f_test = full.vectors(x_train[:n_sub]), full.vectors(x_test[:n_sub_test])
    sk = emb.sketch  # the same sketch as above (exact head and first layer, conv2 hashed)
    acc_full = metrics.linear_probe(f_train, y_train[:n_sub], f_test, y_test[:n_sub_test])
    acc_sketch = metrics.linear_probe(sk(f_train), y_train[:n_sub], sk(f_test), y_test[:n_sub_test])
    m = min(300, n_sub_test)
    iu = torch.triu_indices(m, m, 1)
    rho = spearmanr(torch.cdist(f_test[:m], f_test[:m])[iu[0], iu[1]],
                    torch.cdist(sk(f_test[:m]), sk(f_test[:m]))[iu[0], iu[1]]).statistic
    out.update(sketch_probe_full=acc_full, sketch_probe_sketched=acc_sketch, sketch_distance_spearman=float(rho))
    lines.append(f"sketch {f_train.shape[1]} -> {emb.dim} on {n_sub} / {n_sub_test} digits: probe "
                 f"{100 * acc_full:.2f}% -> {100 * acc_sketch:.2f}%, Spearman of pairwise distances {rho:.4f}")
    del f_train, f_test

    # 4. the overfitting monitor
    if args.skip_overfit:
        finish(args, default, out, lines, dataset)
        return
    over = recipes.mnist_ebm_gan_overfit(dataset)
    reading = recipes.overfit_gap(over.history)  # relative gaps, averaged over the first and the last epochs
    start, end, k = reading["start"], reading["end"], recipes.OVERFIT["window"]
    out.update(overfit_relative_gap_start=start, overfit_relative_gap_end=end,
               overfit_gap_start=reading["gap_start"], overfit_gap_end=reading["gap_end"],
               overfit_frechet_held_out_end=over.history.last("frechet_held_out"),
               overfit_frechet_train_end=over.history.last("frechet_train"),
               seconds_overfit=over.history.training_seconds())
    if start > 0:
        out["overfit_gap_ratio"] = end / start
    ok = end > max(start, 0)
    ratio = f"ratio {end / start:.2f} (> 1)" if start > 0 else "the gap opens from <= 0"
    lines.append(f"overfitting monitor: relative Fisher gap (held-out / train - 1), mean of the first {k} monitored "
                 f"epochs {100 * start:.1f}% -> of the last {k} {100 * end:.1f}%, {ratio}: {verdict(ok)} "
                 f"(the gap itself {reading['gap_start']:.3g} -> {reading['gap_end']:.3g})")
    finish(args, default, out, lines, dataset)


def finish(args, default: bool, out: dict[str, float], lines: list[str], dataset: str) -> None:
    """Record the run (the default run as "bench_afv", any other as "bench_afv_partial", its flags in the notes)
    and print the summary."""
    import dgsp

    out["peak_memory_gb"] = peak_memory_gb()
    if not args.quick_check:
        flags = "" if default else f" --rows {' '.join(args.rows)}" + (" --skip-overfit" if args.skip_overfit else "")
        dgsp.results.record("bench_afv" if default else "bench_afv_partial", out, dataset=dataset,
                            notes="benchmarks/bench_afv.py" + flags)
    print("\n".join(["", "summary:"] + lines))


if __name__ == "__main__":
    main()
