"""Rebuild the golden files of tests/test_export.py with the installed labelme.

    .venv/bin/python tests/golden/export/make_golden.py

Writes, next to this script:

    labels.txt                          __ignore__, _background_, cat, dog
    input/*.json (+ photos)             small labelme files, one per labelme generation
    expected/SegmentationClass/*.png    the masks labelme's examples/semantic_segmentation/labelme2voc.py
                                        makes from them: labelme.utils.shapes_to_label with
                                        __ignore__ = -1, saved as a palette PNG by
                                        imgviz.io.lblsave after the uint8 cast its older
                                        versions did themselves (-1 -> 255)

The inputs are written by hand below (deterministic); only the expected masks need labelme.
They keep the export tests meaningful after labelme's private API (shapes_to_label, LabelFile,
private since labelme 7.0) is gone. labelme 6's own loader rejects 3.x files (no shape_type),
so the photo and the shapes are read here the way labelme reads them, with labelme's functions,
and compared with labelme's loader wherever that loader accepts the file.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import PIL.Image

HERE = Path(__file__).resolve().parent
INPUT = HERE / "input"
EXPECTED = HERE / "expected" / "SegmentationClass"
LABELS = ["__ignore__", "_background_", "cat", "dog"]


def photo(width: int, height: int, seed: int) -> PIL.Image.Image:
    """A smooth RGB test picture (compresses well) with a distinct top-left corner."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, 40 * seed)], -1)
    rgb[: height // 3, : width // 3] = (255, 255, 255)
    return PIL.Image.fromarray(rgb.astype(np.uint8))


def encode(image: PIL.Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def mask_field(bits: np.ndarray) -> str:
    """labelme 6's "mask" value: base64 PNG of the uint8 0/1 bitmap (app.py _shape_to_dict)."""
    return b64(encode(PIL.Image.fromarray(bits.astype(np.uint8)), "PNG"))


def shape5(label, points, shape_type="polygon", group_id=None, **extra):
    return {"label": label, "points": points, "group_id": group_id, "description": "",
            "shape_type": shape_type, "flags": {}, **extra}


def write_inputs() -> None:
    INPUT.mkdir(parents=True, exist_ok=True)
    (HERE / "labels.txt").write_text("\n".join(LABELS) + "\n")

    # labelme 3.x: no shape_type (polygons), no imageHeight/imageWidth, lineColor/fillColor,
    # the photo embedded as PNG; imagePath names a file that does not exist (imageData wins).
    v3 = {
        "flags": {},
        "shapes": [
            {"label": "cat", "line_color": None, "fill_color": None,
             "points": [[3, 4], [30, 2], [36, 20], [12, 27]]},
            {"label": "dog", "line_color": None, "fill_color": None,
             "points": [[20, 10], [45, 12], [40, 29], [24, 26]]},  # past the right edge (width 40)
            {"label": "_background_", "line_color": None, "fill_color": [0, 0, 0, 128],
             "points": [[10, 8], [16, 8], [13, 14]]},  # a hole cut into the cat
        ],
        "lineColor": [0, 255, 0, 128],
        "fillColor": [255, 0, 0, 128],
        "imagePath": "v3_polygons.jpg",
        "imageData": b64(encode(photo(40, 30, 1), "PNG")),
    }
    (INPUT / "v3_polygons.json").write_text(json.dumps(v3, indent=2))

    # labelme 4.x: shape_type present, imageData null, the photo next to the JSON.
    photo(36, 28, 2).save(INPUT / "v4_image_path.png")
    v4 = {
        "version": "4.5.13",
        "flags": {},
        "shapes": [
            shape5("cat", [[30, 2], [4, 20]], "rectangle"),  # corners given bottom-left first
            shape5("dog", [[18, 14], [26, 19]], "circle"),
            shape5("__ignore__", [[0, 27], [35, 27]], "line"),
        ],
        "imagePath": "v4_image_path.png",
        "imageData": None,
        "imageHeight": 28,
        "imageWidth": 36,
    }
    (INPUT / "v4_image_path.json").write_text(json.dumps(v4, indent=2))

    # A phone photo: stored 32x20 with EXIF orientation 6 (rotate 90 clockwise to view), so
    # labelme shows and records it as 20x32.
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    photo(32, 20, 3).save(INPUT / "v4_exif_rotated.jpg", format="JPEG", quality=90, exif=exif.tobytes())
    v4_exif = {
        "version": "4.6.0",
        "flags": {},
        "shapes": [shape5("cat", [[2, 3], [17, 5], [15, 29], [4, 25]])],
        "imagePath": "v4_exif_rotated.jpg",
        "imageData": None,
        "imageHeight": 32,
        "imageWidth": 20,
    }
    (INPUT / "v4_exif_rotated.json").write_text(json.dumps(v4_exif, indent=2))

    # labelme 5.x: every drawing shape type, float points, points on and past every edge,
    # overlaps (later shapes win), group ids, flags and descriptions, the photo embedded as JPEG.
    v5 = {
        "version": "5.4.1",
        "flags": {"blurry": False},
        "shapes": [
            shape5("cat", [[-5.5, -3.2], [20.7, 1.4], [24.2, 18.9], [2.1, 25.0]], group_id=1),
            shape5("dog", [[15.5, 10.5], [47.9, 14.2], [44.0, 35.8]], description="tail"),
            shape5("cat", [[46.0, 30.0], [38.25, 36.5]], "rectangle"),
            shape5("dog", [[8.4, 30.6], [13.9, 33.1]], "circle"),
            shape5("cat", [[0.0, 40.0], [47.0, 39.0]], "line"),
            shape5("dog", [[30.0, 2.0], [40.0, 8.5], [46.5, 2.0], [52.0, 9.0]], "linestrip"),
            shape5("cat", [[47.0, 20.0]], "point"),
            shape5("__ignore__", [[20.0, 20.0], [26.0, 20.0], [26.0, 26.0], [20.0, 26.0]]),
            shape5("dog", [[-4.0, 43.0]], "point"),
        ],
        "imagePath": "v5_all_shapes.jpg",
        "imageData": b64(encode(photo(48, 42, 4), "JPEG", quality=85)),
        "imageHeight": 42,
        "imageWidth": 48,
    }
    (INPUT / "v5_all_shapes.json").write_text(json.dumps(v5, indent=2))

    # labelme 6.x/7.x: AI "mask" shapes (bitmap of the inclusive box points[0]..points[1]) and
    # oriented rectangles, next to a polygon that the second mask partly covers.
    yy, xx = np.mgrid[0:12, 0:15]
    blob = (xx - 7) ** 2 / 49 + (yy - 5.5) ** 2 / 30 <= 1  # 12 x 15 ellipse
    ring = np.zeros((9, 9), dtype=bool)
    ring[1:8, 1:8] = True
    ring[3:6, 3:6] = False
    v6 = {
        "version": "6.3.1",
        "flags": {},
        "shapes": [
            shape5("dog", [[1, 1], [18, 3], [16, 22], [3, 20]]),
            shape5("cat", [[4, 6], [18, 17]], "mask", mask=mask_field(blob)),
            shape5("dog", [[30, 14], [38, 22]], "mask", mask=mask_field(ring)),
            shape5("cat", [[25.0, 2.0], [39.0, 6.0], [37.5, 11.0], [23.5, 7.0]], "oriented_rectangle"),
        ],
        "imagePath": "v6_mask.png",
        "imageData": b64(encode(photo(40, 26, 5), "PNG")),
        "imageHeight": 26,
        "imageWidth": 40,
    }
    (INPUT / "v6_mask.json").write_text(json.dumps(v6, indent=2))


def labelme_mask(json_path: Path) -> np.ndarray:
    """The mask labelme2voc.py would write for json_path, computed with labelme itself."""
    import imgviz
    import labelme
    import labelme.utils

    record = json.loads(json_path.read_text())
    if record.get("imageData"):
        image_bytes = base64.b64decode(record["imageData"])
    else:  # labelme's own reader: applies the EXIF orientation
        image_bytes = labelme.LabelFile.load_image_file(str(json_path.parent / record["imagePath"]))
    image = labelme.utils.img_data_to_arr(image_bytes)
    shapes = []
    for shape in record["shapes"]:
        shape = dict(shape)
        if shape.get("mask") is not None:  # decoded as labelme's LabelFile decodes it
            shape["mask"] = labelme.utils.img_b64_to_arr(shape["mask"]).astype(bool)
        shapes.append(shape)

    if "shape_type" in record["shapes"][0]:  # a file labelme 6's loader accepts: same input?
        label_file = labelme.LabelFile(filename=str(json_path))
        assert labelme.utils.img_data_to_arr(label_file.image_data).shape == image.shape
        assert [s["points"] for s in label_file.shapes] == [s["points"] for s in shapes]

    class_name_to_id = {name: index - 1 for index, name in enumerate(LABELS)}  # __ignore__ = -1
    cls, _ = labelme.utils.shapes_to_label(img_shape=image.shape, shapes=shapes, label_name_to_value=class_name_to_id)
    out = EXPECTED / f"{json_path.stem}.png"
    # Older imgviz lblsave cast the int32 labels to uint8 itself (-1 -> 255); 2.x wants uint8.
    assert cls.min() >= -1 and cls.max() < 255
    imgviz.io.lblsave(str(out), cls.astype(np.uint8))
    return np.asarray(PIL.Image.open(out))


def main() -> None:
    import labelme

    write_inputs()
    EXPECTED.mkdir(parents=True, exist_ok=True)
    for json_path in sorted(INPUT.glob("*.json")):
        mask = labelme_mask(json_path)
        values = {int(v): int(n) for v, n in zip(*np.unique(mask, return_counts=True))}
        print(f"{json_path.name}: {mask.shape[1]}x{mask.shape[0]}, pixels per value {values}")
    print(f"golden files written with labelme {labelme.__version__} into {HERE}")


if __name__ == "__main__":
    main()
