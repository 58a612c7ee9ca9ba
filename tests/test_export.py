"""Tests for segkit.export: labels.txt, labelme files of every generation, rasterisation, export.

labelme itself is the oracle while it still ships ``shapes_to_label`` and
``apply_exif_orientation``; the golden files in tests/golden/export (made with labelme by
make_golden.py) keep the rasterisation checked after that.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import random
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import PIL.PngImagePlugin
import pytest

from segkit.draw import default_palette
from segkit.export import (
    SHAPE_POINTS,
    ExportReport,
    LabelSet,
    export_labelme_folder,
    load_labelme_json,
    read_label_set,
    read_labels,
    shapes_to_mask,
)

GOLDEN = Path(__file__).parent / "golden" / "export"
GOLDEN_EXPECTED = GOLDEN / "expected" / "SegmentationClass"
# Pillow's drawing may move the odd boundary pixel between versions, and the golden files may have
# been made with another Pillow than the one running the tests: a few pixels may differ, and only
# on the boundary of a region (test_golden_masks). With the Pillow they were made with, none does.
GOLDEN_PIXEL_TOLERANCE = 6
CAT_LABELS = "__ignore__\n_background_\ncat\n"
CAT_IDS = {"_background_": 0, "cat": 1, "__ignore__": 255}


# --------------------------------------------------------------------------- helpers


def encode(image: PIL.Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def gradient(width: int, height: int) -> PIL.Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, 90)], -1)
    return PIL.Image.fromarray(rgb.astype(np.uint8))


def quadrants(width: int, height: int) -> PIL.Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right: shows any turn or flip."""
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    rgb[: height // 2, : width // 2] = (255, 0, 0)
    rgb[: height // 2, width // 2 :] = (0, 255, 0)
    rgb[height // 2 :, : width // 2] = (0, 0, 255)
    rgb[height // 2 :, width // 2 :] = (255, 255, 255)
    return PIL.Image.fromarray(rgb)


def orientation_exif(orientation: int) -> bytes:
    exif = PIL.Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def mask_b64(bits: np.ndarray) -> str:
    return b64(encode(PIL.Image.fromarray(bits.astype(np.uint8)), "PNG"))


def shape(label, points, shape_type: str | None = "polygon", **extra) -> dict:
    s = {"label": label, "points": points, "group_id": None, "description": "", "flags": {}, **extra}
    if shape_type is not None:
        s["shape_type"] = shape_type
    return s


def write_labelme(
    folder: Path,
    stem: str,
    shapes: list[dict],
    image: PIL.Image.Image | None = None,
    *,
    embed: bool = False,
    image_name: str | None = None,
    size: tuple[int, int] | None = None,
) -> Path:
    """A labelme 5/6-style file; the photo is embedded or saved as image_name next to it."""
    image = image if image is not None else gradient(24, 16)
    image_name = image_name or f"{stem}.png"
    record = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image_name, "imageData": None}
    if embed:
        record["imageData"] = b64(encode(image, "PNG"))
    else:
        image.save(folder / image_name)
    height, width = size if size is not None else (image.height, image.width)
    record["imageHeight"], record["imageWidth"] = height, width
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(record))
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def read_png(path: Path) -> np.ndarray:
    with PIL.Image.open(path) as image:
        return np.asarray(image).copy()


@pytest.fixture
def labels_file(tmp_path: Path) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text(CAT_LABELS)
    return path


def labelme_function(name: str):
    """labelme's own `name` (shapes_to_label, img_b64_to_arr, apply_exif_orientation), wherever the
    installed labelme keeps it; a skip when labelme is not installed or no longer has it."""
    pytest.importorskip("labelme", reason="labelme is not installed")
    for module in ("labelme.utils", "labelme._utils", "labelme.utils.shape", "labelme.utils.image",
                   "labelme._utils.shape", "labelme._utils.image"):
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if found is not None:
            return found
    pytest.skip(f"labelme no longer has {name}; the golden files still check the rasterisation")


# --------------------------------------------------------------------------- labels.txt


def test_read_labels_the_labelme_way(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    # byte-order mark, Windows line ends, spaces and blank lines are all tolerated
    path.write_bytes("\ufeff__ignore__\r\n  _background_ \r\n\r\ncat\r\ndog\r\n\r\n".encode("utf-8"))
    labels = read_label_set(path)
    assert labels == LabelSet(names=("_background_", "cat", "dog"), has_ignore=True)
    assert read_labels(path) == ["_background_", "cat", "dog"]
    assert labels.label_to_index() == {"_background_": 0, "cat": 1, "dog": 2, "__ignore__": 255}


def test_read_labels_without_ignore_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("_background_\ncat\n")
    labels = read_label_set(path)
    assert labels.has_ignore is False
    assert labels.label_to_index() == {"_background_": 0, "cat": 1}  # "__ignore__" is then an unknown label


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "it lists no classes"),
        ("\n  \n\n", "it lists no classes"),
        ("__ignore__\n", "it lists no classes"),
        ("__ignore__\ncat\ndog\n", "_background_ is missing"),
        ("__ignore__\ncat\n_background_\n", "_background_ must come before every class"),
        ("__ignore__\n_background_\ncat\ncat\n", "'cat' listed twice"),
        ("_background_\n__ignore__\ncat\n", "__ignore__ must be the first line"),
        ("__ignore__\n_background_\n", "there is no class after _background_"),
        ("__ignore__\n_background_\n_background_\ncat\n", "'_background_' listed twice"),
        ("_background_\n" + "".join(f"c{i}\n" for i in range(255)), "256 classes, but class ids must stay below 255"),
    ],
)
def test_malformed_labels_file_shows_the_expected_form(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        read_label_set(path)
    message = str(info.value)
    assert str(path) in message
    assert problem in message
    assert "__ignore__\n_background_\ncat" in message  # the expected form, to copy


def test_most_classes_a_mask_can_hold(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("__ignore__\n_background_\n" + "".join(f"c{i}\n" for i in range(254)))
    labels = read_label_set(path)
    assert len(labels.names) == 255 and labels.label_to_index()["c253"] == 254  # 255 stays "ignore"


def test_missing_labels_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        read_labels(tmp_path / "nope.txt")
    assert "labels file not found" in str(info.value) and str(tmp_path / "nope.txt") in str(info.value)
    assert "__ignore__\n_background_\ncat" in str(info.value)


# --------------------------------------------------------------------------- rasterisation by hand


def test_each_shape_type_by_hand() -> None:
    ids = {"_background_": 0, "a": 1, "b": 2}
    h, w = 30, 40
    rect = shapes_to_mask([shape("a", [[12, 9], [3, 2]], "rectangle")], (h, w), ids)  # corners in any order
    expected = np.zeros((h, w), np.uint8)
    expected[2:10, 3:13] = 1  # both corners inclusive
    np.testing.assert_array_equal(rect, expected)
    assert rect.dtype == np.uint8 and rect.shape == (h, w)

    square = [[5, 5], [14, 5], [14, 12], [5, 12]]
    for kind in ("polygon", None, "oriented_rectangle"):  # None: labelme 3.x, a polygon
        polygon = shapes_to_mask([shape("b", square, kind)], (h, w), ids)
        expected = np.zeros((h, w), np.uint8)
        expected[5:13, 5:15] = 2  # the outline is part of the shape
        np.testing.assert_array_equal(polygon, expected, err_msg=str(kind))

    point = shapes_to_mask([shape("a", [[20, 15]], "point")], (h, w), ids)
    ys, xs = np.nonzero(point)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (15, 25, 10, 20)  # radius 5 disc
    assert point[15, 20] == 1 and point[10, 15] == 0  # a disc, not a square

    line = shapes_to_mask([shape("a", [[0, 15], [39, 15]], "line")], (h, w), ids)
    assert line[:, 20].sum() in (10, 11) and line[15].all()  # 10 px wide, end to end

    strip = shapes_to_mask([shape("a", [[0, 5], [20, 5], [20, 29]], "linestrip")], (h, w), ids)
    assert strip[5, :18].all() and strip[10:, 20].all() and not strip[20, :10].any()  # open: no closing edge

    circle = shapes_to_mask([shape("a", [[20, 15], [26, 15]], "circle")], (h, w), ids)
    ys, xs = np.nonzero(circle)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (14, 26, 9, 21)  # radius 6

    bits = np.zeros((4, 5), bool)
    bits[1:3, 1:4] = True
    pasted = shapes_to_mask([shape("b", [[10, 20], [14, 23]], "mask", mask=mask_b64(bits))], (h, w), ids)
    expected = np.zeros((h, w), np.uint8)
    expected[20:24, 10:15][bits] = 2
    np.testing.assert_array_equal(pasted, expected)
    assert set(SHAPE_POINTS) == {"polygon", "rectangle", "circle", "line", "linestrip", "point",
                                 "oriented_rectangle", "mask"}  # every type above; a new one needs a test


def test_later_shapes_paint_over_earlier_ones_and_edges_clip() -> None:
    ids = {"_background_": 0, "a": 1, "b": 2, "__ignore__": 255}
    shapes = [
        shape("a", [[-50, -50], [100, -50], [100, 100], [-50, 100]]),  # far past every edge
        shape("b", [[5, 5], [9, 9]], "rectangle"),
        shape("__ignore__", [[7, 7], [12, 12]], "rectangle"),
        shape("_background_", [[0, 0], [2, 2]], "rectangle"),  # a hole cut back to background
    ]
    mask = shapes_to_mask(shapes, (16, 20), ids)
    expected = np.ones((16, 20), np.uint8)
    expected[5:10, 5:10] = 2
    expected[7:13, 7:13] = 255
    expected[0:3, 0:3] = 0
    np.testing.assert_array_equal(mask, expected)
    # a mask bitmap hanging over the edge is clipped too (labelme itself fails on it)
    bits = np.ones((6, 6), bool)
    clipped = shapes_to_mask([shape("a", [[17, -2], [22, 3]], "mask", mask=mask_b64(bits))], (16, 20), ids)
    expected = np.zeros((16, 20), np.uint8)
    expected[0:4, 17:20] = 1
    np.testing.assert_array_equal(clipped, expected)


def test_labelme2voc_ignore_id_minus_one_becomes_255() -> None:
    ids = {"__ignore__": -1, "_background_": 0, "cat": 1}  # labelme2voc.py's class_name_to_id
    mask = shapes_to_mask([shape("__ignore__", [[1, 1], [3, 3]], "rectangle")], (5, 5), ids)
    assert mask[2, 2] == 255 and mask[0, 0] == 0


@pytest.mark.parametrize(
    "shape_type, points, needed",
    [
        ("polygon", [[1, 1], [5, 5]], "at least 3"),
        (None, [[1, 1], [5, 5]], "at least 3"),  # labelme 3.x: no shape_type is a polygon
        ("rectangle", [[1, 1]], "exactly 2"),
        ("circle", [[1, 1], [2, 2], [3, 3]], "exactly 2"),
        ("line", [[1, 1]], "exactly 2"),
        ("linestrip", [[1, 1]], "at least 2"),
        ("point", [[1, 1], [2, 2]], "exactly 1"),
        ("oriented_rectangle", [[1, 1], [5, 1], [5, 5]], "exactly 4"),
        ("mask", [[1, 1]], "exactly 2"),
        ("polygon", [], "at least 3"),
    ],
)
def test_too_few_points_names_the_shape(shape_type, points, needed) -> None:
    shapes = [shape("cat", [[0, 0], [4, 0], [4, 4]]), shape("cat", points, shape_type)]
    with pytest.raises(ValueError) as info:
        shapes_to_mask(shapes, (10, 10), CAT_IDS)
    message = str(info.value)
    assert "shape 1" in message and "'cat'" in message and needed in message and "labelme" in message
    assert f"a {shape_type or 'polygon'} needs" in message


def test_unknown_label_lists_allowed_labels() -> None:
    shapes = [shape("cat", [[0, 0], [4, 0], [4, 4]]), shape("cta", [[0, 0], [4, 0], [4, 4]])]
    with pytest.raises(ValueError) as info:
        shapes_to_mask(shapes, (10, 10), CAT_IDS)
    message = str(info.value)
    assert "shape 1" in message and "'cta' is not in labels.txt" in message
    assert "did you mean 'cat'" in message
    assert "Allowed: _background_, cat, __ignore__" in message
    assert "Add it as a new line at the end of labels.txt" in message
    # A label of the wrong type (a hand-edited file) is reported the same way, not as a TypeError.
    for label in (None, ["cat"], 1):
        with pytest.raises(ValueError, match="shape 0 .* is not in labels.txt"):
            shapes_to_mask([shape(label, [[0, 0], [4, 0], [4, 4]])], (10, 10), CAT_IDS)


def test_bad_points_unknown_shape_type_and_broken_bitmap() -> None:
    with pytest.raises(ValueError, match=r"shape 0 .*points must be a list of \[x, y\] numbers"):
        shapes_to_mask([shape("cat", [[0, 0], [4, "x"], [4, 4]])], (10, 10), CAT_IDS)
    for points in (None, [[0, 0, 1], [4, 0], [4, 4]], [[0, 0], [4, float("nan")], [4, 4]], [[0, 0], [True, 1], [4, 4]]):
        with pytest.raises(ValueError, match=r"points must be a list of \[x, y\] numbers"):
            shapes_to_mask([shape("cat", points)], (10, 10), CAT_IDS)
    with pytest.raises(ValueError, match="shape_type 'cubic' cannot be drawn into a mask; supported: polygon"):
        shapes_to_mask([shape("cat", [[0, 0], [4, 0], [4, 4]], "cubic")], (10, 10), CAT_IDS)
    for bitmap in (None, "not base64 at all!", b64(b"no PNG")):
        with pytest.raises(ValueError, match="shape 0 .*mask bitmap is missing or cannot be decoded"):
            shapes_to_mask([shape("cat", [[0, 0], [3, 3]], "mask", mask=bitmap)], (10, 10), CAT_IDS)
    with pytest.raises(ValueError, match="shape 1 .*not in labels.txt"):
        shapes_to_mask([shape("cat", [[0, 0], [4, 0], [4, 4]]), "a string, not a shape"], (10, 10), CAT_IDS)


# --------------------------------------------------------------------------- labelme as the oracle


def random_shape(rng: random.Random, height: int, width: int) -> dict:
    def xy():
        x, y = rng.uniform(-8, width + 8), rng.uniform(-8, height + 8)
        # labelme 3/4 saved integers, later versions floats (often whole numbers)
        return [round(x), round(y)] if rng.random() < 0.3 else [round(x, rng.choice([1, 2, 6])), round(y, 2)]

    label = rng.choice(["_background_", "cat", "dog", "__ignore__"])
    kind = rng.choice(["polygon", None, "rectangle", "circle", "line", "linestrip", "point", "oriented_rectangle",
                       "mask"])
    if kind in ("polygon", None):
        return shape(label, [xy() for _ in range(rng.randint(3, 8))], kind)
    if kind == "linestrip":
        return shape(label, [xy() for _ in range(rng.randint(2, 6))], kind)
    if kind == "point":
        return shape(label, [xy()], kind)
    if kind == "oriented_rectangle":
        return shape(label, [xy() for _ in range(4)], kind)
    if kind == "mask":  # labelme can only paste a bitmap whose box lies inside the image
        x1, y1 = rng.randrange(width), rng.randrange(height)
        x2, y2 = rng.randrange(x1, width), rng.randrange(y1, height)
        bits = np.random.default_rng(rng.randrange(1 << 30)).random((y2 - y1 + 1, x2 - x1 + 1)) < 0.5
        corners = [[x1, y1], [x2, y2]]
        if rng.random() < 0.5:  # labelme truncates fractional corners to int
            corners = [[x + round(rng.random(), 2) * 0.99 for x in corner] for corner in corners]
        return shape(label, corners, kind, mask=mask_b64(bits))
    return shape(label, [xy(), xy()], kind)


def labelme_shapes_to_mask(shapes: list[dict], size: tuple[int, int]) -> np.ndarray:
    """What labelme2voc.py writes: shapes_to_label with __ignore__ = -1, cast to uint8 (-1 -> 255)."""
    shapes_to_label, img_b64_to_arr = labelme_function("shapes_to_label"), labelme_function("img_b64_to_arr")
    decoded = []
    for s in shapes:
        s = dict(s)
        if s.get("mask") is not None:  # as labelme's LabelFile decodes it
            s["mask"] = img_b64_to_arr(s["mask"]).astype(bool)
        decoded.append(s)
    ids = {"__ignore__": -1, "_background_": 0, "cat": 1, "dog": 2}
    cls, _ = shapes_to_label(img_shape=size, shapes=decoded, label_name_to_value=ids)
    return cls.astype(np.uint8)


def test_random_shapes_match_labelme_shapes_to_label() -> None:
    rng = random.Random(20240601)
    ids = {"_background_": 0, "cat": 1, "dog": 2, "__ignore__": 255}
    kinds = set()
    for case in range(300):
        height, width = rng.randint(4, 48), rng.randint(4, 48)
        shapes = [random_shape(rng, height, width) for _ in range(rng.randint(1, 5))]
        kinds |= {s.get("shape_type") for s in shapes}
        ours = shapes_to_mask(shapes, (height, width), ids)
        theirs = labelme_shapes_to_mask(shapes, (height, width))
        # Same Pillow in the same process, so no boundary pixel may differ.
        assert np.array_equal(ours, theirs), f"case {case}: {shapes}"
    assert kinds == set(SHAPE_POINTS) | {None}


def load_as_labelme(path: Path) -> PIL.Image.Image:
    apply_exif_orientation = labelme_function("apply_exif_orientation")
    with PIL.Image.open(path) as opened:
        return apply_exif_orientation(opened).convert("RGB")


def save_with_orientation(image: PIL.Image.Image, path: Path, fmt: str, orientation: int) -> None:
    if fmt == "PNG-ImageMagick":  # ImageMagick keeps EXIF in a hex "Raw profile type exif" text chunk
        raw = b"Exif\x00\x00" + orientation_exif(orientation)
        info = PIL.PngImagePlugin.PngInfo()
        info.add_text("Raw profile type exif", f"\nexif\n{len(raw):8d}\n{raw.hex()}\n")
        image.save(path, format="PNG", pnginfo=info)
    else:
        image.save(path, format=fmt, exif=orientation_exif(orientation), quality=95)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "PNG-ImageMagick"])
def test_exif_orientations_match_labelme(tmp_path: Path, fmt: str) -> None:
    stored = PIL.Image.fromarray(np.arange(5 * 3 * 3, dtype=np.uint8).reshape(3, 5, 3) * 5)  # 5x3, all distinct
    for orientation in range(1, 9):
        name = f"o{orientation}.{fmt.split('-')[0].lower()}"
        save_with_orientation(stored, tmp_path / name, fmt, orientation)
        record = {"shapes": [], "imagePath": name, "imageData": None}
        (tmp_path / f"o{orientation}.json").write_text(json.dumps(record))
        ours, _ = load_labelme_json(tmp_path / f"o{orientation}.json")
        theirs = load_as_labelme(tmp_path / name)  # the same decoded pixels, so the comparison is exact
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=f"orientation {orientation}")
        assert ours.size == ((3, 5) if orientation >= 5 else (5, 3))


def test_xmp_orientation_alone_turns_nothing_as_in_labelme(tmp_path: Path, labels_file: Path) -> None:
    # labelme reads the orientation from the EXIF block only; Pillow's getexif() also looks in XMP.
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    quadrants(40, 24).save(tmp_path / "edited.jpg", quality=95, xmp=xmp)
    record = {"version": "5.5.0", "flags": {}, "imagePath": "edited.jpg", "imageData": None, "imageHeight": 24,
              "imageWidth": 40, "shapes": [shape("cat", [[0, 0], [19, 23]], "rectangle")]}
    (tmp_path / "edited.json").write_text(json.dumps(record))
    ours, _ = load_labelme_json(tmp_path / "edited.json")
    assert ours.size == (40, 24)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(load_as_labelme(tmp_path / "edited.jpg")))

    report = export_labelme_folder(tmp_path, tmp_path / "voc", labels_file, progress=False)
    assert report.ok, report.summary()
    # The copy must not carry the XMP orientation, or segkit.data would turn it away from its mask.
    with PIL.Image.open(tmp_path / "voc" / "JPEGImages" / "edited.jpg") as jpeg:
        assert PIL.ImageOps.exif_transpose(jpeg).size == (40, 24)


# --------------------------------------------------------------------------- golden files


def golden_cases() -> list[Path]:
    return sorted((GOLDEN / "input").glob("*.json"))


def golden_label_ids() -> dict[str, int]:
    return read_label_set(GOLDEN / "labels.txt").label_to_index()


def golden_record(json_path: Path) -> dict:
    return json.loads(json_path.read_text())


def test_golden_cases_cover_every_shape_type_generation_and_photo_source() -> None:
    """The golden comparison below checks only what these inputs hold: they must hold it all."""
    records = {p.stem: golden_record(p) for p in golden_cases()}
    assert {p.stem for p in GOLDEN_EXPECTED.glob("*.png")} == set(records)  # one expected mask per input

    kinds = {s.get("shape_type") for r in records.values() for s in r["shapes"]}
    assert kinds == set(SHAPE_POINTS) | {None}  # None: labelme 3.x polygons
    generations = {int(r["version"].split(".")[0]) if "version" in r else 3 for r in records.values()}
    assert generations >= {3, 4, 5, 6}
    assert any("imageHeight" not in r for r in records.values())  # 3.x files do not record the size

    sources = set()
    for stem, record in records.items():
        if record.get("imageData"):
            data = base64.b64decode(record["imageData"])
            sources.add(("embedded", PIL.Image.open(io.BytesIO(data)).format))
        else:
            with PIL.Image.open(GOLDEN / "input" / record["imagePath"]) as photo:
                turned = photo.getexif().get(0x0112, 1) != 1
                sources.add(("file", photo.format, turned))
    assert {("embedded", "PNG"), ("embedded", "JPEG"), ("file", "PNG", False), ("file", "JPEG", True)} <= sources

    values = set()
    for stem in records:
        values |= set(np.unique(read_png(GOLDEN_EXPECTED / f"{stem}.png")).tolist())
    assert values == {0, 1, 2, 255}  # background, both classes and __ignore__ all appear


@pytest.mark.parametrize("json_path", golden_cases(), ids=lambda p: p.stem)
def test_every_golden_shape_leaves_its_mark(json_path: Path) -> None:
    """Each shape of a golden file changes its expected mask, so drawing it wrong fails test_golden_masks.

    A shape's mark: the pixels of the expected mask that change when the mask is drawn without it.
    """
    expected = read_png(GOLDEN_EXPECTED / f"{json_path.stem}.png")
    shapes = golden_record(json_path)["shapes"]
    for value in np.unique(expected):
        assert np.count_nonzero(expected == value) > GOLDEN_PIXEL_TOLERANCE  # no near-empty class
    for index, s in enumerate(shapes):
        without = shapes_to_mask(shapes[:index] + shapes[index + 1 :], expected.shape, golden_label_ids())
        assert np.count_nonzero(without != expected) > 0, f"shape {index} ({s.get('shape_type')}) leaves no mark"


def test_every_shape_type_has_a_golden_mark_above_the_tolerance() -> None:
    biggest: dict[str | None, int] = {}
    for json_path in golden_cases():
        expected = read_png(GOLDEN_EXPECTED / f"{json_path.stem}.png")
        shapes = golden_record(json_path)["shapes"]
        for index, s in enumerate(shapes):
            without = shapes_to_mask(shapes[:index] + shapes[index + 1 :], expected.shape, golden_label_ids())
            kind = s.get("shape_type")
            biggest[kind] = max(biggest.get(kind, 0), int(np.count_nonzero(without != expected)))
    assert set(biggest) == set(SHAPE_POINTS) | {None}
    assert all(mark > 4 * GOLDEN_PIXEL_TOLERANCE for mark in biggest.values()), biggest


def region_boundary(mask: np.ndarray) -> np.ndarray:
    """True where a pixel has a 4-neighbour of another value (the image border is no boundary)."""
    edge = np.zeros(mask.shape, bool)
    edge[1:] |= mask[1:] != mask[:-1]
    edge[:-1] |= mask[:-1] != mask[1:]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    return edge


def assert_matches_golden(mask: np.ndarray, expected: np.ndarray, name: str) -> None:
    assert mask.shape == expected.shape, name
    wrong = mask != expected
    assert np.count_nonzero(wrong) <= GOLDEN_PIXEL_TOLERANCE, f"{name}: {np.count_nonzero(wrong)} pixels differ"
    assert not (wrong & ~region_boundary(expected)).any(), f"{name}: a pixel inside a region differs"


@pytest.mark.parametrize("json_path", golden_cases(), ids=lambda p: p.stem)
def test_golden_masks(json_path: Path) -> None:
    expected = read_png(GOLDEN_EXPECTED / f"{json_path.stem}.png")
    image, record = load_labelme_json(json_path)
    assert record == golden_record(json_path)
    mask = shapes_to_mask(record["shapes"], (image.height, image.width), golden_label_ids())
    assert_matches_golden(mask, expected, json_path.stem)


def test_golden_folder_export(tmp_path: Path) -> None:
    before = tree_digest(GOLDEN)
    out = tmp_path / "voc"
    report = export_labelme_folder(GOLDEN / "input", out, GOLDEN / "labels.txt", progress=False)
    assert report.ok and report.exported == [p.stem for p in golden_cases()] and report.stale == []
    palette = [channel for colour in default_palette() for channel in colour]
    for json_path in golden_cases():
        written = out / "SegmentationClass" / f"{json_path.stem}.png"
        with PIL.Image.open(written) as png:
            assert png.mode == "P" and png.getpalette() == palette
            mask = np.asarray(png)
        assert_matches_golden(mask, read_png(GOLDEN_EXPECTED / written.name), json_path.stem)
        with PIL.Image.open(out / "JPEGImages" / f"{json_path.stem}.jpg") as jpeg:
            assert jpeg.format == "JPEG" and jpeg.mode == "RGB" and jpeg.size == mask.shape[::-1]
            assert jpeg.getexif().get(0x0112, 1) == 1  # upright as written: nothing turns it again
        with PIL.Image.open(out / "SegmentationClassVisualization" / f"{json_path.stem}.jpg") as viz:
            assert viz.format == "JPEG" and viz.size == mask.shape[::-1]
    # The rotated phone photo is written upright: its white top-left third (make_golden.photo) is
    # the stored top-left, which EXIF orientation 6 turns to the top-right.
    upright = np.asarray(PIL.Image.open(out / "JPEGImages" / "v4_exif_rotated.jpg")).astype(int)
    assert upright.shape == (32, 20, 3)
    assert upright[2, 17].min() > 200 and upright[2, 2].min() < 150
    assert (out / "class_names.txt").read_text() == "_background_\ncat\ndog"
    assert tree_digest(GOLDEN) == before  # the input folder is only read


# --------------------------------------------------------------------------- every labelme generation


def test_labelme_3_file_loads(tmp_path: Path) -> None:
    image = gradient(20, 14)
    record = {  # labelme 3.x: no shape_type, no imageHeight/imageWidth, colours, embedded PNG
        "flags": {},
        "shapes": [{"label": "cat", "line_color": None, "fill_color": None,
                    "points": [[2, 2], [10, 2], [10, 9], [2, 9]]}],
        "lineColor": [0, 255, 0, 128],
        "fillColor": [255, 0, 0, 128],
        "imagePath": "gone.jpg",  # not there: the embedded photo is used
        "imageData": b64(encode(image, "PNG")),
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(record))
    loaded, parsed = load_labelme_json(path)
    assert parsed == record
    np.testing.assert_array_equal(np.asarray(loaded), np.asarray(image))
    mask = shapes_to_mask(parsed["shapes"], (loaded.height, loaded.width), CAT_IDS)
    expected = np.zeros((14, 20), np.uint8)
    expected[2:10, 2:11] = 1
    np.testing.assert_array_equal(mask, expected)


def test_labelme_4_file_reads_photo_from_windows_image_path(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    image = gradient(18, 12)
    image.save(tmp_path / "photos" / "p.png")
    record = {"version": "4.5.6", "flags": {}, "imageData": None, "imageHeight": 12, "imageWidth": 18,
              "imagePath": "photos\\p.png",  # written by labelme on Windows
              "shapes": [shape("cat", [[1, 1], [5, 5]], "rectangle")]}
    (tmp_path / "p.json").write_text(json.dumps(record))
    loaded, _ = load_labelme_json(tmp_path / "p.json")
    np.testing.assert_array_equal(np.asarray(loaded), np.asarray(image))
    (tmp_path / "photos" / "p.png").rename(tmp_path / "p.png")  # moved next to the JSON: a hint, no guess
    with pytest.raises(FileNotFoundError) as info:
        load_labelme_json(tmp_path / "p.json")
    assert str(tmp_path / "photos" / "p.png") in str(info.value) and '"imagePath": "p.png"' in str(info.value)


def test_labelme_5_file_with_embedded_jpeg(tmp_path: Path) -> None:
    image = gradient(30, 20)
    data = encode(image, "JPEG", quality=90)
    record = {"version": "5.2.1", "flags": {"occluded": True}, "imagePath": "x.jpg", "imageData": b64(data),
              "imageHeight": 20, "imageWidth": 30,
              "shapes": [shape("cat", [[3.5, 2.25], [20.0, 4.0], [12.0, 15.5]], group_id=3, description="left ear")]}
    (tmp_path / "x.json").write_text(json.dumps(record))
    loaded, parsed = load_labelme_json(tmp_path / "x.json")
    assert loaded.mode == "RGB" and loaded.size == (30, 20)
    np.testing.assert_array_equal(np.asarray(loaded), np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB")))
    assert shapes_to_mask(parsed["shapes"], (20, 30), CAT_IDS).sum() > 50


def test_labelme_6_mask_shape(tmp_path: Path) -> None:
    bits = np.zeros((5, 7), bool)
    bits[1:4, 2:6] = True
    path = write_labelme(tmp_path, "m", [shape("cat", [[3, 4], [9, 8]], "mask", mask=mask_b64(bits))], embed=True)
    image, record = load_labelme_json(path)
    mask = shapes_to_mask(record["shapes"], (image.height, image.width), CAT_IDS)
    expected = np.zeros((16, 24), np.uint8)
    expected[4:9, 3:10][bits] = 1
    np.testing.assert_array_equal(mask, expected)


def test_odd_photo_modes_become_rgb(tmp_path: Path) -> None:
    deep = PIL.Image.fromarray((np.arange(12 * 8, dtype=np.uint16).reshape(8, 12) * 600))  # 16-bit grey
    palette = gradient(12, 8).convert("P", palette=PIL.Image.Palette.ADAPTIVE, colors=8)
    palette.info["transparency"] = 0
    photos = {"grey.png": gradient(12, 8).convert("L"), "rgba.png": gradient(12, 8).convert("RGBA"),
              "deep.png": deep, "palette.png": palette, "cmyk.jpg": gradient(12, 8).convert("CMYK")}
    for name, photo in photos.items():
        photo.save(tmp_path / name)
        (tmp_path / "a.json").write_text(json.dumps({"shapes": [], "imagePath": name, "imageData": None}))
        loaded, _ = load_labelme_json(tmp_path / "a.json")
        assert loaded.mode == "RGB" and loaded.size == (12, 8), name
        if name == "deep.png":  # 16 bits scaled to 8 (65535 -> 255), not clipped to white
            expected = np.rint(np.arange(96).reshape(8, 12) * 600 / 257).astype(np.uint8)
            np.testing.assert_array_equal(np.asarray(loaded)[..., 0], expected)
        if name == "rgba.png":  # the colours under the alpha are kept
            np.testing.assert_array_equal(np.asarray(loaded), np.asarray(gradient(12, 8)))


# --------------------------------------------------------------------------- EXIF orientation


def test_exif_orientation_turns_photo_upright_as_labelme(tmp_path: Path, labels_file: Path) -> None:
    # a phone held upright: stored landscape, shown rotated 90 degrees clockwise
    quadrants(40, 24).save(tmp_path / "phone.jpg", quality=95, exif=orientation_exif(6))
    shapes = [shape("cat", [[0, 0], [11, 39]], "rectangle")]  # the left half of the upright photo
    record = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": "phone.jpg", "imageData": None,
              "imageHeight": 40, "imageWidth": 24}
    (tmp_path / "phone.json").write_text(json.dumps(record))

    image, _ = load_labelme_json(tmp_path / "phone.json")
    assert image.size == (24, 40)
    pixels = np.asarray(image).astype(int)
    # rotated clockwise: the stored top-left (red) is now top-right, bottom-left (blue) top-left
    assert np.abs(pixels[5, 18] - (255, 0, 0)).max() < 40
    assert np.abs(pixels[5, 5] - (0, 0, 255)).max() < 40
    assert np.abs(pixels[35, 18] - (0, 255, 0)).max() < 40

    out = tmp_path / "voc"
    report = export_labelme_folder(tmp_path, out, labels_file, progress=False)
    assert report.ok
    with PIL.Image.open(out / "JPEGImages" / "phone.jpg") as jpeg:
        assert jpeg.size == (24, 40)
        assert jpeg.getexif().get(0x0112, 1) == 1  # no tag left that would turn it again
        assert np.abs(np.asarray(jpeg).astype(int)[5, 5] - (0, 0, 255)).max() < 40
    mask = read_png(out / "SegmentationClass" / "phone.png")
    assert mask.shape == (40, 24) and mask[:, :12].all() and not mask[:, 12:].any()


def test_embedded_photo_is_used_as_stored(tmp_path: Path) -> None:
    # labelme shows imageData as stored (it was turned upright when it was embedded), even with a tag
    data = encode(quadrants(40, 24), "JPEG", quality=95, exif=orientation_exif(6))
    record = {"shapes": [], "imagePath": "x.jpg", "imageData": b64(data), "imageHeight": 24, "imageWidth": 40}
    (tmp_path / "x.json").write_text(json.dumps(record))
    image, _ = load_labelme_json(tmp_path / "x.json")
    assert image.size == (40, 24)
    assert np.abs(np.asarray(image).astype(int)[5, 5] - (255, 0, 0)).max() < 40  # red still top-left


def test_rotated_photo_reports_swapped_sides(tmp_path: Path) -> None:
    # The photo was turned (here: its EXIF tag) after labelling: the JSON's size is the other way round.
    quadrants(40, 24).save(tmp_path / "p.jpg", quality=95, exif=orientation_exif(6))
    record = {"shapes": [], "imagePath": "p.jpg", "imageData": None, "imageHeight": 24, "imageWidth": 40}
    (tmp_path / "p.json").write_text(json.dumps(record))
    with pytest.raises(ValueError) as info:
        load_labelme_json(tmp_path / "p.json")
    message = str(info.value)
    assert str(tmp_path / "p.json") in message and "24x40" in message and "sides are swapped" in message


# --------------------------------------------------------------------------- the folder export


def test_export_layout_and_jpeg_handling(tmp_path: Path, labels_file: Path) -> None:
    src = tmp_path / "labelled"
    src.mkdir()
    plain_jpeg = encode(gradient(24, 16), "JPEG", quality=90)
    (src / "a.jpg").write_bytes(plain_jpeg)
    record = {"shapes": [shape("cat", [[2, 2], [20, 3], [10, 14]])], "imagePath": "a.jpg", "imageData": None,
              "imageHeight": 16, "imageWidth": 24}
    (src / "a.json").write_text(json.dumps(record))
    write_labelme(src, "b", [shape("cat", [[1, 1], [6, 6]], "rectangle")])  # photo is a PNG
    grey_jpeg = encode(gradient(24, 16).convert("L"), "JPEG", quality=90)  # a JPEG, but not RGB: re-encoded
    (src / "c.jpg").write_bytes(grey_jpeg)
    (src / "c.JSON").write_text(json.dumps({**record, "imagePath": "c.jpg"}))  # upper-case suffix counts
    out = tmp_path / "new" / "voc"  # parents are created

    report = export_labelme_folder(src, out, labels_file, progress=False)

    assert isinstance(report, ExportReport) and report.ok
    assert report.exported == ["a", "b", "c"] and report.failures == [] and report.stale == []
    assert report.class_names == ["_background_", "cat"] and report.output_dir == out
    assert (out / "class_names.txt").read_text() == "_background_\ncat"  # as labelme2voc: no __ignore__
    assert (out / "JPEGImages" / "a.jpg").read_bytes() == plain_jpeg  # a plain JPEG is copied as is
    for stem in ("b", "c"):
        with PIL.Image.open(out / "JPEGImages" / f"{stem}.jpg") as jpeg:
            assert jpeg.format == "JPEG" and jpeg.mode == "RGB"
    with PIL.Image.open(out / "SegmentationClass" / "b.png") as png:
        assert png.mode == "P"
        assert png.getpalette()[:9] == [0, 0, 0, *default_palette()[1], *default_palette()[2]]
        expected = np.zeros((16, 24), np.uint8)
        expected[1:7, 1:7] = 1
        np.testing.assert_array_equal(np.asarray(png), expected)
    np.testing.assert_array_equal(read_png(out / "SegmentationClass" / "a.png"),
                                  shapes_to_mask(record["shapes"], (16, 24), CAT_IDS))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == sorted(
        ["JPEGImages", "SegmentationClass", "SegmentationClassVisualization", "class_names.txt"]
        + [f"{d}/{s}.{e}" for s in "abc" for d, e in
           [("JPEGImages", "jpg"), ("SegmentationClass", "png"), ("SegmentationClassVisualization", "jpg")]]
    )  # nothing else, no temporary files
    assert report.summary().startswith(f"Exported 3 of 3 labelme files from {src} to {out}")
    assert str(report) == report.summary() and "failed" not in report.summary()


def test_visualisation_tints_classes_over_a_grey_photo(tmp_path: Path, labels_file: Path) -> None:
    photo = PIL.Image.new("RGB", (48, 32), (200, 100, 50))
    shapes = [shape("cat", [[0, 0], [15, 31]], "rectangle"), shape("__ignore__", [[32, 0], [47, 31]], "rectangle")]
    write_labelme(tmp_path, "v", shapes, photo)
    export_labelme_folder(tmp_path, tmp_path / "voc", labels_file, progress=False)
    viz = np.asarray(PIL.Image.open(tmp_path / "voc" / "SegmentationClassVisualization" / "v.jpg")).astype(int)
    grey = int(np.asarray(photo.convert("L"))[0, 0])
    cat = np.array([grey // 2, (grey + default_palette()[1][1]) // 2, grey // 2])  # half grey, half green
    assert np.abs(viz[16, 8] - cat).max() <= 6  # the cat, tinted
    assert np.abs(viz[16, 24] - grey).max() <= 6  # background: the grey photo
    assert np.abs(viz[16, 40] - grey).max() <= 6  # ignored: the grey photo too


def test_bad_inputs_are_reported_and_the_rest_exported(tmp_path: Path, labels_file: Path) -> None:
    src = tmp_path / "labelled"
    src.mkdir()
    write_labelme(src, "good", [shape("cat", [[1, 1], [9, 1], [5, 8]])])
    (src / "broken.json").write_text('{"shapes": [{"label": "cat", "points": [[1, 2], [3')
    (src / "not_labelme.json").write_text('{"name": "a settings file"}')
    write_labelme(src, "unknown_label", [shape("cta", [[1, 1], [9, 1], [5, 8]])])
    write_labelme(src, "missing_photo", [], image_name="missing_photo.png")
    (src / "missing_photo.png").unlink()
    write_labelme(src, "unreadable_photo", [], image_name="unreadable_photo.jpg")
    (src / "unreadable_photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no JPEG")
    damaged = json.loads(write_labelme(src, "damaged_data", [], embed=True).read_text())
    (src / "damaged_data.json").write_text(json.dumps({**damaged, "imageData": "@@not base64@@"}))
    write_labelme(src, "wrong_size", [], size=(10, 12))
    write_labelme(src, "few_points", [shape("cat", [[1, 1], [9, 1]])])
    (src / "notes.txt").write_text("not a labelme file")
    before = tree_digest(src)

    report = export_labelme_folder(src, tmp_path / "voc", labels_file, progress=False)

    assert report.exported == ["good"] and not report.ok
    assert all(isinstance(f, tuple) and len(f) == 2 and isinstance(f[0], Path) for f in report.failures)
    messages = {path.stem: message for path, message in report.failures}
    assert set(messages) == {"broken", "not_labelme", "unknown_label", "missing_photo", "unreadable_photo",
                             "damaged_data", "wrong_size", "few_points"}
    for path, message in report.failures:
        assert path == src / f"{path.stem}.json"
        assert str(path) in message, message  # every message names its file
    assert "not valid JSON" in messages["broken"] and "label the photo again" in messages["broken"]
    assert 'not a labelme file (no "shapes" list)' in messages["not_labelme"]
    assert "'cta' is not in labels.txt" in messages["unknown_label"]
    assert "Allowed: _background_, cat, __ignore__" in messages["unknown_label"]
    assert "was not found" in messages["missing_photo"] and "imagePath" in messages["missing_photo"]
    assert "cannot be read as an image" in messages["unreadable_photo"] and "Replace it" in messages["unreadable_photo"]
    assert "imageData" in messages["damaged_data"] and "damaged" in messages["damaged_data"]
    assert "24x16" in messages["wrong_size"] and "imageWidth=12, imageHeight=10" in messages["wrong_size"]
    assert "Put back the photo" in messages["wrong_size"]
    assert "shape 0" in messages["few_points"] and "needs at least 3" in messages["few_points"]
    assert "Redraw or delete it in labelme" in messages["few_points"]

    summary = report.summary()
    assert "Exported 1 of 9" in summary and "8 failed:" in summary and "Fix them and export again" in summary
    assert all(message in summary for _, message in report.failures)
    for folder in ("JPEGImages", "SegmentationClass", "SegmentationClassVisualization"):
        assert [p.stem for p in (tmp_path / "voc" / folder).iterdir()] == ["good"]  # no partial output
    assert tree_digest(src) == before  # the input folder is only read


def test_missing_photo_hint_names_a_photo_next_to_the_json(tmp_path: Path) -> None:
    path = write_labelme(tmp_path, "cat1", [], image_name="IMG_0001.jpg")
    (tmp_path / "IMG_0001.jpg").rename(tmp_path / "cat1.jpg")
    with pytest.raises(FileNotFoundError) as info:
        load_labelme_json(path)
    assert str(path) in str(info.value) and '"imagePath": "cat1.jpg"' in str(info.value)
    (tmp_path / "cat1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="Put the photo next to the JSON under that name"):
        load_labelme_json(path)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "imagePath": None}))
    with pytest.raises(ValueError, match='names no photo .*set "imagePath"'):
        load_labelme_json(path)
    with pytest.raises(FileNotFoundError, match="labelme file not found"):
        load_labelme_json(tmp_path / "nope.json")


def test_non_empty_output_refused_unless_overwrite_and_stale_files_reported(tmp_path: Path, labels_file: Path) -> None:
    src = tmp_path / "labelled"
    src.mkdir()
    write_labelme(src, "a", [shape("cat", [[1, 1], [6, 6]], "rectangle")])
    out = tmp_path / "voc"
    (out / "JPEGImages").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "JPEGImages" / "old.jpg").write_bytes(b"an earlier export")
    (out / "SegmentationClass").mkdir()
    (out / "SegmentationClass" / "a.png").write_bytes(b"stale mask")
    before = tree_digest(out)

    with pytest.raises(FileExistsError) as info:
        export_labelme_folder(src, out, labels_file, progress=False)
    assert str(out) in str(info.value) and "overwrite=True" in str(info.value)
    assert tree_digest(out) == before  # nothing written before the refusal

    report = export_labelme_folder(src, out, labels_file, overwrite=True, progress=False)
    assert report.exported == ["a"] and report.ok
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "JPEGImages" / "old.jpg").read_bytes() == b"an earlier export"
    assert read_png(out / "SegmentationClass" / "a.png")[3, 3] == 1  # replaced
    assert report.stale == [out / "JPEGImages" / "old.jpg"]  # notes.txt is not in a dataset folder
    assert "JPEGImages/old.jpg" in report.summary() and "left alone" in report.summary()

    # A photo deleted from the labelled folder: its three outputs of the last export are stale.
    for i in range(6):
        write_labelme(src, f"p{i}", [shape("cat", [[1, 1], [6, 6]], "rectangle")], embed=True)
    export_labelme_folder(src, out, labels_file, overwrite=True, progress=False)
    for i in range(6):
        (src / f"p{i}.json").unlink()
    report = export_labelme_folder(src, out, labels_file, overwrite=True, progress=False)
    assert report.ok and report.exported == ["a"]
    assert len(report.stale) == 1 + 6 * 3
    assert out / "SegmentationClassVisualization" / "p5.jpg" in report.stale
    assert "19 older file(s)" in report.summary() and " ..." in report.summary()  # the first five shown

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        export_labelme_folder(src, tmp_path / "file", labels_file, overwrite=True, progress=False)


def test_output_inside_input_is_fine_but_not_the_other_way(tmp_path: Path, labels_file: Path) -> None:
    write_labelme(tmp_path, "a", [shape("cat", [[1, 1], [6, 6]], "rectangle")])
    out = tmp_path / "voc"
    first = export_labelme_folder(tmp_path, out, labels_file, progress=False)
    (out / "stray.json").write_text("{}")  # subfolders of the input are not searched
    second = export_labelme_folder(tmp_path, out, labels_file, overwrite=True, progress=False)
    assert first.exported == second.exported == ["a"] and second.ok and second.stale == []
    before = tree_digest(tmp_path)
    for target in (tmp_path, tmp_path.parent, tmp_path / "." / ".." / tmp_path.name):
        with pytest.raises(ValueError) as info:
            export_labelme_folder(tmp_path, target, labels_file, overwrite=True, progress=False)
        assert "is (or holds) the input folder" in str(info.value)
        assert str(tmp_path.parent / f"{tmp_path.name}-voc") in str(info.value)  # a folder to use instead
    assert tree_digest(tmp_path) == before


def test_whole_run_problems_raise(tmp_path: Path, labels_file: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden.json").write_text("{}")  # hidden files (e.g. macOS ._ files) are not labelme files
    with pytest.raises(FileNotFoundError, match="no labelme .json files"):
        export_labelme_folder(empty, tmp_path / "voc", labels_file, progress=False)
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        export_labelme_folder(tmp_path / "nope", tmp_path / "voc", labels_file, progress=False)
    write_labelme(empty, "a", [])
    with pytest.raises(FileNotFoundError, match="labels file not found"):
        export_labelme_folder(empty, tmp_path / "voc", tmp_path / "no_labels.txt", progress=False)
    assert not (tmp_path / "voc").exists()


def test_progress_bar_only_for_more_than_a_handful(tmp_path: Path, labels_file: Path, capsys) -> None:
    src = tmp_path / "labelled"
    src.mkdir()
    for i in range(5):
        write_labelme(src, f"p{i}", [shape("cat", [[1, 1], [6, 6]], "rectangle")], embed=True)
    export_labelme_folder(src, tmp_path / "five", labels_file, progress=True)
    assert capsys.readouterr().err == ""
    write_labelme(src, "p5", [shape("cat", [[1, 1], [6, 6]], "rectangle")], embed=True)
    export_labelme_folder(src, tmp_path / "quiet", labels_file, progress=False)
    assert capsys.readouterr().err == ""
    export_labelme_folder(src, tmp_path / "loud", labels_file, progress=True)
    assert "6/6" in capsys.readouterr().err
