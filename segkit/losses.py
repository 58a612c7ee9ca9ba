"""Segmentation losses: soft Dice, BCE + Dice (binary) and cross-entropy + Dice (multi-class).

    logits  (N, C, H, W) float, the model's raw outputs. C == 1: a binary model (sigmoid);
            C >= 2: softmax over C, class 0 is background.
    target  (N, H, W) int64 class indices, 255 = ignore (segkit's one mask format).

The soft Dice loss is the lesson's formula, per class c, on probabilities p and one-hot truth g:

    loss_c = 1 - (2 * sum(p_c * g_c) + s) / (sum(p_c) + sum(g_c) + s)

The sums run over every pixel of the batch; the loss is the mean over classes (a binary model
has one class: the foreground). The smoothing term s (1.0, as in the lesson) keeps the ratio
defined when a class is absent from both truth and prediction. Everything is computed in
float32, also under torch.autocast: bf16 has 8 bits of mantissa, too few to sum 65,536 pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import IGNORE_INDEX


def check_target(logits: Tensor, target: Tensor, where: str) -> Tensor:
    """Raise a clear error unless `target` is (N, H, W) integer classes valid for `logits`; returns valid pixels."""
    if not isinstance(logits, Tensor) or logits.ndim != 4 or not logits.is_floating_point():
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"{where}: logits must be float (N, C, H, W), got {shape}. One image: logits.unsqueeze(0).")
    n, c, h, w = logits.shape
    if not isinstance(target, Tensor) or tuple(target.shape) != (n, h, w):
        shape = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"{where}: target must be (N, H, W) = {(n, h, w)} class indices, got {shape}. A (N, 1, H, W) "
                         "mask: mask[:, 0]; masks must be resized (nearest) to the photos' size.")
    if target.dtype != torch.int64:  # cross_entropy and one_hot take int64 only; uint8 would fail deep in torch
        raise TypeError(f"{where}: target must hold int64 class indices, got {target.dtype}: use target.long().")
    valid = target != IGNORE_INDEX
    bad = valid & ((target < 0) | (target >= max(c, 2)))
    if bool(bad.any()):  # one sync; saves a learner from a CUDA device-side assert later
        found = torch.unique(target[bad])[:10].tolist()
        raise ValueError(
            f"{where}: target holds classes {found}, but a model with {c} output channel(s) knows 0..{max(c, 2) - 1} "
            f"({IGNORE_INDEX} = ignore). Classes are counted with background: K labelled classes need "
            f"num_classes=K+1 (or 1 for a single class, the lesson's sigmoid model)."
        )
    return valid


class DiceLoss(nn.Module):
    """Soft Dice loss ``1 - (2 sum(p g) + s) / (sum(p) + sum(g) + s)``, mean over classes, from logits.

    smooth: the lesson's s (>= 0). forward(logits (N, C, H, W), target (N, H, W)) -> scalar in [0, 1].
    Ignored pixels (255) count neither in p nor in g.
    """

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        if smooth < 0:
            raise ValueError(f"DiceLoss: smooth must be >= 0, got {smooth}.")
        self.smooth = float(smooth)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        valid = check_target(logits, target, "DiceLoss")
        logits = logits.float()
        labels = target.masked_fill(~valid, 0)
        if logits.shape[1] == 1:  # binary: the foreground channel only
            probs, truth = torch.sigmoid(logits), labels.unsqueeze(1).float()
        else:
            probs = torch.softmax(logits, dim=1)
            truth = F.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2).float()
        # Multiplying (not indexing) keeps ignored pixels' gradient exactly 0.
        keep = valid.unsqueeze(1).float()
        probs, truth = probs * keep, truth * keep
        intersection = (probs * truth).sum((0, 2, 3))
        denominator = probs.sum((0, 2, 3)) + truth.sum((0, 2, 3))
        ratio = (2 * intersection + self.smooth) / (denominator + self.smooth).clamp_min(1e-7)
        return 1 - ratio.mean()


class BCEDiceLoss(nn.Module):
    """Binary model (1 channel): BCE over the non-ignored pixels + Dice. The default for one class."""

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.dice = DiceLoss(smooth)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        valid = check_target(logits, target, "BCEDiceLoss")
        if logits.shape[1] != 1:
            raise ValueError(f"BCEDiceLoss: expects 1 channel (a binary model), got {logits.shape[1]}: use CEDiceLoss.")
        bce = F.binary_cross_entropy_with_logits(logits[:, 0].float(), target.float(), reduction="none")
        bce = (bce * valid).sum() / valid.sum().clamp_min(1)  # an all-ignored batch gives 0, not NaN
        return bce + self.dice(logits, target)


class CEDiceLoss(nn.Module):
    """Multi-class model (C >= 2 channels, background included): cross-entropy + Dice."""

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.dice = DiceLoss(smooth)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        valid = check_target(logits, target, "CEDiceLoss")
        if logits.shape[1] < 2:
            raise ValueError("CEDiceLoss: expects C >= 2 channels (background + classes): use BCEDiceLoss for 1.")
        ce = F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX, reduction="sum")
        return ce / valid.sum().clamp_min(1) + self.dice(logits, target)


def default_loss(num_classes: int) -> nn.Module:
    """BCEDiceLoss for a binary model (num_classes == 1), CEDiceLoss otherwise."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"default_loss: num_classes must be an int >= 1, got {num_classes!r}.")
    return BCEDiceLoss() if num_classes == 1 else CEDiceLoss()
