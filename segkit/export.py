"""labelme JSON files to Pascal-VOC masks: the "convert" step of the course.

A learner labels photos with labelme (one .json beside each photo) and lists the classes in a
labels.txt. `export_labelme_folder` turns that folder into the layout labelme's example script
labelme2voc.py writes, which `segkit.data` reads:

    OUTPUT/JPEGImages/<stem>.jpg                      the photo, upright, RGB JPEG
    OUTPUT/SegmentationClass/<stem>.png               palette PNG: pixel = class index, 255 = ignore
    OUTPUT/SegmentationClassVisualization/<stem>.jpg  the mask over a grey copy of the photo
    OUTPUT/class_names.txt                            _background_ first, one name per line

Why segkit owns this step: labelme dropped its converter commands in 5.8/6.0 and made its
Python API private in 7.0. `shapes_to_mask` follows the JSON format and makes the same Pillow
drawing calls as labelme's shape_to_mask (line width 10, point radius 5, clipping at the edge),
so the masks equal labelme's pixel for pixel (tests/test_export.py checks it).
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
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from tqdm.auto import tqdm

from .data import IGNORE_INDEX, to_rgb
from .draw import colorize
from .files import atomic_write, refuse_non_empty

IGNORE_LABEL, BACKGROUND_LABEL = "__ignore__", "_background_"
EXAMPLE_LABELS = f"{IGNORE_LABEL}\n{BACKGROUND_LABEL}\ncat"
LINE_WIDTH, POINT_RADIUS = 10, 5  # labelme's shape_to_mask defaults
# shape_type -> (fewest points, most points); labelme 3.x/4.x files have no shape_type: polygons.
SHAPE_POINTS: dict[str, tuple[int, int | None]] = {
    "polygon": (3, None), "rectangle": (2, 2), "circle": (2, 2), "line": (2, 2), "linestrip": (2, None),
    "point": (1, 1), "oriented_rectangle": (4, 4), "mask": (2, 2),  # the last two: labelme 6+
}
OUTPUT_DIRS = ("JPEGImages", "SegmentationClass", "SegmentationClassVisualization")
_PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------- labels.txt

@dataclass(frozen=True)
class LabelSet:
    """The classes of a labels.txt: names[i] is class i (names[0] = "_background_"); has_ignore:
    the file starts with "__ignore__", whose shapes become 255 (counted by no loss or metric)."""

    names: tuple[str, ...]
    has_ignore: bool = True

    def label_to_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)} | ({IGNORE_LABEL: IGNORE_INDEX} if self.has_ignore else {})


def read_label_set(path: str | os.PathLike) -> LabelSet:
    """Parse a labelme labels.txt: optional "__ignore__" (255), then "_background_" (0), then classes 1..K."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: Windows Notepad's byte-order mark
    except FileNotFoundError:
        raise FileNotFoundError(f"labels file not found: {path}. Create it with one name per line, e.g.:\n\n"
                                f"{EXAMPLE_LABELS}\n") from None

    def malformed(problem: str) -> ValueError:
        return ValueError(f"{path} is not a valid labels file: {problem}. It lists one name per line: optionally "
                          f"{IGNORE_LABEL} first (pixels to ignore, saved as 255), then {BACKGROUND_LABEL} (class 0), "
                          f"then your classes (1, 2, ...), e.g.:\n\n{EXAMPLE_LABELS}\n")

    names = [line.strip() for line in text.splitlines() if line.strip()]
    has_ignore = bool(names) and names[0] == IGNORE_LABEL
    names = names[1:] if has_ignore else names
    if not names:
        raise malformed("it lists no classes")
    if IGNORE_LABEL in names:
        raise malformed(f"{IGNORE_LABEL} must be the first line")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise malformed(f"{', '.join(map(repr, duplicates))} listed twice")
    if names[0] != BACKGROUND_LABEL:
        raise malformed(f"{BACKGROUND_LABEL} must come before every class" if BACKGROUND_LABEL in names
                        else f"{BACKGROUND_LABEL} is missing")
    if len(names) < 2:
        raise malformed(f"there is no class after {BACKGROUND_LABEL}")
    if len(names) > IGNORE_INDEX:
        raise malformed(f"{len(names)} classes, but class ids must stay below {IGNORE_INDEX}")
    return LabelSet(tuple(names), has_ignore)


def read_labels(path: str | os.PathLike) -> list[str]:
    """Class names of a labels.txt, index = class id ("_background_" first, no "__ignore__")."""
    return list(read_label_set(path).names)


# --------------------------------------------------------------------------- reading labelme files

def load_labelme_json(path: str | os.PathLike) -> tuple[Image.Image, dict[str, Any]]:
    """(the photo as labelme shows it, RGB; the JSON record) for a labelme file of any version (3.x to 7.x).

    The photo is the embedded base64 imageData when present (used as stored, as labelme does),
    else the file at imagePath beside the JSON, turned upright by its EXIF orientation as
    labelme does before labelling. Errors name the file and say how to fix it.
    """
    image, record, _ = _read(Path(path))
    return image, record


def _read(json_path: Path) -> tuple[Image.Image, dict[str, Any], bytes | None]:
    """(photo, record, the photo file's own bytes when it is already a plain upright RGB JPEG)."""
    try:
        record = json.loads(json_path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise FileNotFoundError(f"labelme file not found: {json_path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{json_path} is not valid JSON ({error}). It was probably cut short or edited by hand: "
                         "repair it, or delete it and label the photo again in labelme.") from None
    if not isinstance(record, dict) or not isinstance(record.get("shapes"), list):
        raise ValueError(f'{json_path} is not a labelme file (no "shapes" list): move it out of the folder.')
    if record.get("imageData"):
        try:
            raw = base64.b64decode(record["imageData"])
        except (binascii.Error, ValueError, TypeError):
            raise ValueError(f'{json_path}: its embedded photo (imageData) is damaged. Set "imageData" to null to use '
                             "the photo at imagePath, or label the photo again.") from None
        image = _open(raw, f"{json_path}: the photo embedded in it (imageData)")  # already upright when embedded
        plain_jpeg = False
    else:
        photo = _find_photo(json_path, record)
        raw = photo.read_bytes()
        image = _open(raw, f"{json_path}: its photo {photo}")
        plain_jpeg = raw[:3] == b"\xff\xd8\xff" and image.mode == "RGB" and image.getexif().get(0x0112, 1) == 1
        # As labelme, only an EXIF block turns the photo (exif_transpose alone also obeys an XMP orientation).
        if "exif" in image.info or "Raw profile type exif" in image.info:
            image = ImageOps.exif_transpose(image)
    image = to_rgb(image)
    _check_size(json_path, record, image)
    return image, record, raw if plain_jpeg else None


def _open(raw: bytes, what: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(raw))
        image.load()  # decode now: a truncated file fails here, not halfway through the export
        return image
    except Exception as error:  # Pillow raises many types for bad bytes
        raise ValueError(f"{what} cannot be read as an image ({type(error).__name__}: {error}). "
                         "Replace it with a working JPEG or PNG of the same size.") from None


def _find_photo(json_path: Path, record: dict[str, Any]) -> Path:
    image_path = record.get("imagePath")
    if not isinstance(image_path, str) or not image_path.strip():
        raise ValueError(f'{json_path} names no photo (no "imageData", no "imagePath"): set "imagePath" to the '
                         "photo's file name, or label the photo again.")
    candidate = json_path.parent / PureWindowsPath(image_path).as_posix()  # labelme on Windows writes backslashes
    if candidate.is_file():
        return candidate
    nearby = [json_path.parent / PureWindowsPath(image_path).name] + [
        json_path.with_suffix(e) for e in _PHOTO_EXTENSIONS + tuple(e.upper() for e in _PHOTO_EXTENSIONS)]
    found = next((p for p in nearby if p.is_file()), None)
    hint = (f' {found.name} is next to it: if that is the labelled photo, set "imagePath": "{found.name}".' if found
            else " Put the photo next to the JSON under that name, or correct imagePath.")
    raise FileNotFoundError(f"{json_path}: its photo {candidate} was not found (imagePath {image_path!r} is relative "
                            f"to the JSON's folder).{hint}")


def _check_size(json_path: Path, record: dict[str, Any], image: Image.Image) -> None:
    height, width = record.get("imageHeight"), record.get("imageWidth")
    if (height is None or height == image.height) and (width is None or width == image.width):
        return  # labelme 3.x/4.x files do not record the size
    swapped = (height, width) == (image.width, image.height)
    raise ValueError(f"{json_path}: the photo is {image.width}x{image.height} but the JSON says imageWidth={width}, "
                     f"imageHeight={height}. " + ("The sides are swapped: the photo was rotated after labelling. "
                                                  if swapped else "The photo was resized or replaced after labelling. ")
                     + "Put back the photo that was labelled, or delete the JSON and label this photo again.")


# --------------------------------------------------------------------------- rasterisation

def shapes_to_mask(shapes: Sequence[dict[str, Any]], size: tuple[int, int], label_to_id: dict[str, int]) -> np.ndarray:
    """Draw labelme shapes into a uint8 (H, W) mask of class indices (0 where no shape).

    size: (H, W) of the photo. label_to_id: {label: value 0..255}, e.g. LabelSet.label_to_index()
    (-1, labelme2voc's id for "__ignore__", is taken as 255). Later shapes paint over earlier ones;
    what lies outside the image is clipped. Every labelme shape type is drawn; errors name the shape.
    """
    values = {label: IGNORE_INDEX if value == -1 else int(value) for label, value in label_to_id.items()}
    for index, shape in enumerate(shapes):
        label = shape.get("label") if isinstance(shape, dict) else None
        if not isinstance(label, str) or label not in values:  # a list label would raise TypeError
            close = difflib.get_close_matches(str(label), list(values), n=1)
            raise ValueError(f"{_describe(shape, index)}: label {label!r} is not in labels.txt"
                             + (f" (did you mean {close[0]!r}?)" if close else "") + f". Allowed: {', '.join(values)}. "
                             "Add it as a new line at the end of labels.txt, or rename the shape in labelme (Edit Label).")
    height, width = size
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for index, shape in enumerate(shapes):
        _draw(canvas, draw, shape, index, values[shape["label"]])
    return np.array(canvas, dtype=np.uint8)


def _describe(shape: Any, index: int) -> str:
    if not isinstance(shape, dict):
        return f"shape {index} ({shape!r:.40})"
    return f"shape {index} (label {shape.get('label')!r}, {shape.get('shape_type') or 'polygon'})"


def _draw(canvas: Image.Image, draw: ImageDraw.ImageDraw, shape: dict[str, Any], index: int, value: int) -> None:
    kind = shape.get("shape_type") or "polygon"
    if kind not in SHAPE_POINTS:
        raise ValueError(f"{_describe(shape, index)}: shape_type {kind!r} cannot be drawn into a mask; supported: "
                         f"{', '.join(SHAPE_POINTS)}. Redraw it in labelme as one of these.")
    points = shape.get("points")
    if not isinstance(points, list) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                                                 and math.isfinite(c) for c in p) for p in points):
        raise ValueError(f"{_describe(shape, index)}: its points must be a list of [x, y] numbers, got {points!r:.80}.")
    xy = [tuple(p) for p in points]  # ints stay ints: the same values labelme hands to Pillow
    fewest, most = SHAPE_POINTS[kind]
    if len(xy) < fewest or (most is not None and len(xy) > most):
        raise ValueError(f"{_describe(shape, index)} has {len(xy)} point(s), but a {kind} needs "
                         f"{'exactly' if fewest == most else 'at least'} {fewest}. Redraw or delete it in labelme.")
    if kind in ("polygon", "oriented_rectangle"):
        draw.polygon(xy, fill=value, outline=value)
    elif kind == "rectangle":
        (x0, y0), (x1, y1) = xy
        draw.rectangle((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=value, outline=value)
    elif kind == "circle":
        (cx, cy), (px, py) = xy
        r = math.hypot(cx - px, cy - py)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=value, outline=value)
    elif kind in ("line", "linestrip"):
        draw.line(xy, fill=value, width=LINE_WIDTH)
    elif kind == "point":
        (cx, cy), = xy
        draw.ellipse((cx - POINT_RADIUS, cy - POINT_RADIUS, cx + POINT_RADIUS, cy + POINT_RADIUS), fill=value, outline=value)
    else:  # mask: a bitmap (base64 PNG, non-zero = inside) of the box from points[0] to points[1]
        try:
            bitmap = Image.open(io.BytesIO(base64.b64decode(shape["mask"])))
            inside = np.asarray(bitmap.convert("L") if bitmap.mode not in ("1", "L", "P", "I") else bitmap) != 0
        except Exception:
            raise ValueError(f"{_describe(shape, index)}: its mask bitmap is missing or cannot be decoded; "
                             "redraw it in labelme.") from None
        stencil = Image.fromarray(inside.astype(np.uint8) * 255)
        left, top = int(xy[0][0]), int(xy[0][1])  # labelme truncates the corner to int
        canvas.paste(value, (left, top, left + stencil.width, top + stencil.height), mask=stencil)


# --------------------------------------------------------------------------- the folder export

@dataclass
class ExportReport:
    """What `export_labelme_folder` did: exported stems, failures ((file, message) pairs: the
    message names the file and the fix), and stale files, left in the output by an earlier
    export, which this one did not write (the dataset would still read them)."""

    input_dir: Path
    output_dir: Path
    class_names: list[str]
    exported: list[str] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    stale: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        total = len(self.exported) + len(self.failures)
        lines = [f"Exported {len(self.exported)} of {total} labelme files from {self.input_dir} to {self.output_dir} "
                 f"(classes: {', '.join(self.class_names)})."]
        if self.failures:
            lines += [f"{len(self.failures)} failed:"] + [f"  - {message}" for _, message in self.failures]
            lines.append("Fix them and export again (into this folder with --overwrite / overwrite=True).")
        if self.stale:
            lines.append(f"{len(self.stale)} older file(s) in {self.output_dir} were not written by this export and were "
                         f"left alone: {', '.join(str(p.relative_to(self.output_dir)) for p in self.stale[:5])}"
                         f"{' ...' if len(self.stale) > 5 else ''}. Delete them if they should not be in the dataset.")
        return "\n".join(lines)

    __str__ = summary


def _export_one(json_path: Path, output_dir: Path, label_to_id: dict[str, int]) -> None:
    image, record, jpeg = _read(json_path)
    mask = shapes_to_mask(record["shapes"], (image.height, image.width), label_to_id)
    grey = image.convert("L").convert("RGB")
    labelled = Image.fromarray(((mask != 0) & (mask != IGNORE_INDEX)).astype(np.uint8) * 255)
    overlay = Image.composite(Image.blend(grey, colorize(mask).convert("RGB"), 0.5), grey, labelled)
    encoded = {}
    for folder, picture, kind in ((OUTPUT_DIRS[0], image, "JPEG"), (OUTPUT_DIRS[1], colorize(mask), "PNG"),
                                  (OUTPUT_DIRS[2], overlay, "JPEG")):
        buffer = io.BytesIO()
        picture.save(buffer, format=kind, **({"quality": 95} if kind == "JPEG" else {"optimize": True}))
        encoded[folder] = buffer.getvalue()
    if jpeg is not None:
        encoded[OUTPUT_DIRS[0]] = jpeg  # the photo's own JPEG bytes: no second compression
    # Everything is encoded before anything is written: a bad file leaves no partial output.
    for folder, data in encoded.items():
        atomic_write(output_dir / folder / f"{json_path.stem}.{'png' if folder == OUTPUT_DIRS[1] else 'jpg'}", data)


def export_labelme_folder(input_dir: str | os.PathLike, output_dir: str | os.PathLike, labels_file: str | os.PathLike,
                          overwrite: bool = False, progress: bool = True) -> ExportReport:
    """Export a folder labelled with labelme to the VOC layout (see the module docstring).

    input_dir: the folder of .json files (subfolders are not searched); it is only read.
    output_dir: created if missing; a non-empty one is refused unless overwrite=True, which
    replaces the files this export writes and leaves the others. labels_file: the labels.txt.
    A file that cannot be exported is skipped and reported, with a message that names it and the
    fix, and the others are still exported. Raises only for problems with the whole run.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder not found: {input_dir}")
    labels = read_label_set(labels_file)
    if output_dir.resolve() == input_dir.resolve() or input_dir.resolve().is_relative_to(output_dir.resolve()):
        raise ValueError(f"the output folder {output_dir} is (or holds) the input folder {input_dir}; export into a "
                         f"folder of its own, e.g. {input_dir.parent / (input_dir.name + '-voc')}.")
    refuse_non_empty(output_dir, overwrite)
    json_files = sorted(p for p in input_dir.iterdir() if p.suffix.lower() == ".json" and not p.name.startswith("."))
    if not json_files:
        raise FileNotFoundError(f"no labelme .json files in {input_dir}. Label the photos with labelme first "
                                "(it saves a .json next to each photo), then export that folder.")
    for folder in OUTPUT_DIRS:
        (output_dir / folder).mkdir(parents=True, exist_ok=True)
    atomic_write(output_dir / "class_names.txt", "\n".join(labels.names).encode())  # as labelme2voc: no ignore line
    report = ExportReport(input_dir, output_dir, list(labels.names))
    for json_path in tqdm(json_files, desc="export", unit="file", disable=not progress or len(json_files) < 6):
        try:
            if json_path.stem in report.exported:
                raise ValueError(f"another file in {input_dir} has the stem {json_path.stem!r}: rename one of them.")
            _export_one(json_path, output_dir, labels.label_to_index())
            report.exported.append(json_path.stem)
        except Exception as error:  # one bad file must not stop the others: report it and go on
            message = str(error) if str(json_path) in str(error) else f"{json_path}: {error}"
            report.failures.append((json_path, message))
    report.stale = sorted(p for folder in OUTPUT_DIRS for p in (output_dir / folder).iterdir()
                          if p.stem not in report.exported and not p.name.startswith("."))
    return report
