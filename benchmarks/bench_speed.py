"""Speed targets of the training loop (the foundation issue, part 6), printed as MET / NOT MET.

    .venv/bin/python benchmarks/bench_speed.py [--steps 300] [--baseline DIR | --no-baseline] [--idle-only]

(a) Toy-GAN generator steps per second on the CPU, for each loss of lecture 3 with ``gan.toy_recipe``.
    Target: at least 2x the rate of the code of the day the foundation issue was filed (commit 11d56cc,
    extracted from the git history into build/, or the checkout given as ``--baseline DIR``), timed in a
    subprocess and alternating with today's ``fit`` (``threads="auto"``: one thread for a small model, metrics
    copied to the host every 50 steps), on the idle machine and beside a program that keeps both cores busy
    (``--idle-only`` skips that). Printed beside it: today's ``fit`` with ``threads=None`` (torch's own thread
    count), which isolates the thread choice, and a plain PyTorch loop of the same non-saturating GAN (no dgsp),
    this CPU's ceiling: at these sizes a step is compute-bound, so no training loop runs faster than that.
(b) The cache key's cost: hashing the content of full MNIST's 60,000 training images.
(c) On a GPU only: notebook 03 in full mode under 4 minutes, and the whole course under 10 minutes; on a
    machine without one these are reported as not measured.

Results go to ``bench_speed`` in figures/results.json.
Smoke test: python benchmarks/bench_speed.py --quick-check   (5 steps, one run each, nothing recorded)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from common import parse_args, verdict  # first: a quick check sets quick mode before dgsp is imported

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


# The same toy run for whichever dgsp is first on the path: written against the API that both today's code and
# the code of the issue's day have (toy_recipe, fit for one epoch), so it can time either.
_RATE_SCRIPT = """
import sys, time, dgsp
from dgsp.models import gan
from dgsp.train import fit
loss, steps = sys.argv[1], int(sys.argv[2])
batch = gan.toy_recipe(loss, gen_steps=steps, n_data=10 ** 6)[1]["batch_size"]
data = dgsp.data.toy("ring8").sample(steps * batch, seed=0)
dgsp.seed_everything(0)
model, schedule = gan.toy_recipe(loss, gen_steps=steps, n_data=steps * batch)
t0 = time.perf_counter()
fit(model, data, epochs=schedule["epochs"], batch_size=batch, progress=False)
print(steps / (time.perf_counter() - t0))
"""


# Another program using both cores (a matrix loop on torch's two threads), as on a shared or busy machine.
_BUSY_SCRIPT = """
import torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a.T / 512)
"""


def baseline_rate(folder: Path, loss: str, steps: int) -> float:
    """Generator steps per second of the same toy run under the dgsp checked out in ``folder``."""
    env = {**os.environ, "PYTHONPATH": str(folder)}
    out = subprocess.run([sys.executable, "-c", _RATE_SCRIPT, loss, str(steps)], env=env, cwd=folder,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


ISSUE_DAY = "11d56cc"  # main when the foundation issue (speed targets included) was filed


def issue_day_checkout() -> Path | None:
    """The code of :data:`ISSUE_DAY`, extracted once from the git history into build/ (None without the history)."""
    folder = ROOT / "build" / f"bench_baseline_{ISSUE_DAY}"
    if (folder / "dgsp" / "__init__.py").is_file():
        return folder
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{ISSUE_DAY}^{{commit}}"],
                      capture_output=True).returncode != 0:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ISSUE_DAY], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    (folder / "COMMIT").write_text(ISSUE_DAY + "\n")
    return folder


def describe(folder: Path) -> str:
    """The commit checked out or extracted in ``folder`` (its path if neither says)."""
    if (folder / "COMMIT").is_file():
        return (folder / "COMMIT").read_text().strip()
    out = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else str(folder)


def plain_torch_rate(steps: int, threads: int) -> float:
    """Generator steps per second of a plain PyTorch non-saturating GAN with toy_recipe's networks and batch
    (2-128-128-128-2 ReLU G, 2-128-128-128-1 LeakyReLU D, Adam, m = 256, one D step then one G step)."""
    import torch.nn.functional as F
    from torch import nn

    def mlp(out: int, act: type[nn.Module]) -> nn.Sequential:
        return nn.Sequential(nn.Linear(2, 128), act(), nn.Linear(128, 128), act(), nn.Linear(128, 128), act(),
                             nn.Linear(128, out))

    with dgsp.core.cpu_threads(threads):
        torch.manual_seed(0)
        g, d = mlp(2, nn.ReLU), mlp(1, nn.LeakyReLU)
        opt_g = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.5, 0.999))
        data = dgsp.data.toy("ring8").sample(steps * 256, seed=0)
        t0 = time.perf_counter()
        for real in data.split(256):
            fake = g(torch.randn(256, 2))
            loss_d = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = F.softplus(-d(g(torch.randn(256, 2)))).mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
        return steps / (time.perf_counter() - t0)


def notebook_seconds(name: str) -> float:
    t0 = time.perf_counter()
    # "-m nbconvert", not "-m jupyter nbconvert": the same tool, and it also runs where nbconvert was installed
    # without the jupyter command (e.g. from wheels on a lent GPU machine)
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
                    "--ExecutePreprocessor.timeout=-1", "--ExecutePreprocessor.kernel_name=python3",
                    "--output-dir", str(ROOT / "build" / "notebooks"), str(ROOT / "notebooks" / name)],
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    def arguments(ap):
        ap.add_argument("--steps", type=int, default=None,
                        help="generator steps per timed run (default 300; quick check 5)")
        ap.add_argument("--repeats", type=int, default=None,
                        help="alternating runs per rate (default 2; quick check 1)")
        ap.add_argument("--baseline", type=Path, help="a checkout of the code of the issue's day (default: extract "
                        f"{ISSUE_DAY} from the git history)")
        ap.add_argument("--no-baseline", action="store_true", help="skip the comparison with the issue's day")
        ap.add_argument("--idle-only", action="store_true",
                        help="compare with the issue's day on the idle machine only")
        ap.add_argument("--notebooks", action="store_true", help="on a GPU: also time notebook 03 and the whole course")

    args = parse_args(__doc__, arguments)
    args.steps = dgsp.by_mode(300, 5) if args.steps is None else args.steps
    args.repeats = dgsp.by_mode(2, 1) if args.repeats is None else args.repeats
    if args.steps < 1 or args.repeats < 1:
        raise SystemExit(f"--steps and --repeats must be >= 1, got {args.steps} and {args.repeats}")
    out: dict[str, float] = {}
    print(f"device {dgsp.device()} | torch threads {torch.get_num_threads()} | {os.cpu_count()} cores")
    print("(a) toy-GAN generator steps per second (ring8, gan.toy_recipe): today's fit, one thread for a small model "
          "(threads='auto') against torch's threads (threads=None)")
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
    print(f"  smallest ratio {worst:.2f} (the thread choice alone; the target's baseline is the issue's day, below)")
    baseline = None if args.no_baseline else (args.baseline or issue_day_checkout())
    if baseline is None:
        print(f"  the issue's day: not measured ({'--no-baseline' if args.no_baseline else 'no git history here'})")
    else:
        for condition in ("idle",) if args.idle_only else ("idle", "loaded"):
            where = "on an idle machine" if condition == "idle" else "beside a busy 2-thread process"
            print(f"  the same runs under the code of {describe(baseline)} (the issue's day), alternating with "
                  f"today's, {where}:")
            busy = subprocess.Popen([sys.executable, "-c", _BUSY_SCRIPT]) if condition == "loaded" else None
            try:
                speedups = []
                for loss in gan.LOSSES:
                    then, now = [], []
                    for _ in range(args.repeats):
                        then.append(baseline_rate(baseline, loss, args.steps))
                        now.append(toy_rate(loss, args.steps, "auto"))
                    key = f"{loss}_{condition}"
                    out |= {f"toy_steps_per_s_{key}_baseline": max(then), f"toy_steps_per_s_{key}_today": max(now),
                            f"toy_speedup_{key}_vs_baseline": max(now) / max(then)}
                    speedups.append(max(now) / max(then))
                    print(f"  {loss:14s} then {max(then):7.1f} steps/s, today {max(now):7.1f}: x{speedups[-1]:.2f}")
                out[f"toy_speedup_min_{condition}_vs_baseline"] = min(speedups)
                print(f"  target, {where} (every loss at least 2x the issue's day): "
                      f"{verdict(min(speedups) >= 2)} (smallest ratio {min(speedups):.2f})")
            finally:
                if busy is not None:
                    busy.kill()
    plain = {t: max(plain_torch_rate(args.steps, t) for _ in range(args.repeats)) for t in (1, 2)}
    fastest = max(plain.values())
    fit_rate = out["toy_steps_per_s_nonsaturating"]
    out |= {"toy_steps_per_s_plain_torch_1_thread": plain[1], "toy_steps_per_s_plain_torch_2_threads": plain[2]}
    then = out.get("toy_steps_per_s_nonsaturating_idle_baseline")
    reference = (f"the issue's day's rate on the idle machine ({then:.0f})" if then else
                 f"fit's rate with torch's threads ({out['toy_steps_per_s_nonsaturating_torch_threads']:.0f})")
    double = 2 * (then or out["toy_steps_per_s_nonsaturating_torch_threads"])
    print(f"  ceiling: a plain PyTorch loop of the same non-saturating GAN, {plain[1]:.1f} steps/s on 1 thread and "
          f"{plain[2]:.1f} on 2; fit reaches {fit_rate / fastest:.0%} of the faster, and twice {reference} "
          f"would be x{double / fastest:.2f} of it")

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
        print(f"  notebook 03: {nb03:.0f} s, target < 240 s: {verdict(nb03 < 240)}")
        print(f"  whole course: {course:.0f} s, target < 600 s: {verdict(course < 600)}")
    else:
        print("  not measured: no GPU here (or --notebooks not given)")
    dgsp.results.record("bench_speed", out, dataset=dgsp.data.resolve("mnist"),
                        notes=f"benchmarks/bench_speed.py --steps {args.steps}"
                              f"{f'; baseline: the code of {describe(baseline)}' if baseline else ''}"
                              f"{' (idle only)' if baseline and args.idle_only else ''}; toy rates are the best of "
                              f"{args.repeats} alternating runs")


if __name__ == "__main__":
    main()
