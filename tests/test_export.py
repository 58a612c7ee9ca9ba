"""Tests for segkit.export: labels.txt, labelme files of every generation, rasterisation, export.

labelme itself is the oracle while it still ships ``labelme.utils.shapes_to_label``; the golden
files in tests/golden/export (made with it by make_golden.py) keep the check alive after that.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from segkit import export
from segkit.export import (
    ExportReport,
    LabelSet,
    export_labelme_folder,
    find_labelme_files,
    label_to_index,
    load_labelme_json,
    read_label_set,
    read_labels,
    save_palette_mask,
    shapes_to_mask,
)
from segkit.palette import default_palette

GOLDEN = Path(__file__).parent / "golden" / "export"
# Pillow's drawing can move the odd boundary pixel between versions; the golden files may
# have been made with another Pillow than the one running the tests.
GOLDEN_PIXEL_TOLERANCE = 6
CAT_LABELS = "__ignore__\n_background_\ncat\n"


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


def mask_b64(bits: np.ndarray) -> str:
    return b64(encode(PIL.Image.fromarray(bits.astype(np.uint8)), "PNG"))


def shape(label: str, points, shape_type: str | None = "polygon", **extra) -> dict:
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


CAT_IDS = {"_background_": 0, "cat": 1, "__ignore__": 255}


def labelme_utils():
    """labelme.utils with shapes_to_label, or a skip when labelme no longer offers it (7.0+)."""
    utils = pytest.importorskip("labelme.utils", reason="labelme is not installed")
    if not hasattr(utils, "shapes_to_label"):
        pytest.skip("labelme.utils.shapes_to_label is gone (private since labelme 7); the golden files still check")
    return utils


# --------------------------------------------------------------------------- labels.txt


def test_read_labels_the_labelme_way(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    # byte-order mark, Windows line ends, spaces and blank lines are all tolerated
    path.write_bytes("\ufeff__ignore__\r\n  _background_ \r\n\r\ncat\r\ndog\r\n\r\n".encode("utf-8"))
    labels = read_label_set(path)
    assert labels == LabelSet(names=("_background_", "cat", "dog"), has_ignore=True)
    assert labels.num_classes == 3
    assert read_labels(path) == ["_background_", "cat", "dog"]
    assert labels.label_to_index() == {"_background_": 0, "cat": 1, "dog": 2, "__ignore__": 255}


def test_read_labels_without_ignore_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("_background_\ncat\n")
    labels = read_label_set(path)
    assert labels.has_ignore is False
    assert labels.label_to_index() == {"_background_": 0, "cat": 1}


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "empty"),
        ("\n  \n\n", "empty"),
        ("__ignore__\ncat\ndog\n", "_background_ is missing"),
        ("__ignore__\ncat\n_background_\n", "must come before every class"),
        ("__ignore__\n_background_\ncat\ncat\n", "listed twice (lines 3 and 4)"),
        ("_background_\n__ignore__\ncat\n", "must be the first line"),
        ("__ignore__\n_background_\n", "no class after _background_"),
        ("__ignore__\n_background_\n_background_\ncat\n", "listed twice"),
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
    assert "__ignore__\n_background_\ncat" in message


def test_missing_labels_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="labels file not found"):
        read_labels(tmp_path / "nope.txt")


def test_label_to_index() -> None:
    assert label_to_index(["_background_", "cat"]) == {"_background_": 0, "cat": 1, "__ignore__": 255}
    assert label_to_index(["_background_", "cat"], has_ignore=False) == {"_background_": 0, "cat": 1}
    with pytest.raises(ValueError, match="unique"):
        label_to_index(["_background_", "cat", "cat"])
    with pytest.raises(ValueError, match="not a class"):
        label_to_index(["_background_", "__ignore__"])


# --------------------------------------------------------------------------- rasterisation by hand


def test_each_shape_type_by_hand() -> None:
    ids = {"_background_": 0, "a": 1, "b": 2}
    h, w = 30, 40
    rect = shapes_to_mask([shape("a", [[12, 9], [3, 2]], "rectangle")], (h, w), ids)  # corners in any order
    expected = np.zeros((h, w), np.uint8)
    expected[2:10, 3:13] = 1  # both corners inclusive
    np.testing.assert_array_equal(rect, expected)

    point = shapes_to_mask([shape("a", [[20, 15]], "point")], (h, w), ids)
    ys, xs = np.nonzero(point)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (15, 25, 10, 20)  # radius 5 disc

    line = shapes_to_mask([shape("a", [[0, 15], [39, 15]], "line")], (h, w), ids)
    assert line[:, 20].sum() in (10, 11)  # 10 px wide

    circle = shapes_to_mask([shape("a", [[20, 15], [26, 15]], "circle")], (h, w), ids)
    ys, xs = np.nonzero(circle)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (14, 26, 9, 21)  # radius 6

    bits = np.zeros((4, 5), bool)
    bits[1:3, 1:4] = True
    pasted = shapes_to_mask([shape("b", [[10, 20], [14, 23]], "mask", mask=mask_b64(bits))], (h, w), ids)
    expected = np.zeros((h, w), np.uint8)
    expected[20:24, 10:15][bits] = 2
    np.testing.assert_array_equal(pasted, expected)


def test_later_shapes_paint_over_earlier_ones_and_edges_clip() -> None:
    ids = {"_background_": 0, "a": 1, "b": 2, "__ignore__": 255}
    shapes = [
        shape("a", [[-50, -50], [100, -50], [100, 100], [-50, 100]]),  # far past every edge
        shape("b", [[5, 5], [9, 9]], "rectangle"),
        shape("__ignore__", [[7, 7], [12, 12]], "rectangle"),
        shape("_background_", [[0, 0], [2, 2]], "rectangle"),
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
        ("polygon", [], "at least 3"),
    ],
)
def test_too_few_points_names_the_shape(shape_type, points, needed) -> None:
    shapes = [shape("cat", [[0, 0], [4, 0], [4, 4]]), shape("cat", points, shape_type)]
    with pytest.raises(ValueError) as info:
        shapes_to_mask(shapes, (10, 10), CAT_IDS)
    message = str(info.value)
    assert "shape 1" in message and "'cat'" in message and needed in message and "labelme" in message


def test_unknown_label_lists_allowed_labels() -> None:
    shapes = [shape("cat", [[0, 0], [4, 0], [4, 4]]), shape("cta", [[0, 0], [4, 0], [4, 4]])]
    with pytest.raises(ValueError) as info:
        shapes_to_mask(shapes, (10, 10), CAT_IDS)
    message = str(info.value)
    assert "'cta' (shape 1)" in message
    assert "did you mean 'cat'" in message
    assert "'_background_', 'cat', '__ignore__'" in message
    assert "labels.txt" in message


def test_bad_points_and_unknown_shape_type() -> None:
    with pytest.raises(ValueError, match="not \\[x, y\\]"):
        shapes_to_mask([shape("cat", [[0, 0], [4, "x"], [4, 4]])], (10, 10), CAT_IDS)
    with pytest.raises(ValueError, match="shape_type 'cubic'"):
        shapes_to_mask([shape("cat", [[0, 0], [4, 0], [4, 4]], "cubic")], (10, 10), CAT_IDS)


# --------------------------------------------------------------------------- labelme as the oracle


def random_shape(rng: random.Random, height: int, width: int) -> dict:
    def xy():
        x, y = rng.uniform(-8, width + 8), rng.uniform(-8, height + 8)
        # labelme 3/4 saved integers, later versions floats (often whole numbers)
        return [round(x), round(y)] if rng.random() < 0.3 else [round(x, rng.choice([1, 2, 6])), round(y, 2)]

    label = rng.choice(["_background_", "cat", "dog", "__ignore__"])
    kind = rng.choice(["polygon", None, "rectangle", "circle", "line", "linestrip", "point", "oriented_rectangle", "mask"])
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


def labelme_shapes_to_mask(utils, shapes: list[dict], size: tuple[int, int]) -> np.ndarray:
    """What labelme2voc.py writes: shapes_to_label with __ignore__ = -1, cast to uint8 (-1 -> 255)."""
    decoded = []
    for s in shapes:
        s = dict(s)
        if s.get("mask") is not None:  # as labelme's LabelFile decodes it
            s["mask"] = utils.img_b64_to_arr(s["mask"]).astype(bool)
        decoded.append(s)
    ids = {"__ignore__": -1, "_background_": 0, "cat": 1, "dog": 2}
    cls, _ = utils.shapes_to_label(img_shape=size, shapes=decoded, label_name_to_value=ids)
    return cls.astype(np.uint8)


def test_random_shapes_match_labelme_shapes_to_label() -> None:
    utils = labelme_utils()
    rng = random.Random(20240601)
    ids = {"_background_": 0, "cat": 1, "dog": 2, "__ignore__": 255}
    for case in range(300):
        height, width = rng.randint(4, 48), rng.randint(4, 48)
        shapes = [random_shape(rng, height, width) for _ in range(rng.randint(1, 5))]
        ours = shapes_to_mask(shapes, (height, width), ids)
        theirs = labelme_shapes_to_mask(utils, shapes, (height, width))
        # Same Pillow in the same process, so no boundary pixel may differ.
        assert np.array_equal(ours, theirs), f"case {case}: {shapes}"


def test_exif_orientations_match_labelme(tmp_path: Path) -> None:
    utils = pytest.importorskip("labelme.utils", reason="labelme is not installed")
    if not hasattr(utils, "apply_exif_orientation"):
        pytest.skip("labelme.utils.apply_exif_orientation is gone")
    stored = PIL.Image.fromarray(np.arange(5 * 3 * 3, dtype=np.uint8).reshape(3, 5, 3) * 5)  # 5x3, all distinct
    for orientation in range(1, 9):
        exif = PIL.Image.Exif()
        exif[0x0112] = orientation
        name = f"o{orientation}.png"  # PNG: lossless, so the comparison is exact
        stored.save(tmp_path / name, exif=exif.tobytes())
        record = {"shapes": [], "imagePath": name, "imageData": None}
        (tmp_path / f"o{orientation}.json").write_text(json.dumps(record))
        ours, _ = load_labelme_json(tmp_path / f"o{orientation}.json")
        with PIL.Image.open(tmp_path / name) as opened:
            theirs = utils.apply_exif_orientation(opened).convert("RGB")
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=f"orientation {orientation}")


# --------------------------------------------------------------------------- golden files


def golden_cases() -> list[Path]:
    return sorted((GOLDEN / "input").glob("*.json"))


def test_golden_files_exist() -> None:
    stems = {p.stem for p in golden_cases()}
    assert {"v3_polygons", "v4_image_path", "v4_exif_rotated", "v5_all_shapes", "v6_mask"} <= stems
    for stem in stems:
        assert (GOLDEN / "expected" / "SegmentationClass" / f"{stem}.png").is_file()


@pytest.mark.parametrize("json_path", golden_cases(), ids=lambda p: p.stem)
def test_golden_masks(json_path: Path) -> None:
    expected = read_png(GOLDEN / "expected" / "SegmentationClass" / f"{json_path.stem}.png")
    image, record = load_labelme_json(json_path)
    mask = shapes_to_mask(record["shapes"], (image.height, image.width), read_label_set(GOLDEN / "labels.txt").label_to_index())
    assert mask.shape == expected.shape
    assert np.count_nonzero(mask != expected) <= GOLDEN_PIXEL_TOLERANCE
    assert len(np.unique(expected)) >= 2  # the golden file holds something to compare


def test_golden_folder_export(tmp_path: Path) -> None:
    before = tree_digest(GOLDEN)
    out = tmp_path / "voc"
    report = export_labelme_folder(GOLDEN / "input", out, GOLDEN / "labels.txt", progress=False)
    assert report.ok and sorted(report.exported) == [p.stem for p in golden_cases()]
    for json_path in golden_cases():
        written = out / "SegmentationClass" / f"{json_path.stem}.png"
        expected = read_png(GOLDEN / "expected" / "SegmentationClass" / written.name)
        with PIL.Image.open(written) as png:
            assert png.mode == "P"
            mask = np.asarray(png)
        assert np.count_nonzero(mask != expected) <= GOLDEN_PIXEL_TOLERANCE
        with PIL.Image.open(out / "JPEGImages" / f"{json_path.stem}.jpg") as jpeg:
            assert jpeg.format == "JPEG" and jpeg.mode == "RGB" and jpeg.size == mask.shape[::-1]
        with PIL.Image.open(out / "SegmentationClassVisualization" / f"{json_path.stem}.jpg") as viz:
            assert viz.size == mask.shape[::-1]
    assert (out / "class_names.txt").read_text() == "_background_\ncat\ndog"
    assert tree_digest(GOLDEN) == before


# --------------------------------------------------------------------------- every labelme generation


def test_labelme_3_file_loads(tmp_path: Path) -> None:
    image = gradient(20, 14)
    record = {  # labelme 3.x: no shape_type, no imageHeight/imageWidth, colours, embedded PNG
        "flags": {},
        "shapes": [{"label": "cat", "line_color": None, "fill_color": None, "points": [[2, 2], [10, 2], [10, 9], [2, 9]]}],
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


def test_labelme_4_file_reads_photo_from_image_path(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    image = gradient(18, 12)
    image.save(tmp_path / "photos" / "p.png")
    record = {"version": "4.5.6", "flags": {}, "imageData": None, "imageHeight": 12, "imageWidth": 18,
              "imagePath": "photos\\p.png",  # written by labelme on Windows
              "shapes": [shape("cat", [[1, 1], [5, 5]], "rectangle")]}
    (tmp_path / "p.json").write_text(json.dumps(record))
    loaded, _ = load_labelme_json(tmp_path / "p.json")
    np.testing.assert_array_equal(np.asarray(loaded), np.asarray(image))


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
    deep = PIL.Image.fromarray((np.arange(12 * 8, dtype=np.uint16).reshape(8, 12) * 600))
    for name, photo in {"grey.png": gradient(12, 8).convert("L"), "rgba.png": gradient(12, 8).convert("RGBA"),
                        "deep.png": deep}.items():
        photo.save(tmp_path / name)
        (tmp_path / "a.json").write_text(json.dumps({"shapes": [], "imagePath": name, "imageData": None}))
        loaded, _ = load_labelme_json(tmp_path / "a.json")
        assert loaded.mode == "RGB" and loaded.size == (12, 8), name
    assert np.asarray(loaded)[..., 0].min() == 0 and np.asarray(loaded)[..., 0].max() == 255  # 16 bit stretched


# --------------------------------------------------------------------------- EXIF orientation


def test_exif_orientation_turns_photo_upright_as_labelme(tmp_path: Path, labels_file: Path) -> None:
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # a phone held upright: stored landscape, shown rotated 90 degrees clockwise
    quadrants(40, 24).save(tmp_path / "phone.jpg", quality=95, exif=exif.tobytes())
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
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    data = encode(quadrants(40, 24), "JPEG", quality=95, exif=exif.tobytes())
    record = {"shapes": [], "imagePath": "x.jpg", "imageData": b64(data), "imageHeight": 24, "imageWidth": 40}
    (tmp_path / "x.json").write_text(json.dumps(record))
    image, _ = load_labelme_json(tmp_path / "x.json")
    assert image.size == (40, 24)


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
    out = tmp_path / "new" / "voc"  # parents are created

    report = export_labelme_folder(src, out, labels_file, progress=False)

    assert isinstance(report, ExportReport) and report.ok
    assert report.exported == ["a", "b"] and report.failures == [] and report.stale == []
    assert (out / "class_names.txt").read_text() == "_background_\ncat"
    assert (out / "JPEGImages" / "a.jpg").read_bytes() == plain_jpeg  # a plain JPEG is copied as is
    with PIL.Image.open(out / "JPEGImages" / "b.jpg") as jpeg:
        assert jpeg.format == "JPEG" and jpeg.mode == "RGB"
    with PIL.Image.open(out / "SegmentationClass" / "b.png") as png:
        assert png.mode == "P"
        assert png.getpalette()[:6] == [0, 0, 0, *default_palette()[1]]
        expected = np.zeros((16, 24), np.uint8)
        expected[1:7, 1:7] = 1
        np.testing.assert_array_equal(np.asarray(png), expected)
    assert sorted(p.name for p in out.rglob("*")) == sorted(
        ["JPEGImages", "SegmentationClass", "SegmentationClassVisualization", "class_names.txt",
         "a.jpg", "b.jpg", "a.png", "b.png", "a.jpg", "b.jpg"]
    )  # nothing else, no temporary files
    assert "Exported 2 of 2" in report.summary()


def test_bad_inputs_are_reported_and_the_rest_exported(tmp_path: Path, labels_file: Path) -> None:
    src = tmp_path / "labelled"
    src.mkdir()
    write_labelme(src, "good", [shape("cat", [[1, 1], [9, 1], [5, 8]])])
    (src / "broken.json").write_text('{"shapes": [{"label": "cat", "points": [[1, 2], [3')
    write_labelme(src, "unknown_label", [shape("cta", [[1, 1], [9, 1], [5, 8]])])
    missing = write_labelme(src, "missing_photo", [], image_name="missing_photo.png")
    (src / "missing_photo.png").unlink()
    write_labelme(src, "unreadable_photo", [], image_name="unreadable_photo.jpg")
    (src / "unreadable_photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no JPEG")
    write_labelme(src, "wrong_size", [], size=(10, 12))
    write_labelme(src, "few_points", [shape("cat", [[1, 1], [9, 1]])])
    (src / "notes.txt").write_text("not a labelme file")
    before = tree_digest(src)

    report = export_labelme_folder(src, tmp_path / "voc", labels_file, progress=False)

    assert report.exported == ["good"] and not report.ok
    messages = {failure.path.stem: failure.message for failure in report.failures}
    assert set(messages) == {"broken", "unknown_label", "missing_photo", "unreadable_photo", "wrong_size", "few_points"}
    for stem, message in messages.items():
        assert str(src / f"{stem}.json") in message, message
    assert "not valid JSON" in messages["broken"] and "label the photo again" in messages["broken"]
    assert "'cta'" in messages["unknown_label"] and "Allowed labels: '_background_', 'cat'" in messages["unknown_label"]
    assert "labels.txt" in messages["unknown_label"]
    assert "was not found" in messages["missing_photo"] and "imagePath" in messages["missing_photo"]
    assert "cannot be read as an image" in messages["unreadable_photo"] and "Replace it" in messages["unreadable_photo"]
    assert "24x16" in messages["wrong_size"] and "imageWidth=12, imageHeight=10" in messages["wrong_size"]
    assert "Put back the photo" in messages["wrong_size"]
    assert "shape 0" in messages["few_points"] and "needs at least 3" in messages["few_points"]
    assert "redraw" in messages["few_points"]

    summary = report.summary()
    assert "Exported 1 of 7" in summary and "6 files failed" in summary
    assert all(failure.message in summary for failure in report.failures)
    assert sorted(p.name for p in (tmp_path / "voc" / "SegmentationClass").iterdir()) == ["good.png"]
    assert tree_digest(src) == before  # the input folder is only read
    assert missing.exists()


def test_missing_photo_hint_names_a_photo_next_to_the_json(tmp_path: Path) -> None:
    path = write_labelme(tmp_path, "cat1", [], image_name="IMG_0001.jpg")
    (tmp_path / "IMG_0001.jpg").rename(tmp_path / "cat1.jpg")
    with pytest.raises(FileNotFoundError) as info:
        load_labelme_json(path)
    assert str(path) in str(info.value) and '"imagePath": "cat1.jpg"' in str(info.value)


def test_non_empty_output_refused_unless_overwrite(tmp_path: Path, labels_file: Path) -> None:
    src = tmp_path / "labelled"
    src.mkdir()
    write_labelme(src, "a", [shape("cat", [[1, 1], [6, 6]], "rectangle")])
    out = tmp_path / "voc"
    (out / "JPEGImages").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "JPEGImages" / "old.jpg").write_bytes(b"an earlier export")
    (out / "SegmentationClass").mkdir()
    (out / "SegmentationClass" / "a.png").write_bytes(b"stale mask")

    with pytest.raises(FileExistsError) as info:
        export_labelme_folder(src, out, labels_file, progress=False)
    assert str(out) in str(info.value) and "overwrite" in str(info.value)
    assert (out / "SegmentationClass" / "a.png").read_bytes() == b"stale mask"

    report = export_labelme_folder(src, out, labels_file, overwrite=True, progress=False)
    assert report.exported == ["a"]
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "JPEGImages" / "old.jpg").read_bytes() == b"an earlier export"
    assert read_png(out / "SegmentationClass" / "a.png")[3, 3] == 1  # replaced
    assert report.stale == [out / "JPEGImages" / "old.jpg"]
    assert "JPEGImages/old.jpg" in report.summary() and "left alone" in report.summary()


def test_output_inside_input(tmp_path: Path, labels_file: Path) -> None:
    write_labelme(tmp_path, "a", [shape("cat", [[1, 1], [6, 6]], "rectangle")])
    out = tmp_path / "voc"
    first = export_labelme_folder(tmp_path, out, labels_file, progress=False)
    second = export_labelme_folder(tmp_path, out, labels_file, overwrite=True, progress=False)
    assert first.exported == second.exported == ["a"] and second.ok and second.stale == []
    assert find_labelme_files(tmp_path) == [tmp_path / "a.json"]
    with pytest.raises(ValueError, match="is \\(or contains\\) the input folder"):
        export_labelme_folder(tmp_path, tmp_path, labels_file, overwrite=True, progress=False)
    with pytest.raises(ValueError, match="is \\(or contains\\) the input folder"):
        export_labelme_folder(tmp_path, tmp_path.parent, labels_file, overwrite=True, progress=False)


def test_whole_run_problems_raise(tmp_path: Path, labels_file: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden.json").write_text("{}")  # hidden files (e.g. macOS ._ files) are not labelme files
    with pytest.raises(FileNotFoundError, match="no labelme .json files"):
        export_labelme_folder(empty, tmp_path / "voc", labels_file, progress=False)
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        export_labelme_folder(tmp_path / "nope", tmp_path / "voc", labels_file, progress=False)
    assert not (tmp_path / "voc").exists()


def test_progress_bar_only_for_more_than_a_handful(tmp_path: Path, labels_file: Path, capsys) -> None:
    src = tmp_path / "labelled"
    src.mkdir()
    for i in range(6):
        write_labelme(src, f"p{i}", [shape("cat", [[1, 1], [6, 6]], "rectangle")], embed=True)
    export_labelme_folder(src, tmp_path / "quiet", labels_file, progress=False)
    assert capsys.readouterr().err == ""
    export_labelme_folder(src, tmp_path / "loud", labels_file, progress=True)
    assert "6/6" in capsys.readouterr().err


def test_save_palette_mask_and_atomic_write(tmp_path: Path, monkeypatch) -> None:
    mask = np.array([[0, 1, 2], [255, 1, 0]], dtype=np.uint8)
    path = tmp_path / "m.png"
    save_palette_mask(mask, path)
    with PIL.Image.open(path) as png:
        assert png.mode == "P"
        np.testing.assert_array_equal(np.asarray(png), mask)
        assert png.getpalette()[255 * 3 : 256 * 3] == list(default_palette()[255])
    with pytest.raises(ValueError, match="0..255"):
        save_palette_mask(np.array([[0, 300]]), tmp_path / "bad.png")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_palette_mask(np.zeros((2, 3), np.uint8), path)
    np.testing.assert_array_equal(read_png(path), mask)  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"]  # and no temporary file is left
