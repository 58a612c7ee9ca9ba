"""Segmentation metrics from a confusion matrix accumulated over a whole dataset.

Count first, divide last: :class:`ConfusionMatrix` adds up a (K, K) table of pixel counts
over every ``update`` (rows = true class, columns = predicted class) and every metric is
computed from that table on demand. A dataset's mIoU is therefore the IoU of all its pixels
together, not the mean of per-image IoUs.

Absent classes. IoU = TP / (TP + FP + FN) is 0 / 0 for a class that appears neither in the
truth nor in the prediction. segkit reports NaN for that class and leaves it out of every
mean (``nanmean``), the convention of the FCN evaluation code (Long et al., 2015) and of
mmsegmentation. Other libraries differ:

* torchmetrics ``MulticlassJaccardIndex(average="macro")`` and ``MulticlassF1Score(average="macro")``
  also leave such classes out of the mean (same mIoU and mean Dice as segkit), but with
  ``average="none"`` they report 0 for them (``zero_division=0``), not NaN.
* torchmetrics ``MulticlassAccuracy(average="macro")`` skips a class only if it is absent from
  truth AND prediction; a class that is predicted but absent from the truth counts as recall 0.
  segkit's ``mean_pixel_accuracy`` (FCN's "mean accuracy") skips every class absent from the
  truth, since recall is undefined there, so it can be higher.
* torchmetrics ``segmentation.MeanIoU`` computes IoU per image and averages over images, and
  reports -1 for absent classes with ``per_class=True``; ``segmentation.DiceScore`` also
  averages per image unless ``aggregation_level="global"``. Neither knows an ignore index.
* torchvision's references/segmentation prints ``iu.mean()``, which becomes NaN as soon as
  one class is absent.

Binary models are evaluated with ``ConfusionMatrix(2)`` (0 = background, 1 = foreground);
their headline number, as in the lesson, is the foreground IoU, ``miou(include_background=False)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["IGNORE_INDEX", "ConfusionMatrix", "binary_iou", "logits_to_pred"]

IGNORE_INDEX = 255
"""Mask value of pixels nobody labelled (VOC's outline colour, labelme's ``__ignore__``)."""


def _as_tensor(x, name: str, where: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        # np.asarray(pil_image) is read-only, which torch.from_numpy warns about: copy those
        x = np.ascontiguousarray(x) if x.flags.writeable else np.array(x)
        return torch.from_numpy(x)
    raise TypeError(f"segkit.metrics.{where}: {name} must be a torch.Tensor or numpy array, got {type(x).__name__}.")


def _nan_to_none(values: Sequence[float]) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values]


def _float_or_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


class ConfusionMatrix:
    """Pixel confusion matrix for K classes, accumulated over many batches.

    Args:
        num_classes: K >= 2 (background included; a binary model uses K = 2).
        ignore_index: target value whose pixels are skipped (255); None skips nothing.
        device: where ``mat`` starts; it then follows the tensors given to ``update``.

    Attributes:
        mat: (K, K) int64, ``mat[t, p]`` = number of pixels of true class t predicted as p.

    Metric methods return CPU float64 results (float64 keeps counts above 2**24 exact and
    is not available on every accelerator). NaN marks an undefined value (see the module
    docstring on absent classes).
    """

    def __init__(self, num_classes: int, ignore_index: int | None = IGNORE_INDEX, device=None) -> None:
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"segkit.metrics.ConfusionMatrix: num_classes must be an int >= 2 (background included), got "
                f"{num_classes!r}. A binary model (1 output channel) is evaluated with ConfusionMatrix(2)."
            )
        if ignore_index is not None and 0 <= ignore_index < num_classes:
            raise ValueError(
                f"segkit.metrics.ConfusionMatrix: ignore_index={ignore_index} is also a class index "
                f"(0..{num_classes - 1}); use a value outside that range, e.g. {IGNORE_INDEX}."
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def reset(self) -> None:
        """Set every count back to 0 (keeps the device)."""
        self.mat.zero_()

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add one batch. pred, target: same shape (e.g. (N, H, W)), integer class indices.

        pred values must be in [0, K); target values in [0, K) or ``ignore_index``. Counting
        runs on pred's device (``torch.bincount``); ``mat`` moves there on first use.
        """
        pred = _as_tensor(pred, "pred", "ConfusionMatrix.update")
        target = _as_tensor(target, "target", "ConfusionMatrix.update")
        if pred.shape != target.shape:
            raise ValueError(
                f"segkit.metrics.ConfusionMatrix.update: pred {tuple(pred.shape)} and target "
                f"{tuple(target.shape)} must have the same shape. Turn (N, C, H, W) logits into "
                "(N, H, W) class indices with logits_to_pred(logits)."
            )
        for name, t in (("pred", pred), ("target", target)):
            if t.is_floating_point() or t.is_complex():
                raise TypeError(
                    f"segkit.metrics.ConfusionMatrix.update: {name} must hold integer class indices, got "
                    f"{t.dtype}. Use logits_to_pred(logits) for predictions and masks of dtype int64."
                )
        k = self.num_classes
        pred = pred.long()
        target = target.to(pred.device, non_blocking=True).long()
        if self.mat.device != pred.device:
            self.mat = self.mat.to(pred.device)

        bad_pred = (pred < 0) | (pred >= k)
        if bool(bad_pred.any()):
            found = torch.unique(pred[bad_pred])[:10].tolist()
            raise ValueError(
                f"segkit.metrics.ConfusionMatrix.update: pred holds values {found} outside 0..{k - 1}. "
                f"Is num_classes={k} right for this model?"
            )
        if self.ignore_index is None:
            valid = torch.ones_like(target, dtype=torch.bool)
        else:
            valid = target != self.ignore_index
        bad_target = valid & ((target < 0) | (target >= k))
        if bool(bad_target.any()):
            found = torch.unique(target[bad_target])[:10].tolist()
            raise ValueError(
                f"segkit.metrics.ConfusionMatrix.update: target holds values {found}, expected 0..{k - 1} or "
                f"{self.ignore_index} (ignore). Check num_classes and the mask files."
            )
        # Ignored pixels go to an extra bin k*k that is dropped: no boolean indexing, no sync.
        index = torch.where(valid, target * k + pred, torch.full_like(target, k * k))
        counts = torch.bincount(index.flatten(), minlength=k * k + 1)[: k * k]
        self.mat += counts.reshape(k, k)

    def _counts(self) -> tuple[Tensor, Tensor, Tensor]:
        """(diag, truth per class (row sums), prediction per class (column sums)), CPU float64."""
        mat = self.mat.detach().cpu().double()
        return mat.diagonal(), mat.sum(1), mat.sum(0)

    def iou(self) -> Tensor:
        """(K,) IoU per class = TP / (TP + FP + FN); NaN where the class is absent from truth and prediction."""
        tp, truth, pred = self._counts()
        return tp / (truth + pred - tp)  # 0 / 0 -> NaN

    def miou(self, include_background: bool = True) -> float:
        """Mean IoU over the classes where it is defined; False leaves class 0 out (the lesson's mIoU).

        NaN when no class is defined (nothing counted yet, or only ignored pixels).
        """
        iou = self.iou() if include_background else self.iou()[1:]
        return float(torch.nanmean(iou))

    def dice(self) -> Tensor:
        """(K,) Dice = F1 = 2 TP / (2 TP + FP + FN) per class; NaN where IoU is NaN."""
        tp, truth, pred = self._counts()
        return 2 * tp / (truth + pred)

    def pixel_accuracy(self) -> float:
        """Correct pixels / counted pixels (ignored pixels excluded); NaN when nothing was counted."""
        tp, truth, _ = self._counts()
        return float(tp.sum() / truth.sum())

    def class_accuracy(self) -> Tensor:
        """(K,) recall per class = TP / (TP + FN); NaN where the class is absent from the truth."""
        tp, truth, _ = self._counts()
        return tp / truth

    def mean_pixel_accuracy(self) -> float:
        """Mean of ``class_accuracy`` over the classes present in the truth (FCN's "mean accuracy")."""
        return float(torch.nanmean(self.class_accuracy()))

    def frequency_weighted_iou(self) -> float:
        """Sum over classes of (class's share of true pixels) * IoU; NaN when nothing was counted."""
        tp, truth, pred = self._counts()
        total = truth.sum()
        if total == 0:
            return math.nan
        present = truth > 0  # union > 0 there, so IoU is defined
        iou = tp[present] / (truth[present] + pred[present] - tp[present])
        return float((truth[present] / total * iou).sum())

    def summary(self, class_names: Sequence[str] | None = None) -> dict:
        """All metrics as a JSON-ready dict of plain Python values.

        Keys: num_classes, pixels (counted, ignored excluded), class_names, miou (all classes),
        miou_foreground (class 0 left out; a binary model's headline IoU), iou, dice,
        class_accuracy (lists, one entry per class), iou_per_class ({name: iou}), mean_dice,
        pixel_accuracy, mean_pixel_accuracy, fw_iou. NaN (undefined: a class absent from truth
        and prediction, or nothing counted) is written as None so ``json.dumps`` gives valid JSON.
        """
        k = self.num_classes
        if class_names is None:
            names = [f"class_{i}" for i in range(k)]
        else:
            names = [str(n) for n in class_names]
            if len(names) != k:
                raise ValueError(
                    f"segkit.metrics.ConfusionMatrix.summary: got {len(names)} class names for {k} classes; "
                    "pass one name per class, background first."
                )
        iou = self.iou().tolist()
        dice = self.dice()
        return {
            "num_classes": k,
            "pixels": int(self.mat.sum()),
            "class_names": names,
            "miou": _float_or_none(self.miou(include_background=True)),
            "miou_foreground": _float_or_none(self.miou(include_background=False)),
            "iou": _nan_to_none(iou),
            "iou_per_class": dict(zip(names, _nan_to_none(iou))),
            "dice": _nan_to_none(dice.tolist()),
            "mean_dice": _float_or_none(float(torch.nanmean(dice))),
            "class_accuracy": _nan_to_none(self.class_accuracy().tolist()),
            "pixel_accuracy": _float_or_none(self.pixel_accuracy()),
            "mean_pixel_accuracy": _float_or_none(self.mean_pixel_accuracy()),
            "fw_iou": _float_or_none(self.frequency_weighted_iou()),
        }

    def __repr__(self) -> str:
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"pixels={int(self.mat.sum())})"
        )


def logits_to_pred(logits: Tensor, threshold: float = 0.5) -> Tensor:
    """Class indices from logits: (N, 1, H, W) -> sigmoid > threshold; (N, C, H, W) -> argmax.

    Returns (N, H, W) int64 on the logits' device.
    """
    if not isinstance(logits, Tensor) or logits.ndim != 4:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"segkit.metrics.logits_to_pred: expected (N, C, H, W) logits, got {shape}. "
            "For one image add the batch axis with logits.unsqueeze(0)."
        )
    if logits.shape[1] == 1:
        return (torch.sigmoid(logits[:, 0].float()) > threshold).long()
    return logits.argmax(dim=1)


def binary_iou(probs, target, threshold: float = 0.5, ignore_index: int = IGNORE_INDEX) -> float:
    """Foreground IoU of ``probs > threshold`` against a {0, 1} mask.

    probs: foreground probabilities in [0, 1], tensor or numpy array, e.g. (H, W) or (N, 1, H, W).
    target: same shape (a (N, H, W) mask also matches (N, 1, H, W) probs), values {0, 1, ignore_index}.
    Pixels where target == ignore_index are skipped.

    Returns NaN when both the thresholded prediction and the truth are empty (0 / 0), the same
    convention as ``ConfusionMatrix.iou``; torchmetrics' BinaryJaccardIndex returns 0 there.
    """
    probs = _as_tensor(probs, "probs", "binary_iou")
    target = _as_tensor(target, "target", "binary_iou")
    if probs.ndim == 4 and probs.shape[1] == 1 and target.ndim == 3:
        probs = probs[:, 0]
    if target.ndim == 4 and target.shape[1] == 1 and probs.ndim == 3:
        target = target[:, 0]
    if probs.shape != target.shape:
        raise ValueError(
            f"segkit.metrics.binary_iou: probs {tuple(probs.shape)} and target {tuple(target.shape)} must have "
            "the same shape; resize the probabilities to the mask's size first."
        )
    if not probs.is_floating_point():
        raise TypeError(f"segkit.metrics.binary_iou: probs must be float probabilities in [0, 1], got {probs.dtype}.")
    if probs.numel() and (float(probs.min()) < 0 or float(probs.max()) > 1):
        raise ValueError(
            "segkit.metrics.binary_iou: probs must lie in [0, 1]; these look like logits, apply torch.sigmoid first."
        )
    if target.is_floating_point():
        if not bool(((target == 0) | (target == 1) | (target == ignore_index)).all()):
            raise ValueError(
                f"segkit.metrics.binary_iou: a float target may only hold 0., 1. or {ignore_index}."
            )
        target = target.long()
    matrix = ConfusionMatrix(2, ignore_index=ignore_index, device=probs.device)
    try:
        matrix.update((probs > threshold).long(), target)
    except ValueError as err:
        raise ValueError(
            f"segkit.metrics.binary_iou: target must hold 0 (background), 1 (foreground) or {ignore_index} "
            f"(ignore). {err}"
        ) from None
    return float(matrix.iou()[1])
