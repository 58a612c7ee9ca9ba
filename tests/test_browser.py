"""The lessons in a real browser: JupyterLab in headless Chromium, driven with Playwright.

nbval compares text outputs; this checks what a learner sees. It opens lessons as saved (no
kernel run) and checks that they read right: progress bars as finished text, figures drawn, no
widget left as a Python repr or an error, no notebook marked modified just by opening it. Then it
runs lesson 6 up to its threshold explorer, moves the slider, and checks that the overlay and the
IoU change and that the picture is drawn at its own size.

It needs Debian's Chromium (`apt-get install chromium`, which .ci/run does) and the Playwright
Python package (the dev extra); Playwright's own browser download is not used. Screenshots go to
runs/browser/ (git-ignored). Without Chromium the test fails, and says why: it never skips.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "runs" / "browser"
LESSONS = ["01_labelling.ipynb", "05_training.ipynb", "06_predicting_and_overlays.ipynb"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of three lessons (running them must not touch the committed files)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's Chromium (apt-get install chromium), as .ci/run does. "
                    "This test drives a real browser and does not skip.")
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    for name in LESSONS:
        shutil.copy(ROOT / "notebooks" / name, root / "notebooks" / name)
    (root / "data").symlink_to(ROOT / "data")
    (root / "runs").mkdir()
    # Render every cell, not only those scrolled into view (JupyterLab 4's windowing), so the text can be read.
    settings = root / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = uuid.uuid4().hex
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--expose-app-in-browser",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly", f"--LabApp.workspaces_dir={root / '.workspaces'}",
         f"--LabApp.user_settings_dir={root / '.settings'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail("jupyter lab exited at start")
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("jupyter lab did not answer within 60 s")
    yield {"url": url, "token": token, "root": root}
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def open_notebook(browser, lab, name: str):
    page = browser.new_page(viewport={"width": 1366, "height": 768})  # a laptop's screen
    # ?reset: open this notebook alone, not also the ones the last page left open in the workspace
    page.goto(f"{lab['url']}/lab/tree/notebooks/{name}?reset&token={lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
    page.wait_for_timeout(3000)  # let the kernel start and the outputs render
    return page


def outputs_text(page) -> str:
    text = page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    return re.sub("[\u00a0\u2007\u202f]", " ", text)  # no-break and figure spaces (tqdm's bars) read as spaces


def assert_reads_right(page, name: str) -> None:
    text = outputs_text(page)
    for bad in ("Error displaying widget", "Loading widget", "ThresholdExplorer(children", "HBox(children",
                "FloatProgress("):
        assert bad not in text, f"{name}: the saved notebook shows {bad!r}"
    unfinished = re.search(r"(?<![0-9])[0-9]{1,2}%\|", text)  # a progress bar saved before it finished
    assert unfinished is None, f"{name}: the saved notebook shows a progress bar at {unfinished.group()}"
    dirty = page.locator(".jp-mod-dirty").count()
    assert dirty == 0, f"{name}: opening it marked it modified (JupyterLab rewrote its metadata)"


def test_saved_lessons_read_right_before_they_run(browser, lab):
    for name in LESSONS:
        page = open_notebook(browser, lab, name)
        assert_reads_right(page, name)
        page.screenshot(path=str(SHOTS / f"saved_{name.removesuffix('.ipynb')}.png"), full_page=True)
        if name.startswith("01"):
            text = outputs_text(page)
            assert "export: 100%" in text and "Exported 80 of 80" in text
        if name.startswith("05"):
            figures = json.loads((ROOT / "notebooks" / name).read_text())
            expected = sum("image/png" in out.get("data", {}) for cell in figures["cells"]
                           for out in cell.get("outputs", []))
            images = page.locator(".jp-RenderedImage img")
            images.last.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            assert images.count() == expected >= 2  # the training curves and the test predictions
            assert page.evaluate("() => [...document.querySelectorAll('.jp-RenderedImage img')]"
                                 ".every(img => img.complete && img.naturalWidth > 0)")
        if name.startswith("06"):
            # the explorer's cell shows its static picture until it runs
            assert "Threshold explorer at threshold" not in outputs_text(page) or \
                page.locator(".jp-RenderedImage img").count() > 0
        page.close()


def test_threshold_explorer_responds_in_jupyterlab(browser, lab):
    page = open_notebook(browser, lab, "06_predicting_and_overlays.ipynb")
    cells = json.loads((lab["root"] / "notebooks" / "06_predicting_and_overlays.ipynb").read_text())["cells"]
    explorer_cell = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("explorer = ThresholdExplorer"))
    page.evaluate(f"""async () => {{
        const panel = window.jupyterapp.shell.currentWidget;
        await panel.sessionContext.ready;
        panel.content.activeCellIndex = {explorer_cell};
        await window.jupyterapp.commands.execute('notebook:run-all-above');
        await window.jupyterapp.commands.execute('notebook:run-cell');
    }}""")
    slider = page.locator(".widget-hslider").first
    slider.wait_for(timeout=240_000)
    image = page.locator(".jupyter-widgets img").first
    text = page.locator(".widget-html-content", has_text="IoU").first
    text.wait_for(timeout=60_000)
    before_text, before_src = text.inner_text(), image.get_attribute("src")
    page.screenshot(path=str(SHOTS / "explorer_before.png"))

    handle = slider.locator(".noUi-handle, .ui-slider-handle").first
    handle.click()
    for _ in range(25):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => !document.body.innerText.includes({json.dumps(before_text)})", timeout=30_000)
    page.screenshot(path=str(SHOTS / "explorer_after.png"))
    assert text.inner_text() != before_text and "IoU" in text.inner_text()
    assert image.get_attribute("src") != before_src

    # drawn at its own size (not stretched and blurred), and small enough to sit beside its sliders on a laptop
    size = page.evaluate("""() => { const img = document.querySelector('.jupyter-widgets img');
        return [img.naturalWidth, img.naturalHeight, img.clientWidth, img.clientHeight]; }""")
    assert size[0] == size[2] and size[1] == size[3], f"the explorer's picture is stretched: {size}"
    box = page.locator(".jupyter-widgets.widget-hbox").first.bounding_box()
    assert box["height"] <= 450, f"the explorer is {box['height']:.0f} px tall"
    assert_reads_right_after_run = outputs_text(page)
    for bad in ("Error displaying widget", "Loading widget"):
        assert bad not in assert_reads_right_after_run
    page.close()
