"""The project's own promises: one dependency list, clean notebooks, CI = the README's test command."""
import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name


def _requirement(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _recipe(target: str) -> str:
    """The Makefile recipe of ``target`` (its rule line and the lines up to the next blank line)."""
    makefile = (ROOT / "Makefile").read_text()
    return makefile.split(f"\n{target}:")[1].split("\n\n")[0]


def _pyproject_deps() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return dict(_requirement(s) for s in specs)


def _conda_deps() -> dict[str, str]:
    """conda-forge packages (``  - name>=x``) and pip-only ones (``      - name>=x`` under ``- pip:``)."""
    deps, in_deps = {}, False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        m = re.match(r"^  (?:    )?- ([^\s:#-][^\s:]*)\s*$", line)
        if in_deps and m:
            name, spec = _requirement(m.group(1))
            deps[name] = spec
    return deps


def test_pyproject_and_environment_yml_agree():
    py = {CONDA_NAMES.get(k, k): v for k, v in _pyproject_deps().items()}
    conda = {k: v for k, v in _conda_deps().items() if k not in {"python", "pip"}}
    assert py == conda


def test_dependencies_have_lower_bounds_only():
    for name, spec in _pyproject_deps().items():
        assert spec.startswith(">="), f"{name} should have a lower bound only, got {spec!r}"
        assert "==" not in spec and "<" not in spec
    assert _pyproject_deps()["torch"] == ">=2.4"


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        nb = json.loads(path.read_text())
        dirty = [i for i, c in enumerate(nb["cells"]) if c.get("outputs") or c.get("execution_count")]
        assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts"


def test_notebooks_are_numbered_and_end_with_exercises():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert re.match(r"^\d\d_[a-z0-9_]+\.ipynb$", path.name)
        cells = json.loads(path.read_text())["cells"]
        tail = "".join("".join(c["source"]) for c in cells[-3:] if c["cell_type"] == "markdown")
        assert "Exercises" in tail, f"{path.name} should end with exercises"


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [l.strip() for l in ci.splitlines() if l.strip() and not l.strip().startswith("#")]
    assert "make test" in commands
    assert "make test" in (ROOT / "README.md").read_text()
    test_recipe = _recipe("test")
    assert "DGSP_QUICK=1" in test_recipe and "notebooks --nbval-lax" in test_recipe
    assert "tests/test_browser.py notebooks" in test_recipe and "tests --ignore=tests/test_browser.py" in test_recipe


def test_browser_test_dependencies_are_declared():
    deps = _pyproject_deps()
    assert "playwright" in deps and "pytest-playwright" in deps
    assert "playwright" in _conda_deps() and "pytest-playwright" in _conda_deps()


def test_makefile_keeps_agg_and_publishing_out_of_the_lab():
    """`make lab` must show figures inline: no global MPLBACKEND, and only course/bench publish."""
    makefile = (ROOT / "Makefile").read_text()
    assert not re.search(r"^\s*export\s+MPLBACKEND", makefile, re.M), "MPLBACKEND must not be exported globally"
    assert not re.search(r"^\s*export\s+DGSP_PUBLISH", makefile, re.M)
    lab, test = _recipe("lab"), _recipe("test")
    assert "MPLBACKEND=Agg" not in lab and "-u MPLBACKEND" in lab
    for recipe in (lab, test):
        assert "DGSP_PUBLISH=1" not in recipe and "-u DGSP_PUBLISH" in recipe
    assert "MPLBACKEND=Agg" in test and "MPLBACKEND=Agg" in _recipe("bench")
    assert "DGSP_PUBLISH=1" in _recipe("course") and "DGSP_PUBLISH=1" in _recipe("bench")


def test_ci_installs_chromium_for_the_browser_test():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install" in ci and "chromium" in ci
    assert ci.index("chromium") < ci.index("make test")


def test_python_lines_fit_in_120_characters():
    """The package, tests and benchmarks are read side by side with the papers: no line runs past 120 characters."""
    long = [f"{p.relative_to(ROOT)}:{i}" for folder in ("dgsp", "tests", "benchmarks")
            for p in sorted((ROOT / folder).rglob("*.py"))
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if len(line) > 120]
    assert not long, f"lines longer than 120 characters: {long}"
