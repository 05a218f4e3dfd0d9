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


def _pyproject_deps() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return dict(_requirement(s) for s in specs)


def _conda_deps() -> dict[str, str]:
    deps, in_deps = {}, False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        m = re.match(r"^  - ([^\s:]+)\s*$", line)
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
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:")[1].split("\n\n")[0]
    assert "DGSP_QUICK=1" in test_recipe and "--nbval-lax" in test_recipe and "tests notebooks" in test_recipe
