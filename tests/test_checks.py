"""segkit_course.checks: each checker passes the reference solution and answers typical mistakes with the right hint.

The reference solutions below are written the way solutions/*.ipynb write them (nbval runs those
too, with SEGKIT_STRICT_CHECKS=1). Each wrong answer is one slip learners really make; the test
asserts the checker says "try again" AND gives the hint aimed at that slip. The checkers judge
against segkit itself (DiceLoss, ConfusionMatrix, train_one_epoch, blend_overlay, UNet): the
tests at the end tie each of those reference answers to an independent one.
"""

from __future__ import annotations

import copy
import html
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.path import Path as MplPath
from PIL import Image, ImageDraw
from torch import nn
from torch.utils.data import Dataset

import segkit.datasets
from segkit import BCEDiceLoss, ConfusionMatrix, DiceLoss, UNet, blend_overlay, train_one_epoch
from segkit.model import DoubleConv as SegkitDoubleConv
from segkit.predict import predict_mask, probabilities_to_mask
from segkit_course import checks
from segkit_course.checks import (NOT_IMPLEMENTED, PASSED, PROJECT_GOAL, STRICT_ENV, WRONG, CheckFailed,
                                  check_dataset_getitem, check_dice_loss, check_double_conv, check_iou_from_confusion,
                                  check_mean_iou, check_overlay, check_per_class_iou, check_polygon_to_mask,
                                  check_predict_classes, check_project, check_train_step, check_unet_forward,
                                  check_up_block, project_split, reference_mean_iou)

SHIPPED = segkit.datasets.DATA_DIR / "checkpoints" / "cats_unet.pt"
needs_shipped = pytest.mark.skipif(not (SHIPPED.is_file() and (segkit.datasets.DATA_DIR / "my_cats").is_dir()),
                                   reason="the project check needs data/checkpoints/cats_unet.pt and data/my_cats")


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


def polygon_int64(points, height, width, value=1):
    return polygon_to_mask(points, height, width, value).astype(np.int64)


def polygon_pixel_centres(points, height, width, value=1):
    """matplotlib's point-in-polygon test on pixel centres: the edge pixels labelme fills are left out."""
    ys, xs = np.mgrid[0:height, 0:width]
    inside = MplPath(points).contains_points(np.c_[xs.ravel(), ys.ravel()]).reshape(height, width)
    return (inside * value).astype(np.uint8)


def polygon_unclipped(points, height, width, value=1):
    """Writes into a numpy array point by point: fails on a polygon reaching past the border."""
    mask = polygon_to_mask(points, height, width, value)
    for x, y in points:
        mask[int(y), int(x)] = value
    return mask


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


class MaskUint8(CatsDataset):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, mask.to(torch.uint8)


class MaskWithChannel(CatsDataset):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image, mask.unsqueeze(0)


class MaskAsRgb(CatsDataset):
    def __getitem__(self, index):
        image, _ = super().__getitem__(index)
        mask = Image.open(self.mask_files[index]).convert("RGB")
        mask = mask.resize((self.size, self.size), Image.Resampling.NEAREST)
        return image, torch.from_numpy(np.array(mask)).long()


class NumpyImage(CatsDataset):
    def __getitem__(self, index):
        image, mask = super().__getitem__(index)
        return image.numpy(), mask


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


# ----------------------------------------------------------------------------- 5. UNet.forward

class MyUNet(UNet):
    """The exercise's answer: segkit.UNet.forward's bookkeeping, written again."""

    def forward(self, x):
        height, width = x.shape[-2:]
        multiple = 2 ** self.config["depth"]
        x = F.pad(x, (0, -width % multiple, 0, -height % multiple))
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()  # the bottleneck
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)[..., :height, :width]


class UNetNoPadding(UNet):
    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


class UNetNoCrop(UNet):
    def forward(self, x):
        height, width = x.shape[-2:]
        multiple = 2 ** self.config["depth"]
        x = F.pad(x, (0, -width % multiple, 0, -height % multiple))
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


class UNetSkipsInEncoderOrder(UNet):
    """zip(self.ups, skips): the first Up gets the shallowest skip instead of the deepest."""

    def forward(self, x):
        height, width = x.shape[-2:]
        multiple = 2 ** self.config["depth"]
        x = F.pad(x, (0, -width % multiple, 0, -height % multiple))
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up, skip in zip(self.ups, skips):
            x = up(x, skip)
        return self.outc(x)[..., :height, :width]


class UNetNoInc(UNet):
    def forward(self, x):
        height, width = x.shape[-2:]
        multiple = 2 ** self.config["depth"]
        x = F.pad(x, (0, -width % multiple, 0, -height % multiple))
        skips = [x]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)[..., :height, :width]


class UNetCentredPadding(UNet):
    """Pads on both sides but crops the top-left corner: the right shape, shifted values."""

    def forward(self, x):
        height, width = x.shape[-2:]
        multiple = 2 ** self.config["depth"]
        pad_h, pad_w = -height % multiple, -width % multiple
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)[..., :height, :width]


class NotBuiltOnUNet(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.unet = MyUNet(**kwargs)

    def forward(self, x):
        return self.unet(x)


# ----------------------------------------------------------------------------- 6. soft Dice loss

def dice_loss(logits, target, smooth=1.0):
    probs = torch.sigmoid(logits)
    target = target.unsqueeze(1).float()  # (N, H, W) class indices -> (N, 1, H, W) like probs
    intersection = (probs * target).sum()
    return 1 - (2 * intersection + smooth) / (probs.sum() + target.sum() + smooth)


def dice_score_returned(logits, target, smooth=1.0):
    return 1 - dice_loss(logits, target, smooth)


def dice_no_sigmoid(logits, target, smooth=1.0):
    target = target.unsqueeze(1).float()
    return 1 - (2 * (logits * target).sum() + smooth) / (logits.sum() + target.sum() + smooth)


def dice_no_smoothing(logits, target, smooth=1.0):
    return dice_loss(logits, target, smooth=0.0)


def dice_smooth_only_below(logits, target, smooth=1.0):
    probs, target = torch.sigmoid(logits), target.unsqueeze(1).float()
    return 1 - (2 * (probs * target).sum()) / (probs.sum() + target.sum() + smooth)


def dice_hard(logits, target, smooth=1.0):
    probs, target = (torch.sigmoid(logits) > 0.5).float(), target.unsqueeze(1).float()
    return 1 - (2 * (probs * target).sum() + smooth) / (probs.sum() + target.sum() + smooth)


def dice_per_image(logits, target, smooth=1.0):
    probs, target = torch.sigmoid(logits), target.unsqueeze(1).float()
    intersection = (probs * target).sum((1, 2, 3))
    return (1 - (2 * intersection + smooth) / (probs.sum((1, 2, 3)) + target.sum((1, 2, 3)) + smooth)).mean()


def dice_item(logits, target, smooth=1.0):
    return dice_loss(logits, target, smooth).item()


def dice_no_factor_two(logits, target, smooth=1.0):
    probs, target = torch.sigmoid(logits), target.unsqueeze(1).float()
    return 1 - ((probs * target).sum() + smooth) / (probs.sum() + target.sum() + smooth)


def dice_squared(logits, target, smooth=1.0):
    probs, target = torch.sigmoid(logits), target.unsqueeze(1).float()
    return 1 - (2 * (probs * target).sum() + smooth) / ((probs ** 2).sum() + (target ** 2).sum() + smooth)


def dice_per_image_vector(logits, target, smooth=1.0):
    probs, target = torch.sigmoid(logits), target.unsqueeze(1).float()
    return 1 - (2 * (probs * target).sum((1, 2, 3)) + smooth) / (probs.sum((1, 2, 3)) + target.sum((1, 2, 3)) + smooth)


def dice_broadcast(logits, target, smooth=1.0):
    """(N, 1, H, W) * (N, H, W): broadcasts to (N, N, H, W) and pairs every image with every mask."""
    probs = torch.sigmoid(logits)
    return 1 - (2 * (probs * target).sum() + smooth) / (probs.sum() + target.sum() + smooth)


def dice_flattened_probs_only(logits, target, smooth=1.0):
    probs = torch.sigmoid(logits).flatten(1)  # (N, H*W), but the target stays (N, H, W): a shape error
    return 1 - (2 * (probs * target).sum() + smooth) / (probs.sum() + target.sum() + smooth)


# ----------------------------------------------------------------------------- 7. IoU and mIoU

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


def iou_precision(matrix):
    matrix = matrix.double()
    return matrix.diagonal() / matrix.sum(0)


def iou_absent_zero(matrix):
    return torch.nan_to_num(iou_from_confusion(matrix), nan=0.0)


def iou_dice(matrix):
    matrix = matrix.double()
    return 2 * matrix.diagonal() / (matrix.sum(0) + matrix.sum(1))


def iou_floored(matrix):
    return iou_from_confusion(matrix).floor()


def iou_in_place(matrix):
    matrix[:] = 0  # "compute on a copy"
    return iou_from_confusion(matrix)


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


def mean_iou_vector(iou, include_background=True):
    return iou[~iou.isnan()]


# ----------------------------------------------------------------------------- 8. one training step

def train_step(model, images, masks, loss_fn, optimizer, device):
    model.train()
    images, masks = images.to(device), masks.to(device)
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_not_moved(model, images, masks, loss_fn, optimizer, device):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_masks_not_moved(model, images, masks, loss_fn, optimizer, device):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(images.to(device)), masks)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_no_train_mode(model, images, masks, loss_fn, optimizer, device):
    optimizer.zero_grad()
    loss = loss_fn(model(images.to(device)), masks.to(device))
    loss.backward()
    optimizer.step()
    return loss.item()


def step_no_zero_grad(model, images, masks, loss_fn, optimizer, device):
    model.train()
    loss = loss_fn(model(images.to(device)), masks.to(device))
    loss.backward()
    optimizer.step()
    return loss.item()


def step_no_step(model, images, masks, loss_fn, optimizer, device):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(images.to(device)), masks.to(device))
    loss.backward()
    return loss.item()


def step_no_backward(model, images, masks, loss_fn, optimizer, device):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(images.to(device)), masks.to(device))
    optimizer.step()
    return loss.item()


def step_returns_tensor(model, images, masks, loss_fn, optimizer, device):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(images.to(device)), masks.to(device))
    loss.backward()
    optimizer.step()
    return loss


def step_returns_loss_after_the_step(model, images, masks, loss_fn, optimizer, device):
    train_step(model, images, masks, loss_fn, optimizer, device)
    with torch.no_grad():
        return loss_fn(model(images.to(device)), masks.to(device)).item()


def step_cuda(model, images, masks, loss_fn, optimizer, device):
    images, masks = images.cuda(), masks.cuda()
    return train_step(model, images, masks, loss_fn, optimizer, device)


# ----------------------------------------------------------------------------- 9. overlay

LESSON_PALETTE = [0, 0, 0, 0, 128, 0]


def _coloured(probs, threshold, palette=LESSON_PALETTE, above=np.greater):
    mask = Image.fromarray(above(probs, threshold).astype(np.uint8))
    mask.putpalette(palette)
    return mask


def _cats_only(photo, blended, cat):
    """The blended pixels where there is a cat, the photo as it is elsewhere."""
    return Image.composite(blended, photo, Image.fromarray(cat.astype(np.uint8) * 255))


def overlay(photo, probs, threshold=0.5, alpha=0.3):
    blended = Image.blend(photo, _coloured(probs, threshold).convert("RGB"), alpha)
    return _cats_only(photo, blended, probs > threshold)


def overlay_with_segkit(photo, probs, threshold=0.5, alpha=0.3):
    return blend_overlay(photo, (probs > threshold).astype(np.uint8), alpha=alpha)


def overlay_whole_photo(photo, probs, threshold=0.5, alpha=0.3):
    """The source lesson's overlay: the background gets alpha of black."""
    return Image.blend(photo, _coloured(probs, threshold).convert("RGB"), alpha)


def overlay_swapped(photo, probs, threshold=0.5, alpha=0.3):
    blended = Image.blend(_coloured(probs, threshold).convert("RGB"), photo, alpha)
    return _cats_only(photo, blended, probs > threshold)


def overlay_voc_red(photo, probs, threshold=0.5, alpha=0.3):
    blended = Image.blend(photo, _coloured(probs, threshold, [0, 0, 0, 128, 0, 0]).convert("RGB"), alpha)
    return _cats_only(photo, blended, probs > threshold)


def overlay_bright_green(photo, probs, threshold=0.5, alpha=0.3):
    blended = Image.blend(photo, _coloured(probs, threshold, [0, 0, 0, 0, 255, 0]).convert("RGB"), alpha)
    return _cats_only(photo, blended, probs > threshold)


def overlay_at_least(photo, probs, threshold=0.5, alpha=0.3):
    blended = Image.blend(photo, _coloured(probs, threshold, above=np.greater_equal).convert("RGB"), alpha)
    return _cats_only(photo, blended, probs >= threshold)


def overlay_fixed_threshold(photo, probs, threshold=0.5, alpha=0.3):
    return overlay(photo, probs, 0.5, alpha)


def overlay_grey(photo, probs, threshold=0.5, alpha=0.3):
    cat = probs > threshold
    return _cats_only(photo, Image.blend(photo, Image.fromarray(cat.astype(np.uint8)).convert("RGB"), alpha), cat)


def overlay_palette_not_converted(photo, probs, threshold=0.5, alpha=0.3):
    return Image.blend(photo, _coloured(probs, threshold), alpha)


def overlay_array(photo, probs, threshold=0.5, alpha=0.3):
    return np.asarray(overlay(photo, probs, threshold, alpha))


# ----------------------------------------------------------------------------- 10. multi-class

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


def per_class_iou_in_place(pred, target, num_classes, ignore_index=255):
    target[target == ignore_index] = 0
    return per_class_iou(pred, target, num_classes, ignore_index)


# ----------------------------------------------------------------------------- 11. the project (no real training)

def _shipped_model():
    model, _ = segkit.load_checkpoint(segkit.datasets.shipped_checkpoint("cats"))
    return model


def finetune_returns_shipped(train_set):
    return _shipped_model()


class AllBackground(UNet):
    """A model that never sees a cat: every logit very negative."""

    def forward(self, x):
        return torch.full((x.shape[0], 1, *x.shape[-2:]), -20.0)


def finetune_all_background(train_set):
    return AllBackground(base_features=2, depth=1)


def finetune_returns_history(train_set):
    return [{"epoch": 1, "train_loss": 0.5}]  # what segkit.fit returns, instead of the model


def finetune_forgets_return(train_set):
    _shipped_model()


# ----------------------------------------------------------------------------- the tests

REFERENCES = [
    pytest.param(check_polygon_to_mask, polygon_to_mask, id="polygon_to_mask"),
    pytest.param(check_dataset_getitem, CatsDataset, id="dataset_getitem"),
    pytest.param(check_double_conv, DoubleConv, id="double_conv"),
    pytest.param(check_up_block, Up, id="up_block"),
    pytest.param(check_unet_forward, MyUNet, id="unet_forward"),
    pytest.param(check_dice_loss, dice_loss, id="dice_loss"),
    pytest.param(check_iou_from_confusion, iou_from_confusion, id="iou_from_confusion"),
    pytest.param(check_mean_iou, mean_iou, id="mean_iou"),
    pytest.param(check_train_step, train_step, id="train_step"),
    pytest.param(check_overlay, overlay, id="overlay"),
    pytest.param(check_overlay, overlay_with_segkit, id="overlay-segkit"),
    pytest.param(check_predict_classes, predict_classes, id="predict_classes"),
    pytest.param(check_per_class_iou, per_class_iou, id="per_class_iou"),
]

WRONG_ANSWERS = [
    (check_polygon_to_mask, polygon_size_swapped, "Pillow sizes are (width, height)"),
    (check_polygon_to_mask, polygon_xy_swapped, "did you swap x and y?"),
    (check_polygon_to_mask, polygon_value_ignored, "Fill with the `value` argument"),
    (check_polygon_to_mask, polygon_white, "not a white picture"),
    (check_polygon_to_mask, polygon_pil, "not a PIL image"),
    (check_polygon_to_mask, polygon_int64, "should be uint8"),
    (check_polygon_to_mask, polygon_pixel_centres, "pixels along the polygon's edge differ"),
    (check_polygon_to_mask, polygon_unclipped, "clip them"),
    (check_dataset_getitem, NoPermute, "did you forget to move the channel axis"),
    (check_dataset_getitem, ViewInsteadOfPermute, "colours are scrambled"),
    (check_dataset_getitem, NotScaled, "Divide by 255"),
    (check_dataset_getitem, NumpyImage, "not a numpy array"),
    (check_dataset_getitem, BilinearMask, "Resize masks with nearest-neighbour"),
    (check_dataset_getitem, MaskScaledToo, "Only the photo is scaled"),
    (check_dataset_getitem, MaskUint8, "should be int64 (what the losses want)"),
    (check_dataset_getitem, MaskWithChannel, "without a channel axis"),
    (check_dataset_getitem, MaskAsRgb, "converted to RGB"),
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
    (check_unet_forward, UNetNoPadding, "Pad it first (F.pad)"),
    (check_unet_forward, UNetNoCrop, "crop the output back to the input's height and width"),
    (check_unet_forward, UNetSkipsInEncoderOrder, "need no padding, so an Up got the skip of another level"),
    (check_unet_forward, UNetNoInc, "the input goes through self.inc first"),
    (check_unet_forward, UNetCentredPadding, "other values than segkit's UNet with the same weights"),
    (check_unet_forward, NotBuiltOnUNet, "class MyUNet(UNet)"),
    (check_dice_loss, dice_score_returned,
     "identical masks should give a loss of 0; yours gives 1.000. Did you return the Dice score instead of 1 - score?"),
    (check_dice_loss, dice_no_sigmoid, "torch.sigmoid first"),
    (check_dice_loss, dice_no_smoothing, "Add the smoothing term s"),
    (check_dice_loss, dice_smooth_only_below, "belongs in the numerator too"),
    (check_dice_loss, dice_hard, "thresholded mask"),
    (check_dice_loss, dice_per_image, "one ratio per image"),
    (check_dice_loss, dice_item, ".item() cuts the loss off from autograd"),
    (check_dice_loss, dice_no_factor_two, "factor 2"),
    (check_dice_loss, dice_squared, "V-Net"),
    (check_dice_loss, dice_per_image_vector, "one number for the whole batch"),
    (check_dice_loss, dice_broadcast, "(N, N, H, W) and pairs every image with every mask"),
    (check_dice_loss, dice_flattened_probs_only, "give the target a channel axis (target.unsqueeze(1))"),
    (check_iou_from_confusion, iou_union_double, "counts the true positives twice"),
    (check_iou_from_confusion, iou_recall, "That is the recall"),
    (check_iou_from_confusion, iou_precision, "That is the precision"),
    (check_iou_from_confusion, iou_absent_zero, "it should be NaN, not 0"),
    (check_iou_from_confusion, iou_dice, "That is the Dice score"),
    (check_iou_from_confusion, iou_floored, "whole numbers"),
    (check_iou_from_confusion, iou_in_place, "changed the matrix it was given"),
    (check_mean_iou, mean_iou_plain_mean, "leave it out of the mean"),
    (check_mean_iou, mean_iou_nan_as_zero, "counts the absent class (NaN) as 0"),
    (check_mean_iou, mean_iou_background_kept, "must be left out"),
    (check_mean_iou, mean_iou_drops_last, "not the last"),
    (check_mean_iou, mean_iou_python, "return NaN"),
    (check_mean_iou, mean_iou_zero_when_empty, "the mean is NaN"),
    (check_mean_iou, mean_iou_vector, "should be one number"),
    (check_train_step, step_not_moved, "the images never went through .to(device)"),
    (check_train_step, step_masks_not_moved, "the masks never went through .to(device)"),
    (check_train_step, step_no_train_mode, "call model.train() first"),
    (check_train_step, step_no_zero_grad, "call optimizer.zero_grad()"),
    (check_train_step, step_no_step, "call optimizer.step() after loss.backward()"),
    (check_train_step, step_no_backward, "no gradient was computed"),
    (check_train_step, step_returns_tensor, "return loss.item()"),
    (check_train_step, step_returns_loss_after_the_step, "return the loss you called backward() on"),
    (check_overlay, overlay_whole_photo, "Your whole photo is blended"),
    (check_overlay, overlay_swapped, "the other way round"),
    (check_overlay, overlay_voc_red, "(128, 0, 0), the VOC colour"),
    (check_overlay, overlay_bright_green, "yours use (0, 255, 0)"),
    (check_overlay, overlay_at_least, "equals the threshold exactly"),
    (check_overlay, overlay_fixed_threshold, "use the threshold argument"),
    (check_overlay, overlay_grey, "0/1 grey picture"),
    (check_overlay, overlay_palette_not_converted, "convert the palette mask to RGB"),
    (check_overlay, overlay_array, "not a numpy array"),
    (check_predict_classes, lambda logits: logits.argmax(dim=0), "argmax over the class axis, dim=1"),
    (check_predict_classes, lambda logits: logits.argmax(dim=-1), "argmax over the class axis, dim=1"),
    (check_predict_classes, lambda logits: logits.argmax(dim=1, keepdim=True), "drop the class axis"),
    (check_predict_classes, lambda logits: logits.max(dim=1).values, "instead of their positions (argmax)"),
    (check_predict_classes, lambda logits: logits.argmax(dim=1).int(), "should be int64"),
    (check_predict_classes, lambda logits: logits.argmin(dim=1), "the one with the largest logit"),
    (check_per_class_iou, per_class_iou_unignored, "target is 255 (ignore) must not count"),
    (check_per_class_iou, per_class_iou_absent_zero, "it should be NaN, not 0"),
    (check_per_class_iou, per_class_iou_divides_by_zero, "return NaN (float('nan'))"),
    (check_per_class_iou, per_class_iou_union_double, "counts the overlap twice"),
    (check_per_class_iou, per_class_iou_hard_coded_255, "use the ignore_index argument"),
    (check_per_class_iou, per_class_iou_in_place, "changed pred or target in place"),
    pytest.param(check_project, finetune_all_background, f"the goal is {PROJECT_GOAL}", marks=needs_shipped),
    pytest.param(check_project, finetune_returns_shipped, "the shipped model, untouched", marks=needs_shipped),
    pytest.param(check_project, finetune_returns_history, "should return the trained model; yours returns a list",
                 marks=needs_shipped),
    pytest.param(check_project, finetune_forgets_return, "yours returns a NoneType", marks=needs_shipped),
]


def _name(value) -> str:
    return getattr(value, "__name__", type(value).__name__)


def _triples(params):
    return [p.values if hasattr(p, "values") else p for p in params]


@pytest.mark.parametrize("check, reference", REFERENCES)
def test_reference_solution_passes(check, reference):
    result = check(reference)
    assert result.status == PASSED, str(result)
    assert result and result.passed and result.cases >= 1
    assert "Well done" in str(result)


@pytest.mark.parametrize("check, wrong, hint", WRONG_ANSWERS,
                         ids=[f"{_name(c)}-{_name(w)}-{i}" for i, (c, w, _) in enumerate(_triples(WRONG_ANSWERS))])
def test_wrong_answer_gets_its_hint(check, wrong, hint):
    result = check(wrong)
    assert result.status == WRONG, str(result)
    assert not result
    assert hint in result.message, str(result)


def test_every_checker_is_tried_on_at_least_three_wrong_answers_with_distinct_hints():
    wrong = _triples(WRONG_ANSWERS)
    for check in {p.values[0] for p in REFERENCES} | {check_project}:
        assert len([w for c, w, _ in wrong if c is check]) >= 3, check.__name__
        assert len({hint for c, _, hint in wrong if c is check}) >= 2, check.__name__  # not one catch-all message


def test_unet_forward_tells_skip_order_from_padding():
    """The same size error means 'pad' on odd sides but 'wrong skip' on sides that need no padding."""
    no_padding, wrong_order = check_unet_forward(UNetNoPadding), check_unet_forward(UNetSkipsInEncoderOrder)
    assert "(1, 3, 37, 45)" in no_padding.message and "skip of another level" not in no_padding.message
    assert "(2, 3, 32, 48)" in wrong_order.message and "Pad it first" not in wrong_order.message
    assert wrong_order.cases == 1  # the model was built; the first batch went wrong


def test_cuda_call_without_gpu_gets_the_to_device_hint():
    if torch.cuda.is_available():
        pytest.skip("on a GPU machine .cuda() works; the check then sees a real device mismatch")
    result = check_train_step(step_cuda)
    assert result.status == WRONG
    assert "use .to(device)" in result.message, str(result)


# ----------------------------------------------------------------------------- the project (exercise 11)

def _held_out_cat_iou(model) -> float:
    """The cat's IoU on the held-out photos, counted here with numpy from predict_mask."""
    _, held_out = project_split()
    intersection = union = 0
    for index in range(len(held_out)):
        photo, mask = held_out.read(index)
        cat = predict_mask(model, photo, held_out.image_size) == 1
        valid, truth = mask != 255, mask == 1
        intersection += int((cat & truth & valid).sum())
        union += int(((cat | truth) & valid).sum())
    return intersection / union


@needs_shipped
def test_project_split_holds_out_two_of_the_eight_photos_at_the_shipped_size():
    train_set, held_out = project_split()
    assert (len(train_set), len(held_out)) == (6, 2)
    assert not set(train_set.stems) & set(held_out.stems)
    assert train_set.root == held_out.root and len(set(train_set.stems) | set(held_out.stems)) == 8
    image_size = segkit.load_checkpoint(SHIPPED)[1]["image_size"]
    assert train_set.image_size == held_out.image_size == segkit.data.as_hw(image_size)


@needs_shipped
def test_project_check_gives_the_learners_model_back_and_judges_it_on_the_held_out_photos():
    seen = []

    def finetune(train_set):
        seen.append(list(train_set.stems))
        return model

    model = _shipped_model()
    with torch.no_grad():  # "trained": one weight nudged, so the check judges it by its score
        next(model.parameters()).view(-1)[0] += 1e-3
    result = check_project(finetune)
    assert result.value is model  # the notebook's next cells use it
    assert seen == [project_split()[0].stems]  # trained on the 6 training photos only
    score = _held_out_cat_iou(model)
    # Whatever checkpoint is shipped, the verdict follows its score on the held-out photos.
    assert result.passed == (score >= PROJECT_GOAL), (score, str(result))
    if not result.passed:
        assert f"IoU is {score:.3f}; the goal is {PROJECT_GOAL}" in result.message


@needs_shipped
def test_project_check_keeps_a_model_that_misses_the_goal_and_reports_zero_iou():
    result = check_project(finetune_all_background)
    assert result.status == WRONG and isinstance(result.value, AllBackground)
    assert f"IoU is 0.000; the goal is {PROJECT_GOAL}" in result.message
    assert result.cases == 1  # finetune ran; the held-out case failed


@needs_shipped
def test_project_check_without_a_model_has_no_value():
    result = check_project(finetune_returns_history)
    assert result.status == WRONG and result.value is None


def test_other_checks_give_no_value():
    assert check_mean_iou(mean_iou).value is None


# ----------------------------------------------------------------------------- the checkers' references are segkit's

def same(a: float, b: float) -> bool:
    """Equal to 1e-12, NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12)


def _random_confusion(seed: int, k: int) -> ConfusionMatrix:
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, k, (2, 9, 11), generator=generator)
    pred = torch.randint(0, k, (2, 9, 11), generator=generator)
    absent = seed % k  # one class in neither truth nor prediction: NaN IoU
    target[target == absent] = 255 if seed % 2 else (absent + 1) % k
    pred[pred == absent] = (absent + 1) % k
    confusion = ConfusionMatrix(k)
    confusion.update(pred, target)
    return confusion


@pytest.mark.parametrize("seed, k", [(0, 2), (1, 2), (2, 3), (3, 4), (4, 5), (7, 6)])
def test_reference_mean_iou_is_confusion_matrix_miou_and_foreground_iou(seed, k):
    confusion = _random_confusion(seed, k)
    iou = confusion.iou()
    assert torch.isnan(iou).sum() == 1  # the test reaches the NaN case
    assert same(reference_mean_iou(iou, include_background=True), confusion.miou())
    assert same(reference_mean_iou(iou, include_background=False), confusion.foreground_iou())
    assert check_mean_iou(mean_iou).passed  # and the test's own answer is what the checker accepts


def test_reference_mean_iou_of_nothing_counted_is_nan_like_the_confusion_matrix():
    empty = ConfusionMatrix(3)
    assert math.isnan(reference_mean_iou(empty.iou())) and math.isnan(empty.miou())
    assert math.isnan(reference_mean_iou(empty.iou(), False)) and math.isnan(empty.foreground_iou())


def test_iou_reference_is_the_hand_computed_iou():
    right, _ = checks._iou_variants(checks._CONFUSION)
    # rows = truth, columns = prediction: TP / (row + column - TP)
    assert np.allclose(right, [50 / 65, 20 / 27, 9 / 19, np.nan], equal_nan=True)


def test_per_class_iou_reference_is_the_hand_computed_iou():
    right, _ = checks._per_class_variants(checks._MULTI_PRED, checks._MULTI_TARGET, 4)
    # 17 labelled pixels (three are 255): class 0 6 / (8 + 8 - 6), class 1 4 / (5 + 5 - 4), class 2 3 / (4 + 4 - 3)
    assert np.allclose(right, [0.6, 4 / 6, 0.6, np.nan], equal_nan=True)


@pytest.mark.parametrize("smooth", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("shape", [(2, 5, 7), (3, 4, 4), (1, 6, 3)])
def test_dice_variant_generator_with_default_arguments_is_segkits_dice_loss(smooth, shape):
    generator = torch.Generator().manual_seed(sum(shape))
    logits = torch.randn(shape[0], 1, *shape[1:], generator=generator) * 3
    target = (torch.rand(shape, generator=generator) > 0.5).long()
    expected = DiceLoss(smooth)(logits, target)
    value = checks._dice_value(torch.sigmoid(logits), target.unsqueeze(1).float(), smooth)
    assert torch.allclose(value, expected, atol=1e-6)
    right, variants = checks._dice_variants(logits, target, smooth)
    assert math.isclose(right, float(expected), abs_tol=1e-6)
    assert math.isclose(right, float(dice_loss(logits, target, smooth)), abs_tol=1e-6)  # the lesson's formula
    if shape[0] > 1:  # with one image, per-image Dice and the broadcast slip are the right answer
        assert all(not math.isclose(right, wrong, abs_tol=1e-4) for wrong, _ in variants)  # each slip shows


def test_train_step_reference_is_one_iteration_of_train_one_epoch():
    """The checker's reference (segkit's train_one_epoch) equals the lesson's step, from a model left in eval mode."""
    model = checks._SpyModel()
    model.eval()  # as evaluate() leaves it: both must switch it back to training mode
    batches = [checks._batch(1), checks._batch(2)]
    weights, losses = checks._reference_steps(model, batches)

    lesson = copy.deepcopy(model)
    optimizer = torch.optim.SGD(lesson.parameters(), lr=checks._LEARNING_RATE)
    lesson_losses = [train_step(lesson, images, masks, BCEDiceLoss(), optimizer, torch.device("cpu"))
                     for images, masks in batches]
    assert np.allclose(losses, lesson_losses, atol=1e-6)
    assert checks._same_weights(weights, checks._weights(lesson))

    epoch = copy.deepcopy(model)
    epoch.eval()
    optimizer = torch.optim.SGD(epoch.parameters(), lr=checks._LEARNING_RATE)
    mean_loss, seen = train_one_epoch(epoch, batches, BCEDiceLoss(), optimizer, checks._ConstantRate(),
                                      torch.device("cpu"))
    assert seen == 4 and math.isclose(mean_loss, float(np.mean(lesson_losses)), abs_tol=1e-6)
    assert epoch.modes == [True, True]
    for (name, mine), theirs in zip(lesson.state_dict().items(), epoch.state_dict().values()):
        assert torch.allclose(mine.float(), theirs.float(), atol=1e-6), name  # BatchNorm's running statistics too


@pytest.mark.parametrize("threshold, alpha", [(0.5, 0.3), (0.7, 0.4)])
def test_overlay_reference_tints_only_cat_pixels(threshold, alpha):
    """segkit's blend_overlay, the checker's reference, against the formula written out in numpy."""
    photo, probs = checks._overlay_inputs()
    right = np.asarray(blend_overlay(photo, probabilities_to_mask(probs, threshold), alpha)).astype(float)
    original = np.asarray(photo).astype(float)
    cat = probs > threshold
    expected = np.where(cat[..., None], (1 - alpha) * original + alpha * np.array([0, 128, 0]), original)
    assert np.abs(right - expected).max() <= 1  # Pillow rounds
    assert np.array_equal(right[~cat], original[~cat])  # the background is the photo, untouched
    assert np.array_equal(checks._blend(photo, cat, alpha), np.asarray(overlay(photo, probs, threshold, alpha)))


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


class StubUNet(UNet):
    def forward(self, x):
        _stub()


STUBS = [
    pytest.param(check_polygon_to_mask, _stub, id="polygon_to_mask"),
    pytest.param(check_dataset_getitem, StubDataset, id="dataset_getitem"),
    pytest.param(check_double_conv, StubModule, id="double_conv"),
    pytest.param(check_up_block, StubModule, id="up_block"),
    pytest.param(check_unet_forward, StubUNet, id="unet_forward"),
    pytest.param(check_dice_loss, _stub, id="dice_loss"),
    pytest.param(check_iou_from_confusion, _stub, id="iou_from_confusion"),
    pytest.param(check_mean_iou, _stub, id="mean_iou"),
    pytest.param(check_train_step, _stub, id="train_step"),
    pytest.param(check_overlay, _stub, id="overlay"),
    pytest.param(check_predict_classes, _stub, id="predict_classes"),
    pytest.param(check_per_class_iou, _stub, id="per_class_iou"),
    pytest.param(check_project, _stub, id="project", marks=needs_shipped),
]


def test_every_public_checker_is_tested():
    public = {name for name in checks.__all__ if name.startswith("check_")}
    assert public == {p.values[0].__name__ for p in STUBS}
    assert public == {p.values[0].__name__ for p in REFERENCES} | {"check_project"}  # the project: tests above
    assert public == {c.__name__ for c, _, _ in _triples(WRONG_ANSWERS)}


@pytest.mark.parametrize("check, stub", STUBS)
def test_stub_is_not_implemented_yet_and_never_raises_even_in_strict_mode(check, stub, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    result = check(stub)
    assert result.status == NOT_IMPLEMENTED
    assert "NotImplementedError" in result.message and "# YOUR CODE HERE" in result.message
    assert str(result).startswith("[not implemented yet]") and not result


def _first_wrong_answers():
    firsts = {}
    for param in WRONG_ANSWERS:
        check, wrong, hint = param.values if hasattr(param, "values") else param
        if check not in firsts:
            firsts[check] = pytest.param(check, wrong, hint, id=check.__name__,
                                         marks=getattr(param, "marks", ()))
    return list(firsts.values())


@pytest.mark.parametrize("check, wrong, hint", _first_wrong_answers())
def test_strict_mode_raises_on_a_wrong_answer_with_the_hint(check, wrong, hint, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(CheckFailed) as raised:
        check(wrong)
    assert str(raised.value).startswith("[try again]") and hint in str(raised.value)


def test_strict_mode_passes_a_right_answer_quietly(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    assert check_dice_loss(dice_loss).passed


@pytest.mark.parametrize("value, strict", [("1", True), ("true", True), ("yes", True), (" YES ", True),
                                           ("0", False), ("", False), ("no", False)])
def test_strict_switch_values(value, strict, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, value)
    assert checks.strict_mode() is strict


def _crashes(*args, **kwargs):
    raise ValueError("boom")


class CrashingModule(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        _crashes()


class CrashingDataset(CatsDataset):
    def __getitem__(self, index):
        _crashes()


class CrashingUNet(UNet):
    def forward(self, x):
        _crashes()


CRASHES = [
    pytest.param(check_polygon_to_mask, _crashes, id="polygon_to_mask"),
    pytest.param(check_dataset_getitem, CrashingDataset, id="dataset_getitem"),
    pytest.param(check_double_conv, CrashingModule, id="double_conv"),
    pytest.param(check_up_block, CrashingModule, id="up_block"),
    pytest.param(check_unet_forward, CrashingUNet, id="unet_forward"),
    pytest.param(check_dice_loss, _crashes, id="dice_loss"),
    pytest.param(check_iou_from_confusion, _crashes, id="iou_from_confusion"),
    pytest.param(check_mean_iou, _crashes, id="mean_iou"),
    pytest.param(check_train_step, _crashes, id="train_step"),
    pytest.param(check_overlay, _crashes, id="overlay"),
    pytest.param(check_predict_classes, _crashes, id="predict_classes"),
    pytest.param(check_per_class_iou, _crashes, id="per_class_iou"),
    pytest.param(check_project, _crashes, id="project", marks=needs_shipped),
]


@pytest.mark.parametrize("check, crashing", CRASHES)
def test_any_error_in_the_learners_code_is_reported_not_raised(check, crashing):
    result = check(crashing)
    assert result.status == WRONG
    assert "ValueError: boom (while " in result.message


def test_error_report_says_which_case_was_running():
    result = check_dice_loss(_crashes)
    assert "ValueError: boom (while checking dice_loss on two identical masks)." in result.message
    assert result.cases == 0


def test_passing_the_result_instead_of_the_function_is_explained():
    result = check_mean_iou(0.5)
    assert result.status == WRONG and "without calling it" in result.message


def test_checks_leave_the_notebooks_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_double_conv(DoubleConv)
    check_dice_loss(dice_loss)
    check_unet_forward(MyUNet)
    assert torch.equal(torch.rand(3), expected)


def test_checks_run_with_gradients_even_inside_no_grad():
    with torch.no_grad():
        assert check_train_step(train_step).passed and check_dice_loss(dice_loss).passed


def test_result_shows_as_text_and_as_coloured_html():
    result = checks.CheckResult("dice<loss>", WRONG, "a & b")
    assert repr(result) == str(result) == "[try again] dice<loss>: a & b"
    shown = result._repr_html_()
    assert html.escape("dice<loss>") in shown and "a &amp; b" in shown and "#d93025" in shown
    assert "#1e8e3e" in checks.CheckResult("x", PASSED, "ok")._repr_html_()
    assert "#f9ab00" in checks.CheckResult("x", NOT_IMPLEMENTED, "later")._repr_html_()
