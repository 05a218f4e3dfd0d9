"""Speed targets of the training loop (the foundation issue, part 6), printed as MET / NOT MET.

    .venv/bin/python benchmarks/bench_speed.py [--steps 300]

(a) Toy-GAN generator steps per second on the CPU, for each loss of lecture 3 with ``gan.toy_recipe``:
    ``fit`` as it trains now (``threads="auto"``: one thread for a small model, metrics copied to the host
    every 50 steps) against ``threads=None`` (torch's own thread count, as before this change), measured
    in one run, alternating. Target: at least 2x.
(b) The cache key's cost: hashing the content of full MNIST's 60,000 training images.
(c) On a GPU only: notebook 03 in full mode under 4 minutes, and the whole course under 10 minutes; on a
    machine without one these are reported as not measured.

Results go to ``bench_speed`` in figures/results.json.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import dgsp
from dgsp.models import gan
from dgsp.train import data_fingerprint, fit

os.environ.setdefault("DGSP_PUBLISH", "1")  # a benchmark records into the committed figures/results.json
ROOT = Path(__file__).resolve().parents[1]


def toy_rate(loss: str, steps: int, threads) -> float:
    """Generator steps per second of one toy_recipe run of ``steps`` generator steps on ring8."""
    n_data = 40_000
    data = dgsp.data.toy("ring8").sample(n_data, seed=0, device=dgsp.device())
    dgsp.seed_everything(0)
    model, schedule = gan.toy_recipe(loss, gen_steps=steps, n_data=n_data)
    model.to(dgsp.device())
    t0 = time.perf_counter()
    fit(model, data, epochs=1, batch_size=schedule["batch_size"], max_steps=steps, progress=False, threads=threads)
    return len(model.history["loss_g"]) / (time.perf_counter() - t0)


def notebook_seconds(name: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                    "--ExecutePreprocessor.timeout=-1", "--output-dir", str(ROOT / "build" / "notebooks"),
                    str(ROOT / "notebooks" / name)], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="generator steps per timed run")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--notebooks", action="store_true", help="on a GPU: also time notebook 03 and the whole course")
    args = ap.parse_args()
    out: dict[str, float] = {}
    print(f"device {dgsp.device()} | torch threads {torch.get_num_threads()} | {os.cpu_count()} cores")
    print("(a) toy-GAN generator steps per second (ring8, gan.toy_recipe)")
    ratios = []
    for loss in gan.LOSSES:
        now, before = [], []
        for _ in range(args.repeats):  # alternate, so that a change in machine load hits both alike
            now.append(toy_rate(loss, args.steps, "auto"))
            before.append(toy_rate(loss, args.steps, None))
        now_rate, before_rate = max(now), max(before)
        ratios.append(now_rate / before_rate)
        out |= {f"toy_steps_per_s_{loss}": now_rate, f"toy_steps_per_s_{loss}_torch_threads": before_rate}
        print(f"  {loss:14s} {now_rate:7.1f} steps/s  (torch's {torch.get_num_threads()} threads: "
              f"{before_rate:7.1f})  x{now_rate / before_rate:.2f}")
    worst = min(ratios)
    out["toy_speedup_min"] = worst
    print(f"  target (every loss at least 2x): {'MET' if worst >= 2 else 'NOT MET'} (smallest ratio {worst:.2f})")

    print("(b) the cache key: hashing the content of the training data")
    x, _ = dgsp.data.load("mnist", "train")
    t0 = time.perf_counter()
    data_fingerprint([x])
    out["fingerprint_seconds"] = time.perf_counter() - t0
    out["fingerprint_images"] = float(len(x))
    print(f"  {len(x)} images: {out['fingerprint_seconds']:.3f} s")

    print("(c) notebooks on a GPU")
    if torch.cuda.is_available() and args.notebooks:
        nb03 = notebook_seconds("03_gan_wgan.ipynb")
        course = nb03 + sum(notebook_seconds(p.name) for p in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
                            if not p.name.startswith("03_"))
        out |= {"gpu_notebook03_seconds": nb03, "gpu_course_seconds": course}
        print(f"  notebook 03: {nb03:.0f} s, target < 240 s: {'MET' if nb03 < 240 else 'NOT MET'}")
        print(f"  whole course: {course:.0f} s, target < 600 s: {'MET' if course < 600 else 'NOT MET'}")
    else:
        print("  not measured: no GPU here (or --notebooks not given)")
    dgsp.results.record("bench_speed", out, dataset=dgsp.data.resolve("mnist"),
                        notes=f"benchmarks/bench_speed.py --steps {args.steps}; toy rates are the best of "
                              f"{args.repeats} alternating runs")


if __name__ == "__main__":
    main()
