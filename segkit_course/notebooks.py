"""Running course notebooks and saving them so that they read well before anyone runs them.

A notebook saved right after a run holds its widgets as references to live objects that no
longer exist. Opened without running (on GitHub, or untrusted in JupyterLab), a progress bar
then reads "0%| 0/160" above a cell that says 160 files were exported, and the threshold
explorer shows its Python repr. `freeze_widgets` replaces each progress bar by the plain text of
its last state, and leaves other widgets with their static fallbacks (the explorer's PNG and
sentence); the live widget appears again as soon as the cell runs.
"""

from __future__ import annotations

import html
import os
import subprocess
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}  # what JupyterLab writes


def _progress_text(state: dict, model_id: str) -> str | None:
    """The final line of a tqdm.notebook bar (an HBox of HTML, FloatProgress, HTML), or None for other widgets."""
    box = state.get(model_id, {})
    children = [state.get(ref.removeprefix("IPY_MODEL_"), {}) for ref in box.get("state", {}).get("children", [])]
    kinds = [child.get("model_name") for child in children]
    if box.get("model_name") != "HBoxModel" or kinds != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (child["state"] for child in children)
    fraction = bar.get("value", 0) / bar["max"] if bar.get("max") else 0
    filled = round(10 * min(fraction, 1.0))
    text = f"{left.get('value', '')}|{'█' * filled}{' ' * (10 - filled)}|{right.get('value', '')}"
    return html.unescape(text) + "\n"  # tqdm writes the two labels as HTML


def freeze_widgets(notebook) -> None:
    """Progress bars -> their final text (stderr, as tqdm writes in a terminal); other widgets -> their
    static fallbacks (image/png, text/plain). The stored widget state is dropped."""
    state = notebook.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is not None:
                text = _progress_text(state, view.get("model_id", ""))
                if text is not None:
                    outputs.append(nbformat.v4.new_output("stream", name="stderr", text=text))
                    continue
                del output.data[WIDGET_VIEW]
                if not output.data:
                    continue
            outputs.append(output)
        cell.outputs = outputs


def run_notebook(path: Path, timeout: int = 900, env: dict | None = None) -> float:
    """Run a notebook top to bottom in a fresh kernel, in its own folder; save it frozen. Returns the seconds taken."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            record_timing=False, resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    client.execute(env={**os.environ, **(env or {})}, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    freeze_widgets(notebook)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    nbformat.write(notebook, path)
    return seconds
