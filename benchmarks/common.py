"""What every benchmark script shares: the command line, the verdicts and the course's data splits.

A benchmark records into the committed ``figures/results.json`` (``DGSP_PUBLISH=1``) unless it runs with
``--quick-check`` (quick mode on the embedded subset: a smoke test that records nothing).
"""
from __future__ import annotations

import argparse
import os
import sys

# A quick check runs in quick mode from the start: dgsp's recipes read the mode when dgsp is imported, which some
# scripts do before they parse their command line (they import this module first).
if "--quick-check" in sys.argv[1:]:
    os.environ["DGSP_QUICK"] = "1"
    os.environ["DGSP_PUBLISH"] = "0"


def parse_args(doc: str | None, add_arguments=None) -> argparse.Namespace:
    """Parse the benchmark's command line (``--quick-check`` plus what ``add_arguments(parser)`` adds) and set the
    environment before dgsp is imported: quick mode and no recording for a quick check, recording otherwise."""
    os.environ.setdefault("DGSP_PUBLISH", "1")
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if add_arguments is not None:
        add_arguments(ap)
    ap.add_argument("--quick-check", action="store_true", help="quick mode on the embedded subset; record nothing")
    args = ap.parse_args()
    if args.quick_check:
        os.environ["DGSP_QUICK"] = "1"
        os.environ["DGSP_PUBLISH"] = "0"
    return args


def verdict(ok: bool, yes: str = "MET", no: str = "NOT MET") -> str:
    return yes if ok else no


def course_splits():
    """The dataset name and the recipes' training and test splits ``(dataset, x_train, y_train, x_test, y_test)``,
    with a one-line header saying what the benchmark runs on (call after :func:`parse_args`)."""
    import dgsp
    from dgsp import recipes

    dataset = dgsp.data.resolve("mnist")
    x_train, y_train = recipes.course_data("train", dataset)
    x_test, y_test = recipes.course_data("test", dataset)
    print(f"{dataset}: train {len(x_train)}, test {len(x_test)} | {dgsp.device()} | "
          f"{'quick' if dgsp.is_quick() else 'full'} mode", flush=True)
    return dataset, x_train, y_train, x_test, y_test
