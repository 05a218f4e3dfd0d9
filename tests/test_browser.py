"""Every notebook in a real browser, as a student runs it: `jupyter lab`, open, Run All, play with the widgets.

JupyterLab is started from this venv on a free localhost port, serving a temporary copy of
notebooks/ (saving never dirties the repository), with temporary Jupyter config/data/runtime
folders, in quick mode, and *without* MPLBACKEND: a kernel that inherits MPLBACKEND=Agg shows
every figure as the text ``<Figure size 1000x420 with 3 Axes>``, which this test catches.
Debian's Chromium, driven by Playwright, then opens each notebook, runs all cells, fails on any
error output or on figures that are not shown as images, and changes every control of every
widget once (sliders, dropdowns, checkboxes, number boxes), checking that its figure is redrawn.

Screenshots go to build/browser/<notebook>/, a per-notebook summary (cells run, images shown,
controls changed, seconds per redraw) to build/browser/summary.json and to the terminal.

Needs Chromium (``apt-get install -y chromium``) and playwright (the ``test`` extra); skipped
without them. To watch it: ``pytest tests/test_browser.py --headed`` (needs a display).
``DGSP_BROWSER_LAB_ENV="MPLBACKEND=Agg"`` adds variables to the lab server's environment,
to check that this test fails on the bug it was written for.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
OUT = ROOT / "build" / "browser"
CHROMIUM = os.environ.get("DGSP_CHROMIUM", "/usr/bin/chromium")
INSTALL = "apt-get update && apt-get install -y chromium"
# No network here: without the background-networking flags Chromium keeps trying to reach
# Google's services and logs every refused connection.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_ALL_TIMEOUT = float(os.environ.get("DGSP_BROWSER_RUN_TIMEOUT", 900))  # seconds per notebook
REDRAW_TIMEOUT = float(os.environ.get("DGSP_BROWSER_REDRAW_TIMEOUT", 120))  # the GAN widget retrains
LAB_START_TIMEOUT = 120
FIGURE_AS_TEXT = re.compile(r"<Figure size [\d.]+x[\d.]+ with \d+ Axes>")
MAKES_FIGURES = re.compile(r"\bplt\.|savefig\(|\bviz\.|\bwidgets\.|_explorer\(|latent_traversal\(")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

if not Path(CHROMIUM).is_file():
    pytest.skip(f"Chromium not found at {CHROMIUM}: install it with `{INSTALL}`", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]' (and `%s`)" % INSTALL)


# --------------------------------------------------------------------------- JupyterLab server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


class Lab:
    """A JupyterLab server of this venv; ``api()`` calls its REST API with the token."""

    def __init__(self, tmp: Path):
        self.root = tmp / "notebooks"
        shutil.copytree(ROOT / "notebooks", self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        config = tmp / "jupyter-config"
        settings = config / "lab" / "user-settings" / "@jupyterlab"
        # every cell in the DOM (the default windowing leaves off-screen cells unrendered),
        # and no news/update toasts over the notebook
        _write_json(settings / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"})
        _write_json(settings / "apputils-extension" / "notification.jupyterlab-settings",
                    {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True})
        self.env = {k: v for k, v in os.environ.items()
                    if k not in {"MPLBACKEND", "DGSP_PUBLISH", "JUPYTER_PATH", "JUPYTERLAB_DIR"}}
        self.env.update(
            DGSP_QUICK="1", DGSP_NO_DOWNLOAD="1", DGSP_HOME=str(ROOT), PYTHONUNBUFFERED="1",
            JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(tmp / "jupyter-data"),
            JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(config / "lab" / "user-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(config / "lab" / "workspaces"))
        for item in os.environ.get("DGSP_BROWSER_LAB_ENV", "").split():  # only to test this test
            key, _, value = item.partition("=")
            self.env[key] = value
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        OUT.mkdir(parents=True, exist_ok=True)
        self.log_path = OUT / "lab.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
             "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=self.env, cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)  # its own process group: teardown ends the server and its kernels

    def log_tail(self, n: int = 40) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + LAB_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with status {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("/api/status")
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within {LAB_START_TIMEOUT} s:\n{self.log_tail()}")
                time.sleep(0.5)

    def check_kernelspec(self) -> None:
        """The notebooks' ``python3`` kernel must be this venv's python (not another install's)."""
        specs = self.api("/api/kernelspecs")["kernelspecs"]
        assert "python3" in specs, f"no python3 kernelspec, only {sorted(specs)}"
        found = subprocess.run([sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"], env=self.env,
                               capture_output=True, text=True, check=True)
        spec = json.loads(found.stdout)["kernelspecs"]["python3"]
        argv0 = spec["spec"]["argv"][0]
        # jupyter_client starts "python" as the server's own interpreter, i.e. sys.executable
        ours = argv0 in {"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"} or \
            Path(argv0).resolve() == Path(sys.executable).resolve()
        assert ours, f"kernelspec python3 ({spec['resource_dir']}) runs {argv0}, not {sys.executable}"

    def shutdown_kernels(self) -> None:
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", method="DELETE")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # the server and the kernels it started
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("lab"))
    try:
        server.wait_until_up()
        server.check_kernelspec()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium(request):  # not `browser`: that is pytest-playwright's fixture, parametrized by browser name
    headed = bool(request.config.getoption("--headed", default=False))  # pytest-playwright's options
    slow_mo = float(request.config.getoption("--slowmo", default=0) or 0)
    args = [a for a in CHROMIUM_ARGS if not (headed and a == "--headless")]
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=not headed, slow_mo=slow_mo)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def summary(request):
    """Per-notebook results, written to build/browser/summary.json and printed at the end."""
    results: dict[str, dict] = {}
    yield results
    _write_json(OUT / "summary.json", results)
    lines = ["", "browser test summary (build/browser/summary.json, screenshots in build/browser/):"]
    lines += [line for name in sorted(results) for line in _summary_lines(results[name])]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():  # shown without -s too
        for line in lines:
            reporter.write_line(line)


def _summary_lines(r: dict) -> list[str]:
    lines = [f"  {r['notebook']}: {r.get('cells_run', '?')}/{r.get('code_cells', '?')} cells run in "
             f"{r.get('seconds_run_all', '?')} s, {r.get('images_shown', '?')} images shown, "
             f"{r.get('controls_changed', 0)} controls changed" + ("" if r.get("passed") else "  [FAILED]")]
    for c in r.get("controls", []):
        redraw = "NOT redrawn" if c.get("seconds") is None else f"redrawn in {c['seconds']:.1f} s" + (
            "" if c.get("image_changed") else " (the same image)")
        lines.append(f"    widget {c['widget']} {c['kind']} {c['label']!r}: {c['before']} -> {c['after']}, {redraw}")
    return lines


# --------------------------------------------------------------------------- page helpers (JS)
# The notebook panel of `name`, found through the app object (--LabApp.expose_app_in_browser).
JS_PANEL = """
const app = window.jupyterapp;
const panel = app && app.shell ? Array.from(app.shell.widgets('main')).find(
    w => w.context && w.context.path === name && w.content && w.content.model) : null;
"""

JS_STATE = "(name) => {" + JS_PANEL + """
  if (!panel || !panel.sessionContext) return {ready: false};
  const session = panel.sessionContext.session;
  const kernel = session && session.kernel;
  const cells = panel.content.model.cells;
  let code = 0, executed = 0, errors = 0;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code' || !c.sharedModel.getSource().trim()) continue;
    code += 1;
    if (c.executionCount !== null && c.executionCount !== undefined) executed += 1;
    for (let j = 0; j < c.outputs.length; j++) if (c.outputs.get(j).type === 'error') errors += 1;
  }
  const running = Array.from(panel.content.node.querySelectorAll('.jp-InputPrompt'))
      .filter(e => e.textContent.includes('*')).length;
  return {ready: true, kernel: kernel ? kernel.status : null, code, executed, errors, running};
}"""

JS_RUN_ALL = "(name) => {" + JS_PANEL + """
  app.shell.activateById(panel.id);
  app.commands.execute('notebook:run-all-cells');  // its promise settles only when all cells ran
  return true;
}"""

# Per code cell: its source, outputs (as nbformat JSON) and the images shown in its DOM node.
JS_CELLS = "(name) => {" + JS_PANEL + """
  const out = [];
  panel.content.widgets.forEach((w, i) => {
    const m = w.model;
    if (m.type !== 'code') return;
    const imgs = Array.from(w.node.querySelectorAll('.jp-OutputArea-output img'));
    out.push({index: i, source: m.sharedModel.getSource(), execution_count: m.executionCount,
              outputs: m.outputs.toJSON(), images: imgs.length,
              broken_images: imgs.filter(im => !im.complete || im.naturalWidth === 0).length});
  });
  return out;
}"""

# Widgets with controls: tag each top-level widget view and its controls so that Python can
# address them with locators; report what they are.
JS_WIDGETS = "(name) => {" + JS_PANEL + """
  const roots = Array.from(panel.content.node.querySelectorAll('.jupyter-widgets'))
      .filter(e => !e.parentElement.closest('.jupyter-widgets'));
  const found = [];
  roots.forEach(root => {
    const controls = Array.from(root.querySelectorAll(
        '.noUi-handle[role="slider"], select, input[type="checkbox"], input[type="number"]')).filter(e => !e.disabled);
    if (!controls.length) return;  // e.g. a progress bar
    const w = found.length + 1;
    root.setAttribute('data-dgsp-widget', w);
    found.push({widget: w, controls: controls.map((e, j) => {
      e.setAttribute('data-dgsp-control', j + 1);
      const row = e.closest('.widget-inline-hbox');
      const clean = n => (n ? n.textContent : '').replace(/[\u200b\s]+/g, ' ').trim();
      const label = clean(row && row.querySelector('.widget-label')) || clean(e.closest('label')) || clean(row);
      const kind = e.tagName === 'SELECT' ? 'dropdown' : e.type === 'checkbox' ? 'checkbox'
          : e.type === 'number' ? 'number' : 'slider';
      return {control: j + 1, kind, label};
    })});
  });
  return {views: roots.length, widgets: found};
}"""

JS_WIDGET_STATE = """(root) => {
  const imgs = Array.from(root.querySelectorAll('.widget-output img'));
  const text = Array.from(root.querySelectorAll(
      '.widget-output .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
      .map(e => e.textContent).join('\\n');
  return {imgs: imgs.map(im => ({src: im.getAttribute('src') || '', old: im.hasAttribute('data-dgsp-old'),
                                 ok: im.complete && im.naturalWidth > 0})), text};
}"""


def _poll(page, name: str, timeout: float, what: str, done, every: float = 0.5) -> dict:
    """Evaluate the notebook state every ``every`` seconds until ``done(state)`` holds twice in a row."""
    deadline, hits, state = time.monotonic() + timeout, 0, {}
    while time.monotonic() < deadline:
        state = page.evaluate(JS_STATE, name)
        if state.get("kernel") == "dead":
            pytest.fail(f"{name}: the kernel died ({state})")
        hits = hits + 1 if done(state) else 0
        if hits >= 2:
            return state
        time.sleep(every)
    pytest.fail(f"{name}: {what} not reached within {timeout:.0f} s; last state {state}")


def _error_text(cell: dict) -> str | None:
    for o in cell["outputs"]:
        if o.get("output_type") == "error":
            tb = ANSI.sub("", "\n".join(o.get("traceback", [])))
            return f"cell {cell['index']}: {o.get('ename')}: {o.get('evalue')}\n" + "\n".join(tb.splitlines()[-15:])
    return None


def _text_outputs(cell: dict) -> str:
    parts = []
    for o in cell["outputs"]:
        if o.get("output_type") == "stream":
            parts.append("".join(o.get("text", "")))
        data = o.get("data", {})
        if "text/plain" in data and not any(k.startswith("image/") for k in data):
            parts.append("".join(data["text/plain"]))
    return "\n".join(parts)


def _screenshots(page, name: str, folder: Path, limit: int = 60) -> int:
    """The whole notebook, one viewport at a time (the notebook scrolls inside the page)."""
    js_scroll = "([name, y]) => {" + JS_PANEL + """
      const s = panel.content.node.querySelector('.jp-WindowedPanel-outer') || panel.content.node;
      s.scrollTop = y;
      return [s.scrollTop, s.scrollHeight, s.clientHeight];
    }"""
    top, height, client = page.evaluate(js_scroll, [name, 0])
    n = 0
    for n, y in enumerate(range(0, max(height, 1), max(client - 40, 100))[:limit], start=1):
        page.evaluate(js_scroll, [name, y])
        page.wait_for_timeout(150)
        page.screenshot(path=str(folder / f"page-{n:02d}.png"))
    page.evaluate(js_scroll, [name, 0])
    return n


def _change_control(page, control, kind: str) -> tuple[str, str]:
    """Change one control by one step, as a person would; returns (value before, value after)."""
    if kind == "dropdown":
        before = control.input_value()
        options = control.evaluate("s => Array.from(s.options).map(o => o.value)")
        after = next(v for v in options if v != before)
        control.select_option(after)
        return before, after
    if kind == "checkbox":
        before = control.is_checked()
        control.click()
        return str(before), str(control.is_checked())
    if kind == "number":  # e.g. a seed: one more, submitted with Enter
        before = control.input_value()
        after = str(float(before or 0) + 1).removesuffix(".0")
        control.fill(after)
        control.press("Enter")
        return before, after
    # the value as the widget shows it (its readout), else the slider's own
    value = ("h => { const row = h.closest('.widget-inline-hbox');"
             " const r = row && row.querySelector('.widget-readout');"
             " return (r && r.textContent.trim()) || h.getAttribute('aria-valuetext')"
             " || h.getAttribute('aria-valuenow'); }")
    before = control.evaluate(value)
    control.focus()
    for key in ("ArrowRight", "ArrowLeft", "ArrowLeft"):  # at the maximum, step left instead
        page.keyboard.press(key)
        page.wait_for_timeout(200)
        after = control.evaluate(value)
        if after != before:
            return before, after
    pytest.fail(f"slider stayed at {before} under the arrow keys")


# --------------------------------------------------------------------------- the test
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_browser(notebook: Path, lab: Lab, chromium, summary):
    name, folder = notebook.name, OUT / notebook.stem
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    result = summary[notebook.stem] = {"notebook": name, "passed": False, "controls": [], "controls_changed": 0}
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    try:
        # ---- open with a fresh workspace, wait for an idle kernel, Run All
        page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
        _poll(page, name, 180, "an idle kernel", lambda s: s.get("ready") and s.get("kernel") == "idle")
        t0 = time.monotonic()
        page.evaluate(JS_RUN_ALL, name)
        state = _poll(page, name, RUN_ALL_TIMEOUT, "the end of Run All",
                      lambda s: s.get("kernel") == "idle" and not s.get("running")
                      and (s.get("executed") == s.get("code") or s.get("errors")), every=1.0)
        result["seconds_run_all"] = round(time.monotonic() - t0, 1)
        page.wait_for_timeout(1000)  # the last images decode
        cells = page.evaluate(JS_CELLS, name)
        result.update(code_cells=state["code"], cells_run=state["executed"],
                      images_shown=sum(c["images"] for c in cells))
        result["screenshots_run_all"] = _screenshots(page, name, folder)

        errors = [e for e in map(_error_text, cells) if e]
        assert not errors, f"{name}: error output after Run All:\n" + "\n\n".join(errors)
        assert state["executed"] == state["code"], f"{name}: only {state['executed']}/{state['code']} cells ran"
        as_text = [c["index"] for c in cells if FIGURE_AS_TEXT.search(_text_outputs(c))]
        assert not as_text, (f"{name}: cells {as_text} show a figure as text ('<Figure size ...>') instead of an "
                             f"image: is MPLBACKEND=Agg in the lab server's environment?")
        broken = [c["index"] for c in cells if c["broken_images"]]
        assert not broken, f"{name}: cells {broken} show images that did not load"
        shows = [c["index"] for c in cells if "plt.show(" in c["source"] and not c["images"]]
        assert not shows, f"{name}: cells {shows} call plt.show() but show no image"
        if any(MAKES_FIGURES.search(c["source"]) for c in cells):
            assert result["images_shown"], f"{name} draws figures but the browser shows no image"

        # ---- every control of every widget, once
        views = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                    for c in cells for o in c["outputs"])
        found = page.evaluate(JS_WIDGETS, name)
        result["widgets"] = len(found["widgets"])
        assert found["views"] >= views, (f"{name}: {views} widgets displayed but only {found['views']} rendered "
                                         f"(is jupyterlab_widgets installed in the lab's environment?)")
        for w in found["widgets"]:
            root = page.locator(f'[data-dgsp-widget="{w["widget"]}"]')
            root.scroll_into_view_if_needed()
            for c in w["controls"]:
                record = {"widget": w["widget"], "control": c["control"], "kind": c["kind"], "label": c["label"],
                          "seconds": None, "image_changed": False}
                result["controls"].append(record)
                shown = root.evaluate(JS_WIDGET_STATE)
                assert shown["imgs"], f"{name}: widget {w['widget']} shows no image before its controls are touched"
                root.evaluate("r => r.querySelectorAll('.widget-output img')"
                              ".forEach(im => im.setAttribute('data-dgsp-old', ''))")
                old = {im["src"] for im in shown["imgs"]}
                control = root.locator(f'[data-dgsp-control="{c["control"]}"]')
                t1 = time.monotonic()
                record["before"], record["after"] = _change_control(page, control, c["kind"])
                while True:
                    now = root.evaluate(JS_WIDGET_STATE)
                    if re.search(r"Traceback|\b\w*Error\b", now["text"]):  # stderr in the widget's output
                        pytest.fail(f"{name}: widget {w['widget']} ({c['label']!r} {record['before']} -> "
                                    f"{record['after']}) shows an error:\n{ANSI.sub('', now['text'])[-2000:]}")
                    new = [im for im in now["imgs"] if not im["old"] and im["ok"]]
                    if new:  # a new figure: the callback ran and the output was redrawn
                        record["seconds"] = round(time.monotonic() - t1, 2)
                        record["image_changed"] = any(im["src"] not in old for im in new)
                        break
                    if time.monotonic() - t1 > REDRAW_TIMEOUT:
                        pytest.fail(f"{name}: widget {w['widget']}: changing {c['kind']} {c['label']!r} "
                                    f"({record['before']} -> {record['after']}) did not redraw its figure "
                                    f"within {REDRAW_TIMEOUT:.0f} s")
                    page.wait_for_timeout(100)
                result["controls_changed"] += 1
                _poll(page, name, REDRAW_TIMEOUT, "an idle kernel after the redraw",
                      lambda s: s.get("kernel") == "idle")
                root.screenshot(path=str(folder / f"widget{w['widget']}-control{c['control']}.png"))
            # a control may be inert in the widget's current state (e.g. a clip value under a loss that
            # does not clip) and redraw the same picture, but a widget none of whose controls changes
            # its figure is broken
            mine = [r for r in result["controls"] if r["widget"] == w["widget"]]
            assert any(r["image_changed"] for r in mine), \
                f"{name}: widget {w['widget']} redraws the same figure whatever its controls say: {mine}"
        page.screenshot(path=str(folder / "after-widgets.png"))
        assert not page_errors, f"{name}: JavaScript errors in the page:\n" + "\n".join(page_errors[:5])
        result["passed"] = True
    finally:
        result["page_errors"] = page_errors
        for line in _summary_lines(result):
            print(line)
        _write_json(OUT / "summary.json", summary)
        context.close()
        try:
            lab.shutdown_kernels()  # a kernel holds ~1 GB: one at a time
        except OSError:
            pass
