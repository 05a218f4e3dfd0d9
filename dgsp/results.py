"""The course's results table: ``figures/results.json`` and its readable twin ``RESULTS.md``.

Each lecture (and each benchmark) records named metrics with :func:`record`;
every entry notes the dataset, the mode (full/quick) and the device it was
measured on. Quick mode writes to a private temp folder, like figures.
"""
from __future__ import annotations

import contextlib
import json
import numbers
import os
import platform
import time
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows has no POSIX locks: there, record from one process at a time
    fcntl = None

from dgsp.core import by_mode, device, output_dir


def results_path() -> Path:
    """``figures/results.json`` in full mode (a temp folder in quick mode)."""
    return output_dir("figures") / "results.json"


def load() -> dict:
    """All recorded entries, keyed by section (e.g. ``"01_autoencoders_pca"``)."""
    path = results_path()
    return json.loads(path.read_text()) if path.is_file() else {}


def scored_by_same_classifier(section: str, classifier_accuracy: float) -> dict:
    """The recorded metrics of ``section`` if its Fréchet distances and class shares were measured with the course
    classifier in use now, recognised by its test accuracy (``classifier_test_accuracy``, equal within 1e-9); else {}
    and a warning. The classifier is trained once and cached; a fresh machine trains its own, whose features (and
    every distance measured in them) differ a little, so numbers from another classifier are not comparable."""
    recorded = load().get(section, {}).get("metrics", {})
    theirs = recorded.get("classifier_test_accuracy")
    if recorded and (theirs is None or abs(theirs - classifier_accuracy) > 1e-9):
        warnings.warn(f"{section}'s recorded run was scored by another classifier (test accuracy "
                      f"{theirs if theirs is not None else 'not recorded'}, this one {classifier_accuracy:.4f}): "
                      f"its numbers are left out; rerun it here to compare", stacklevel=2)
        return {}
    return recorded


def record(section: str, metrics: dict[str, float], *, dataset: str, notes: str = "") -> dict:
    """Store ``metrics`` under ``section`` (replacing an older entry) and rewrite RESULTS.md."""
    bad = {k: v for k, v in metrics.items() if not isinstance(v, numbers.Real)}  # NumPy's scalars included
    if bad:
        raise ValueError(f"metrics must be numbers; not numbers: {bad}")
    entry = {
        "metrics": {k: float(v) for k, v in metrics.items()},
        "dataset": dataset,
        "mode": by_mode("full", "quick"),
        "device": str(device()) + ("" if device().type != "cpu"
                                   else f" ({os.cpu_count()} cores, {platform.machine()})"),
        "date": time.strftime("%Y-%m-%d"),
        "notes": notes,
    }
    path = results_path()
    with _locked(path):  # a notebook and a benchmark may record at once; neither loses the other's entry
        table = load()
        table[section] = entry
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(dict(sorted(table.items())), indent=2) + "\n")
        os.replace(tmp, path)  # atomic: a reader sees the old table or the new one, never half of one
        write_markdown(table)
    return entry


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``<path>.lock`` (POSIX advisory lock) for a read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_markdown(table: dict | None = None) -> Path:
    """Render the results table as ``RESULTS.md`` beside ``results.json``."""
    table = load() if table is None else table
    lines = ["# Results", "",
             "Written by `make course` (notebooks) and `make bench` (benchmarks); do not edit by hand.", ""]
    lines += closing_tables(table)
    for section, entry in sorted(table.items()):
        lines += [f"## {section}", "",
                  f"dataset: {entry['dataset']} | mode: {entry['mode']} | device: {entry['device']} | "
                  f"date: {entry['date']}", ""]
        if entry.get("notes"):
            lines += [entry["notes"], ""]
        lines += ["| metric | value |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.5g} |" for k, v in entry["metrics"].items()]
        lines.append("")
    path = results_path().with_name("RESULTS.md")
    path.write_text("\n".join(lines))
    return path


CLOSING_SECTION = "07_ebm_gan_afv"


def closing_tables(table: dict) -> list[str]:
    """The course's two closing tables (lecture 7) as markdown lines, from the notebook's entry; rows that the entry
    does not hold (a lecture not yet run) say so."""
    from dgsp.course_tables import REPRESENTATIONS, SAMPLERS

    if CLOSING_SECTION not in table:
        return []
    entry = table[CLOSING_SECTION]
    m = entry["metrics"]
    pct = lambda key: f"{100 * m[key]:.2f}" if key in m else "not run"  # noqa: E731
    reps = {**REPRESENTATIONS, "afv": (7, "adversarial Fisher vectors of the EBM-GAN's D (count-sketched)")}
    lines = ["## The course's closing tables", "",
             f"From `{CLOSING_SECTION}` ({entry['dataset']}, {entry['mode']} mode, {entry['date']}).", "",
             "Representations: test accuracy (%) of a linear probe and of 1-NN on frozen features.", "",
             "| lecture | features | linear probe | 1-NN |", "| ---: | --- | ---: | ---: |"]
    lines += [f"| {lec or '-'} | {name}: {what} | {pct('probe_' + name)} | {pct('one_nn_' + name)} |"
              for name, (lec, what) in reps.items()]
    lines += ["", "Samples: Fréchet distance in the course classifier's features (lower is better) and the share of "
              "the rarest digit (%).", "", "| lecture | model | Fréchet | rarest class |",
              "| ---: | --- | ---: | ---: |"]
    lines += [f"| {lec} | {what} | {m['frechet_' + name]:.1f} | {pct('min_class_share_' + name)} |"
              if f"frechet_{name}" in m else f"| {lec} | {what} | not run | not run |"
              for name, (lec, what) in SAMPLERS.items()]
    return lines + [""]
