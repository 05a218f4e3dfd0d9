"""Wall time of every notebook in quick mode (the `make test` setting), one kernel each.

    .venv/bin/python benchmarks/bench_notebooks.py [notebooks/01_*.ipynb ...]

Target: each lecture under 3 minutes on 2 CPU cores. Prints the times and records
them as ``bench_notebooks_quick`` in figures/results.json (the recording itself
happens in full mode, so the table in figures/ is updated).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dgsp

os.environ.setdefault("DGSP_PUBLISH", "1")  # a benchmark records into the committed figures/results.json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    notebooks = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    env = dict(os.environ, DGSP_QUICK="1", DGSP_NO_DOWNLOAD="1", MPLBACKEND="Agg", DGSP_HOME=str(ROOT))
    env.pop("DGSP_DATA", None)  # as under `make test`: the embedded data
    times = {}
    with tempfile.TemporaryDirectory() as out:
        for nb in notebooks:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                            "--ExecutePreprocessor.timeout=-1", "--output-dir", out, str(nb)],
                           env=env, check=True, capture_output=True)
            times[nb.stem] = time.perf_counter() - t0
            print(f"{nb.name}: {times[nb.stem]:.0f} s (quick mode)")
    dgsp.results.record("bench_notebooks_quick", {f"{k}_seconds": v for k, v in times.items()},
                        dataset="mnist5k (quick mode)", notes="benchmarks/bench_notebooks.py; target < 180 s each")


if __name__ == "__main__":
    main()
