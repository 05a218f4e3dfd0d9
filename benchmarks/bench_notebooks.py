"""Wall time of every notebook in quick mode (the `make test` setting), one kernel each.

    .venv/bin/python benchmarks/bench_notebooks.py [notebooks/01_*.ipynb ...]

Target: each lecture under 3 minutes on 2 CPU cores, printed as MET / NOT MET. Every kernel starts with its own
empty quick-mode folder, so each notebook trains every quick model it uses (later lectures retrain earlier
lectures' models), the slowest case; ``make test`` shares one folder between its kernels. Records the times as
``bench_notebooks_quick`` in figures/results.json (the recording itself happens in full mode, so the table in
figures/ is updated).

Smoke test: python benchmarks/bench_notebooks.py --quick-check   (lecture 1 only, nothing recorded)
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import parse_args, verdict  # first: a quick check sets quick mode before dgsp is imported

import dgsp

os.environ.setdefault("DGSP_PUBLISH", "1")  # a benchmark records into the committed figures/results.json

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 180  # each lecture's issue: quick mode under 3 minutes


def main() -> None:
    def arguments(ap):
        ap.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to time (default: every lecture; quick check: lecture 1)")

    args = parse_args(__doc__, arguments)
    every = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    notebooks = args.notebooks or (every[:1] if args.quick_check else every)
    for nb in notebooks:
        if nb.suffix != ".ipynb" or not nb.is_file():
            raise SystemExit(f"not a notebook file: {nb} (give paths such as notebooks/01_autoencoders_pca.ipynb)")
    env = dict(os.environ, DGSP_QUICK="1", DGSP_NO_DOWNLOAD="1", MPLBACKEND="Agg", DGSP_HOME=str(ROOT))
    env.pop("DGSP_DATA", None)  # as under `make test`: the embedded data
    env.pop("DGSP_QUICK_DIR", None)  # each kernel its own empty quick-mode folder
    times = {}
    with tempfile.TemporaryDirectory() as out:
        for nb in notebooks:
            t0 = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                                  "--ExecutePreprocessor.timeout=-1", "--output-dir", out, str(nb)],
                                 env=env, capture_output=True, text=True)
            if run.returncode != 0:
                print("\n".join(run.stderr.splitlines()[-30:]))
                raise SystemExit(f"{nb.name} failed in quick mode (nbconvert exit {run.returncode}; its last lines "
                                 "are above)")
            times[nb.stem] = time.perf_counter() - t0
            ok = times[nb.stem] < BUDGET_S
            print(f"{nb.name}: {times[nb.stem]:.0f} s in quick mode (< {BUDGET_S} s): {verdict(ok)}", flush=True)
    print(f"every notebook under {BUDGET_S} s: {verdict(max(times.values()) < BUDGET_S)} "
          f"(slowest {max(times, key=times.get)}, {max(times.values()):.0f} s; all {sum(times.values()):.0f} s)")
    dgsp.results.record("bench_notebooks_quick", {f"{k}_seconds": v for k, v in times.items()},
                        dataset="mnist5k (quick mode)", notes="benchmarks/bench_notebooks.py; target < 180 s each")


if __name__ == "__main__":
    main()
