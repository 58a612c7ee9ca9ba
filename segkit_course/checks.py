"""Instant feedback for the exercise notebooks: one ``check_*`` function per exercise.

    from segkit_course.checks import check_dice_loss
    check_dice_loss(dice_loss)          # the cell right after the exercise

A check runs the learner's function on small fixed cases, each chosen to catch a typical
mistake (a forgotten sigmoid, a mask resized bilinearly, BatchNorm created in ``forward``,
a batch never moved to the device, ...), and returns a :class:`CheckResult` that Jupyter
shows as one coloured line:

    [passed]               every case gave the right answer
    [not implemented yet]  the function still raises NotImplementedError (the exercise stub)
    [try again]            the first case that went wrong, with a hint that points at the
                           mistake without giving the answer away

Checks compare behaviour, never source code, so any correct implementation passes.

A check never crashes the learner's notebook: whatever their code raises is reported as a
wrong answer. With the environment variable ``SEGKIT_STRICT_CHECKS=1`` (``make test`` and CI
set it) a wrong answer raises :class:`CheckFailed` instead, so a broken solution notebook fails
nbval. "Not implemented yet" never raises, so the exercise notebooks, full of stubs, still run
top to bottom.
"""

from __future__ import annotations

import copy
import html
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

__all__ = [
    "STRICT_ENV", "PASSED", "NOT_IMPLEMENTED", "WRONG", "CheckResult", "CheckFailed", "strict_mode",
    "check_polygon_to_mask", "check_dataset_getitem", "check_double_conv", "check_up_block", "check_unet_forward",
    "check_dice_loss", "check_iou_from_confusion", "check_mean_iou", "check_train_step",
    "check_overlay", "check_predict_classes", "check_per_class_iou", "check_project", "project_split",
]

STRICT_ENV = "SEGKIT_STRICT_CHECKS"

PASSED = "passed"
NOT_IMPLEMENTED = "not implemented yet"
WRONG = "try again"

_NOT_IMPLEMENTED_MESSAGE = (
    "still raises NotImplementedError. Write your code where it says # YOUR CODE HERE, delete the "
    "`raise NotImplementedError(...)` line, run that cell, then run this check again."
)
# (background, border, symbol) of the HTML line for each status
_STYLE = {
    PASSED: ("#e6f4ea", "#1e8e3e", "&#10004;"),
    NOT_IMPLEMENTED: ("#fef7e0", "#f9ab00", "&#8230;"),
    WRONG: ("#fce8e6", "#d93025", "&#10008;"),
}


def strict_mode() -> bool:
    """True when SEGKIT_STRICT_CHECKS is set to 1 (or true/yes): wrong answers then raise."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes")


class CheckFailed(AssertionError):
    """A wrong answer under SEGKIT_STRICT_CHECKS=1 (never raised for 'not implemented yet')."""


@dataclass(frozen=True, repr=False)
class CheckResult:
    """What a check found.

    exercise: the name that was checked, e.g. "dice_loss".
    status: PASSED, NOT_IMPLEMENTED or WRONG.
    message: the line shown to the learner (the hint, for a wrong answer).
    cases: how many cases gave the right answer.

    ``bool(result)`` is True only for a pass. Jupyter shows the HTML form (a coloured line);
    ``str``/``repr`` give the same line as plain text.
    """

    exercise: str
    status: str
    message: str
    cases: int = 0
    value: Any = None  # what the learner's function returned, where a later cell needs it (the project's model)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"[{self.status}] {self.exercise}: {self.message}"

    __repr__ = __str__  # Jupyter's text output (and nbval's comparison) use repr

    def _repr_html_(self) -> str:
        background, border, symbol = _STYLE[self.status]
        return (
            f'<div style="background:{background};border-left:4px solid {border};padding:6px 10px;'
            f'font-family:sans-serif">{symbol} <b>{html.escape(self.exercise)}</b> '
            f"({html.escape(self.status)}): {html.escape(self.message)}</div>"
        )


# ----------------------------------------------------------------------------- machinery


class _Wrong(Exception):
    """One case gave a wrong answer; the message is the hint shown to the learner."""


class _Trial:
    """Counts the cases and remembers which one is running, to say where an error happened."""

    def __init__(self, exercise: str) -> None:
        self.exercise = exercise
        self.count = 0
        self.doing = f"calling {exercise}"
        self.value = None

    def case(self, description: str) -> None:
        self.count += 1
        self.doing = f"checking {self.exercise} on {description}"


def _run(exercise: str, cases: Callable[[Any, _Trial], None], candidate: Any,
         error_hints: dict[str, str] | None = None) -> CheckResult:
    """Run the cases on the learner's candidate and turn whatever happens into a CheckResult."""
    trial = _Trial(exercise)
    if not callable(candidate):
        result = CheckResult(exercise, WRONG, f"expected the function or class itself, got a value "
                             f"of type {type(candidate).__name__}. Pass it without calling it: "
                             f"`{exercise}`, not `{exercise}(...)`.")
    else:
        try:
            # The learner's notebook keeps its own random stream: the cases draw from a fork.
            with torch.random.fork_rng(devices=[]), torch.enable_grad():
                torch.manual_seed(0)
                cases(candidate, trial)
        except NotImplementedError:
            result = CheckResult(exercise, NOT_IMPLEMENTED, _NOT_IMPLEMENTED_MESSAGE)
        except _Wrong as wrong:
            result = CheckResult(exercise, WRONG, str(wrong), trial.count - 1, trial.value)
        except Exception as error:  # the learner's code raised: report it, never crash the notebook
            result = CheckResult(exercise, WRONG, _describe_error(error, trial, error_hints or {}),
                                 trial.count - 1)
        else:
            cases_right = f"all {trial.count} cases right" if trial.count > 1 else "right"
            result = CheckResult(exercise, PASSED, f"{cases_right}. Well done!", trial.count, trial.value)
    if result.status == WRONG and strict_mode():
        raise CheckFailed(str(result))
    return result


def _describe_error(error: Exception, trial: _Trial, error_hints: dict[str, str]) -> str:
    text = f"{type(error).__name__}: {error}"
    if len(text) > 300:
        text = text[:297] + "..."
    message = f"{text} (while {trial.doing})."
    for fragment, hint in error_hints.items():
        if fragment in f"{type(error).__name__}: {error}":
            return f"{message} {hint}"
    return message


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.3f}"


def _close(a, b, tol: float = 1e-4) -> bool:
    """Equal within tol, NaN matching NaN; numbers or arrays of the same shape."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, atol=tol, rtol=0, equal_nan=True))


def _first_match(value, variants: Sequence[tuple[Any, str]], correct) -> str | None:
    """The hint of the first known wrong variant that `value` equals (and the right answer does not)."""
    for wrong_value, hint in variants:
        if _close(value, wrong_value) and not _close(correct, wrong_value):
            return hint
    return None


def _as_number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise _Wrong(f"{what} should be a number; yours is a bool.")
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if math.prod(value.shape) != 1:
            raise _Wrong(f"{what} should be one number; yours has shape {tuple(value.shape)}.")
        return float(value.item())
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    raise _Wrong(f"{what} should be a number; yours is a {type(value).__name__}.")


def _as_vector(value: Any, what: str, length: int) -> np.ndarray:
    """A learner's list / tuple / tensor / array of numbers as float64 (length,)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Wrong(f"{what} should be a sequence of {length} numbers; yours is a {type(value).__name__}.") from None
    if array.shape != (length,):
        raise _Wrong(f"{what} should hold one number per class, shape ({length},); yours has shape {array.shape}.")
    return array


# ----------------------------------------------------------------------------- exercise 1: polygon -> mask

_POLYGON_HW = (30, 40)  # height != width, so a swapped size shows
_TRIANGLE = [[3.4, 2.2], [26.6, 6.5], [8.2, 24.8]]  # [x, y]; inside the 30 x 30 corner, so a swap stays in the image
_BEYOND = [[-6.0, -4.0], [52.5, 8.0], [12.0, 41.0]]  # reaches past every border


def _labelme_mask(points: list, height: int, width: int, value: int) -> np.ndarray:
    from segkit.export import shapes_to_mask  # equal to labelme's own rasteriser, pixel for pixel

    return shapes_to_mask([{"label": "cat", "points": points, "shape_type": "polygon"}], (height, width),
                          {"cat": value})


def _expect_mask_array(mask: Any) -> np.ndarray:
    if isinstance(mask, Image.Image):
        raise _Wrong("polygon_to_mask should return a numpy array, not a PIL image: convert it with np.array(...).")
    if not isinstance(mask, np.ndarray):
        raise _Wrong(f"polygon_to_mask should return a numpy array; yours returns a {type(mask).__name__}.")
    return mask


def _grow(inside: np.ndarray) -> np.ndarray:
    """`inside` plus its 8 neighbours (a one-pixel dilation)."""
    padded = np.pad(inside, 1)
    h, w = inside.shape
    return np.any([padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)


def _compare_pixels(mask: np.ndarray, expected: np.ndarray, where: str) -> None:
    inside = expected != 0
    missing = inside & (mask == 0)
    extra = ~inside & (mask != 0)
    if not missing.any() and not extra.any():
        return
    near_edge = _grow(inside) & _grow(~inside)  # the band of pixels on either side of the edge
    if not ((missing | extra) & ~near_edge).any():
        raise _Wrong(f"{where}: {int((missing | extra).sum())} pixels along the polygon's edge differ from labelme's "
                     f"mask ({int(missing.sum())} missing, {int(extra.sum())} too many). Which edge pixels count "
                     "as inside is a convention: labelme lets Pillow's ImageDraw fill the polygon and draw its "
                     "outline, both in `value`.")
    raise _Wrong(f"{where}: {int((missing | extra).sum())} of the {mask.size} pixels differ from labelme's mask "
                 f"of the same polygon ({int(missing.sum())} missing, {int(extra.sum())} too many).")


def _polygon_cases(polygon_to_mask: Callable, trial: _Trial) -> None:
    height, width = _POLYGON_HW

    trial.case("a triangle on a 30 x 40 (height x width) image")
    mask = _expect_mask_array(polygon_to_mask([list(p) for p in _TRIANGLE], height, width))
    expected = _labelme_mask(_TRIANGLE, height, width, 1)
    if mask.shape == (width, height):
        raise _Wrong(f"for height={height}, width={width} the mask should have shape ({height}, {width}); yours "
                     f"has {mask.shape}. Pillow sizes are (width, height), numpy shapes are (height, width).")
    if mask.shape != expected.shape:
        raise _Wrong(f"for height={height}, width={width} the mask should have shape ({height}, {width}); yours "
                     f"has {mask.shape}.")
    if mask.dtype != np.uint8:
        raise _Wrong(f"the mask should be uint8 (class indices 0..255); yours is {mask.dtype}.")
    values = sorted(set(np.unique(mask).tolist()) - {0})
    if not values:
        raise _Wrong("the mask is all 0: the triangle was not drawn.")
    if values != [1]:
        raise _Wrong(f"pixels inside should hold value=1; yours hold {values}. A mask stores class indices, "
                     "not a white picture: fill with `value`.")
    swapped = _labelme_mask([[y, x] for x, y in _TRIANGLE], height, width, 1)
    if np.array_equal(mask, swapped):
        raise _Wrong("your triangle comes out mirrored along the diagonal. labelme points are [x, y], i.e. "
                     "[column, row]: did you swap x and y?")
    _compare_pixels(mask, expected, "the triangle")

    trial.case("the same triangle with value=2")
    mask = _expect_mask_array(polygon_to_mask([list(p) for p in _TRIANGLE], height, width, value=2))
    if set(np.unique(mask).tolist()) == {0, 1}:
        raise _Wrong("with value=2 the pixels inside should be 2; yours are 1. Fill with the `value` argument.")
    if not np.array_equal(mask, expected * 2):
        raise _Wrong("with value=2 your mask should be the value=1 mask times 2, but it is not.")

    trial.case("a polygon reaching beyond the image")
    mask = _expect_mask_array(polygon_to_mask([list(p) for p in _BEYOND], height, width))
    if mask.shape != (height, width):
        raise _Wrong(f"a polygon reaching beyond the image should still give a ({height}, {width}) mask; yours "
                     f"has {mask.shape}. Clip to the image.")
    _compare_pixels(mask, _labelme_mask(_BEYOND, height, width, 1), "a polygon reaching beyond the image")


def check_polygon_to_mask(polygon_to_mask: Callable) -> CheckResult:
    """Exercise 1: ``polygon_to_mask(points, height, width, value=1)`` -> uint8 (H, W) mask.

    points: labelme's [[x, y], ...] in pixels. The mask must equal labelme's rasterisation:
    `value` inside the polygon and on its edge, 0 elsewhere, clipped to the image.
    """
    return _run("polygon_to_mask", _polygon_cases, polygon_to_mask, {
        "IndexError": "labelme polygons may reach beyond the image: clip them, as Pillow's drawing does.",
    })


# ----------------------------------------------------------------------------- exercise 2: Dataset.__getitem__

_ITEM_SIZE = 16
_PHOTO_WH = (50, 34)  # not square, and no multiple of 16: resizing samples between pixels
_RED, _BLUE, _GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)


def _write_tiny_voc(root: Path) -> None:
    """Two photos and masks in the VOC layout, with content a check can recognise after resizing.

    photo_a: left half red, right half blue; mask: a cat (1) in the middle, ringed by ignore (255).
    photo_b: top half green, bottom half black; mask: a cat (1) in the bottom-right quarter.
    """
    from segkit.draw import colorize

    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    width, height = _PHOTO_WH
    photo_a = np.zeros((height, width, 3), np.uint8)
    photo_a[:, : width // 2] = _RED
    photo_a[:, width // 2:] = _BLUE
    mask_a = np.zeros((height, width), np.uint8)
    mask_a[7:27, 11:39] = 255  # odd borders: a bilinear resize mixes 0, 1 and 255 there
    mask_a[9:25, 13:37] = 1
    photo_b = np.zeros((height, width, 3), np.uint8)
    photo_b[: height // 2] = _GREEN
    mask_b = np.zeros((height, width), np.uint8)
    mask_b[height // 2:, width // 2:] = 1
    for stem, photo, mask in (("photo_a", photo_a, mask_a), ("photo_b", photo_b, mask_b)):
        Image.fromarray(photo).save(root / "JPEGImages" / f"{stem}.jpg", quality=95)
        colorize(mask).save(root / "SegmentationClass" / f"{stem}.png")


def _check_item_image(image: Any, size: int) -> torch.Tensor:
    if isinstance(image, np.ndarray):
        raise _Wrong("the image should be a torch tensor, not a numpy array: convert it with torch.from_numpy(...).")
    if not isinstance(image, torch.Tensor):
        raise _Wrong(f"the image should be a torch tensor; yours is a {type(image).__name__}.")
    if image.dtype != torch.float32:
        raise _Wrong(f"the image should be torch.float32; yours is {image.dtype}. Convert with .float() "
                     "(and divide by 255).")
    if tuple(image.shape) == (size, size, 3):
        raise _Wrong(f"the image should have shape (3, {size}, {size}), channels first; yours has "
                     f"{tuple(image.shape)}. PyTorch convolutions want channels first: did you forget "
                     "to move the channel axis (HWC -> CHW)?")
    if tuple(image.shape) != (3, size, size):
        raise _Wrong(f"the image should have shape (3, {size}, {size}) for size={size}; yours has "
                     f"{tuple(image.shape)}. Resize the photo to size x size.")
    top = float(image.max())
    if top > 1.0 + 1e-3:
        raise _Wrong(f"image values should lie in [0, 1]; yours go up to {top:.1f}. Divide by 255.")
    if float(image.min()) < -1e-3:
        raise _Wrong(f"image values should lie in [0, 1]; yours go down to {float(image.min()):.2f}.")
    return image


def _check_item_mask(mask: Any, size: int) -> torch.Tensor:
    if isinstance(mask, np.ndarray):
        raise _Wrong("the mask should be a torch tensor, not a numpy array: convert it with torch.from_numpy(...).")
    if not isinstance(mask, torch.Tensor):
        raise _Wrong(f"the mask should be a torch tensor; yours is a {type(mask).__name__}.")
    if tuple(mask.shape) == (size, size, 3):
        raise _Wrong(f"the mask should have shape ({size}, {size}); yours has {tuple(mask.shape)}, so it was "
                     "converted to RGB. Its pixel values are the class indices: read the PNG without converting it.")
    if tuple(mask.shape) in ((1, size, size), (size, size, 1)):
        raise _Wrong(f"the mask should have shape ({size}, {size}), without a channel axis; yours has "
                     f"{tuple(mask.shape)}.")
    if tuple(mask.shape) != (size, size):
        raise _Wrong(f"the mask should have shape ({size}, {size}) like the image; yours has "
                     f"{tuple(mask.shape)}. Resize the mask too (nearest-neighbour).")
    if mask.is_floating_point():
        raise _Wrong(f"the mask should hold int64 class indices; yours is {mask.dtype}. Only the photo is "
                     "scaled to [0, 1], not the mask: convert the mask with .long().")
    if mask.dtype != torch.int64:
        raise _Wrong(f"the mask should be int64 (what the losses want); yours is {mask.dtype}: use .long().")
    strange = sorted(set(torch.unique(mask).tolist()) - {0, 1, 255})
    if strange:
        raise _Wrong(f"the mask file holds only 0, 1 and 255, but yours also holds {strange[:6]}: it was resized "
                     "with (bi)linear interpolation, which blends class indices into values that are no class. "
                     "Resize masks with nearest-neighbour (Image.Resampling.NEAREST).")
    return mask


def _dataset_cases(dataset_class: Callable, trial: _Trial) -> None:
    size = _ITEM_SIZE
    with tempfile.TemporaryDirectory(prefix="segkit-check-") as tmp:
        root = Path(tmp) / "voc"
        _write_tiny_voc(root)
        dataset = dataset_class(root, size=size)

        trial.case(f"item 0 of a tiny VOC folder, size={size}")
        item = dataset[0]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise _Wrong(f"__getitem__ should return a pair (image, mask); yours returns a {type(item).__name__}.")
        image = _check_item_image(item[0], size)
        mask = _check_item_mask(item[1], size)
        left, right = image[:, :, : size // 4].mean((1, 2)), image[:, :, -(size // 4):].mean((1, 2))
        if left[2] > 0.6 and left[0] < 0.4 and right[0] > 0.6:
            raise _Wrong("red and blue are swapped: the channels should stay in the photo's RGB order.")
        if not (left[0] > 0.6 and left[2] < 0.4 and right[2] > 0.6 and right[0] < 0.4):
            raise _Wrong("the image has the right shape but its colours are scrambled (the photo's left half is "
                         "red, its right half blue). .view() or .reshape() on an (H, W, 3) array reorder the "
                         "numbers; moving the channel axis needs .permute.")
        cat = float((mask == 1).double().mean())
        if mask[size // 2, size // 2] != 1 or mask[0, 0] != 0 or not 0.15 < cat < 0.4:
            raise _Wrong("the mask does not line up with the photo: the cat (1) should fill the middle quarter "
                         "and the corners be background (0).")

        trial.case("item 1, the second photo")
        image, mask = dataset[1][0], dataset[1][1]
        if not (float(image[1, : size // 4].mean()) > 0.6 and float(image[1, -(size // 4):].mean()) < 0.2):
            raise _Wrong("dataset[1] should return the second photo (top half green): use `index` to pick the files.")
        if not (mask[-2, -2] == 1 and mask[1, 1] == 0):
            raise _Wrong("dataset[1] should return the second photo's mask: use `index` for the mask too.")


def check_dataset_getitem(dataset_class: Callable) -> CheckResult:
    """Exercise 2: ``dataset_class(root, size)[i]`` -> (image, mask).

    image: float32 (3, size, size) in [0, 1]; mask: int64 (size, size) class indices, resized with
    nearest-neighbour. The check builds a tiny VOC folder with two recognisable photos.
    """
    return _run("__getitem__", _dataset_cases, dataset_class, {
        "IndexError": "index the lists of files with `index`, the argument of __getitem__.",
    })


# ----------------------------------------------------------------------------- exercise 3: DoubleConv

_MODULE_HINTS = {
    "before Module.__init__() call": "Call super().__init__() first in __init__, before creating any layer.",
}


def _double_conv_cases(double_conv_class: Callable, trial: _Trial) -> None:
    from segkit.model import DoubleConv as ReferenceDoubleConv

    trial.case("DoubleConv(3, 8)")
    block = double_conv_class(3, 8)
    if not isinstance(block, nn.Module):
        raise _Wrong("DoubleConv should be an nn.Module: class DoubleConv(nn.Module).")
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    if not convs and not norms:
        raise _Wrong("no layer is registered in your module. PyTorch only sees layers created in __init__ and "
                     "stored as attributes (self.conv1 = ...) or in nn.Sequential / nn.ModuleList; a plain Python "
                     "list, or a layer made in forward, is invisible to .to(device), .parameters() and state_dict().")
    if not norms:
        raise _Wrong("no nn.BatchNorm2d is registered in your module: create the BatchNorm layers in __init__ "
                     "(as attributes or inside nn.Sequential), not in forward. A layer made in forward is never "
                     "moved by .to(device) (the lesson's 'Expected all tensors to be on the same device' error), "
                     "never learns, and never switches to eval mode.")
    if len(norms) != 2:
        raise _Wrong(f"found {len(norms)} BatchNorm2d layers; a DoubleConv has 2, one after each convolution.")
    if sum(conv.kernel_size == (3, 3) for conv in convs) != 2:
        raise _Wrong(f"a DoubleConv has two 3x3 convolutions (kernel_size=3); yours has "
                     f"{[conv.kernel_size for conv in convs]}.")

    trial.case("a (2, 3, 10, 12) batch in training mode")
    block.train()
    before = [norm.running_mean.clone() for norm in norms]
    out = block(torch.randn(2, 3, 10, 12))
    if not isinstance(out, torch.Tensor):
        raise _Wrong(f"forward should return a tensor; yours returns a {type(out).__name__}.")
    if tuple(out.shape) == (2, 8, 6, 8):
        raise _Wrong("the output is (2, 8, 6, 8) but should keep the input's height and width, (2, 8, 10, 12): "
                     "a 3x3 convolution without padding loses a pixel on every side. Use padding=1.")
    if tuple(out.shape) != (2, 8, 10, 12):
        raise _Wrong(f"for a (2, 3, 10, 12) input the output should be (2, 8, 10, 12); yours is {tuple(out.shape)}.")
    if bool((out < 0).any()):
        raise _Wrong("the output has negative values, so the block does not end with a ReLU. The order is "
                     "conv -> BatchNorm -> ReLU, twice.")
    if any(torch.equal(old, norm.running_mean) for old, norm in zip(before, norms)):
        raise _Wrong("your BatchNorm layers are registered, but forward does not run x through all of them "
                     "(their running statistics did not change).")

    trial.case("the number of parameters")
    count = sum(p.numel() for p in block.parameters())
    expected = sum(p.numel() for p in ReferenceDoubleConv(3, 8).parameters())
    if count == expected + 2 * 8:
        raise _Wrong(f"your block has {count} parameters, {expected} expected: the convolutions need no bias "
                     "(bias=False), since the BatchNorm right after them subtracts the mean and adds its own shift.")
    if count != expected:
        raise _Wrong(f"your block has {count} parameters, {expected} expected for DoubleConv(3, 8).")


def check_double_conv(double_conv_class: Callable) -> CheckResult:
    """Exercise 3: ``DoubleConv(in_channels, out_channels)``, (3x3 conv, BatchNorm, ReLU) twice.

    (N, in, H, W) -> (N, out, H, W); both BatchNorm layers registered as submodules and used.
    """
    return _run("DoubleConv", _double_conv_cases, double_conv_class, _MODULE_HINTS)


# ----------------------------------------------------------------------------- exercise 4: the decoder step


def _up_cases(up_class: Callable, trial: _Trial) -> None:
    from segkit.model import Up as ReferenceUp

    trial.case("Up(16, 8)")
    up = up_class(16, 8)
    if not isinstance(up, nn.Module):
        raise _Wrong("Up should be an nn.Module: class Up(nn.Module).")

    trial.case("x (2, 16, 5, 6) and skip (2, 8, 10, 12)")
    x, skip = torch.randn(2, 16, 5, 6), torch.randn(2, 8, 10, 12)
    up.eval()  # BatchNorm then uses its running statistics: the output depends on this input only
    with torch.no_grad():
        out = up(x, skip)
    if not isinstance(out, torch.Tensor):
        raise _Wrong(f"forward should return a tensor; yours returns a {type(out).__name__}.")
    if tuple(out.shape) != (2, 8, 10, 12):
        raise _Wrong(f"the output should be (2, 8, 10, 12), skip's height and width with out_channels=8 "
                     f"channels; yours is {tuple(out.shape)}.")
    ups = [m for m in up.modules() if isinstance(m, nn.ConvTranspose2d)]
    if not ups:
        raise _Wrong("upsample with a learned nn.ConvTranspose2d, as in the lesson; yours has none.")
    if ups[0].kernel_size != (2, 2) or ups[0].stride != (2, 2) or ups[0].out_channels != 8:
        raise _Wrong(f"the transposed convolution should double height and width and halve the channels "
                     f"(16 -> 8, kernel_size=2, stride=2); yours has {ups[0].in_channels} -> {ups[0].out_channels} "
                     f"channels, kernel_size={ups[0].kernel_size}, stride={ups[0].stride}.")

    trial.case("another skip with the same x")
    with torch.no_grad():
        out_other_skip = up(x, torch.randn(2, 8, 10, 12))
    if torch.allclose(out, out_other_skip):
        raise _Wrong("changing skip does not change the output: concatenate skip with the upsampled x along the "
                     "channel axis. That is the skip connection.")

    trial.case("another x with the same skip")
    with torch.no_grad():
        out_other_x = up(torch.randn(2, 16, 5, 6), skip)
    if torch.allclose(out, out_other_x):
        raise _Wrong("changing x does not change the output: upsample x and concatenate it with skip.")

    trial.case("the number of parameters")
    count = sum(p.numel() for p in up.parameters())
    expected = sum(p.numel() for p in ReferenceUp(16, 8).parameters())
    if count != expected:
        raise _Wrong(f"your Up(16, 8) has {count} parameters, {expected} expected: a ConvTranspose2d 16 -> 8 "
                     "(kernel 2, stride 2, with bias) and a DoubleConv(16, 8).")


def check_up_block(up_class: Callable) -> CheckResult:
    """Exercise 4: ``Up(in_channels, out_channels)``: forward(x, skip) upsamples x, concatenates skip, DoubleConv.

    x (N, in, H, W), skip (N, in // 2, 2H, 2W) -> (N, out, 2H, 2W).
    """
    return _run("Up", _up_cases, up_class, {
        **_MODULE_HINTS,
        "Sizes of tensors must match": "x and skip need the same height and width before torch.cat: upsample x "
                                       "first (self.up) so that 5 x 6 becomes 10 x 12.",
        "channels, but got": "The DoubleConv after the concatenation got the wrong number of channels. "
                             "Concatenate along the channel axis (dim=1 of (N, C, H, W)), after the transposed "
                             "convolution halved x's channels: in_channels // 2 from x plus in_channels // 2 from "
                             "skip make in_channels.",
    })


# ----------------------------------------------------------------------------- exercise 6: soft Dice loss

_SURE = 12.0  # a logit this large is a confident prediction: sigmoid(12) = 0.999994


def _dice_value(probs: torch.Tensor, target: torch.Tensor, smooth: float, *, factor: float = 2.0,
                smooth_top: bool = True, squared: bool = False, dims=None) -> torch.Tensor:
    """1 - (factor * sum(p g) + s) / (sum(p) + sum(g) + s), and the usual slips of it."""
    dims = dims if dims is not None else tuple(range(probs.ndim))
    intersection = (probs * target).sum(dims)
    sizes = (probs ** 2).sum(dims) + (target ** 2).sum(dims) if squared else probs.sum(dims) + target.sum(dims)
    return 1 - (factor * intersection + (smooth if smooth_top else 0.0)) / (sizes + smooth)


def _dice_variants(logits: torch.Tensor, target: torch.Tensor, smooth: float) -> tuple[float, list[tuple[float, str]]]:
    """The right loss (segkit's DiceLoss, the lesson's formula) and the values of typical wrong answers."""
    from segkit.losses import DiceLoss

    probs, truth = torch.sigmoid(logits), target.unsqueeze(1).float()
    right = float(DiceLoss(smooth)(logits, target))
    per_image = float(_dice_value(probs, truth, smooth, dims=(1, 2, 3)).mean())
    variants = [
        (1 - right, "Did you return the Dice score instead of 1 - score?"),
        (float(_dice_value(logits, truth, smooth)),
         "Your loss matches the formula applied to the raw logits: turn them into probabilities in [0, 1] "
         "with torch.sigmoid first."),
        (float(_dice_value((probs > 0.5).float(), truth, smooth)),
         "Your loss matches Dice on the thresholded mask (probs > 0.5). That 'hard' Dice has no gradient, so "
         "nothing could learn from it: use the probabilities themselves."),
        (float(_dice_value(probs, truth, 0.0)),
         "Add the smoothing term s to the numerator and to the denominator: it keeps empty masks from "
         "giving 0 / 0."),
        (float(_dice_value(probs, truth, smooth, smooth_top=False)),
         "The smoothing term s belongs in the numerator too, not only in the denominator."),
        (float(_dice_value(probs, truth, smooth, factor=1.0)),
         "Is the factor 2 in front of the intersection missing?"),
        (float(_dice_value(probs, truth, smooth, squared=True)),
         "Your denominator sums the squares p² and g² (V-Net's variant); the lesson's sums p and g."),
        (per_image,
         "You computed one ratio per image and averaged them; the lesson's loss sums over the whole batch "
         "first (one ratio)."),
        (float(1 - (2 * (probs * target.float()).sum() + smooth) / (probs.sum() + target.sum() + smooth)),
         "probs is (N, 1, H, W) and the target (N, H, W): multiplied as they are, PyTorch broadcasts them to "
         "(N, N, H, W) and pairs every image with every mask. Give the target a channel axis first: "
         "target.unsqueeze(1)."),
    ]
    return right, variants


def _call_dice(dice_loss: Callable, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    loss = dice_loss(logits.clone(), target.clone())
    if isinstance(loss, (float, int)) and not isinstance(loss, bool):
        raise _Wrong("dice_loss returns a Python number; return the tensor. .item() cuts the loss off from "
                     "autograd, so nothing could learn from it.")
    if not isinstance(loss, torch.Tensor):
        raise _Wrong(f"dice_loss should return a tensor; yours returns a {type(loss).__name__}.")
    if loss.ndim != 0:
        raise _Wrong(f"dice_loss should return one number for the whole batch (a 0-dim tensor); yours has shape "
                     f"{tuple(loss.shape)}. Sum over every axis, batch included.")
    return loss


def _dice_case(dice_loss: Callable, logits: torch.Tensor, target: torch.Tensor, should: str,
               tol: float = 1e-4) -> None:
    value = float(_call_dice(dice_loss, logits, target).detach())
    right, variants = _dice_variants(logits, target, 1.0)
    if _close(value, right, tol):
        return
    hint = _first_match(value, variants, right)
    raise _Wrong(f"{should}; yours gives {_fmt(value)}." + (f" {hint}" if hint else ""))


def _dice_cases(dice_loss: Callable, trial: _Trial) -> None:
    target = torch.zeros(2, 6, 6, dtype=torch.int64)  # segkit's mask format: (N, H, W) class indices
    target[0, 1:4, 1:5] = 1
    target[1, 2:6, 3:5] = 1
    sure = torch.where(target > 0, _SURE, -_SURE).unsqueeze(1)

    trial.case("two identical masks")
    _dice_case(dice_loss, sure, target, "identical masks should give a loss of 0")

    trial.case("two empty masks (no cat, none predicted)")
    # "About 0": the right loss is 4e-4 here, and hard or squared Dice give 0; the random batch tells those apart.
    _dice_case(dice_loss, torch.full_like(sure, -_SURE), torch.zeros_like(target),
               "two empty masks (no cat anywhere, none predicted) should give a loss of about 0", tol=1e-3)

    trial.case("a random batch")
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 1, 5, 7, generator=generator) * 2
    noisy_target = (torch.rand(2, 5, 7, generator=generator) > 0.6).long()
    right, _ = _dice_variants(logits, noisy_target, 1.0)
    _dice_case(dice_loss, logits, noisy_target, f"for this random batch the loss should be {right:.3f}")

    trial.case("the gradient")
    logits = logits.clone().requires_grad_(True)
    loss = _call_dice(dice_loss, logits, noisy_target)
    if not loss.requires_grad:
        raise _Wrong("your loss has no gradient (requires_grad is False). Soft Dice must stay differentiable: "
                     "don't threshold the probabilities and don't call .item(), .detach() or .numpy() inside.")
    loss.backward()
    if logits.grad is None or not bool(torch.isfinite(logits.grad).all()) or not bool(logits.grad.abs().sum() > 0):
        raise _Wrong("the gradient of your loss with respect to the logits is missing, zero or not finite.")


def check_dice_loss(dice_loss: Callable) -> CheckResult:
    """Exercise 6: ``dice_loss(logits, target, smooth=1.0)`` -> 0-dim tensor.

    logits (N, 1, H, W) raw outputs, target (N, H, W) int64 {0, 1} (segkit's mask format); the
    lesson's soft Dice ``1 - (2 sum(p g) + s) / (sum(p) + sum(g) + s)`` with p = sigmoid(logits),
    summed over the batch: the value of segkit.DiceLoss.
    """
    return _run("dice_loss", _dice_cases, dice_loss, {
        "must match the size of tensor b": "logits are (N, 1, H, W) and the target (N, H, W): give the target a "
                                           "channel axis (target.unsqueeze(1)) before multiplying them.",
    })


# ----------------------------------------------------------------------------- exercise 7: IoU and mIoU

# rows = true class, columns = predicted class; class 3 appears in neither
_CONFUSION = torch.tensor([[50, 2, 3, 0],
                           [4, 20, 1, 0],
                           [6, 0, 9, 0],
                           [0, 0, 0, 0]])
_CONFUSION_BINARY = torch.tensor([[80, 5],
                                  [10, 5]])


def _confusion(matrix: torch.Tensor):
    from segkit.metrics import ConfusionMatrix

    confusion = ConfusionMatrix(len(matrix))
    confusion.mat = matrix.clone().long()
    return confusion


def _iou_variants(matrix: torch.Tensor) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    m = matrix.double()
    tp, truth, predicted = m.diagonal(), m.sum(1), m.sum(0)
    right = _confusion(matrix).iou().numpy()  # segkit's ConfusionMatrix is the reference
    variants = [
        ((tp / (truth + predicted)).numpy(),
         "Your union counts the true positives twice: union = TP + FP + FN = row sum + column sum - TP."),
        ((tp / truth).numpy(),
         "That is the recall, TP / (TP + FN) (row sums only): IoU's denominator also counts the false "
         "positives (the column sums)."),
        ((tp / predicted).numpy(),
         "That is the precision, TP / (TP + FP) (column sums only): IoU's denominator also counts the false "
         "negatives (the row sums)."),
        ((2 * tp / (truth + predicted)).numpy(), "That is the Dice score, not the IoU."),
        (np.nan_to_num(right, nan=0.0),
         "A class that appears neither in the truth nor in the prediction has IoU 0 / 0, undefined: it should be "
         "NaN, not 0, so that the mean can leave it out."),
        (np.where(np.isnan(right), np.nan, np.floor(np.nan_to_num(right))),
         "IoU values are fractions in [0, 1] and yours are whole numbers: divide with /, on floats."),
    ]
    return right, variants


def _iou_cases(iou_from_confusion: Callable, trial: _Trial) -> None:
    for matrix, name in ((_CONFUSION, "a 4-class matrix in which class 3 never appears"),
                         (_CONFUSION_BINARY, "a 2-class (background, cat) matrix")):
        trial.case(name)
        given = matrix.clone()
        value = _as_vector(iou_from_confusion(given), "iou_from_confusion(matrix)", len(matrix))
        if not torch.equal(given, matrix):
            raise _Wrong("iou_from_confusion changed the matrix it was given; compute on a copy.")
        right, variants = _iou_variants(matrix)
        if not _close(value, right, 1e-6):
            hint = _first_match(value, variants, right)
            raise _Wrong(f"for {name} the IoUs should be {_fmt_list(right)}; yours are {_fmt_list(value)}."
                         + (f" {hint}" if hint else ""))


def _fmt_list(values) -> str:
    return "[" + ", ".join(_fmt(float(v)) for v in values) + "]"


def check_iou_from_confusion(iou_from_confusion: Callable) -> CheckResult:
    """Exercise 7a: ``iou_from_confusion(matrix)`` -> (K,) IoU per class.

    matrix: (K, K) int64 counts, rows = truth, columns = prediction. IoU = TP / (TP + FP + FN),
    NaN for a class absent from truth and prediction.
    """
    return _run("iou_from_confusion", _iou_cases, iou_from_confusion)


_IOUS = torch.tensor([0.9, 0.5, float("nan"), 0.6], dtype=torch.float64)


def reference_mean_iou(iou: torch.Tensor, include_background: bool = True) -> float:
    """The mean of the defined IoUs (tests/test_checks.py ties it to ConfusionMatrix.miou and .foreground_iou)."""
    return float(torch.nanmean(iou if include_background else iou[1:]))


def _mean_iou_cases(mean_iou: Callable, trial: _Trial) -> None:
    defined = [0.9, 0.5, 0.6]
    for include_background in (True, False):
        right = reference_mean_iou(_IOUS, include_background)
        trial.case(f"IoUs {_fmt_list(_IOUS)} with include_background={include_background}")
        value = _as_number(mean_iou(_IOUS.clone(), include_background=include_background), "mean_iou(...)")
        if _close(value, right, 1e-6):
            continue
        variants = [
            (math.nan, "Class 2 is NaN (it appears nowhere): leave it out of the mean, e.g. with torch.nanmean."),
            ((0.9 + 0.5 + 0.0 + 0.6) / 4 if include_background else (0.5 + 0.0 + 0.6) / 3,
             "Your mean counts the absent class (NaN) as 0: leave it out instead."),
            (sum(defined) / 3,
             "With include_background=False class 0, the background (the first entry), must be left out."),
            ((0.9 + 0.5) / 2, "include_background=False leaves out the first entry (class 0), not the last."),
        ]
        hint = _first_match(value, variants, right)
        raise _Wrong(f"with include_background={include_background} the mean IoU should be {right:.3f}; yours is "
                     f"{_fmt(value)}." + (f" {hint}" if hint else ""))

    trial.case("IoUs that are all NaN (nothing counted yet)")
    value = _as_number(mean_iou(torch.full((3,), float("nan"), dtype=torch.float64), include_background=True),
                       "mean_iou(...)")
    if not math.isnan(value):
        raise _Wrong(f"when every IoU is NaN there is nothing to average: the mean is NaN; yours is {_fmt(value)}.")


def check_mean_iou(mean_iou: Callable) -> CheckResult:
    """Exercise 7b: ``mean_iou(iou, include_background=True)`` -> float.

    iou: (K,) float64 with NaN for absent classes. The mean over the defined (non-NaN) entries:
    segkit's miou; include_background=False leaves class 0 out: segkit's foreground_iou. NaN when
    nothing is defined.
    """
    return _run("mean_iou", _mean_iou_cases, mean_iou, {
        "ZeroDivisionError": "When no IoU is defined there is nothing to average: return NaN.",
    })


# ----------------------------------------------------------------------------- exercise 8: one training step

_LEARNING_RATE = 0.5


class _HostTensor(torch.Tensor):
    """A CPU tensor standing for a batch that still sits in host memory.

    ``.to(...)`` returns a plain tensor (the batch is now "on the device"); every other operation
    keeps the type. The spy model and loss refuse a _HostTensor, as a CUDA model refuses a CPU
    tensor, so a forgotten ``.to(device)`` shows on a machine without a GPU too.
    """

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        result = super().__torch_function__(func, types, args, kwargs or {})
        if func is torch.Tensor.to and isinstance(result, torch.Tensor):
            return result.as_subclass(torch.Tensor)
        return result


class _NotOnDevice(RuntimeError):
    def __init__(self, what: str) -> None:
        super().__init__("Expected all tensors to be on the same device, but found at least two devices, "
                         f"cuda:0 and cpu! (the {what} were not moved to the device)")
        self.hint = (f"the {what} never went through .to(device). On a GPU this is the error 'Expected all "
                     "tensors to be on the same device, but found at least two devices, cuda:0 and cpu': move "
                     "images and masks to the device before the forward pass.")


class _SpyModel(nn.Module):
    """A 1x1 convolution and a BatchNorm (3 channels -> 1 logit) that insists on a moved batch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, kernel_size=1)
        self.norm = nn.BatchNorm2d(1)
        self.modes: list[bool] = []  # self.training at each forward

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if isinstance(images, _HostTensor):
            raise _NotOnDevice("images")
        self.modes.append(self.training)
        return self.norm(self.conv(images))


class _SpyLoss(nn.Module):
    """segkit's BCEDiceLoss, refusing masks that were not moved."""

    def __init__(self) -> None:
        super().__init__()
        from segkit.losses import BCEDiceLoss

        self.loss = BCEDiceLoss()

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        if isinstance(masks, _HostTensor) or isinstance(logits, _HostTensor):
            raise _NotOnDevice("masks")
        return self.loss(logits, masks)


class _ConstantRate:
    """Stands in for segkit's learning-rate schedule: keeps the optimizer's rate."""

    out_of_time = False

    def step(self) -> None:
        pass


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 3, 4, 4, generator=generator)
    masks = (torch.rand(2, 4, 4, generator=generator) > 0.5).long()  # (N, H, W) class indices
    return images, masks


def _reference_steps(model: nn.Module, batches, zero_grad: bool = True) -> tuple[list[torch.Tensor], list[float]]:
    """Weights after the steps, and each step's loss: segkit's train_one_epoch on a copy of `model`."""
    from segkit.train import train_one_epoch

    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=_LEARNING_RATE)
    losses = []
    if zero_grad:
        for batch in batches:
            losses.append(train_one_epoch(model, [batch], _SpyLoss(), optimizer, _ConstantRate(),
                                          torch.device("cpu"))[0])
    else:  # the classic slip: gradients of earlier steps are never cleared
        for images, masks in batches:
            model.train()
            _SpyLoss()(model(images), masks).backward()
            optimizer.step()
    return [p.detach().clone() for p in model.parameters()], losses


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same_weights(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a, b))


def _train_step_cases(train_step: Callable, trial: _Trial) -> None:
    model, loss_fn = _SpyModel(), _SpyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=_LEARNING_RATE)
    device = torch.device("cpu")
    first, second = _batch(1), _batch(2)
    start = copy.deepcopy(model)
    model.eval()  # as evaluate() leaves a model between two epochs

    trial.case("one step on a batch that starts in host memory, the model in eval mode")
    images, masks = (t.as_subclass(_HostTensor) for t in first)
    try:
        loss = train_step(model, images, masks, loss_fn, optimizer, device)
    except _NotOnDevice as error:
        raise _Wrong(error.hint) from None
    if model.modes and not model.modes[0]:
        raise _Wrong("the model ran its forward pass in eval mode: call model.train() first. In eval mode "
                     "BatchNorm uses its running statistics instead of the batch's and stops updating them "
                     "(validation switches the model to eval; every training step must switch it back).")
    expected_weights, expected_losses = _reference_steps(start, [first])
    weights = _weights(model)
    if _same_weights(weights, _weights(start)):
        if any(p.grad is not None for p in model.parameters()):
            raise _Wrong("the weights did not change: call optimizer.step() after loss.backward().")
        raise _Wrong("the weights did not change and no gradient was computed: call loss.backward(), then "
                     "optimizer.step().")
    if not _same_weights(weights, expected_weights):
        raise _Wrong("the weights changed, but not by one optimizer step on this batch. The order is: zero the "
                     "gradients, forward, loss, loss.backward(), optimizer.step().")
    if isinstance(loss, torch.Tensor):
        raise _Wrong("train_step returns a tensor; return loss.item(), a Python float. Keeping the tensors of "
                     "every step keeps their whole graphs in memory.")
    value = _as_number(loss, "train_step's return value")
    if not _close(value, expected_losses[0], 1e-5):
        raise _Wrong(f"train_step returned {value:.4f}, but this batch's loss (before the step) is "
                     f"{expected_losses[0]:.4f}: return the loss you called backward() on.")

    trial.case("a second step on another batch")
    images, masks = (t.as_subclass(_HostTensor) for t in second)
    try:
        train_step(model, images, masks, loss_fn, optimizer, device)
    except _NotOnDevice as error:
        raise _Wrong(error.hint) from None
    weights = _weights(model)
    expected_weights, _ = _reference_steps(start, [first, second])
    accumulated, _ = _reference_steps(start, [first, second], zero_grad=False)
    if _same_weights(weights, accumulated) and not _same_weights(weights, expected_weights):
        raise _Wrong("the second step also used the first batch's gradients: PyTorch adds gradients up, so "
                     "call optimizer.zero_grad() in every step, before loss.backward().")
    if not _same_weights(weights, expected_weights):
        raise _Wrong("after a second step the weights are not what one more optimizer step on the new batch gives.")


def check_train_step(train_step: Callable) -> CheckResult:
    """Exercise 8: ``train_step(model, images, masks, loss_fn, optimizer, device)`` -> float.

    Puts the model in training mode, moves the batch to `device`, runs forward, loss, backward
    and one optimizer step, and returns the batch's loss as a Python float: one iteration of
    segkit's train_one_epoch (without mixed precision). A spy model notices a batch that was not
    moved, and a forward pass in eval mode.
    """
    return _run("train_step", _train_step_cases, train_step, {
        "CUDA enabled": "'.cuda()' only works with an NVIDIA GPU: use .to(device), which also works on the CPU.",
        "NVIDIA driver": "'.cuda()' only works with an NVIDIA GPU: use .to(device), which also works on the CPU.",
    })


# ----------------------------------------------------------------------------- exercise 9: overlay

_LESSON_GREEN = (0, 128, 0)  # the lesson's cat colour (segkit's palette, class 1)


def _overlay_inputs() -> tuple[Image.Image, np.ndarray]:
    """A 12 x 8 photo of colour ramps and cat probabilities with a few telling values."""
    ys, xs = np.mgrid[0:8, 0:12]
    photo = np.stack([xs * 20, ys * 30, np.full_like(xs, 100)], axis=-1).astype(np.uint8)
    probs = np.full((8, 12), 0.2, np.float32)
    probs[2:6, 3:9] = 0.9   # a sure cat
    probs[6:8, 0:5] = 0.6   # a cat at threshold 0.5, not at 0.7
    probs[0, 0] = 0.5       # exactly the threshold: not a cat ("above" means >)
    return Image.fromarray(photo), probs


def _blend(photo: Image.Image, cat: np.ndarray, alpha: float, colour=_LESSON_GREEN, swap: bool = False,
           cat_only: bool = True) -> np.ndarray:
    """Typical answers, right and wrong (the right one is checked against segkit's blend_overlay)."""
    colours = np.zeros((*cat.shape, 3), np.uint8)
    colours[cat] = colour
    mask_image = Image.fromarray(colours)
    blended = Image.blend(mask_image, photo, alpha) if swap else Image.blend(photo, mask_image, alpha)
    out = np.asarray(blended).astype(np.int16)
    if cat_only:
        out = np.where(cat[..., None], out, np.asarray(photo))
    return out


def _overlay_cases(overlay: Callable, trial: _Trial) -> None:
    from segkit.draw import blend_overlay
    from segkit.predict import probabilities_to_mask

    photo, probs = _overlay_inputs()
    for threshold, alpha in ((0.5, 0.3), (0.7, 0.4)):
        trial.case(f"threshold={threshold}, alpha={alpha}")
        result = overlay(photo.copy(), probs.copy(), threshold=threshold, alpha=alpha)
        if isinstance(result, np.ndarray):
            raise _Wrong("overlay should return a PIL image (what Image.blend gives), not a numpy array.")
        if not isinstance(result, Image.Image):
            raise _Wrong(f"overlay should return a PIL image; yours returns a {type(result).__name__}.")
        if result.size != photo.size:
            raise _Wrong(f"the overlay should have the photo's size {photo.size}; yours is {result.size}.")
        if result.mode != "RGB":
            raise _Wrong(f"the overlay should be an RGB image; yours is mode {result.mode!r}: blend two RGB images.")
        value = np.asarray(result).astype(np.int16)
        cat = probs > threshold
        right = np.asarray(blend_overlay(photo, probabilities_to_mask(probs, threshold), alpha)).astype(np.int16)
        if np.abs(value - right).max() <= 1:  # Pillow rounds; 1 step of 255 is no mistake
            continue
        variants = [
            (_blend(photo, cat, alpha, cat_only=False),
             "Your whole photo is blended, so the background gets alpha of black, as in the source lesson's "
             "Image.blend(photo, colour_mask, alpha). Keep the photo as it is where there is no cat (e.g. "
             "Image.composite with the cat mask): a missed cat, or green where there is none, then stands out."),
            (_blend(photo, cat, alpha, swap=True),
             f"The colour should make up alpha = {alpha:.0%} of each cat pixel and the photo the rest; yours is "
             "the other way round. Image.blend(a, b, alpha) gives (1 - alpha) * a + alpha * b."),
            (_blend(photo, cat, alpha, colour=(128, 0, 0)),
             "Cat pixels should be tinted the lesson's green (0, 128, 0); yours are tinted (128, 0, 0), the VOC "
             "colour of class 1."),
            (_blend(photo, cat, alpha, colour=(0, 255, 0)),
             "Cat pixels should be tinted the lesson's green (0, 128, 0); yours use (0, 255, 0)."),
            (_blend(photo, probs >= threshold, alpha),
             "A pixel whose probability equals the threshold exactly is not a cat: a cat is *above* the threshold."),
            (_blend(photo, probs > 0.5, alpha),
             f"With threshold={threshold} your cat pixels are those above 0.5: use the threshold argument."),
            (_blend(photo, cat, alpha, colour=(1, 1, 1)),
             "The mask was blended as a 0/1 grey picture, which is almost black: colour it with the palette "
             "(0 black, 1 green) and convert it to RGB first."),
        ]
        hint = next((h for wrong, h in variants if np.abs(value - wrong).max() <= 1), None)
        differ = int((np.abs(value - right).max(axis=-1) > 1).sum())
        raise _Wrong(f"with threshold={threshold}, alpha={alpha}, {differ} of the {cat.size} pixels are not what "
                     "segkit's blend_overlay gives." + (f" {hint}" if hint else ""))


def check_overlay(overlay: Callable) -> CheckResult:
    """Exercise 9: ``overlay(photo, probs, threshold=0.5, alpha=0.3)`` -> RGB PIL image.

    photo: RGB PIL image; probs: (H, W) float cat probabilities at the photo's size. Cat pixels
    (probs > threshold) become (1 - alpha) * photo + alpha * green (0, 128, 0); the others keep
    the photo: what segkit's blend_overlay draws.
    """
    same_mode = "Image.blend needs two images of the same mode and size: convert the palette mask to RGB first."
    return _run("overlay", _overlay_cases, overlay, {"images do not match": same_mode, "wrong mode": same_mode})


# ----------------------------------------------------------------------------- exercise 10: multi-class


def _predict_classes_cases(predict_classes: Callable, trial: _Trial) -> None:
    from segkit.metrics import logits_to_pred

    # Every axis has its own length, so an argmax over the wrong axis shows in the shape.
    for shape in ((2, 3, 4, 5), (1, 4, 2, 3)):
        n, _, h, w = shape
        trial.case(f"logits of shape {shape}")
        logits = torch.randn(shape)
        pred = predict_classes(logits.clone())
        if not isinstance(pred, torch.Tensor):
            raise _Wrong(f"predict_classes should return a tensor; yours returns a {type(pred).__name__}.")
        if tuple(pred.shape) == (n, 1, h, w):
            raise _Wrong(f"the result should be {(n, h, w)}: drop the class axis instead of keeping it (no keepdim).")
        if tuple(pred.shape) != (n, h, w):
            raise _Wrong(f"for (N, C, H, W) = {shape} logits the result should be (N, H, W) = {(n, h, w)}; yours "
                         f"is {tuple(pred.shape)}. Take the argmax over the class axis, dim=1.")
        if pred.is_floating_point():
            raise _Wrong(f"the result should hold class indices (int64); yours is {pred.dtype}. Did you take the "
                         "largest values (max) instead of their positions (argmax)?")
        if not torch.equal(pred.long(), logits_to_pred(logits)):
            raise _Wrong("each pixel's class should be the one with the largest logit; some of yours are not.")
        if pred.dtype != torch.int64:
            raise _Wrong(f"the class indices should be int64 (what ConfusionMatrix and the losses want); yours are "
                         f"{pred.dtype}.")


def check_predict_classes(predict_classes: Callable) -> CheckResult:
    """Exercise 10a: ``predict_classes(logits)``: (N, C, H, W) logits -> (N, H, W) int64 argmax over C."""
    return _run("predict_classes", _predict_classes_cases, predict_classes)


# rows of a 4 x 5 mask; 255 = ignore. Class 3 is in neither pred nor target.
_MULTI_TARGET = torch.tensor([[[0, 0, 1, 1, 255],
                               [0, 1, 1, 1, 255],
                               [2, 2, 0, 0, 255],
                               [2, 2, 0, 0, 0]]])
_MULTI_PRED = torch.tensor([[[0, 1, 1, 1, 1],
                             [0, 0, 1, 1, 1],
                             [2, 2, 2, 0, 2],
                             [0, 2, 0, 0, 0]]])


def _per_class_variants(pred: torch.Tensor, target: torch.Tensor, k: int) -> tuple[np.ndarray, list]:
    from segkit.metrics import ConfusionMatrix

    confusion = ConfusionMatrix(k)
    confusion.update(pred, target)
    right = confusion.iou().numpy()  # segkit's ConfusionMatrix is the reference
    valid = target != 255
    unignored, doubled = [], []
    for c in range(k):
        p, g = (pred == c), (target == c)
        inter = float((p & g & valid).sum())
        all_union = float((p | g).sum())
        unignored.append(float((p & g).sum()) / all_union if all_union else math.nan)
        total = float((p & valid).sum() + (g & valid).sum())
        doubled.append(inter / total if total else math.nan)
    variants = [
        (np.array(unignored), "Pixels where the target is 255 (ignore) must not count: nobody labelled them, so "
                              "neither a right nor a wrong prediction there may change the IoU."),
        (np.nan_to_num(right, nan=0.0), "Class 3 appears neither in pred nor in target: its IoU is 0 / 0, "
                                        "undefined, so it should be NaN, not 0."),
        (np.array(doubled), "Your union counts the overlap twice: |P or G| = |P| + |G| - |P and G|."),
    ]
    return right, variants


def _per_class_iou_cases(per_class_iou: Callable, trial: _Trial) -> None:
    trial.case("a 4 x 5 mask with 255 (ignore) pixels and num_classes=4 (class 3 absent)")
    pred, target = _MULTI_PRED.clone(), _MULTI_TARGET.clone()
    value = _as_vector(per_class_iou(pred, target, 4), "per_class_iou(pred, target, 4)", 4)
    if not (torch.equal(pred, _MULTI_PRED) and torch.equal(target, _MULTI_TARGET)):
        raise _Wrong("per_class_iou changed pred or target in place; compute on copies.")
    right, variants = _per_class_variants(_MULTI_PRED, _MULTI_TARGET, 4)
    if not _close(value, right, 1e-6):
        hint = _first_match(value, variants, right)
        raise _Wrong(f"the IoUs should be {_fmt_list(right)}; yours are {_fmt_list(value)}."
                     + (f" {hint}" if hint else ""))

    trial.case("the same masks with ignore_index=254 given explicitly")
    target = torch.where(_MULTI_TARGET == 255, 254, _MULTI_TARGET)
    value = _as_vector(per_class_iou(_MULTI_PRED.clone(), target, 4, ignore_index=254),
                       "per_class_iou(..., ignore_index=254)", 4)
    if not _close(value, right, 1e-6):
        raise _Wrong("with ignore_index=254 the pixels marked 254 should be skipped: use the ignore_index "
                     "argument rather than the number 255.")


def check_per_class_iou(per_class_iou: Callable) -> CheckResult:
    """Exercise 10b: ``per_class_iou(pred, target, num_classes, ignore_index=255)`` -> K IoUs.

    pred, target: (N, H, W) int64 class indices; pixels where target == ignore_index are skipped;
    NaN for a class in neither pred nor target.
    """
    return _run("per_class_iou", _per_class_iou_cases, per_class_iou, {
        "ZeroDivisionError": "A class in neither pred nor target has an empty union: its IoU is undefined, "
                             "return NaN (float('nan')) for it instead of dividing.",
    })


# ----------------------------------------------------------------------------- exercise 5: UNet.forward


def _unet_forward_cases(unet_class: Callable, trial: _Trial) -> None:
    from segkit.model import UNet

    trial.case("UNet(base_features=4, depth=3)")
    model = unet_class(base_features=4, depth=3)
    if not isinstance(model, UNet):
        raise _Wrong("build your class on segkit's: class MyUNet(UNet), writing only forward.")
    reference = UNet(base_features=4, depth=3)
    reference.load_state_dict(model.state_dict())
    model.eval(), reference.eval()
    for shape, what in (((2, 3, 32, 48), "a (2, 3, 32, 48) batch: sides that halve three times"),
                        ((1, 3, 37, 45), "a (1, 3, 37, 45) photo: odd sides")):
        trial.case(what)
        x = torch.rand(shape)
        try:
            with torch.no_grad():
                out, right = model(x), reference(x)
        except RuntimeError as error:
            if shape[2] % 8 or shape[3] % 8 or "Sizes of tensors must match" not in str(error):
                raise  # odd sides: _run's hint (pad first, crop at the end)
            raise _Wrong(f"for {what} a skip and the upsampled tensor differ in size ({error}). These sides need no "
                         "padding, so an Up got the skip of another level: the deepest encoder output is the "
                         "bottleneck, and each Up takes the skip of its own level, the last one kept first "
                         "(skips.pop()).") from None
        if not isinstance(out, torch.Tensor):
            raise _Wrong(f"forward should return a tensor; yours returns a {type(out).__name__}.")
        if tuple(out.shape) != tuple(right.shape):
            hint = (" Pad the input up to a multiple of 2**depth first (F.pad), and crop the output back to the "
                    "input's height and width at the end." if shape[2] % 8 else "")
            raise _Wrong(f"for {what} the output should be {tuple(right.shape)}: one logit per pixel of the input; "
                         f"yours is {tuple(out.shape)}.{hint}")
        if not torch.allclose(out, right, atol=1e-5):
            raise _Wrong(f"for {what} the output has the right shape but other values than segkit's UNet with the same "
                         "weights. Keep every encoder output (self.inc, then each Down) as a skip; the deepest one is "
                         "the bottleneck, and each Up takes the skip of its own level: the last one kept comes "
                         "first (skips.pop()).")


def check_unet_forward(unet_class: Callable) -> CheckResult:
    """Exercise 5: ``MyUNet(UNet)`` with its own ``forward(x)``: the encoder/decoder bookkeeping.

    (N, 3, H, W) -> (N, num_classes, H, W) for any H and W, equal to segkit's UNet.forward with
    the same weights: pad to a multiple of 2**depth, keep the skips, pop them in reverse, crop.
    """
    return _run("UNet.forward", _unet_forward_cases, unet_class, {
        "Sizes of tensors must match": "A skip and the upsampled tensor differ in size by a pixel: the input's "
                                       "sides must be a multiple of 2**depth. Pad it first (F.pad), crop the output "
                                       "back at the end.",
        "expected input": "A block got the wrong number of channels: the input goes through self.inc first, then "
                          "each Down; each Up takes the skip of its own level; the deepest skip is the bottleneck, "
                          "and the next ones come out in reverse (skips.pop()).",
    })


# ----------------------------------------------------------------------------- exercise 11: the project

# Foreground IoU on the 2 held-out photos of data/my_cats that the project must reach. The shipped model scores
# 0.771 there untouched. Fine-tuned at lr 1e-4 it keeps 0.76 after 20-30 epochs (seeds 0-2) and falls to 0.74
# after 60; at lr 3e-4 it reaches 0.71, at the from-scratch lr 3e-3 0.52; from scratch, about 0.3. So the goal
# asks for fine-tuning done with care: it does not pass by returning the untouched model (checked below).
PROJECT_GOAL = 0.75


def project_split() -> tuple:
    """(6 training photos, 2 held-out photos) of data/my_cats as SegmentationFolders at the shipped model's size."""
    from segkit.checkpoint import read_checkpoint
    from segkit.data import SegmentationFolder
    from segkit.datasets import bundled, shipped_checkpoint

    size = read_checkpoint(shipped_checkpoint("cats"))["image_size"]
    folder = bundled("my_cats", None)
    stems = SegmentationFolder(folder, size).stems
    return SegmentationFolder(folder, size, stems=stems[:6]), SegmentationFolder(folder, size, stems=stems[6:])


def _shipped_state() -> dict:
    from segkit.checkpoint import read_checkpoint
    from segkit.datasets import shipped_checkpoint

    return read_checkpoint(shipped_checkpoint("cats"))["model_state"]


def _state_equals(model: nn.Module, state: dict) -> bool:
    own = model.state_dict()
    return own.keys() == state.keys() and all(
        own[k].shape == state[k].shape and torch.equal(own[k].detach().cpu().double(), state[k].cpu().double())
        for k in state)


def _project_cases(finetune: Callable, trial: _Trial) -> None:
    from segkit.train import evaluate

    train_set, held_out = project_split()
    trial.case(f"finetune() on {len(train_set)} photos of data/my_cats")
    model = finetune(train_set)
    if not isinstance(model, nn.Module):
        raise _Wrong(f"finetune should return the trained model; yours returns a {type(model).__name__}.")
    trial.value = model
    if _state_equals(model, _shipped_state()):
        raise _Wrong("your model is the shipped model, untouched: finetune should train it on train_set "
                     "(fit(..., init=...) starts from the shipped weights).")
    trial.case(f"your model on the {len(held_out)} held-out photos it never saw")
    score = evaluate(model, held_out)["foreground_iou"]
    if score is None or score < PROJECT_GOAL:
        shown = _fmt(math.nan if score is None else score)  # None: no cat anywhere, in truth or prediction
        raise _Wrong(f"on the held-out photos your model's IoU is {shown}; the goal is "
                     f"{PROJECT_GOAL}. Start from the shipped cats model (fit(..., init=...)), train longer, or "
                     "lower the learning rate: a trained model and a few photos need small steps.")


def check_project(finetune: Callable) -> CheckResult:
    """Exercise 11: ``finetune(train_set) -> model``, trained on 6 photos of data/my_cats, reaches
    PROJECT_GOAL foreground IoU on the other 2 (`project_split`). The model comes back as `.value`."""
    return _run("fine-tuning project", _project_cases, finetune)
