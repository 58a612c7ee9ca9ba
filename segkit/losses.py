"""Segmentation losses: soft Dice, BCE + Dice (binary) and cross-entropy + Dice (multi-class).

Shapes used throughout:
    logits  (N, C, H, W) float, raw model outputs. C == 1 is a binary model (sigmoid),
            C >= 2 a multi-class model (softmax over C; class 0 is background).
    target  (N, H, W) or (N, 1, H, W) integer class indices in {0..C-1}, plus ``ignore_index``
            (255) for pixels nobody labelled. A binary model also accepts a float {0., 1.} target.

The soft Dice loss is the lesson's formula, applied per class c on probabilities p and
one-hot truth g:

    loss_c = 1 - (2 * sum(p_c * g_c) + s) / (sum(p_c) + sum(g_c) + s)

By default the sums run over every pixel of every image in the batch (one ratio per class,
then the mean over classes). With ``per_image=True`` there is one ratio per image and class,
and the loss is their mean. The smoothing term ``s`` (1.0 by default, as in the lesson) keeps
the ratio defined, and the gradient finite, when a class is absent from both truth and
prediction; such a class then pulls its probabilities towards 0.

All arithmetic runs in float32 even under ``torch.autocast`` (logits are cast with
``.float()`` first), so bf16/fp16 training does not sum thousands of pixels in 8 bits of
mantissa.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DiceLoss", "BCEDiceLoss", "CEDiceLoss", "default_loss"]

# Keeps the Dice denominator away from 0 when smooth == 0 and every pixel is ignored.
_EPS = 1e-7


def _check_logits(logits: Tensor, where: str) -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"segkit.losses.{where}: logits must be a torch.Tensor, got {type(logits).__name__}.")
    if logits.ndim != 4:
        raise ValueError(
            f"segkit.losses.{where}: logits must have shape (N, C, H, W), got {tuple(logits.shape)}. "
            "For a single image add the batch axis with logits.unsqueeze(0)."
        )
    if not logits.is_floating_point():
        raise TypeError(
            f"segkit.losses.{where}: logits must be a floating tensor (the model's raw output), got {logits.dtype}."
        )


def _prepare_target(logits: Tensor, target: Tensor, ignore_index: int, where: str) -> tuple[Tensor, Tensor]:
    """Check ``target`` against (N, C, H, W) ``logits``.

    Returns (labels, valid): labels (N, H, W) int64 in {0..C-1} (ignored pixels set to 0),
    valid (N, H, W) bool, False where target == ignore_index.
    """
    if not isinstance(target, Tensor):
        raise TypeError(f"segkit.losses.{where}: target must be a torch.Tensor, got {type(target).__name__}.")
    n, c, h, w = logits.shape
    if target.ndim == 4 and target.shape[1] == 1:
        target = target[:, 0]
    if target.ndim != 3:
        raise ValueError(
            f"segkit.losses.{where}: target must have shape (N, H, W) or (N, 1, H, W), got {tuple(target.shape)}. "
            "For a single mask add the batch axis with mask.unsqueeze(0)."
        )
    if tuple(target.shape) != (n, h, w):
        raise ValueError(
            f"segkit.losses.{where}: logits {tuple(logits.shape)} and target {tuple(target.shape)} disagree on "
            f"(N, H, W): expected target ({n}, {h}, {w}). Resize masks with nearest-neighbour to the image size."
        )
    if target.device != logits.device:
        target = target.to(logits.device, non_blocking=True)

    if target.is_floating_point():
        if c >= 2:
            raise TypeError(
                f"segkit.losses.{where}: a multi-class model ({c} channels) needs an integer target of class "
                f"indices, got {target.dtype}. Convert with target.long() (values 0..{c - 1}, {ignore_index} = ignore)."
            )
        is_label = (target == 0) | (target == 1)
    elif target.dtype == torch.bool:
        target = target.long()
        is_label = torch.ones_like(target, dtype=torch.bool)
    else:
        is_label = (target >= 0) & (target < c) if c >= 2 else (target == 0) | (target == 1)

    valid = target != ignore_index
    bad = valid & ~is_label
    if bool(bad.any()):  # one device sync; saves a learner from a CUDA device-side assert later
        found = torch.unique(target[bad])[:10].tolist()
        if c == 1:
            hint = (
                "a binary model (1 output channel) needs masks of 0 = background, 1 = foreground, "
                f"{ignore_index} = ignore. For K classes build the model with num_classes=K+1."
            )
        else:
            hint = (
                f"a model with {c} output channels needs class indices 0..{c - 1} ({ignore_index} = ignore). "
                "Is num_classes = number of labelled classes + 1 (background)?"
            )
        raise ValueError(f"segkit.losses.{where}: target holds unexpected values {found}; {hint}")
    labels = torch.where(valid, target, torch.zeros_like(target)).long()
    return labels, valid


def _dice_terms(
    logits: Tensor, labels: Tensor, valid: Tensor, from_logits: bool, per_image: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Sums sum(p*g), sum(p), sum(g) over non-ignored pixels, each (K,) or (N, K) with per_image.

    Binary (C == 1) gives K = 1 (the foreground); multi-class gives K = C.
    """
    logits = logits.float()
    mask = valid.unsqueeze(1).to(logits.dtype)  # (N, 1, H, W)
    if logits.shape[1] == 1:
        probs = torch.sigmoid(logits) if from_logits else logits
        truth = labels.unsqueeze(1).to(logits.dtype)
    else:
        probs = torch.softmax(logits, dim=1) if from_logits else logits
        truth = F.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    # Multiplying (not indexing) keeps shapes static and makes ignored pixels' gradient exactly 0.
    probs = probs * mask
    truth = truth * mask
    dims = (2, 3) if per_image else (0, 2, 3)
    return (probs * truth).sum(dims), probs.sum(dims), truth.sum(dims)


class DiceLoss(nn.Module):
    """Soft Dice loss, ``1 - (2 sum(p g) + s) / (sum(p) + sum(g) + s)``, from logits by default.

    Args:
        smooth: the lesson's smoothing term s (>= 0).
        from_logits: True: apply sigmoid (C == 1) or softmax (C >= 2) to the input.
            False: the input already holds probabilities in [0, 1].
        ignore_index: target value whose pixels contribute nothing (255, as in VOC masks).
        per_image: False: one ratio per class over the whole batch (the lesson's formula).
            True: one ratio per image and class, then the mean.
        include_background: multi-class only; False leaves class 0 out of the mean. A binary
            model's Dice is always of the foreground only, so this flag has no effect there.

    forward(logits (N, C, H, W), target (N, H, W) or (N, 1, H, W)) -> scalar float32 tensor in [0, 1].
    """

    def __init__(
        self,
        smooth: float = 1.0,
        from_logits: bool = True,
        ignore_index: int = 255,
        per_image: bool = False,
        include_background: bool = True,
    ) -> None:
        super().__init__()
        if smooth < 0:
            raise ValueError(f"segkit.losses.DiceLoss: smooth must be >= 0, got {smooth}.")
        self.smooth = float(smooth)
        self.from_logits = from_logits
        self.ignore_index = ignore_index
        self.per_image = per_image
        self.include_background = include_background

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        _check_logits(logits, "DiceLoss")
        labels, valid = _prepare_target(logits, target, self.ignore_index, "DiceLoss")
        return self._from_labels(logits, labels, valid)

    def _from_labels(self, logits: Tensor, labels: Tensor, valid: Tensor) -> Tensor:
        intersection, pred_sum, truth_sum = _dice_terms(logits, labels, valid, self.from_logits, self.per_image)
        if logits.shape[1] >= 2 and not self.include_background:
            intersection, pred_sum, truth_sum = intersection[..., 1:], pred_sum[..., 1:], truth_sum[..., 1:]
        ratio = (2 * intersection + self.smooth) / (pred_sum + truth_sum + self.smooth).clamp_min(_EPS)
        return 1 - ratio.mean()

    def extra_repr(self) -> str:
        return (
            f"smooth={self.smooth}, from_logits={self.from_logits}, ignore_index={self.ignore_index}, "
            f"per_image={self.per_image}, include_background={self.include_background}"
        )


class BCEDiceLoss(nn.Module):
    """Binary loss: ``bce_weight * BCE + dice_weight * Dice``, the default for one-channel models.

    BCE is ``binary_cross_entropy_with_logits`` averaged over the non-ignored pixels (0 when
    every pixel is ignored, rather than NaN). Dice is :class:`DiceLoss` with the same smoothing.

    forward(logits (N, 1, H, W), target (N, H, W) or (N, 1, H, W) in {0, 1, ignore_index}) -> scalar.
    """

    def __init__(
        self,
        bce_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth: float = 1.0,
        ignore_index: int = 255,
        per_image: bool = False,
    ) -> None:
        super().__init__()
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)
        self.ignore_index = ignore_index
        self.dice = DiceLoss(smooth=smooth, ignore_index=ignore_index, per_image=per_image)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        _check_logits(logits, "BCEDiceLoss")
        if logits.shape[1] != 1:
            raise ValueError(
                f"segkit.losses.BCEDiceLoss: expects one logit channel (a binary model), got {logits.shape[1]} "
                "channels. Use CEDiceLoss for a multi-class model."
            )
        labels, valid = _prepare_target(logits, target, self.ignore_index, "BCEDiceLoss")
        logits32 = logits.float()
        mask = valid.to(logits32.dtype)
        bce = F.binary_cross_entropy_with_logits(logits32[:, 0], labels.to(logits32.dtype), reduction="none")
        bce = (bce * mask).sum() / mask.sum().clamp_min(1.0)
        return self.bce_weight * bce + self.dice_weight * self.dice._from_labels(logits32, labels, valid)


class CEDiceLoss(nn.Module):
    """Multi-class loss: ``ce_weight * CrossEntropy + dice_weight * Dice`` for C >= 2 channels.

    Cross-entropy is torch's ``nn.CrossEntropyLoss(ignore_index=...)``, summed and divided by
    the number of non-ignored pixels: the same value as its ``reduction="mean"``, except that
    an all-ignored batch gives 0 instead of torch's NaN.

    forward(logits (N, C, H, W), target (N, H, W) int64 in {0..C-1, ignore_index}) -> scalar.
    """

    def __init__(
        self,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth: float = 1.0,
        ignore_index: int = 255,
        per_image: bool = False,
        include_background: bool = True,
    ) -> None:
        super().__init__()
        self.ce_weight = float(ce_weight)
        self.dice_weight = float(dice_weight)
        self.ignore_index = ignore_index
        self.cross_entropy = nn.CrossEntropyLoss(ignore_index=ignore_index, reduction="sum")
        self.dice = DiceLoss(
            smooth=smooth, ignore_index=ignore_index, per_image=per_image, include_background=include_background
        )

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        _check_logits(logits, "CEDiceLoss")
        if logits.shape[1] < 2:
            raise ValueError(
                "segkit.losses.CEDiceLoss: expects C >= 2 logit channels (background + classes), got 1. "
                "Use BCEDiceLoss for a binary one-channel model."
            )
        labels, valid = _prepare_target(logits, target, self.ignore_index, "CEDiceLoss")
        logits32 = logits.float()
        ce_target = torch.where(valid, labels, torch.full_like(labels, self.ignore_index))
        ce = self.cross_entropy(logits32, ce_target) / valid.sum().clamp_min(1)
        return self.ce_weight * ce + self.dice_weight * self.dice._from_labels(logits32, labels, valid)


def default_loss(num_classes: int) -> nn.Module:
    """The default training loss: BCEDiceLoss for a binary model (num_classes == 1), else CEDiceLoss."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"segkit.losses.default_loss: num_classes must be an int >= 1, got {num_classes!r}.")
    return BCEDiceLoss() if num_classes == 1 else CEDiceLoss()
