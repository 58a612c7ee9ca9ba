"""segkit.checks: each checker passes the reference solution and answers typical mistakes with the right hint.

The reference solutions below are the ones in solutions/*.ipynb (nbval runs those too, with
SEGKIT_STRICT_CHECKS=1). Each wrong answer is a slip learners really make; the test asserts
the checker says "try again" AND gives the hint aimed at that slip.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.path import Path as MplPath
from PIL import Image, ImageDraw
from torch import nn
from torch.utils.data import Dataset

from segkit import checks
from segkit.checks import (NOT_IMPLEMENTED, PASSED, STRICT_ENV, WRONG, CheckFailed, check_dataset_getitem,
                           check_dice_loss, check_double_conv, check_iou_from_confusion, check_mean_iou,
                           check_overlay, check_per_class_iou, check_polygon_to_mask, check_predict_classes,
                           check_train_step, check_up_block)
from segkit.model import DoubleConv as SegkitDoubleConv


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    """Learner mode by default (CI sets SEGKIT_STRICT_CHECKS=1 for the whole run)."""
    monkeypatch.delenv(STRICT_ENV, raising=False)


# ----------------------------------------------------------------------------- 1. polygon -> mask

def polygon_to_mask(points, height, width, value=1):
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=value, outline=value)
    return np.array(canvas, dtype=np.uint8)


def polygon_size_swapped(points, height, width, value=1):
    canvas = Image.new("L", (height, width), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=value, outline=value)
    return np.array(canvas, dtype=np.uint8)


def polygon_xy_swapped(points, height, width, value=1):
    return polygon_to_mask([(y, x) for x, y in points], height, width, value)


def polygon_value_ignored(points, height, width, value=1):
    return polygon_to_mask(points, height, width, 1)


def polygon_white(points, height, width, value=1):
    return polygon_to_mask(points, height, width, 255)


def polygon_pil(points, height, width, value=1):
    return Image.fromarray(polygon_to_mask(points, height, width, value))


def polygon_pixel_centres(points, height, width, value=1):
    """matplotlib's point-in-polygon test on pixel centres: the edge pixels labelme fills are left out."""
    ys, xs = np.mgrid[0:height, 0:width]
    inside = MplPath(points).contains_points(np.c_[xs.ravel(), ys.ravel()]).reshape(height, width)
    return (inside * value).astype(np.uint8)


# ----------------------------------------------------------------------------- 2. Dataset.__getitem__

class CatsDataset(Dataset):
    def __init__(self, root, size=64):
        root = Path(root)
        self.image_files = sorted((root / "JPEGImages").glob("*.jpg"))
        self.mask_files = [root / "SegmentationClass" / f"{p.stem}.png" for p in self.image_files]
        self.size = size

    def __len__(self):
        return len(self.image_files)

    def load(self, index):
        image = Image.open(self.image_files[index]).convert("RGB")
        image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        mask = Image.open(self.mask_files[index]).resize((self.size, self.size), Image.Resampling.NEAREST)
        return np.array(image), np.array(mask)

    def __getitem__(self, index):
        image, mask = self.load(index)
        image = torch.from_numpy(image).float().div(255).permute(2, 0, 1)
        return image, torch.from_numpy(mask).long()


class NoPermute(CatsDataset):
    def __getitem__(self, index):
        image, mask = self.load(index)
        return torch.from_numpy(image).float() / 255, torch.from_numpy(mask).long()


class ViewInsteadOfPermute(CatsDataset):
    def __getitem__(self, index):
        image, mask = self.load(index)
        return torch.from_numpy(image).float().div(255).view(3, self.size, self.size), torch.from_numpy(mask).long()


class NotScaled(CatsDataset):
    def __getitem__(self, index):
        image, mask = self.load(index)
        return torch.from_numpy(image).float().permute(2, 0, 1), torch.from_numpy(mask).long()


class BilinearMask(CatsDataset):
    def __getitem__(self, index):
        image = Image.open(self.image_files[index]).convert("RGB").resize((self.size, self.size))
        mask = torch.from_numpy(np.array(Image.open(self.mask_files[index]))).float()[None, None]
        mask = torch.nn.functional.interpolate(mask, size=(self.size, self.size), mode="bilinear")
        image = torch.from_numpy(np.array(image)).float().div(255).permute(2, 0, 1)
        return image, mask[0, 0].round().long()


class MaskScaledToo(CatsDataset):
    def __getitem__(self, index):
        image, mask = self.load(index)
        return torch.from_numpy(image).float().div(255).permute(2, 0, 1), torch.from_numpy(mask).float() / 255


class MaskWithChannel(CatsDataset):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, mask.unsqueeze(0)


class AlwaysFirst(CatsDataset):
    def __getitem__(self, index):
        return super().__getitem__(0)


class Bgr(CatsDataset):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image.flip(0), mask


# ----------------------------------------------------------------------------- 3. DoubleConv

DoubleConv = SegkitDoubleConv  # the reference answer is segkit's own block


class BatchNormInForward(nn.Module):
    """The source lesson's bug."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.out_channels = out_channels
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x):
        x = nn.ReLU()(nn.BatchNorm2d(self.out_channels)(self.conv1(x)))
        return nn.ReLU()(nn.BatchNorm2d(self.out_channels)(self.conv2(x)))


def _layers(in_channels, out_channels, padding=1, bias=False, relu_first=False):
    def stage(cin):
        conv = nn.Conv2d(cin, out_channels, 3, padding=padding, bias=bias)
        pair = [nn.ReLU(), nn.BatchNorm2d(out_channels)] if relu_first else [nn.BatchNorm2d(out_channels), nn.ReLU()]
        return [conv, *pair]
    return [*stage(in_channels), *stage(out_channels)]


class NoPadding(DoubleConv):
    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels)
        self.block = nn.Sequential(*_layers(in_channels, out_channels, padding=0))


class ReluBeforeNorm(DoubleConv):
    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels)
        self.block = nn.Sequential(*_layers(in_channels, out_channels, relu_first=True))


class WithBias(DoubleConv):
    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels)
        self.block = nn.Sequential(*_layers(in_channels, out_channels, bias=True))


class PythonList(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.layers = _layers(in_channels, out_channels)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class NoSuperInit(nn.Module):
    def __init__(self, in_channels, out_channels):
        self.block = nn.Sequential(*_layers(in_channels, out_channels))

    def forward(self, x):
        return self.block(x)


class NormsUnused(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return torch.relu(self.conv2(torch.relu(self.bn1(self.conv1(x)))))


# ----------------------------------------------------------------------------- 4. the decoder step

class Up(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = SegkitDoubleConv(in_channels, out_channels)

    def forward(self, x, skip):
        x = self.up(x)
        return self.conv(torch.cat([skip, x], dim=1))


class UpNoUpsample(Up):
    def forward(self, x, skip):
        return self.conv(torch.cat([skip, x], dim=1))


class UpCatOnBatch(Up):
    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=0))


class UpSkipIgnored(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = SegkitDoubleConv(in_channels // 2, out_channels)

    def forward(self, x, skip):
        return self.conv(self.up(x))


class UpBilinear(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.conv = SegkitDoubleConv(in_channels + in_channels // 2, out_channels)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UpChannelsKept(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels, kernel_size=2, stride=2)
        self.conv = SegkitDoubleConv(in_channels + in_channels // 2, out_channels)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


# ----------------------------------------------------------------------------- 5. soft Dice loss

def dice_loss(logits, target, smooth=1.0):
    probs = torch.sigmoid(logits)
    intersection = (probs * target).sum()
    return 1 - (2 * intersection + smooth) / (probs.sum() + target.sum() + smooth)


def dice_score_returned(logits, target, smooth=1.0):
    return 1 - dice_loss(logits, target, smooth)


def dice_no_sigmoid(logits, target, smooth=1.0):
    return 1 - (2 * (logits * target).sum() + smooth) / (logits.sum() + target.sum() + smooth)


def dice_no_smoothing(logits, target, smooth=1.0):
    return dice_loss(logits, target, smooth=0.0)


def dice_hard(logits, target, smooth=1.0):
    probs = (torch.sigmoid(logits) > 0.5).float()
    return 1 - (2 * (probs * target).sum() + smooth) / (probs.sum() + target.sum() + smooth)


def dice_per_image(logits, target, smooth=1.0):
    probs = torch.sigmoid(logits)
    intersection = (probs * target).sum((1, 2, 3))
    return (1 - (2 * intersection + smooth) / (probs.sum((1, 2, 3)) + target.sum((1, 2, 3)) + smooth)).mean()


def dice_item(logits, target, smooth=1.0):
    return dice_loss(logits, target, smooth).item()


def dice_no_factor_two(logits, target, smooth=1.0):
    probs = torch.sigmoid(logits)
    return 1 - ((probs * target).sum() + smooth) / (probs.sum() + target.sum() + smooth)


def dice_per_image_vector(logits, target, smooth=1.0):
    probs = torch.sigmoid(logits)
    return 1 - (2 * (probs * target).sum((1, 2, 3)) + smooth) / (probs.sum((1, 2, 3)) + target.sum((1, 2, 3)) + smooth)


# ----------------------------------------------------------------------------- 6. IoU and mIoU

def iou_from_confusion(matrix):
    matrix = matrix.double()
    true_positives = matrix.diagonal()
    return true_positives / (matrix.sum(0) + matrix.sum(1) - true_positives)


def iou_union_double(matrix):
    matrix = matrix.double()
    return matrix.diagonal() / (matrix.sum(0) + matrix.sum(1))


def iou_recall(matrix):
    matrix = matrix.double()
    return matrix.diagonal() / matrix.sum(1)


def iou_absent_zero(matrix):
    return torch.nan_to_num(iou_from_confusion(matrix), nan=0.0)


def iou_dice(matrix):
    matrix = matrix.double()
    return 2 * matrix.diagonal() / (matrix.sum(0) + matrix.sum(1))


def iou_floored(matrix):
    return iou_from_confusion(matrix).floor()


def mean_iou(iou, include_background=True):
    if not include_background:
        iou = iou[1:]
    return float(torch.nanmean(iou))


def mean_iou_plain_mean(iou, include_background=True):
    return float((iou if include_background else iou[1:]).mean())


def mean_iou_nan_as_zero(iou, include_background=True):
    return mean_iou(torch.nan_to_num(iou, nan=0.0), include_background)


def mean_iou_background_kept(iou, include_background=True):
    return float(torch.nanmean(iou))


def mean_iou_drops_last(iou, include_background=True):
    return float(torch.nanmean(iou if include_background else iou[:-1]))


def mean_iou_python(iou, include_background=True):
    values = [v for v in iou.tolist()[(0 if include_background else 1):] if v == v]
    return sum(values) / len(values)


def mean_iou_zero_when_empty(iou, include_background=True):
    value = mean_iou(iou, include_background)
    return 0.0 if value != value else value


# ----------------------------------------------------------------------------- 7. one training step

def train_step(model, images, masks, loss_fn, optimizer, device):
    model.train()
    images, masks = images.to(device), masks.to(device)
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_not_moved(model, images, masks, loss_fn, optimizer, device):
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_masks_not_moved(model, images, masks, loss_fn, optimizer, device):
    optimizer.zero_grad()
    loss = loss_fn(model(images.to(device)), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_no_zero_grad(model, images, masks, loss_fn, optimizer, device):
    loss = loss_fn(model(images.to(device)), masks.to(device))
    loss.backward()
    optimizer.step()
    return loss.item()


def step_no_step(model, images, masks, loss_fn, optimizer, device):
    optimizer.zero_grad()
    loss = loss_fn(model(images.to(device)), masks.to(device))
    loss.backward()
    return loss.item()


def step_no_backward(model, images, masks, loss_fn, optimizer, device):
    optimizer.zero_grad()
    loss = loss_fn(model(images.to(device)), masks.to(device))
    optimizer.step()
    return loss.item()


def step_returns_tensor(model, images, masks, loss_fn, optimizer, device):
    optimizer.zero_grad()
    loss = loss_fn(model(images.to(device)), masks.to(device))
    loss.backward()
    optimizer.step()
    return loss


def step_cuda(model, images, masks, loss_fn, optimizer, device):
    images, masks = images.cuda(), masks.cuda()
    return train_step(model, images, masks, loss_fn, optimizer, device)


# ----------------------------------------------------------------------------- 8. overlay

LESSON_PALETTE = [0, 0, 0, 0, 128, 0]


def _coloured(probs, threshold, palette=LESSON_PALETTE, above=np.greater):
    mask = Image.fromarray(above(probs, threshold).astype(np.uint8))
    mask.putpalette(palette)
    return mask


def overlay(photo, probs, threshold=0.5, alpha=0.3):
    return Image.blend(photo, _coloured(probs, threshold).convert("RGB"), alpha)


def overlay_swapped(photo, probs, threshold=0.5, alpha=0.3):
    return Image.blend(_coloured(probs, threshold).convert("RGB"), photo, alpha)


def overlay_voc_red(photo, probs, threshold=0.5, alpha=0.3):
    return Image.blend(photo, _coloured(probs, threshold, [0, 0, 0, 128, 0, 0]).convert("RGB"), alpha)


def overlay_at_least(photo, probs, threshold=0.5, alpha=0.3):
    return Image.blend(photo, _coloured(probs, threshold, above=np.greater_equal).convert("RGB"), alpha)


def overlay_fixed_threshold(photo, probs, threshold=0.5, alpha=0.3):
    return overlay(photo, probs, 0.5, alpha)


def overlay_grey(photo, probs, threshold=0.5, alpha=0.3):
    return Image.blend(photo, Image.fromarray((probs > threshold).astype(np.uint8)).convert("RGB"), alpha)


def overlay_palette_not_converted(photo, probs, threshold=0.5, alpha=0.3):
    return Image.blend(photo, _coloured(probs, threshold), alpha)


def overlay_cat_only(photo, probs, threshold=0.5, alpha=0.3):
    import segkit

    return segkit.blend_overlay(photo, (probs > threshold).astype(np.uint8), alpha=alpha)


# ----------------------------------------------------------------------------- 9. multi-class

def predict_classes(logits):
    return logits.argmax(dim=1)


def per_class_iou(pred, target, num_classes, ignore_index=255):
    valid = target != ignore_index
    ious = []
    for c in range(num_classes):
        predicted, true = (pred == c) & valid, (target == c)
        union = (predicted | true).sum().item()
        ious.append((predicted & true).sum().item() / union if union else float("nan"))
    return ious


def per_class_iou_unignored(pred, target, num_classes, ignore_index=255):
    return per_class_iou(pred, target, num_classes, ignore_index=-1)


def per_class_iou_absent_zero(pred, target, num_classes, ignore_index=255):
    return [0.0 if v != v else v for v in per_class_iou(pred, target, num_classes, ignore_index)]


def per_class_iou_divides_by_zero(pred, target, num_classes, ignore_index=255):
    valid = target != ignore_index
    return [((pred == c) & (target == c) & valid).sum().item() / (((pred == c) | (target == c)) & valid).sum().item()
            for c in range(num_classes)]


def per_class_iou_union_double(pred, target, num_classes, ignore_index=255):
    valid = target != ignore_index
    ious = []
    for c in range(num_classes):
        p, g = (pred == c) & valid, (target == c) & valid
        total = p.sum().item() + g.sum().item()
        ious.append((p & g).sum().item() / total if total else float("nan"))
    return ious


def per_class_iou_hard_coded_255(pred, target, num_classes, ignore_index=255):
    return per_class_iou(pred, target, num_classes, 255)


# ----------------------------------------------------------------------------- the tests

REFERENCES = [
    (check_polygon_to_mask, polygon_to_mask),
    (check_dataset_getitem, CatsDataset),
    (check_double_conv, DoubleConv),
    (check_up_block, Up),
    (check_dice_loss, dice_loss),
    (check_iou_from_confusion, iou_from_confusion),
    (check_mean_iou, mean_iou),
    (check_train_step, train_step),
    (check_overlay, overlay),
    (check_predict_classes, predict_classes),
    (check_per_class_iou, per_class_iou),
]

WRONG_ANSWERS = [
    (check_polygon_to_mask, polygon_size_swapped, "Pillow sizes are (width, height)"),
    (check_polygon_to_mask, polygon_xy_swapped, "did you swap x and y?"),
    (check_polygon_to_mask, polygon_value_ignored, "Fill with the `value` argument"),
    (check_polygon_to_mask, polygon_white, "not a white picture"),
    (check_polygon_to_mask, polygon_pil, "not a PIL image"),
    (check_polygon_to_mask, polygon_pixel_centres, "pixels along the polygon's edge differ"),
    (check_dataset_getitem, NoPermute, "did you forget to move the channel axis"),
    (check_dataset_getitem, ViewInsteadOfPermute, "colours are scrambled"),
    (check_dataset_getitem, NotScaled, "Divide by 255"),
    (check_dataset_getitem, BilinearMask, "Resize masks with nearest-neighbour"),
    (check_dataset_getitem, MaskScaledToo, "Only the photo is scaled"),
    (check_dataset_getitem, MaskWithChannel, "without a channel axis"),
    (check_dataset_getitem, AlwaysFirst, "use `index`"),
    (check_dataset_getitem, Bgr, "red and blue are swapped"),
    (check_double_conv, BatchNormInForward, "not in forward"),
    (check_double_conv, NoPadding, "Use padding=1"),
    (check_double_conv, ReluBeforeNorm, "does not end with a ReLU"),
    (check_double_conv, WithBias, "need no bias"),
    (check_double_conv, PythonList, "a plain Python list"),
    (check_double_conv, NoSuperInit, "Call super().__init__() first"),
    (check_double_conv, NormsUnused, "does not run x through all of them"),
    (check_up_block, UpNoUpsample, "upsample x first"),
    (check_up_block, UpCatOnBatch, "Concatenate along the channel axis"),
    (check_up_block, UpSkipIgnored, "changing skip does not change the output"),
    (check_up_block, UpBilinear, "upsample with a learned nn.ConvTranspose2d"),
    (check_up_block, UpChannelsKept, "halve the channels"),
    (check_dice_loss, dice_score_returned,
     "identical masks should give a loss of 0; yours gives 1.000. Did you return the Dice score instead of 1 - score?"),
    (check_dice_loss, dice_no_sigmoid, "torch.sigmoid first"),
    (check_dice_loss, dice_no_smoothing, "Add the smoothing term s"),
    (check_dice_loss, dice_hard, "thresholded mask"),
    (check_dice_loss, dice_per_image, "one ratio per image"),
    (check_dice_loss, dice_item, ".item() cuts the loss off from autograd"),
    (check_dice_loss, dice_no_factor_two, "factor 2"),
    (check_dice_loss, dice_per_image_vector, "one number for the whole batch"),
    (check_iou_from_confusion, iou_union_double, "counts the true positives twice"),
    (check_iou_from_confusion, iou_recall, "That is the recall"),
    (check_iou_from_confusion, iou_absent_zero, "it should be NaN, not 0"),
    (check_iou_from_confusion, iou_dice, "That is the Dice score"),
    (check_iou_from_confusion, iou_floored, "whole numbers"),
    (check_mean_iou, mean_iou_plain_mean, "leave it out of the mean"),
    (check_mean_iou, mean_iou_nan_as_zero, "counts the absent class (NaN) as 0"),
    (check_mean_iou, mean_iou_background_kept, "must be left out"),
    (check_mean_iou, mean_iou_drops_last, "not the last"),
    (check_mean_iou, mean_iou_python, "return NaN"),
    (check_mean_iou, mean_iou_zero_when_empty, "the mean is NaN"),
    (check_train_step, step_not_moved, "the images never went through .to(device)"),
    (check_train_step, step_masks_not_moved, "the masks never went through .to(device)"),
    (check_train_step, step_no_zero_grad, "call optimizer.zero_grad()"),
    (check_train_step, step_no_step, "call optimizer.step() after loss.backward()"),
    (check_train_step, step_no_backward, "no gradient was computed"),
    (check_train_step, step_returns_tensor, "return loss.item()"),
    (check_overlay, overlay_swapped, "the other way round"),
    (check_overlay, overlay_voc_red, "(128, 0, 0), the VOC colour"),
    (check_overlay, overlay_at_least, "equals the threshold exactly"),
    (check_overlay, overlay_fixed_threshold, "use the threshold argument"),
    (check_overlay, overlay_grey, "0/1 grey picture"),
    (check_overlay, overlay_palette_not_converted, "convert the palette mask to RGB"),
    (check_overlay, overlay_cat_only, "Only your cat pixels are blended"),
    (check_predict_classes, lambda logits: logits.argmax(dim=0), "argmax over the class axis, dim=1"),
    (check_predict_classes, lambda logits: logits.argmax(dim=-1), "argmax over the class axis, dim=1"),
    (check_predict_classes, lambda logits: logits.argmax(dim=1, keepdim=True), "drop the class axis"),
    (check_predict_classes, lambda logits: logits.max(dim=1).values, "instead of their positions (argmax)"),
    (check_per_class_iou, per_class_iou_unignored, "target is 255 (ignore) must not count"),
    (check_per_class_iou, per_class_iou_absent_zero, "it should be NaN, not 0"),
    (check_per_class_iou, per_class_iou_divides_by_zero, "return NaN (float('nan'))"),
    (check_per_class_iou, per_class_iou_union_double, "counts the overlap twice"),
    (check_per_class_iou, per_class_iou_hard_coded_255, "use the ignore_index argument"),
]


def _name(value) -> str:
    return getattr(value, "__name__", type(value).__name__)


@pytest.mark.parametrize("check, reference", REFERENCES, ids=[_name(c) for c, _ in REFERENCES])
def test_reference_solution_passes(check, reference):
    result = check(reference)
    assert result.status == PASSED, str(result)
    assert result and result.passed and result.cases >= 1
    assert "Well done" in str(result)


@pytest.mark.parametrize("check, wrong, hint", WRONG_ANSWERS,
                         ids=[f"{_name(c)}-{_name(w)}-{i}" for i, (c, w, _) in enumerate(WRONG_ANSWERS)])
def test_wrong_answer_gets_its_hint(check, wrong, hint):
    result = check(wrong)
    assert result.status == WRONG, str(result)
    assert not result
    assert hint in result.message, str(result)


def test_every_checker_is_tried_on_at_least_three_wrong_answers():
    for check, _ in REFERENCES:
        hints = {hint for c, _, hint in WRONG_ANSWERS if c is check}
        assert len([w for c, w, _ in WRONG_ANSWERS if c is check]) >= 3, check.__name__
        assert len(hints) >= 2, check.__name__  # not one catch-all message


def test_cuda_call_without_gpu_gets_the_to_device_hint():
    if torch.cuda.is_available():
        pytest.skip("on a GPU machine .cuda() works; the check then sees a real device mismatch")
    result = check_train_step(step_cuda)
    assert result.status == WRONG
    assert "use .to(device)" in result.message, str(result)


# ----------------------------------------------------------------------------- stubs, strict mode, robustness

def _stub(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError("write your code here, then delete this line")


class StubDataset(CatsDataset):
    def __getitem__(self, index):
        _stub()


class StubModule(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        _stub()


STUBS = [
    (check_polygon_to_mask, _stub), (check_dataset_getitem, StubDataset), (check_double_conv, StubModule),
    (check_up_block, StubModule), (check_dice_loss, _stub), (check_iou_from_confusion, _stub),
    (check_mean_iou, _stub), (check_train_step, _stub), (check_overlay, _stub),
    (check_predict_classes, _stub), (check_per_class_iou, _stub),
]


def test_every_public_checker_is_tested():
    public = {name for name in checks.__all__ if name.startswith("check_")}
    assert public == {c.__name__ for c, _ in REFERENCES} == {c.__name__ for c, _ in STUBS}


@pytest.mark.parametrize("check, stub", STUBS, ids=[_name(c) for c, _ in STUBS])
def test_stub_is_not_implemented_yet_and_never_raises_even_in_strict_mode(check, stub, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    result = check(stub)
    assert result.status == NOT_IMPLEMENTED
    assert "NotImplementedError" in result.message and "# YOUR CODE HERE" in result.message
    assert str(result).startswith("[not implemented yet]")


def test_strict_mode_raises_on_a_wrong_answer_with_the_hint(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(CheckFailed, match="Did you return the Dice score instead of 1 - score"):
        check_dice_loss(dice_score_returned)
    assert check_dice_loss(dice_loss).passed  # a right answer passes quietly


@pytest.mark.parametrize("value, strict", [("1", True), ("true", True), ("yes", True), ("0", False), ("", False)])
def test_strict_switch_values(value, strict, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, value)
    assert checks.strict_mode() is strict


def test_any_error_in_the_learners_code_is_reported_not_raised():
    def crashes(logits, target, smooth=1.0):
        raise ValueError("boom")

    result = check_dice_loss(crashes)
    assert result.status == WRONG
    assert "ValueError: boom" in result.message and "while checking dice_loss on two identical masks" in result.message


def test_passing_the_result_instead_of_the_function_is_explained():
    result = check_mean_iou(0.5)
    assert result.status == WRONG and "without calling it" in result.message


def test_checks_leave_the_notebooks_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_double_conv(DoubleConv)
    check_dice_loss(dice_loss)
    assert torch.equal(torch.rand(3), expected)


def test_result_shows_as_text_and_as_coloured_html():
    result = checks.CheckResult("dice<loss>", WRONG, "a & b")
    assert repr(result) == str(result) == "[try again] dice<loss>: a & b"
    shown = result._repr_html_()
    assert html.escape("dice<loss>") in shown and "a &amp; b" in shown and "#d93025" in shown
    assert "#1e8e3e" in checks.CheckResult("x", PASSED, "ok")._repr_html_()
