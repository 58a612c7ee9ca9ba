"""Drawing masks: a colour per class, the mask blended over the photo, and outlines.

One palette everywhere: index 0 (background) is black, 1 green (0, 128, 0) as in the source
lesson's overlays, 2 red (128, 0, 0), then the Pascal-VOC colour map; 255 (ignore) is VOC's
off-white. A mask saved with `colorize(mask).save("mask.png")` keeps the class index in each
pixel and shows the colours in any image viewer.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from .data import IGNORE_INDEX, open_image


def _voc_colour(index: int) -> tuple[int, int, int]:
    """Pascal VOC's colour map: the bits of the index spread over the channels, high bits first."""
    rgb = [0, 0, 0]
    for shift in range(7, -1, -1):
        for channel in range(3):
            rgb[channel] |= ((index >> channel) & 1) << shift
        index >>= 3
    return tuple(rgb)


def default_palette() -> list[tuple[int, int, int]]:
    """256 (r, g, b) colours, one per class index (see the module docstring)."""
    colours = [_voc_colour(i) for i in range(256)]
    colours[1], colours[2] = colours[2], colours[1]  # VOC's class 1 is red; the lesson's cat is green
    return colours


def _check_mask(mask: np.ndarray, where: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2 or not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool):
        raise ValueError(f"{where}: a mask is (H, W) integer class indices, got {mask.dtype} {mask.shape}. "
                         "Probabilities? Threshold them first: predict_mask, or probabilities_to_mask.")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"{where}: class indices must be in 0..255 (255 = ignore), found {mask.min()}..{mask.max()}.")
    return mask.astype(np.uint8)


def colorize(mask: np.ndarray, palette: list[tuple[int, int, int]] | None = None) -> Image.Image:
    """uint8 (H, W) class indices -> a palette ("P") PIL image: pixel = class index, shown in colour."""
    image = Image.fromarray(_check_mask(mask, "colorize"))
    colours = list(palette or []) + default_palette()[len(palette or []):]
    image.putpalette([channel for colour in colours[:256] for channel in colour])
    return image


def blend_overlay(photo, mask: np.ndarray, alpha: float = 0.3,
                  palette: list[tuple[int, int, int]] | None = None) -> Image.Image:
    """The photo with each class's colour mixed in at `alpha` (the lesson: 30%), as an RGB image.

    Labelled pixels become (1 - alpha) * photo + alpha * colour (PIL's Image.blend, as the lesson
    did); background and ignored pixels keep the photo as it is, so a missed cat or a green patch
    where there is no cat stands out. photo: path, PIL image or uint8 array; mask: (H, W) of its size.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    photo, mask = open_image(photo), _check_mask(mask, "blend_overlay")
    _check_size(photo, mask, "blend_overlay")
    blended = Image.blend(photo, colorize(mask, palette).convert("RGB"), alpha)
    labelled = Image.fromarray(((mask != 0) & (mask != IGNORE_INDEX)).astype(np.uint8) * 255)
    return Image.composite(blended, photo, labelled)


def draw_contours(photo, mask: np.ndarray, color: tuple[int, int, int] | None = None, width: int = 2,
                  palette: list[tuple[int, int, int]] | None = None) -> Image.Image:
    """The photo with the outline of each class region, `width` pixels wide, inside the region.

    color: one (r, g, b) for every class; None = each class in its palette colour. The photo's
    border is not an edge, and background (0) and ignore (255) get no outline.
    """
    photo, mask = open_image(photo), _check_mask(mask, "draw_contours")
    _check_size(photo, mask, "draw_contours")
    colours = list(palette or []) + default_palette()[len(palette or []):]
    out = np.array(photo)
    for index in np.unique(mask):
        if index in (0, IGNORE_INDEX):
            continue
        region = Image.fromarray((mask == index).astype(np.uint8) * 255)
        inner = region.filter(ImageFilter.MinFilter(2 * width + 1))  # the region eroded by `width` pixels
        out[(np.asarray(region) > 0) & (np.asarray(inner) == 0)] = color if color is not None else colours[index]
    return Image.fromarray(out)


def _check_size(photo: Image.Image, mask: np.ndarray, where: str) -> None:
    if mask.shape != (photo.height, photo.width):
        raise ValueError(f"{where}: the mask is {mask.shape[1]}x{mask.shape[0]}, the photo {photo.width}x{photo.height}. "
                         "predict_mask(model, photo) answers at the photo's own size; or resize the mask with "
                         "NEAREST: Image.fromarray(mask).resize(photo.size, Image.Resampling.NEAREST).")
