"""Matplotlib pictures a lesson would otherwise write by hand: samples, history, predictions,
confusion matrix, threshold sweep, probability map.

Every function returns a matplotlib Figure and shows nothing by itself (no plt.show()):

* In Jupyter, a figure shows when it is the last expression of a cell (`plot_history(history)`)
  or when passed to `display(fig)`. It shows once: the figure is created with pyplot (so the
  notebook's inline backend knows how to draw it) and then released from pyplot right away, so
  it is neither drawn a second time at the end of the cell nor kept alive by pyplot.
* In a script: `fig.savefig("history.png")`.

Images may be paths, PIL images, numpy arrays or (3, H, W) tensors in [0, 1] (what a
SegmentationFolder returns); masks are (H, W) class-index arrays or tensors (the float (1, H, W)
masks of `binary_target=True` datasets work too). Masks are drawn in segkit's palette
(`default_palette()`: 0 black, 1 green, ...), overlays with `blend_overlay`.
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

from segkit.metrics import IGNORE_INDEX, ConfusionMatrix
from segkit.predict import _as_palette, blend_overlay, colorize, draw_contours, load_image, load_mask

__all__ = [
    "show_samples",
    "show_batch",
    "plot_history",
    "show_predictions",
    "plot_confusion_matrix",
    "threshold_sweep",
    "plot_threshold_sweep",
    "show_probability_map",
]

TRUTH_OUTLINE = (255, 255, 0)  # yellow: the ground truth's outline drawn over a prediction


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

def _figure(nrows: int, ncols: int, panel: float = 3.0) -> tuple[Figure, np.ndarray]:
    """A figure with an (nrows, ncols) grid of axes, already released from pyplot (see module doc)."""
    fig = plt.figure(figsize=(panel * ncols, panel * nrows), layout="constrained")
    plt.close(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def _rgb(image) -> np.ndarray:
    return np.asarray(load_image(image))


def _mask(mask) -> np.ndarray:
    return load_mask(mask, allow_float=True)


def _color_mask(mask: np.ndarray, palette) -> np.ndarray:
    return np.asarray(colorize(mask, palette).convert("RGB"))


def _items(sequence_or_batch) -> list:
    """A batch tensor/array (N, ...) or a list -> a list of per-item entries."""
    if isinstance(sequence_or_batch, (torch.Tensor, np.ndarray)):
        return [item for item in sequence_or_batch]
    return list(sequence_or_batch)


def _legend(fig: Figure, masks: Sequence[np.ndarray], class_names, palette) -> None:
    """A legend of the classes present in `masks` (background left out), when names are known."""
    if not class_names:
        return
    present = sorted(set().union(*(np.unique(m).tolist() for m in masks)) - {0, IGNORE_INDEX})
    colours = _as_palette(palette)
    handles = [Patch(color=np.array(colours[c]) / 255, label=class_names[c] if c < len(class_names) else str(c))
               for c in present]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False)


def _miou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Foreground mIoU of one prediction (the lesson's IoU for a binary mask); NaN when undefined."""
    valid = truth != IGNORE_INDEX
    k = int(max(pred.max(initial=0), truth[valid].max(initial=0))) + 1
    matrix = ConfusionMatrix(max(k, 2))
    matrix.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(truth.astype(np.int64)))
    return matrix.miou(include_background=False)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def show_samples(
    dataset_or_pairs,
    n: int = 8,
    cols: int = 4,
    overlay: bool = True,
    alpha: float = 0.3,
    indices: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    palette=None,
) -> Figure:
    """A grid of (photo, mask) samples from a dataset or a list of pairs.

    overlay=True: one panel per sample, the mask blended over the photo. overlay=False: two
    panels per sample, photo | coloured mask. `cols` samples per row; the first n samples, or
    those at `indices`. Titles are the dataset's stems when it has them. class_names (default:
    the dataset's) adds a legend.
    """
    if indices is None:
        indices = list(range(min(n, len(dataset_or_pairs))))
    if not indices:
        raise ValueError("show_samples: nothing to show (the dataset is empty or n is 0).")
    stems = getattr(dataset_or_pairs, "stems", None)
    if class_names is None:
        class_names = getattr(dataset_or_pairs, "class_names", None)

    panels = 1 if overlay else 2
    cols = max(1, min(cols, len(indices)))
    rows = math.ceil(len(indices) / cols)
    fig, axes = _figure(rows, cols * panels)
    masks = []
    for slot, index in enumerate(indices):
        image, mask = dataset_or_pairs[index][:2]
        photo, mask = _rgb(image), _mask(mask)
        masks.append(mask)
        title = stems[index] if stems is not None else f"#{index}"
        row, col = divmod(slot, cols)
        first = axes[row, col * panels]
        if overlay:
            first.imshow(blend_overlay(photo, mask, alpha=alpha, palette=palette))
        else:
            first.imshow(photo)
            axes[row, col * panels + 1].imshow(_color_mask(mask, palette), interpolation="nearest")
            axes[row, col * panels + 1].set_title("mask", fontsize=9)
        first.set_title(title, fontsize=9)
    for ax in axes.flat[len(indices) * panels:]:
        fig.delaxes(ax)
    _legend(fig, masks, class_names, palette)
    fig.suptitle(f"{len(indices)} sample(s): " + ("mask over photo" if overlay else "photo | mask"))
    return fig


def show_batch(images, masks=None, cols: int = 4, alpha: float = 0.3, titles: Sequence[str] | None = None,
               palette=None) -> Figure:
    """One batch as a grid: images (N, 3, H, W) in [0, 1], masks (N, H, W) (or (N, 1, H, W)) blended on top.

    Shows what the model is fed, after augmentation: a flipped photo with an unflipped mask shows here.
    """
    images = _items(images)
    masks = _items(masks) if masks is not None else None
    if not images:
        raise ValueError("show_batch: the batch is empty.")
    if masks is not None and len(masks) != len(images):
        raise ValueError(f"show_batch: {len(images)} images but {len(masks)} masks.")
    cols = max(1, min(cols, len(images)))
    rows = math.ceil(len(images) / cols)
    fig, axes = _figure(rows, cols)
    for i, image in enumerate(images):
        ax = axes.flat[i]
        if masks is None:
            ax.imshow(_rgb(image))
        else:
            ax.imshow(blend_overlay(image, _mask(masks[i]), alpha=alpha, palette=palette))
        ax.set_title(titles[i] if titles is not None else f"#{i}", fontsize=9)
    for ax in axes.flat[len(images):]:
        fig.delaxes(ax)
    fig.suptitle(f"batch of {len(images)}")
    return fig


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def _history_rows(history) -> list[dict]:
    if isinstance(history, (str, Path)):
        path = Path(history)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such history file (fit writes history.json into its out_dir).")
        history = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(history, dict) and "history" in history:  # a checkpoint dict
        history = history["history"]
    if not isinstance(history, (list, tuple)) or not all(isinstance(row, dict) for row in history):
        raise TypeError("plot_history: expected fit's history, a list of dicts (epoch, train_loss, val_loss, val_miou).")
    if not history:
        raise ValueError("plot_history: the history is empty (no epoch finished yet).")
    return list(history)


def _series(rows: list[dict], key: str) -> np.ndarray:
    return np.array([np.nan if row.get(key) is None else float(row[key]) for row in rows])


def plot_history(history, title: str | None = None) -> Figure:
    """Loss (train and validation) and validation mIoU per epoch, side by side.

    history: what `fit` returns (a list of dicts with epoch, train_loss, val_loss, val_miou;
    the val entries may be None), a history.json path, or a checkpoint dict. The best mIoU
    epoch is marked. Falling train loss with rising val loss = over-fitting.
    """
    rows = _history_rows(history)
    epochs = np.array([row.get("epoch", i + 1) for i, row in enumerate(rows)])
    fig, axes = _figure(1, 2, panel=4.0)
    loss_ax, miou_ax = axes[0]
    for ax in (loss_ax, miou_ax):
        ax.set_axis_on()
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)

    marker = "o" if len(rows) <= 30 else None
    loss_ax.plot(epochs, _series(rows, "train_loss"), marker=marker, label="train")
    val_loss = _series(rows, "val_loss")
    if not np.isnan(val_loss).all():
        loss_ax.plot(epochs, val_loss, marker=marker, label="validation")
    loss_ax.set_ylabel("loss")
    loss_ax.set_title("loss")
    loss_ax.legend()

    miou = _series(rows, "val_miou")
    miou_ax.set_title("validation mIoU")
    miou_ax.set_ylabel("mIoU")
    if np.isnan(miou).all():
        miou_ax.text(0.5, 0.5, "no validation data", ha="center", va="center", transform=miou_ax.transAxes)
    else:
        miou_ax.plot(epochs, miou, marker=marker, color="tab:green")
        best = int(np.nanargmax(miou))
        miou_ax.plot(epochs[best], miou[best], marker="*", markersize=14, color="tab:red", linestyle="none",
                     label=f"best {miou[best]:.3f} (epoch {epochs[best]})")
        miou_ax.set_ylim(0, 1)
        miou_ax.legend(loc="lower right")
    fig.suptitle(title or f"training history ({len(rows)} epoch{'s' if len(rows) != 1 else ''})")
    return fig


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------

def _foreground(probs) -> tuple[np.ndarray, str]:
    """(H, W) map to draw for probabilities: binary P(foreground), or multi-class confidence."""
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim == 3 and probs.shape[0] == 1:
        probs = probs[0]
    if probs.ndim == 2:
        return probs, "P(foreground)"
    if probs.ndim == 3:
        return probs.max(axis=0), "confidence (top class probability)"
    raise ValueError(f"expected (H, W) or (C, H, W) probabilities, got shape {probs.shape}.")


def show_predictions(
    images,
    truths,
    preds,
    probs=None,
    titles: Sequence[str] | None = None,
    alpha: float = 0.3,
    class_names: Sequence[str] | None = None,
    palette=None,
) -> Figure:
    """One row per photo: image | truth | prediction | overlay (| probability, when probs is given).

    images: batch (N, 3, H, W) or list; truths: masks (or None to leave that column out);
    preds: predicted masks of the same sizes; probs: per-photo (H, W) or (C, H, W) probabilities.
    The overlay is the prediction blended over the photo with the truth outlined in yellow, so
    misses and false alarms show at a glance; each row's title gives its foreground mIoU.
    """
    images, preds = _items(images), _items(preds)
    truths = _items(truths) if truths is not None else None
    probs = _items(probs) if probs is not None else None
    n = len(images)
    if n == 0:
        raise ValueError("show_predictions: no images.")
    for name, items in (("truths", truths), ("preds", preds), ("probs", probs), ("titles", titles)):
        if items is not None and len(items) != n:
            raise ValueError(f"show_predictions: {n} images but {len(items)} {name}.")

    columns = ["image"] + (["truth"] if truths is not None else []) + ["prediction", "overlay"]
    columns += ["probability"] if probs is not None else []
    fig, axes = _figure(n, len(columns))
    masks, heat = [], None
    for i in range(n):
        photo, pred = _rgb(images[i]), _mask(preds[i])
        truth = _mask(truths[i]) if truths is not None else None
        masks += [pred] + ([truth] if truth is not None else [])
        row = dict(zip(columns, axes[i]))
        name = titles[i] if titles is not None else f"#{i}"
        if truth is not None:
            if truth.shape != pred.shape:
                raise ValueError(f"show_predictions: row {i}: truth {truth.shape} and prediction {pred.shape} differ in size.")
            iou = _miou(pred, truth)
            name += "  IoU " + ("n/a" if math.isnan(iou) else f"{iou:.2f}")
        row["image"].imshow(photo)
        row["image"].set_title(name, fontsize=9)
        if truth is not None:
            row["truth"].imshow(_color_mask(truth, palette), interpolation="nearest")
            row["truth"].set_title("truth", fontsize=9)
        row["prediction"].imshow(_color_mask(pred, palette), interpolation="nearest")
        row["prediction"].set_title("prediction", fontsize=9)
        overlay = blend_overlay(photo, pred, alpha=alpha, palette=palette)
        if truth is not None:
            overlay = draw_contours(overlay, truth, color=TRUTH_OUTLINE, width=max(1, round(max(pred.shape) / 200)))
        row["overlay"].imshow(overlay)
        row["overlay"].set_title("prediction + truth outline" if truth is not None else "overlay", fontsize=9)
        if probs is not None:
            values, label = _foreground(probs[i])
            heat = row["probability"].imshow(values, vmin=0, vmax=1, cmap="magma")
            row["probability"].set_title(label, fontsize=9)
    if heat is not None:
        fig.colorbar(heat, ax=axes[:, -1], shrink=0.8)
    _legend(fig, masks, class_names, palette)
    return fig


def plot_confusion_matrix(cm, class_names: Sequence[str] | None = None, normalize: bool = True,
                          annotate: bool | None = None, cmap: str = "Blues") -> Figure:
    """A confusion matrix as a heat map: rows = true class, columns = predicted class.

    cm: a segkit ConfusionMatrix, or a (K, K) array/tensor of pixel counts.
    normalize=True divides each row by its total: the diagonal is then each class's recall and a
    row shows where that class's pixels went. Rows of classes absent from the truth stay blank.
    annotate: write the values in the cells (default: when K <= 20).
    """
    matrix = cm.mat if isinstance(cm, ConfusionMatrix) else cm
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square (K, K) matrix, got shape {matrix.shape}.")
    k = matrix.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for {k} classes (background first).")
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(totals > 0, matrix / totals, np.nan)
    else:
        values = matrix
    if annotate is None:
        annotate = k <= 20

    size = min(2.5 + 0.6 * k, 12)
    fig = plt.figure(figsize=(size + 1.2, size), layout="constrained")
    plt.close(fig)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, label="share of the true class's pixels" if normalize else "pixels")
    ax.set_xticks(range(k), names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix" + (" (rows normalised: diagonal = recall)" if normalize else " (pixel counts)"))
    if annotate:
        finite = values[np.isfinite(values)]
        middle = (finite.max() if finite.size else 1) / 2
        for t in range(k):
            for p in range(k):
                v = values[t, p]
                text = "-" if not np.isfinite(v) else (f"{v:.2f}" if normalize else f"{int(v)}")
                ax.text(p, t, text, ha="center", va="center", fontsize=8,
                        color="white" if np.isfinite(v) and v > middle else "black")
    return fig


# --------------------------------------------------------------------------------------------
# Probabilities and thresholds
# --------------------------------------------------------------------------------------------

def _flat_pairs(probs, truth, ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate (probabilities, truth) of one or several images into flat arrays, ignore dropped."""
    if isinstance(probs, (list, tuple)):
        if not isinstance(truth, (list, tuple)) or len(truth) != len(probs):
            raise ValueError("threshold_sweep: for a list of probability maps pass a list of masks of the same length.")
        pairs = [_flat_pairs(p, t, ignore_index) for p, t in zip(probs, truth)]
        return np.concatenate([p for p, _ in pairs]), np.concatenate([t for _, t in pairs])
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    if isinstance(truth, torch.Tensor):
        truth = truth.detach().cpu().numpy()
    probs, truth = np.asarray(probs, dtype=np.float32), np.asarray(truth)
    if probs.shape != truth.shape:
        raise ValueError(
            f"threshold_sweep: probabilities {probs.shape} and truth {truth.shape} differ in shape. Binary "
            "probabilities are (H, W) (or (N, H, W)); predict_proba returns them at the photo's size."
        )
    if probs.size and (probs.min() < 0 or probs.max() > 1):
        raise ValueError("threshold_sweep: probabilities must be in [0, 1]; apply torch.sigmoid to logits first.")
    values = set(np.unique(truth).tolist())
    if not values <= {0, 1, ignore_index}:
        raise ValueError(f"threshold_sweep: the truth must hold 0, 1 or {ignore_index} (ignore), found {sorted(values)[:10]}.")
    valid = truth != ignore_index
    return probs[valid].ravel(), truth[valid].ravel() == 1


def threshold_sweep(probs, truth, thresholds=None, ignore_index: int = IGNORE_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """Foreground IoU of `probs > t` for each threshold t: (thresholds, ious), both 1-D float arrays.

    probs: binary probabilities (H, W) / (N, H, W), or a list of maps of different sizes; truth:
    masks of the same shape(s), values 0, 1 and ignore_index. IoU counts all pixels together, as
    `binary_iou` does (NaN where prediction and truth are both empty). Default thresholds:
    0.02, 0.04, ..., 0.98.
    """
    if thresholds is None:
        thresholds = np.round(np.arange(1, 50) * 0.02, 2)
    thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
    if thresholds.size == 0 or thresholds.min() < 0 or thresholds.max() > 1:
        raise ValueError("threshold_sweep: thresholds must be a non-empty list of values in [0, 1].")
    p, is_fg = _flat_pairs(probs, truth, ignore_index)
    # Sorted once, the number of pixels above each threshold is a binary search, for all thresholds.
    all_sorted, fg_sorted = np.sort(p), np.sort(p[is_fg])
    predicted = all_sorted.size - np.searchsorted(all_sorted, thresholds.astype(np.float32), side="right")
    hits = fg_sorted.size - np.searchsorted(fg_sorted, thresholds.astype(np.float32), side="right")
    union = predicted + fg_sorted.size - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        ious = np.where(union > 0, hits / np.maximum(union, 1), np.nan)
    return thresholds, ious


def plot_threshold_sweep(probs, truth, thresholds=None, ignore_index: int = IGNORE_INDEX) -> Figure:
    """Foreground IoU against the threshold, with the best threshold and the default 0.5 marked.

    Choose the threshold on validation images, not on the ones you report results for.
    Arguments as in `threshold_sweep`.
    """
    thresholds, ious = threshold_sweep(probs, truth, thresholds, ignore_index)
    fig, axes = _figure(1, 1, panel=4.5)
    ax = axes[0, 0]
    ax.set_axis_on()
    ax.plot(thresholds, ious, marker="." if thresholds.size <= 60 else None, label="IoU")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("threshold (pixel is foreground if probability > threshold)")
    ax.set_ylabel("foreground IoU")
    ax.grid(alpha=0.3)
    if np.isnan(ious).all():
        ax.text(0.5, 0.5, "IoU undefined: no foreground in truth or prediction", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_title("IoU vs threshold")
        return fig
    best = int(np.nanargmax(ious))
    ax.plot(thresholds[best], ious[best], marker="*", markersize=15, color="tab:red", linestyle="none",
            label=f"best: t = {thresholds[best]:.2f}, IoU {ious[best]:.3f}")
    _, (iou_half,) = threshold_sweep(probs, truth, [0.5], ignore_index)
    half_text = "n/a" if math.isnan(iou_half) else f"{iou_half:.3f}"
    ax.axvline(0.5, color="gray", linestyle="--", label=f"t = 0.50, IoU {half_text}")
    ax.legend(loc="lower center")
    ax.set_title("IoU vs threshold")
    return fig


def show_probability_map(image, probs, class_index: int | None = None, histogram: bool = True,
                         cmap: str = "magma") -> Figure:
    """Photo | probability heat map (with colorbar) | histogram of the probabilities.

    probs: (H, W) foreground probabilities, or (C, H, W): then class `class_index`'s probability,
    or (class_index None) the confidence, the top class's probability. The histogram answers
    "why are my probabilities all 0.9999?": a model over-fitted on a few photos is sure of
    nearly every pixel, so the threshold hardly matters, right or wrong.
    """
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    probs = np.asarray(probs, dtype=np.float32)
    if class_index is not None:
        if probs.ndim != 3 or not 0 <= class_index < probs.shape[0]:
            raise ValueError(f"show_probability_map: class_index {class_index} needs (C, H, W) probabilities with "
                             f"C > {class_index}, got shape {probs.shape}.")
        values, label = probs[class_index], f"P(class {class_index})"
    else:
        values, label = _foreground(probs)
    fig, axes = _figure(1, 3 if histogram else 2, panel=3.6)
    photo_ax, heat_ax = axes[0, 0], axes[0, 1]
    photo_ax.imshow(_rgb(image))
    photo_ax.set_title("photo")
    heat = heat_ax.imshow(values, vmin=0, vmax=1, cmap=cmap)
    heat_ax.set_title(label)
    fig.colorbar(heat, ax=heat_ax, shrink=0.8)
    if histogram:
        hist_ax = axes[0, 2]
        hist_ax.set_axis_on()
        hist_ax.hist(values.ravel(), bins=50, range=(0, 1), color="tab:purple", log=True)
        hist_ax.axvline(0.5, color="gray", linestyle="--")
        sure = float(((values < 0.01) | (values > 0.99)).mean()) if values.size else 0.0
        hist_ax.set_title(f"{sure:.0%} of pixels below 0.01 or above 0.99", fontsize=9)
        hist_ax.set_xlabel(label)
        hist_ax.set_ylabel("pixels (log scale)")
    return fig
