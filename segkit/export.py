"""labelme JSON files to Pascal-VOC masks: the "convert" step of the course.

A learner labels photos with labelme (one ``.json`` beside each photo) and lists the classes
in a ``labels.txt``. This module turns that folder into the layout labelme's example script
``examples/semantic_segmentation/labelme2voc.py`` writes::

    OUTPUT/JPEGImages/<stem>.jpg                      the photo (RGB JPEG)
    OUTPUT/SegmentationClass/<stem>.png               palette PNG, pixel = class index, 255 = ignore
    OUTPUT/SegmentationClassVisualization/<stem>.jpg  the mask over a grey copy of the photo
    OUTPUT/class_names.txt                            _background_ first, one name per line

The steps, each usable on its own:

* :func:`read_label_set` / :func:`read_labels` parse ``labels.txt``;
  :func:`label_to_index` maps names to pixel values.
* :func:`load_labelme_json` reads one labelme file from any labelme generation and its photo.
* :func:`shapes_to_mask` rasterises the shapes into an (H, W) uint8 mask.
* :func:`export_labelme_folder` does the whole folder and returns an :class:`ExportReport`.

Why segkit owns the rasterisation: labelme dropped its converter commands in 5.8/6.0 and made
``labelme.utils.shapes_to_label`` private in 7.0. :func:`shapes_to_mask` is written from the
JSON format and makes the same Pillow drawing calls as labelme's ``shape_to_mask`` (same line
width, same point radius, same clipping at the image edge), so the masks equal labelme's pixel
for pixel; ``tests/test_export.py`` checks that against labelme while it is installed, and
against golden files made with it (``tests/golden/export/make_golden.py``) after that.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any, NamedTuple, Sequence

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
from tqdm.auto import tqdm

from segkit.files import atomic_write
from segkit.metrics import IGNORE_INDEX
from segkit.palette import default_palette, flat_palette

__all__ = [
    "IGNORE_LABEL",
    "BACKGROUND_LABEL",
    "LabelSet",
    "read_label_set",
    "read_labels",
    "label_to_index",
    "load_labelme_json",
    "shapes_to_mask",
    "save_palette_mask",
    "find_labelme_files",
    "ExportFailure",
    "ExportReport",
    "export_labelme_folder",
]

IGNORE_LABEL = "__ignore__"  # labels.txt line whose shapes become IGNORE_INDEX (255) in the mask
BACKGROUND_LABEL = "_background_"  # class 0
EXAMPLE_LABELS = f"{IGNORE_LABEL}\n{BACKGROUND_LABEL}\ncat"

# labelme's shape_to_mask defaults: a line is drawn 10 px wide, a point as a disc of radius 5.
LINE_WIDTH = 10
POINT_RADIUS = 5

# shape_type -> (fewest points, most points or None); a missing shape_type (labelme 3.x/4.x) is a polygon.
SHAPE_POINTS: dict[str, tuple[int, int | None]] = {
    "polygon": (3, None),
    "rectangle": (2, 2),
    "circle": (2, 2),  # centre, then a point on the circumference
    "line": (2, 2),
    "linestrip": (2, None),
    "point": (1, 1),
    "oriented_rectangle": (4, 4),  # labelme 6+
    "mask": (2, 2),  # labelme 6+: bitmap top-left and bottom-right (inclusive) pixels
}

OUTPUT_SUBDIRS = ("JPEGImages", "SegmentationClass", "SegmentationClassVisualization")
CLASS_NAMES_FILE = "class_names.txt"
PROGRESS_MIN_FILES = 6  # a bar only when there are more than a handful of files
_PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".JPG", ".JPEG", ".PNG")
_EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that shows the photo upright, as labelme.utils.apply_exif_orientation
# (5 is labelme's mirror(rotate 270) and 7 its mirror(rotate 90), single transposes here).
_ORIENTATION_TRANSPOSE = {
    2: PIL.Image.Transpose.FLIP_LEFT_RIGHT,
    3: PIL.Image.Transpose.ROTATE_180,
    4: PIL.Image.Transpose.FLIP_TOP_BOTTOM,
    5: PIL.Image.Transpose.TRANSPOSE,
    6: PIL.Image.Transpose.ROTATE_270,
    7: PIL.Image.Transpose.TRANSVERSE,
    8: PIL.Image.Transpose.ROTATE_90,
}


# --------------------------------------------------------------------------- labels.txt


@dataclass(frozen=True)
class LabelSet:
    """The classes of a labels.txt.

    names: class names, index = class id (pixel value); names[0] is "_background_".
    has_ignore: the file starts with "__ignore__"; shapes with that label become 255 (ignored
    by the losses and metrics).
    """

    names: tuple[str, ...]
    has_ignore: bool = True

    @property
    def num_classes(self) -> int:
        """Classes including background (K + 1)."""
        return len(self.names)

    def label_to_index(self) -> dict[str, int]:
        """{name: pixel value}, with "__ignore__": 255 when the file had that line."""
        return label_to_index(self.names, has_ignore=self.has_ignore)


def read_label_set(path: str | os.PathLike) -> LabelSet:
    """Parse a labelme labels.txt: optional "__ignore__" line, then "_background_", then classes.

    "__ignore__" -> 255, "_background_" -> 0, the next lines -> 1..K in order. Surrounding
    spaces and blank lines are skipped. Raises FileNotFoundError for a missing file and
    ValueError (naming the file and showing the expected form) for a malformed one.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: Windows Notepad's byte-order mark
    except FileNotFoundError:
        raise FileNotFoundError(
            f"labels file not found: {path}. Create it with one name per line, e.g.:\n\n{EXAMPLE_LABELS}\n"
        ) from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not a UTF-8 text file ({error}); save it as plain text.") from None

    def malformed(problem: str) -> ValueError:
        return ValueError(
            f"{path} is not a valid labels file: {problem}.\n"
            f"It must list one name per line: optionally {IGNORE_LABEL} first (pixels to ignore, "
            f"saved as 255), then {BACKGROUND_LABEL} (class 0), then your classes (1, 2, ...), e.g.:\n\n"
            f"{EXAMPLE_LABELS}\n"
        )

    entries = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not entries:
        raise malformed("the file is empty")
    has_ignore = entries[0][1] == IGNORE_LABEL
    if has_ignore:
        entries = entries[1:]
    first_line: dict[str, int] = {}
    for number, name in entries:
        if name == IGNORE_LABEL:
            raise malformed(f"{IGNORE_LABEL} (line {number}) must be the first line")
        if name in first_line:
            raise malformed(f"{name!r} is listed twice (lines {first_line[name]} and {number})")
        first_line[name] = number
    if not entries or entries[0][1] != BACKGROUND_LABEL:
        if BACKGROUND_LABEL in first_line:
            raise malformed(
                f"{BACKGROUND_LABEL} (line {first_line[BACKGROUND_LABEL]}) must come before every class"
            )
        raise malformed(f"{BACKGROUND_LABEL} is missing")
    if len(entries) < 2:
        raise malformed(f"there is no class after {BACKGROUND_LABEL}")
    if len(entries) > IGNORE_INDEX:
        raise malformed(f"{len(entries)} classes, but class ids must stay below {IGNORE_INDEX}")
    return LabelSet(names=tuple(name for _, name in entries), has_ignore=has_ignore)


def read_labels(path: str | os.PathLike) -> list[str]:
    """Class names of a labels.txt, index = class id ("_background_" first, no "__ignore__").

    Use :func:`read_label_set` to also know whether the file had an "__ignore__" line.
    """
    return list(read_label_set(path).names)


def label_to_index(class_names: Sequence[str], has_ignore: bool = True) -> dict[str, int]:
    """{name: pixel value}: class_names[i] -> i, plus "__ignore__" -> 255 when has_ignore."""
    names = list(class_names)
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique: {names}")
    if IGNORE_LABEL in names:
        raise ValueError(f"{IGNORE_LABEL} is not a class; pass has_ignore=True instead: {names}")
    if len(names) > IGNORE_INDEX:
        raise ValueError(f"{len(names)} classes, but class ids must stay below {IGNORE_INDEX}")
    mapping = {name: index for index, name in enumerate(names)}
    if has_ignore:
        mapping[IGNORE_LABEL] = IGNORE_INDEX
    return mapping


# --------------------------------------------------------------------------- reading labelme files


@dataclass
class _LabelledPhoto:
    record: dict[str, Any]
    image: PIL.Image.Image  # RGB, upright as labelme shows it
    image_file: Path | None  # the photo file read, None when the JSON embeds it
    jpeg_bytes: bytes | None  # the source bytes when they already are a plain upright RGB JPEG


def load_labelme_json(path: str | os.PathLike) -> tuple[PIL.Image.Image, dict[str, Any]]:
    """Read a labelme file of any generation (3.x to 7.x) and the photo it labels.

    Returns (RGB image as labelme shows it, the JSON record as parsed). The photo is the
    embedded base64 ``imageData`` when present (used as stored, as labelme does), else the
    file at ``imagePath`` relative to the JSON's folder, turned upright by its EXIF orientation
    tag as labelme does before labelling. Raises ValueError / FileNotFoundError with a message
    that names the file and says how to fix it (broken JSON, missing or unreadable photo,
    photo size different from ``imageHeight``/``imageWidth``).
    """
    loaded = _read_labelled_photo(Path(path))
    return loaded.image, loaded.record


def _read_labelled_photo(json_path: Path) -> _LabelledPhoto:
    record = _read_record(json_path)
    image_data = record.get("imageData")
    if image_data:
        if not isinstance(image_data, str):
            raise ValueError(f'{json_path}: "imageData" must be a base64 string; set it to null to use imagePath.')
        try:
            raw = base64.b64decode(image_data)
        except (binascii.Error, ValueError) as error:
            raise ValueError(
                f"{json_path}: the photo embedded in it (imageData) is damaged ({error}). "
                f'Set "imageData" to null so the photo at imagePath is used, or label the photo again.'
            ) from None
        image_file = None
        opened = _open_image(raw, f"{json_path}: the photo embedded in it (imageData)")
        # labelme shows embedded data as stored: it was already turned upright when it was embedded.
        orientation = 1
    else:
        image_file = _find_photo(json_path, record)
        try:
            raw = image_file.read_bytes()
        except OSError as error:
            raise OSError(f"{json_path}: its photo {image_file} cannot be read ({error}).") from None
        opened = _open_image(raw, f"{json_path}: its photo {image_file}")
        orientation = _exif_orientation(opened)
    image = _to_rgb(opened)
    if orientation in _ORIENTATION_TRANSPOSE:
        image = image.transpose(_ORIENTATION_TRANSPOSE[orientation])
    _check_size(json_path, record, image)
    plain_jpeg = (
        raw[:3] == b"\xff\xd8\xff"
        and opened.mode == "RGB"
        and _orientation_tag(opened) == 1  # so that no reader turns the copy around
    )
    return _LabelledPhoto(record, image, image_file, raw if plain_jpeg else None)


def _read_record(json_path: Path) -> dict[str, Any]:
    try:
        text = json_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"labelme file not found: {json_path}") from None
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{json_path} is not a text file ({error}). Only the .json files labelme saves belong "
            "in the folder: move this one out, or label its photo again in labelme."
        ) from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{json_path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}). "
            "It was probably cut short or edited by hand: repair it in a text editor, or delete it "
            "and label the photo again in labelme."
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("shapes"), list):
        raise ValueError(
            f'{json_path} is not a labelme file (no "shapes" list). Only the .json files labelme '
            "saves belong in the folder: move this one out."
        )
    return record


def _find_photo(json_path: Path, record: dict[str, Any]) -> Path:
    image_path = record.get("imagePath")
    if not isinstance(image_path, str) or not image_path.strip():
        raise ValueError(
            f'{json_path} names no photo: it has neither "imageData" nor "imagePath". Set "imagePath" '
            "to the photo's file name (relative to the JSON's folder), or label the photo again."
        )
    # labelme on Windows writes backslashes; labelme reads imagePath the same way.
    relative = PureWindowsPath(image_path).as_posix()
    candidate = json_path.parent / relative
    if candidate.is_file():
        return candidate
    nearby = [json_path.parent / PureWindowsPath(image_path).name]
    nearby += [json_path.with_suffix(extension) for extension in _PHOTO_EXTENSIONS]
    found = next((p for p in nearby if p.is_file()), None)
    message = (
        f"{json_path}: its photo {candidate} was not found (imagePath {image_path!r} is relative "
        "to the JSON's folder) and the JSON embeds no imageData."
    )
    if found is not None:
        message += f' {found.name} is next to it: if that is the labelled photo, set "imagePath": "{found.name}".'
    else:
        message += " Put the photo next to the JSON under that name, or correct imagePath."
    raise FileNotFoundError(message)


def _open_image(raw: bytes, what: str) -> PIL.Image.Image:
    try:
        image = PIL.Image.open(io.BytesIO(raw))
        image.load()  # decode now, so a truncated file fails here and not halfway through the export
    except Exception as error:  # Pillow raises many types for bad bytes
        raise ValueError(
            f"{what} cannot be read as an image ({type(error).__name__}: {error}). "
            "Replace it with a working JPEG or PNG of the same size."
        ) from None
    return image


def _orientation_tag(image: PIL.Image.Image) -> int:
    """The orientation tag (1..8) Pillow finds in the EXIF (or XMP) data; 1 when none or unreadable."""
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a corrupt EXIF block: labelme would show the photo as stored
        return 1
    return value if isinstance(value, int) else 1


def _exif_orientation(image: PIL.Image.Image) -> int:
    """The orientation labelme applies: the tag, read only from files that have an EXIF block."""
    if "exif" not in image.info and "Raw profile type exif" not in image.info:
        return 1
    return _orientation_tag(image)


def _to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    if image.mode in ("I", "F") or image.mode.startswith("I;"):
        # 16-bit / float photos: stretch min..max to 0..255, as labelme does for such TIFFs.
        values = np.asarray(image, dtype=np.float64)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        scaled = np.zeros_like(values) if not high > low else (values - low) / (high - low) * 255
        image = PIL.Image.fromarray(np.nan_to_num(scaled).clip(0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image if image.mode == "RGB" else image.convert("RGB")


def _check_size(json_path: Path, record: dict[str, Any], image: PIL.Image.Image) -> None:
    height, width = record.get("imageHeight"), record.get("imageWidth")
    if height is None and width is None:  # labelme 3.x/4.x files do not record the size
        return
    actual_width, actual_height = image.size
    try:
        matches = (height is None or int(height) == actual_height) and (width is None or int(width) == actual_width)
    except (TypeError, ValueError):
        matches = False
    if matches:
        return
    message = (
        f"{json_path}: the photo is {actual_width}x{actual_height} (width x height) but the JSON says "
        f"imageWidth={width}, imageHeight={height}."
    )
    if (height, width) == (actual_width, actual_height):
        message += " The sides are swapped: the photo was rotated (or its EXIF orientation changed) after labelling."
    else:
        message += " The photo was resized or replaced after labelling."
    message += " Put back the photo that was labelled, or delete the JSON and label this photo again."
    raise ValueError(message)


# --------------------------------------------------------------------------- rasterisation


def shapes_to_mask(
    shapes: Sequence[dict[str, Any]],
    size: tuple[int, int],
    label_to_id: dict[str, int],
) -> np.ndarray:
    """Rasterise labelme shapes into an (H, W) uint8 mask of class indices (0 where no shape).

    shapes: the JSON "shapes" list (polygon, rectangle, circle, line, linestrip, point,
    oriented_rectangle, mask; no shape_type means polygon). size: (H, W) of the photo.
    label_to_id: {label: pixel value 0..255}, e.g. ``LabelSet.label_to_index()``; -1 (labelme2voc's
    id for "__ignore__") is taken as 255. Later shapes paint over earlier ones; whatever lies
    outside the image is clipped. Lines are 10 px wide and points discs of radius 5, as in labelme.

    Raises ValueError naming the shape (index and label) for an unknown label (listing the
    allowed ones), too few or too many points, or an unsupported shape_type.
    """
    height, width = (int(side) for side in size)
    values = {}
    for label, value in label_to_id.items():
        value = IGNORE_INDEX if value == -1 else int(value)
        if not 0 <= value <= 255:
            raise ValueError(f"label_to_id[{label!r}] = {value} is not a pixel value in 0..255")
        values[label] = value
    _check_labels(shapes, values)
    canvas = PIL.Image.new("L", (width, height), 0)
    draw = PIL.ImageDraw.Draw(canvas)
    for index, shape in enumerate(shapes):
        _draw_shape(canvas, draw, shape, index, values[shape["label"]])
    return np.array(canvas, dtype=np.uint8)


def _describe(shape: dict[str, Any], index: int) -> str:
    return f"shape {index} (label {shape.get('label')!r}, {shape.get('shape_type') or 'polygon'})"


def _check_labels(shapes: Sequence[dict[str, Any]], values: dict[str, int]) -> None:
    unknown: dict[str, list[int]] = {}
    for index, shape in enumerate(shapes):
        if not isinstance(shape, dict):
            raise ValueError(f"shape {index} is not a JSON object: {shape!r}")
        label = shape.get("label")
        if not isinstance(label, str):
            raise ValueError(f"shape {index} has no label (got {label!r}); give it one in labelme (Edit Label).")
        if label not in values:
            unknown.setdefault(label, []).append(index)
    if not unknown:
        return
    allowed = ", ".join(repr(name) for name in values)
    lines = []
    for label, indices in unknown.items():
        where = f"shape{'s' if len(indices) > 1 else ''} {', '.join(map(str, indices))}"
        close = difflib.get_close_matches(label, list(values), n=1)
        lines.append(f"{label!r} ({where})" + (f", did you mean {close[0]!r}?" if close else ""))
    raise ValueError(
        f"label{'s' if len(unknown) > 1 else ''} not in labels.txt: {'; '.join(lines)}. "
        f"Allowed labels: {allowed}. Add each missing label as a new line at the end of labels.txt, "
        "or rename the shape in labelme (Edit Label) to an allowed label."
    )


def _points(shape: dict[str, Any], index: int) -> list[tuple[float, float]]:
    points = shape.get("points")
    if not isinstance(points, list):
        raise ValueError(f"{_describe(shape, index)} has no points list (got {points!r}).")
    xy = []
    for point in points:
        if (
            not isinstance(point, (list, tuple))
            or len(point) != 2
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in point)
        ):
            raise ValueError(f"{_describe(shape, index)} has a point that is not [x, y]: {point!r}.")
        xy.append(tuple(point))  # ints stay ints: the same values labelme hands to Pillow
    return xy


def _draw_shape(
    canvas: PIL.Image.Image, draw: PIL.ImageDraw.ImageDraw, shape: dict[str, Any], index: int, value: int
) -> None:
    shape_type = shape.get("shape_type") or "polygon"
    if shape_type not in SHAPE_POINTS:
        raise ValueError(
            f"{_describe(shape, index)}: shape_type {shape_type!r} cannot be turned into a mask; "
            f"supported: {', '.join(SHAPE_POINTS)}. Redraw it in labelme as one of these."
        )
    xy = _points(shape, index)
    fewest, most = SHAPE_POINTS[shape_type]
    if len(xy) < fewest or (most is not None and len(xy) > most):
        needed = f"exactly {fewest}" if fewest == most else f"at least {fewest}"
        raise ValueError(
            f"{_describe(shape, index)} has {len(xy)} point{'s' if len(xy) != 1 else ''}, but a "
            f"{shape_type} needs {needed}. Open the file in labelme and redraw or delete that shape."
        )
    if shape_type in ("polygon", "oriented_rectangle"):
        draw.polygon(xy, fill=value, outline=value)
    elif shape_type == "rectangle":
        (x0, y0), (x1, y1) = xy
        draw.rectangle((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=value, outline=value)
    elif shape_type == "circle":
        (cx, cy), (px, py) = xy
        radius = math.sqrt((cx - px) ** 2 + (cy - py) ** 2)
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=value, outline=value)
    elif shape_type in ("line", "linestrip"):
        draw.line(xy, fill=value, width=LINE_WIDTH)
    elif shape_type == "point":
        (cx, cy), = xy
        draw.ellipse((cx - POINT_RADIUS, cy - POINT_RADIUS, cx + POINT_RADIUS, cy + POINT_RADIUS), fill=value, outline=value)
    else:  # mask
        _paste_mask(canvas, shape, index, xy, value)


def _paste_mask(canvas: PIL.Image.Image, shape: dict[str, Any], index: int, xy: list, value: int) -> None:
    # labelme 6+ stores a bitmap (base64 PNG, non-zero = inside) of the box from points[0] to
    # points[1], both inclusive; shapes_to_label truncates the corner to int and pastes it there.
    encoded = shape.get("mask")
    if not isinstance(encoded, str) or not encoded:
        raise ValueError(f'{_describe(shape, index)} has no "mask" bitmap; redraw it in labelme.')
    try:
        bitmap = PIL.Image.open(io.BytesIO(base64.b64decode(encoded)))
        bitmap.load()
    except Exception as error:
        raise ValueError(f"{_describe(shape, index)}: its mask bitmap cannot be decoded ({error}); redraw it in labelme.") from None
    if bitmap.mode not in ("1", "L", "P", "I", "F") and not bitmap.mode.startswith("I;"):
        bitmap = bitmap.convert("L")
    inside = np.asarray(bitmap) != 0
    stencil = PIL.Image.fromarray(inside.astype(np.uint8) * 255)
    left, top = int(xy[0][0]), int(xy[0][1])
    # Pasting clips at the image edge; labelme itself fails on a box that leaves the image.
    canvas.paste(value, (left, top, left + stencil.width, top + stencil.height), mask=stencil)


# --------------------------------------------------------------------------- writing


def _encode_palette_png(mask: np.ndarray) -> bytes:
    image = PIL.Image.fromarray(mask)
    image.putpalette(flat_palette(default_palette()))  # "L" becomes "P", pixel values unchanged
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _encode_jpeg(image: PIL.Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def save_palette_mask(mask: np.ndarray, path: str | os.PathLike) -> None:
    """Save an (H, W) mask of class indices (0..255, 255 = ignore) as a palette PNG.

    Pixel values are the class indices; the palette is segkit's (``palette.default_palette``),
    so image viewers show the classes in colour. Written atomically.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"mask values must be class indices in 0..255, got {mask.min()}..{mask.max()}")
    atomic_write(Path(path), _encode_palette_png(mask.astype(np.uint8)))


def _class_label(index: int, class_names: Sequence[str]) -> str:
    if index == IGNORE_INDEX:
        return IGNORE_LABEL
    return class_names[index] if index < len(class_names) else str(index)


def _visualize(image: PIL.Image.Image, mask: np.ndarray, class_names: Sequence[str]) -> PIL.Image.Image:
    """The photo in grey with each labelled class in its palette colour at 50%, and a legend."""
    grey = image.convert("L").convert("RGB")
    colours = PIL.Image.fromarray(mask)
    colours.putpalette(flat_palette(default_palette()))
    tinted = PIL.Image.blend(grey, colours.convert("RGB"), 0.5)
    labelled = PIL.Image.fromarray(np.where(mask != 0, 255, 0).astype(np.uint8))
    result = PIL.Image.composite(tinted, grey, labelled)  # background stays plain grey
    _draw_legend(result, [int(i) for i in np.unique(mask)], class_names)
    return result


def _draw_legend(image: PIL.Image.Image, indices: list[int], class_names: Sequence[str]) -> None:
    """Class swatches and names in the bottom-right corner, skipped when they would not fit."""
    font_size = max(10, min(image.size) // 25)
    try:
        font: Any = PIL.ImageFont.load_default(size=font_size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or without FreeType: the small bitmap font
        font = PIL.ImageFont.load_default()
    draw = PIL.ImageDraw.Draw(image)
    names = [_class_label(i, class_names) for i in indices]
    line = max(draw.textbbox((0, 0), name, font=font)[3] for name in names) + 4
    text_width = max(draw.textlength(name, font=font) for name in names)
    box_width, box_height = int(line + 4 + text_width + 8), line * len(names) + 4
    if box_width > image.width // 2 or box_height > image.height // 2:
        return
    left, top = image.width - box_width - 2, image.height - box_height - 2
    draw.rectangle((left, top, left + box_width, top + box_height), fill=(255, 255, 255))
    palette = default_palette()
    for row, (index, name) in enumerate(zip(indices, names)):
        y = top + 2 + row * line
        draw.rectangle((left + 4, y + 2, left + line, y + line - 2), fill=palette[index], outline=(0, 0, 0))
        draw.text((left + line + 4, y), name, fill=(0, 0, 0), font=font)


# --------------------------------------------------------------------------- the folder export


class ExportFailure(NamedTuple):
    """A labelme file that was not exported, and why (the message names the file and the fix)."""

    path: Path
    message: str


@dataclass
class ExportReport:
    """What :func:`export_labelme_folder` did.

    exported: stems written. failures: files skipped, with their messages. stale: files in the
    output's image/mask folders that this export did not write (left over from an earlier
    export into the same folder; the dataset would still read them).
    """

    input_dir: Path
    output_dir: Path
    class_names: list[str]
    has_ignore: bool
    exported: list[str] = field(default_factory=list)
    failures: list[ExportFailure] = field(default_factory=list)
    stale: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every labelme file was exported."""
        return not self.failures

    def summary(self) -> str:
        """A few lines for the learner: counts, each failure with its fix, stale files."""
        total = len(self.exported) + len(self.failures)
        ignore = f"; {IGNORE_LABEL} -> {IGNORE_INDEX}" if self.has_ignore else ""
        lines = [
            f"Exported {len(self.exported)} of {total} labelme file{'s' if total != 1 else ''} "
            f"from {self.input_dir} to {self.output_dir} (classes: {', '.join(self.class_names)}{ignore})."
        ]
        if self.failures:
            count = len(self.failures)
            lines.append(f"{count} file{'s' if count != 1 else ''} failed:")
            lines += [f"  - {failure.message}" for failure in self.failures]
            lines.append(
                "Fix them and export again, into a new folder or into this one with overwrite=True "
                "(segkit export ... --overwrite)."
            )
        if self.stale:
            shown = ", ".join(str(p.relative_to(self.output_dir)) for p in self.stale[:5])
            more = f" and {len(self.stale) - 5} more" if len(self.stale) > 5 else ""
            lines.append(
                f"{len(self.stale)} older file{'s' if len(self.stale) != 1 else ''} in {self.output_dir} "
                f"{'were' if len(self.stale) != 1 else 'was'} not written by this export and left alone: "
                f"{shown}{more}. Delete them if they should not be in the dataset."
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def find_labelme_files(input_dir: str | os.PathLike) -> list[Path]:
    """The labelme files of a folder: its *.json files (not subfolders, not hidden), sorted.

    Subfolders are not searched, as in labelme2voc, so an export folder placed inside the
    labelled folder is never read back as input.
    """
    input_dir = Path(input_dir)
    return sorted(
        p for p in input_dir.iterdir() if p.suffix.lower() == ".json" and not p.name.startswith(".") and p.is_file()
    )


def _check_output_dir(input_dir: Path, output_dir: Path, overwrite: bool) -> None:
    source, target = input_dir.resolve(), output_dir.resolve()
    if source == target or source.is_relative_to(target):
        raise ValueError(
            f"the output folder {output_dir} is (or contains) the input folder {input_dir}; "
            f"export into a folder of its own, e.g. {input_dir.parent / (input_dir.name + '-voc')}."
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"{output_dir} is a file, not a folder; choose another output folder.")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"the output folder {output_dir} is not empty. Choose a new folder, or export with "
            "overwrite=True (segkit export ... --overwrite), which replaces only the files this "
            "export writes and leaves every other file alone."
        )


def _failure_message(json_path: Path, error: Exception) -> str:
    text = str(error)
    if not isinstance(error, (ValueError, OSError)):
        text = f"unexpected {type(error).__name__}: {text}"
    return text if str(json_path) in text else f"{json_path}: {text}"


def _export_one(json_path: Path, output_dir: Path, labels: LabelSet, label_to_id: dict[str, int]) -> None:
    labelled = _read_labelled_photo(json_path)
    mask = shapes_to_mask(labelled.record["shapes"], (labelled.image.height, labelled.image.width), label_to_id)
    stem = json_path.stem
    photo_path = output_dir / "JPEGImages" / f"{stem}.jpg"
    if labelled.image_file is not None and photo_path.exists() and photo_path.samefile(labelled.image_file):
        raise ValueError(f"its photo is {labelled.image_file}, which the export would overwrite; move the photo first.")
    # Keep the photo's own JPEG bytes when they are already what the dataset needs (no quality loss).
    photo_bytes = labelled.jpeg_bytes or _encode_jpeg(labelled.image, quality=95)
    mask_bytes = _encode_palette_png(mask)
    overlay_bytes = _encode_jpeg(_visualize(labelled.image, mask, labels.names), quality=90)
    # Everything is encoded before anything is written, so a bad file leaves no partial output.
    atomic_write(photo_path, photo_bytes)
    atomic_write(output_dir / "SegmentationClassVisualization" / f"{stem}.jpg", overlay_bytes)
    atomic_write(output_dir / "SegmentationClass" / f"{stem}.png", mask_bytes)


def export_labelme_folder(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    labels_file: str | os.PathLike,
    overwrite: bool = False,
    progress: bool = True,
) -> ExportReport:
    """Export a folder labelled with labelme to the Pascal-VOC layout (see the module docstring).

    input_dir: the folder holding the labelme .json files (subfolders are not searched).
    output_dir: created if missing; refused if it is not empty unless overwrite=True, which
    replaces only the files this export writes. input_dir is only read.
    labels_file: the labels.txt used for labelling (see :func:`read_label_set`).

    A file that cannot be exported (broken JSON, unknown label, missing or unreadable photo,
    photo size different from the JSON's, shape with too few points) is skipped and recorded
    in the report with a message that names it and says how to fix it; the others are still
    exported. Raises only for problems with the whole run (labels file, folders, no JSON files).
    A progress bar (tqdm) is shown for more than a handful of files unless progress=False.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder not found: {input_dir}")
    labels = read_label_set(labels_file)
    _check_output_dir(input_dir, output_dir, overwrite)
    json_files = find_labelme_files(input_dir)
    if not json_files:
        raise FileNotFoundError(
            f"no labelme .json files in {input_dir}. Label the photos with labelme first "
            "(it saves a .json next to each photo), then export that folder."
        )

    for subdir in OUTPUT_SUBDIRS:
        (output_dir / subdir).mkdir(parents=True, exist_ok=True)
    # As labelme2voc: _background_ first, no __ignore__, no newline after the last name.
    atomic_write(output_dir / CLASS_NAMES_FILE, "\n".join(labels.names).encode("utf-8"))

    report = ExportReport(input_dir, output_dir, list(labels.names), labels.has_ignore)
    label_to_id = labels.label_to_index()
    show_bar = progress and len(json_files) >= PROGRESS_MIN_FILES
    bar = tqdm(json_files, desc="export", unit="file", disable=not show_bar)
    for json_path in bar:
        try:
            if json_path.stem in report.exported:
                raise ValueError(f"another file in {input_dir} has the stem {json_path.stem!r}; rename one of them.")
            _export_one(json_path, output_dir, labels, label_to_id)
        except Exception as error:  # one bad file must not stop the others: record it and go on
            report.failures.append(ExportFailure(json_path, _failure_message(json_path, error)))
            bar.set_postfix(failed=len(report.failures))
        else:
            report.exported.append(json_path.stem)
    bar.close()

    written = set(report.exported)
    report.stale = sorted(
        p
        for subdir in OUTPUT_SUBDIRS
        for p in (output_dir / subdir).iterdir()
        if p.is_file() and p.stem not in written and not p.name.startswith(".")
    )
    return report
