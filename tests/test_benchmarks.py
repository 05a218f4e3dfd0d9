"""Every benchmark script runs end to end as a smoke test (``--quick-check``: quick mode on the embedded subset),
prints its targets' verdicts, and leaves the committed figures/ untouched.

The full runs take hours and record the course's numbers; these checks make sure that a change to dgsp does not
break a benchmark unnoticed until the next full run. Under ``make test`` they share the quick-mode folder of the
notebook runs (DGSP_QUICK_DIR), so the quick models they train are loaded again by the notebooks."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
# Every target line ends in a verdict: MET / NOT MET, or, for a claim of a paper, HOLDS / DOES NOT HOLD.
VERDICT = re.compile(r"\b(NOT MET|MET|HOLDS|DOES NOT HOLD)\b")


def _figures_digest() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((ROOT / "figures").rglob("*")) if p.is_file()}


def _run(args: list[str], quick_dir: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, DGSP_QUICK="1", DGSP_NO_DOWNLOAD="1", MPLBACKEND="Agg", DGSP_HOME=str(ROOT))
    env.pop("DGSP_DATA", None)  # the embedded subset, as in the rest of the quick tests
    env.pop("DGSP_PUBLISH", None)
    env.setdefault("DGSP_QUICK_DIR", str(quick_dir))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def quick_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-quick")


def test_every_benchmark_is_covered():
    assert len(BENCHMARKS) >= 9, [p.name for p in BENCHMARKS]


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_quick_check_runs_and_prints_verdicts(script: Path, quick_dir: Path):
    before = _figures_digest()
    run = _run([str(script.relative_to(ROOT)), "--quick-check"], quick_dir)
    tail = "\n".join((run.stdout + run.stderr).splitlines()[-25:])
    assert run.returncode == 0, f"{script.name} --quick-check failed (exit {run.returncode}):\n{tail}"
    verdicts = [line for line in run.stdout.splitlines() if VERDICT.search(line)]
    assert verdicts, f"{script.name} --quick-check printed no MET / NOT MET verdict:\n{tail}"
    assert _figures_digest() == before, f"{script.name} --quick-check changed the committed figures/"


def test_bench_notebooks_names_a_missing_notebook(quick_dir: Path):
    run = _run(["benchmarks/bench_notebooks.py", "notebooks/99_missing.ipynb"], quick_dir, timeout=120)
    assert run.returncode != 0
    assert "not a notebook file: notebooks/99_missing.ipynb" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("script, bad", [("bench_speed.py", ["--steps", "0"]), ("bench_vae.py", ["--minutes", "0"])])
def test_benchmarks_refuse_zero_sizes(script: str, bad: list[str], quick_dir: Path):
    run = _run([f"benchmarks/{script}", "--quick-check", *bad], quick_dir, timeout=120)
    assert run.returncode != 0
    assert "must be" in run.stderr and "Traceback" not in run.stderr


def test_bench_afv_speed_only_measures_part_2_alone(quick_dir: Path):
    """The GPU check (README, GPU): part 2 on the recipe's untrained D, no model trained, both verdicts printed."""
    before = _figures_digest()
    run = _run(["benchmarks/bench_afv.py", "--speed-only", "--quick-check"], quick_dir, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = run.stdout[run.stdout.index("summary (CPU"):]
    assert re.search(r"equal the loop to \S+ \(<= 1e-5\): MET", summary)
    assert re.search(r"at batch 256: \S+x \(>= 10x\): (NOT MET|MET)", summary)
    assert "loaded finished run" not in run.stdout + run.stderr and "07_ebm_gan" not in run.stdout
    assert _figures_digest() == before
