"""Pictures a lesson would otherwise draw by hand: samples, a batch, the training history,
predictions, a confusion matrix, a threshold sweep, a probability map.

Every function returns a matplotlib Figure and shows nothing by itself: in Jupyter a figure shows
when it is the last expression of a cell; in a script, `fig.savefig("history.png")`.

Photos: a (3, H, W) float tensor in [0, 1] (a SegmentationFolder item), a path, a PIL image or
a uint8 array. Masks: (H, W) integer class indices (numpy or torch), drawn in segkit's palette.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .data import IGNORE_INDEX, open_image
from .draw import blend_overlay, colorize, default_palette, draw_contours
from .metrics import ConfusionMatrix

TRUTH_OUTLINE = (255, 255, 0)  # yellow: the ground truth's outline over a prediction


def _figure(rows: int, cols: int, panel: float = 3.0) -> tuple[Figure, np.ndarray]:
    """A figure released from pyplot at once, so that Jupyter shows it once (as the cell's value)."""
    fig = plt.figure(figsize=(panel * cols, panel * rows), layout="constrained")
    plt.close(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def _rgb(image) -> np.ndarray:
    if isinstance(image, torch.Tensor):  # (3, H, W) in [0, 1], what the network reads
        return (image.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return np.asarray(open_image(image))


def _mask(mask) -> np.ndarray:
    return (mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)).astype(np.uint8)


def _legend(fig: Figure, masks: Sequence[np.ndarray], class_names: Sequence[str] | None,
            ignore_shown: bool = True) -> None:
    """A legend of the classes in `masks`; ignore (255) only where it is drawn (blend_overlay leaves it untinted)."""
    present = sorted(set().union(*(np.unique(m).tolist() for m in masks)) - {0} - (set() if ignore_shown else {IGNORE_INDEX}))
    if class_names and present:
        palette = default_palette()
        handles = [Patch(color=np.array(palette[c]) / 255, label="ignore" if c == IGNORE_INDEX else
                         class_names[c] if c < len(class_names) else str(c)) for c in present]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)


def _iou(pred: np.ndarray, truth: np.ndarray) -> float:
    matrix = ConfusionMatrix(max(int(pred.max(initial=0)), int(truth[truth != IGNORE_INDEX].max(initial=0)), 1) + 1)
    matrix.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(truth.astype(np.int64)))
    return matrix.foreground_iou()


def show_samples(dataset, indices: Sequence[int] | None = None, cols: int = 4, alpha: float = 0.3) -> Figure:
    """(photo, mask) items of a dataset, each mask blended over its photo; the first 8, or `indices`."""
    indices = list(indices) if indices is not None else list(range(min(8, len(dataset))))
    rows = math.ceil(len(indices) / cols)
    fig, axes = _figure(rows, min(cols, len(indices)))
    masks = []
    for ax, index in zip(axes.flat, indices):
        image, mask = dataset[index]
        masks.append(_mask(mask))
        ax.imshow(blend_overlay(_rgb(image), masks[-1], alpha))
        ax.set_title(dataset.stems[index] if hasattr(dataset, "stems") else f"#{index}", fontsize=9)
    _legend(fig, masks, getattr(dataset, "class_names", None), ignore_shown=False)
    return fig


def show_batch(images: torch.Tensor, masks: torch.Tensor, cols: int = 4, alpha: float = 0.3) -> Figure:
    """A batch as the model sees it, after augmentation: images (N, 3, H, W), masks (N, H, W) blended on top."""
    rows = math.ceil(len(images) / cols)
    fig, axes = _figure(rows, min(cols, len(images)))
    for ax, image, mask, i in zip(axes.flat, images, masks, range(len(images))):
        ax.imshow(blend_overlay(_rgb(image), _mask(mask), alpha))
        ax.set_title(f"#{i}", fontsize=9)
    return fig


def _rows(history) -> list[dict]:
    if isinstance(history, (str, Path)):
        history = json.loads(Path(history).read_text())
    if not history:
        raise ValueError("plot_history: the history is empty (no epoch has finished yet).")
    return list(history)


def plot_history(history) -> Figure:
    """Training loss, and validation foreground IoU and mIoU, per epoch (fit's history or a history.json)."""
    rows = _rows(history)
    epochs = [row["epoch"] for row in rows]
    fig, axes = _figure(1, 2, panel=4.0)
    loss_ax, iou_ax = axes[0]
    for ax in (loss_ax, iou_ax):
        ax.set_axis_on()
        ax.grid(alpha=0.3)
        ax.set_xlabel("epoch")
    loss_ax.plot(epochs, [row["train_loss"] for row in rows], marker="." if len(rows) <= 60 else None)
    loss_ax.set(title="training loss", ylabel="loss")
    iou_ax.set(title="validation", ylabel="IoU", ylim=(0, 1))
    for key, colour in (("val_foreground_iou", "tab:green"), ("val_miou", "tab:gray")):
        values = np.array([np.nan if row.get(key) is None else row[key] for row in rows], dtype=float)
        if not np.isnan(values).all():
            iou_ax.plot(epochs, values, color=colour, label=key)
    if iou_ax.lines:
        values = np.array([np.nan if r.get("val_foreground_iou") is None else r["val_foreground_iou"] for r in rows])
        if not np.isnan(values).all():  # fit's best.pt: the first epoch of the highest foreground IoU
            best = int(np.nanargmax(values))
            iou_ax.plot(epochs[best], values[best], "*", color="tab:red", markersize=12,
                        label=f"best {values[best]:.3f} (epoch {epochs[best]}): best.pt")
        iou_ax.legend(loc="lower right")
    else:
        iou_ax.text(0.5, 0.5, "no validation photos", ha="center", transform=iou_ax.transAxes)
    return fig


class LiveHistory:
    """`plot_history`, redrawn in place after each epoch in Jupyter (one output, updated)."""

    def __init__(self) -> None:
        self.handle = None

    def update(self, history: list[dict]) -> None:
        from IPython.display import display

        if self.handle is None:
            self.handle = display(plot_history(history), display_id=True)
        else:
            self.handle.update(plot_history(history))


def show_predictions(photos: Sequence, truths: Sequence | None, preds: Sequence, titles: Sequence[str] | None = None,
                     class_names: Sequence[str] | None = None, alpha: float = 0.3) -> Figure:
    """One row per photo: photo | truth | prediction | overlay (prediction blended, truth outlined in yellow).

    truths None leaves out the truth column and the outline. With truths, each row's title gives
    the photo's foreground IoU.
    """
    columns = ["photo"] + (["truth"] if truths is not None else []) + ["prediction", "overlay"]
    fig, axes = _figure(len(photos), len(columns))
    masks = []
    for i, (photo, pred) in enumerate(zip(photos, preds)):
        photo, pred = _rgb(photo), _mask(pred)
        truth = _mask(truths[i]) if truths is not None else None
        masks += [pred] + ([truth] if truth is not None else [])
        ax = dict(zip(columns, axes[i]))
        title = titles[i] if titles is not None else f"#{i}"
        ax["photo"].imshow(photo)
        ax["photo"].set_title(title + (f"  IoU {_iou(pred, truth):.2f}" if truth is not None else ""), fontsize=9)
        if truth is not None:
            ax["truth"].imshow(colorize(truth), interpolation="nearest")
            ax["truth"].set_title("truth", fontsize=9)
        ax["prediction"].imshow(colorize(pred), interpolation="nearest")
        ax["prediction"].set_title("prediction", fontsize=9)
        overlay = blend_overlay(photo, pred, alpha)
        if truth is not None:
            overlay = draw_contours(overlay, truth, color=TRUTH_OUTLINE, width=max(1, round(max(pred.shape) / 200)))
        ax["overlay"].imshow(overlay)
        ax["overlay"].set_title("overlay" + (" + truth outline" if truth is not None else ""), fontsize=9)
    _legend(fig, masks, class_names)
    return fig


def plot_confusion_matrix(confusion: ConfusionMatrix, class_names: Sequence[str] | None = None) -> Figure:
    """Rows = true class, columns = predicted class, each row divided by its total (the diagonal is recall)."""
    matrix = confusion.mat.double().numpy()
    k = len(matrix)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    with np.errstate(invalid="ignore"):
        shares = matrix / matrix.sum(axis=1, keepdims=True)
    fig, axes = _figure(1, 1, panel=2.5 + 0.7 * k)
    fig.set_figwidth(fig.get_figwidth() + 1.5)  # room for the colour bar beside the title
    ax = axes[0, 0]
    ax.set_axis_on()
    fig.colorbar(ax.imshow(shares, cmap="Blues", vmin=0, vmax=1), ax=ax, label="share of the true class's pixels")
    ax.set(xticks=range(k), yticks=range(k), xticklabels=names, yticklabels=names, xlabel="predicted class",
           ylabel="true class", title="confusion matrix (rows normalised)")
    for t in range(k):
        for p in range(k):
            ax.text(p, t, "-" if np.isnan(shares[t, p]) else f"{shares[t, p]:.2f}", ha="center", va="center",
                    color="white" if shares[t, p] > 0.5 else "black")
    return fig


def threshold_sweep(probs: Sequence[np.ndarray], truths: Sequence[np.ndarray],
                    thresholds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Foreground IoU of `probs > t` over all the photos together, for each threshold t.

    probs: (H, W) foreground probabilities per photo; truths: their masks (0, 1, 255 = ignore).
    Returns (thresholds, ious); default thresholds 0.02, 0.04, ..., 0.98.
    """
    thresholds = np.round(np.arange(1, 50) * 0.02, 2) if thresholds is None else np.asarray(thresholds, float)
    valid = [t != IGNORE_INDEX for t in truths]
    p = np.concatenate([np.asarray(pr)[v] for pr, v in zip(probs, valid)])
    cat = np.concatenate([np.asarray(t)[v] == 1 for t, v in zip(truths, valid)])
    # Sorted once, the number of pixels above each threshold is a binary search.
    everything, on_cats = np.sort(p), np.sort(p[cat])
    # Compared in the probabilities' own format, as `probs > threshold` (predict_mask) compares them.
    cuts = thresholds.astype(p.dtype) if p.dtype.kind == "f" else thresholds
    predicted = everything.size - np.searchsorted(everything, cuts, side="right")
    hits = on_cats.size - np.searchsorted(on_cats, cuts, side="right")
    union = predicted + on_cats.size - hits
    return thresholds, np.where(union > 0, hits / np.maximum(union, 1), np.nan)


def plot_threshold_sweep(probs: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> Figure:
    """Foreground IoU against the threshold, the best one starred. Choose it on validation photos."""
    thresholds, ious = threshold_sweep(probs, truths)
    fig, axes = _figure(1, 1, panel=4.5)
    ax = axes[0, 0]
    ax.set_axis_on()
    ax.plot(thresholds, ious, marker=".")
    best = int(np.nanargmax(ious))
    ax.plot(thresholds[best], ious[best], "*", color="tab:red", markersize=15,
            label=f"best: {thresholds[best]:.2f} (IoU {ious[best]:.3f})")
    ax.axvline(0.5, color="gray", linestyle="--", label=f"0.50 (IoU {threshold_sweep(probs, truths, [0.5])[1][0]:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="threshold (cat where probability > threshold)",
           ylabel="foreground IoU", title="IoU against the threshold")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower center")
    return fig


def show_probability_map(photo, probs: np.ndarray) -> Figure:
    """Photo | P(cat) as a heat map | histogram of the probabilities (log scale).

    The histogram answers "why are my probabilities all 0.9999?": a model over-fitted on a few
    photos is sure of nearly every pixel, right or wrong, so no threshold can help it.
    """
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2:
        raise ValueError(f"show_probability_map: expected (H, W) foreground probabilities, got {probs.shape}.")
    fig, axes = _figure(1, 3, panel=3.6)
    axes[0, 0].imshow(_rgb(photo))
    axes[0, 0].set_title("photo")
    fig.colorbar(axes[0, 1].imshow(probs, vmin=0, vmax=1, cmap="magma"), ax=axes[0, 1], shrink=0.8)
    axes[0, 1].set_title("P(cat)")
    hist = axes[0, 2]
    hist.set_axis_on()
    hist.hist(probs.ravel(), bins=50, range=(0, 1), color="tab:purple", log=True)
    hist.axvline(0.5, color="gray", linestyle="--")
    hist.set(xlabel="P(cat)", ylabel="pixels (log scale)",
             title=f"{((probs < 0.01) | (probs > 0.99)).mean():.0%} of pixels below 0.01 or above 0.99")
    return fig
