"""Benchmark for lecture 2: test NLL of the 784-200-200-50 VAE on dynamically binarised MNIST.

Trains ``dgsp.models.vae.VAE`` (MLP, Bernoulli decoder, z = 50, ReLU) for a wall-clock budget with
Adam (lr 1e-3, batch 100, lr decay per epoch, short KL warm-up), then reports on the test set

* the ELBO (L_1) and the importance-weighted bound L_1000 (Burda et al. 2016, eqs. 8-9),
* optionally L_5000 (``--k5000``), the number papers quote as the test NLL,

and records them with ``dgsp.results.record("bench_02_vae", ...)``.
Target: NLL <= 92 nats within 30 minutes on a 2-core CPU (reference: 86.76 nats, Burda et al. 2016,
VAE with one stochastic layer, k = 1, trained for 3,280 epochs).

Needs full MNIST (``DGSP_DATA`` or ``data/MNIST/raw``); with only the 5k subset it still runs but says so,
and the number is not comparable. Run in full mode (without ``DGSP_QUICK``).

    python benchmarks/bench_vae.py --minutes 30 [--k5000] [--eval-n 10000]

Smoke test: python benchmarks/bench_vae.py --quick-check   (quick mode: 6 s of training, 200 test digits,
            nothing recorded)
"""
from __future__ import annotations

import os
import math
import time

from common import parse_args as parse_common, verdict  # first: a quick check sets quick mode before dgsp is imported

import torch

import dgsp
from dgsp.data import binarize, load, random_subset
from dgsp.models.vae import VAE, iwae_bound, rate_distortion
from dgsp.train import fit

os.environ.setdefault("DGSP_PUBLISH", "1")  # a benchmark records into the committed figures/results.json


def parse_args():
    def arguments(ap):
        ap.add_argument("--minutes", type=float, default=None,
                        help="training budget in wall-clock minutes (default 30; quick check 0.1)")
        ap.add_argument("--k5000", action="store_true", help="also evaluate the k=5000 bound (slow on a CPU)")
        ap.add_argument("--eval-n", type=int, default=None,
                        help="evaluate on N test images drawn at random (default: all; quick check 200)")
        ap.add_argument("--lr", type=float, default=1e-3)
        ap.add_argument("--lr-decay", type=float, default=0.99, help="learning-rate factor per epoch")
        ap.add_argument("--batch-size", type=int, default=100)
        ap.add_argument("--warmup-steps", type=int, default=3000, help="linear KL warm-up (0 to disable)")
        ap.add_argument("--seed", type=int, default=0)
        ap.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: these matrices are small, and two threads on two shared "
                             "cores oversubscribe badly; try 2 on an idle machine)")

    args = parse_common(__doc__, arguments)
    args.minutes = dgsp.by_mode(30.0, 0.1) if args.minutes is None else args.minutes
    args.eval_n = dgsp.by_mode(None, 200) if args.eval_n is None else args.eval_n
    if args.minutes <= 0:
        raise SystemExit(f"--minutes must be > 0, got {args.minutes}")
    return args


def train_for(model: VAE, x: torch.Tensor, seconds: float, batch_size: int, seed: int) -> dict:
    """Train with ``dgsp.train.fit`` until the wall-clock budget is spent (its NaN guard stops a diverging run)."""
    t0 = time.perf_counter()
    history = fit(model, x, max_seconds=seconds, batch_size=batch_size, seed=seed, progress=True, desc="VAE",
                  threads=None)  # the thread count is --threads
    return {"epochs": int(history.last("epoch")), "steps": len(history["loss"]),
            "train_minutes": (time.perf_counter() - t0) / 60}


def main() -> None:
    args = parse_args()
    if dgsp.is_quick():
        print("quick mode (--quick-check or DGSP_QUICK): a smoke test, not comparable with the target; results go "
              "to a temporary folder")
    if args.threads:
        torch.set_num_threads(args.threads)
    dgsp.seed_everything(args.seed)
    dev = dgsp.device()
    x_train, _ = load("mnist", "train")
    x_test, _ = load("mnist", "test")
    dataset = "mnist" if len(x_train) == 60000 else "mnist5k"
    if dataset != "mnist":
        print("WARNING: full MNIST not available (set DGSP_DATA); benchmarking on the 5k subset, "
              "which is NOT comparable with the 92-nat target.")
    if args.eval_n and args.eval_n < len(x_test):
        x_test, = random_subset(x_test, n=args.eval_n)  # not x_test[:n]: the split's first half is cleaner
    x_test = binarize(x_test, generator=torch.Generator().manual_seed(12345))  # one fixed binarisation
    print(f"device {dev}, torch threads {torch.get_num_threads()}, train {len(x_train)}, test {len(x_test)} "
          f"({dataset})")

    model = VAE(z_dim=50, hidden=(200, 200), lr=args.lr, lr_decay=args.lr_decay,
                warmup_steps=args.warmup_steps).to(dev)
    info = train_for(model, x_train, args.minutes * 60, args.batch_size, args.seed)
    model.eval()

    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    rd = rate_distortion(model, x_test, generator=g)
    ks = (1, 1000, 5000) if args.k5000 else (1, 1000)
    bounds = {}
    for k in ks:
        b = iwae_bound(model, x_test, k=k, batch=100, generator=torch.Generator().manual_seed(k))
        bounds[k] = (float(b.mean()), float(b.std() / math.sqrt(len(b))))
        print(f"L_{k:<5d} = {bounds[k][0]:8.2f} ± {bounds[k][1]:.2f} nats  "
              f"({(time.perf_counter() - t0) / 60:.1f} min of evaluation)", flush=True)
    kmax = ks[-1]
    nll = -bounds[kmax][0]
    print(f"\ntest NLL (−L_{kmax}) = {nll:.2f} nats; ELBO = {bounds[1][0]:.2f}; rate {rd['rate']:.2f}, "
          f"distortion {rd['distortion']:.2f}; {info['epochs']} epochs in {info['train_minutes']:.1f} min")
    print(f"target <= 92 nats: {verdict(nll <= 92)} (reference 86.76, Burda et al. 2016)")
    metrics = {"test_nll": nll, "test_elbo": bounds[1][0], "rate": rd["rate"], "distortion": rd["distortion"],
               "epochs": info["epochs"], "steps": info["steps"], "train_minutes": info["train_minutes"],
               "eval_n": len(x_test), "k_max": kmax, **{f"iwae_k{k}": v[0] for k, v in bounds.items()}}
    dgsp.results.record("bench_02_vae", metrics, dataset=dataset,
                        notes=f"784-200-200-50 MLP VAE, Bernoulli decoder, dynamic binarisation, Adam lr {args.lr}, "
                              f"batch {args.batch_size}, lr decay {args.lr_decay}/epoch, KL warm-up "
                              f"{args.warmup_steps} steps; budget {args.minutes:g} min; NLL = −L_{kmax}.")


if __name__ == "__main__":
    main()
