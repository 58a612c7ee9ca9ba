"""Segmentation metrics from one confusion matrix accumulated over a whole dataset.

Count first, divide last: `ConfusionMatrix` adds up a (K, K) table of pixel counts over every
`update` (rows = true class, columns = predicted class), and each metric is computed from that
table. A dataset's IoU is therefore the IoU of all its pixels together, not a mean of per-photo
IoUs (which would let a tiny cat weigh as much as a big one).

The names, used the same way everywhere in segkit (the CLI's JSON, history.json, the lessons):
    iou             per class: TP / (TP + FP + FN)
    miou            mean IoU over all classes, background included
    foreground_iou  mean IoU over the classes other than background; for a binary model, the
                    cat's IoU, the lesson's headline number

A class absent from both truth and prediction has IoU 0 / 0: segkit reports NaN (None in
JSON) and leaves it out of every mean, as FCN's and mmsegmentation's evaluation do.
torchmetrics' MulticlassJaccardIndex(average="none") reports 0 there instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .data import IGNORE_INDEX


class ConfusionMatrix:
    """Pixel counts for K classes (background included: a binary model uses K = 2).

    mat[t, p] = number of pixels of true class t predicted as p (int64). Pixels whose target is
    255 (ignore) are not counted. Metrics are CPU float64 tensors or floats; NaN = undefined.
    """

    def __init__(self, num_classes: int) -> None:
        if not isinstance(num_classes, int) or not 2 <= num_classes < IGNORE_INDEX:
            raise ValueError(f"ConfusionMatrix: num_classes must be an int in 2..254 (background included), got "
                             f"{num_classes!r}. A binary model (1 output channel) is scored with ConfusionMatrix(2).")
        self.num_classes = num_classes
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: pred and target of the same shape, e.g. (N, H, W), integer class indices."""
        if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
            raise TypeError(f"ConfusionMatrix.update: pred and target must be torch tensors, got "
                            f"{type(pred).__name__} and {type(target).__name__}: use torch.from_numpy(array).")
        if pred.shape != target.shape:
            raise ValueError(f"ConfusionMatrix.update: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ. "
                             "Turn (N, C, H, W) logits into (N, H, W) classes with logits_to_pred(logits).")
        if pred.is_floating_point() or target.is_floating_point():
            raise TypeError("ConfusionMatrix.update: pred and target must hold integer class indices; "
                            "use logits_to_pred(logits) for predictions.")
        k = self.num_classes
        pred, target = pred.long(), target.to(pred.device).long()
        valid = target != IGNORE_INDEX
        for name, values, where in (("pred", pred, torch.ones_like(valid)), ("target", target, valid)):
            bad = where & ((values < 0) | (values >= k))
            if bool(bad.any()):
                found = torch.unique(values[bad])[:10].tolist()
                raise ValueError(f"ConfusionMatrix.update: {name} holds {found}, outside 0..{k - 1}"
                                 f"{f' and {IGNORE_INDEX} (ignore)' if name == 'target' else ''}. Is num_classes={k} right?")
        # Ignored pixels go to an extra bin k*k that is dropped: no boolean indexing, no sync.
        index = torch.where(valid, target * k + pred, k * k)
        self.mat += torch.bincount(index.flatten(), minlength=k * k + 1)[: k * k].reshape(k, k).cpu()

    def _counts(self) -> tuple[Tensor, Tensor, Tensor]:
        mat = self.mat.double()
        return mat.diagonal(), mat.sum(1), mat.sum(0)  # true positives, true pixels, predicted pixels

    def iou(self) -> Tensor:
        """(K,) IoU = TP / (TP + FP + FN) per class; NaN where the class is in neither truth nor prediction."""
        tp, truth, pred = self._counts()
        return tp / (truth + pred - tp)

    def miou(self) -> float:
        """Mean IoU over the classes where it is defined, background included."""
        return float(torch.nanmean(self.iou()))

    def foreground_iou(self) -> float:
        """Mean IoU over the classes other than background (binary: the foreground's IoU)."""
        return float(torch.nanmean(self.iou()[1:]))

    def dice(self) -> Tensor:
        """(K,) Dice = F1 = 2 TP / (2 TP + FP + FN) per class."""
        tp, truth, pred = self._counts()
        return 2 * tp / (truth + pred)

    def pixel_accuracy(self) -> float:
        """Correct pixels / counted pixels."""
        tp, truth, _ = self._counts()
        return float(tp.sum() / truth.sum())

    def class_accuracy(self) -> Tensor:
        """(K,) recall per class = TP / (TP + FN); NaN where the class is absent from the truth."""
        tp, truth, _ = self._counts()
        return tp / truth

    def frequency_weighted_iou(self) -> float:
        """Sum over classes of (the class's share of the true pixels) * its IoU."""
        _, truth, _ = self._counts()
        iou = self.iou()
        present = truth > 0
        return float((truth[present] / truth.sum() * iou[present]).sum()) if present.any() else math.nan

    def summary(self, class_names: Sequence[str] | None = None) -> dict:
        """Every metric as a JSON-ready dict (NaN written as None): the dict `segkit evaluate` prints."""
        names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError(f"ConfusionMatrix.summary: {len(names)} class names for {self.num_classes} classes.")

        def plain(value: float) -> float | None:
            return None if math.isnan(value) else round(float(value), 6)

        iou = [plain(v) for v in self.iou().tolist()]
        return {
            "foreground_iou": plain(self.foreground_iou()),
            "miou": plain(self.miou()),
            "iou": dict(zip(names, iou)),
            "dice": dict(zip(names, (plain(v) for v in self.dice().tolist()))),
            "pixel_accuracy": plain(self.pixel_accuracy()),
            "class_accuracy": dict(zip(names, (plain(v) for v in self.class_accuracy().tolist()))),
            "mean_class_accuracy": plain(float(torch.nanmean(self.class_accuracy()))),
            "frequency_weighted_iou": plain(self.frequency_weighted_iou()),
            "pixels": int(self.mat.sum()),
        }

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, pixels={int(self.mat.sum())})"


def logits_to_pred(logits: Tensor, threshold: float = 0.5) -> Tensor:
    """(N, 1, H, W) logits -> sigmoid > threshold; (N, C, H, W) -> argmax over C. Returns (N, H, W) int64."""
    if not isinstance(logits, Tensor) or logits.ndim != 4:
        raise ValueError("logits_to_pred: expected (N, C, H, W) logits; one image: logits.unsqueeze(0).")
    if logits.shape[1] == 1:
        return (torch.sigmoid(logits[:, 0].float()) > threshold).long()
    return logits.argmax(dim=1)
