"""The synthetic dataset generator (segkit.synth) and the committed data/ it made."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from segkit import synth
from segkit.export import shapes_to_mask

DATA = Path(__file__).resolve().parents[1] / "data"
LABELME_KEYS = ["version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"]
SHAPE_KEYS = ["label", "points", "group_id", "description", "shape_type", "flags", "mask"]


@pytest.fixture(scope="module")
def cats() -> list[synth.Example]:
    return [synth.render_example("cats", "train", i) for i in range(24)]


def polygon_mask(points, size) -> np.ndarray:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in points], fill=1, outline=1)
    return np.asarray(mask, bool)


def decode(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), np.float32)


# --- determinism -------------------------------------------------------------------------


def test_same_seed_same_bytes_and_images_do_not_depend_on_each_other(tmp_path):
    first = synth.make_dataset(tmp_path / "a", n_train=3, n_test=2, progress=False)
    second = synth.make_dataset(tmp_path / "b", n_train=3, n_test=2, progress=False)
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 1 + 2 * 5  # labels.txt + jpg/json pairs
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    # Image train_002 made on its own equals the one made third in a run: one generator per image.
    jpeg, text = synth.render_example("cats", "train", 2).files()
    assert jpeg == (tmp_path / "a" / "train" / "train_002.jpg").read_bytes()
    assert text == (tmp_path / "a" / "train" / "train_002.json").read_bytes()


def test_other_seed_other_images():
    a = synth.render_example("cats", "train", 0, seed=0).files()
    b = synth.render_example("cats", "train", 0, seed=1).files()
    assert a[0] != b[0] and a[1] != b[1]


# --- labelme format ----------------------------------------------------------------------


def test_json_is_a_labelme_file(cats):
    for example in cats:
        jpeg, text = example.files()
        record = json.loads(text)
        assert list(record) == LABELME_KEYS  # labelme's own key order
        assert record["imageData"] is None  # saved as with labelme --nodata
        assert record["imagePath"] == f"{example.stem}.jpg"
        assert record["flags"] == {}
        width, height = Image.open(io.BytesIO(jpeg)).size
        assert (record["imageWidth"], record["imageHeight"]) == (width, height)
        for shape in record["shapes"]:
            assert list(shape) == SHAPE_KEYS
            assert shape["label"] == "cat" and shape["shape_type"] == "polygon"
            assert shape["group_id"] is None and shape["mask"] is None and shape["flags"] == {}
            points = np.array(shape["points"])
            assert points.shape[1] == 2 and 3 <= len(points) <= 64
            assert points.min() >= 0 and (points[:, 0] <= width - 1).all() and (points[:, 1] <= height - 1).all()


def test_labelme_itself_loads_the_files(tmp_path):
    labelme = pytest.importorskip("labelme")
    label_file = getattr(labelme, "LabelFile", None)
    if label_file is None:
        pytest.skip("this labelme version has no public LabelFile")
    synth.make_dataset(tmp_path, kind="pets", n_train=3, n_test=0, progress=False)
    for path in sorted((tmp_path / "train").glob("*.json")):
        loaded = label_file(str(path))  # reads the photo too and checks its size against the JSON
        assert len(loaded.shapes) == len(json.loads(path.read_text())["shapes"])


def test_labels_txt(tmp_path):
    synth.make_dataset(tmp_path / "cats", n_train=1, n_test=0, progress=False)
    synth.make_dataset(tmp_path / "pets", kind="pets", n_train=1, n_test=0, progress=False)
    assert (tmp_path / "cats" / "labels.txt").read_text() == "__ignore__\n_background_\ncat\n"
    assert (tmp_path / "pets" / "labels.txt").read_text() == "__ignore__\n_background_\ncat\ndog\n"


def test_refuses_a_non_empty_folder_without_overwrite(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        synth.make_dataset(tmp_path, n_train=1, n_test=0, progress=False)
    synth.make_dataset(tmp_path, n_train=1, n_test=0, overwrite=True, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "train" / "train_000.json").is_file()


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        synth.render_example("birds", "train", 0)
    with pytest.raises(ValueError, match="split"):
        synth.render_example("cats", "val", 0)


# --- the label is honest -----------------------------------------------------------------


def test_polygons_lie_on_the_edges_of_what_is_painted(cats):
    """The photo changes most sharply exactly along each label polygon, more than along the same
    polygon moved 4 pixels in any diagonal direction: the animal was painted through the polygon
    the JSON stores (blurred first, so fur and background texture do not drown the outline)."""
    ratios = []
    for example in cats:
        image = np.asarray(example.image.filter(ImageFilter.GaussianBlur(1.5)), np.float32)
        gradient = np.zeros(image.shape[:2], np.float32)
        gradient[:, 1:] += np.abs(np.diff(image, axis=1)).sum(-1)
        gradient[1:, :] += np.abs(np.diff(image, axis=0)).sum(-1)

        def outline_strength(points) -> float:
            mask = polygon_mask(points, example.image.size)
            inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
            ring = mask.copy()
            ring[1:-1, 1:-1] &= ~inner
            ring[[0, -1], :] = ring[:, [0, -1]] = False  # where a cat is cut by the border there is no edge
            return float(gradient[ring].mean())

        for shape in example.record["shapes"]:
            points = np.array(shape["points"])
            if polygon_mask(points, example.image.size).sum() < 400:
                continue
            moved = max(outline_strength(points + d) for d in ([4, 4], [-4, 4], [4, -4], [-4, -4]))
            ratios.append(outline_strength(points) / moved)
    assert len(ratios) >= 15
    assert min(ratios) > 1.0 and np.median(ratios) > 1.4, sorted(ratios)


def test_export_rasterises_the_polygon_the_generator_painted(cats):
    """segkit.export turns the JSON into exactly the region the generator used as alpha."""
    for example in cats[:8]:
        width, height = example.image.size
        for shape in example.record["shapes"]:
            expected = synth._polygon_mask(shape["points"], width, height)
            got = shapes_to_mask([shape], (height, width), {"_background_": 0, "cat": 1}) == 1
            assert (got == expected).all()


# --- variety -----------------------------------------------------------------------------


def test_the_data_is_varied(cats):
    sizes = {example.image.size for example in cats}
    assert len(sizes) >= 15
    assert any(w > h for w, h in sizes) and any(h > w for w, h in sizes)
    assert min(min(s) for s in sizes) >= 200 and max(max(s) for s in sizes) <= 480
    counts = [len(example.record["shapes"]) for example in cats]
    assert 0 in counts and 1 in counts and 2 in counts
    vertices = [len(s["points"]) for example in cats for s in example.record["shapes"]]
    assert np.median(vertices) >= 15 and max(vertices) <= 64
    touching = [s for example in cats for s in example.record["shapes"]
                if np.isclose(np.array(s["points"]), 0).any()
                or any(np.isclose(x, example.image.width - 1) or np.isclose(y, example.image.height - 1)
                       for x, y in s["points"])]
    assert touching, "some cats should be cut by the image border"


def test_pets_have_cats_and_dogs():
    labels = [s["label"] for i in range(12) for s in synth.render_example("pets", "train", i).record["shapes"]]
    assert set(labels) == {"cat", "dog"}


# --- the committed data/ is what the code makes -------------------------------------------


@pytest.mark.parametrize("kind, split, index", [
    ("cats", "train", 0), ("cats", "train", 57), ("cats", "test", 3), ("pets", "train", 11), ("pets", "test", 0),
])
def test_committed_data_matches_the_generator(kind, split, index):
    folder = DATA / kind / split
    if not folder.is_dir():
        pytest.skip(f"{folder} is not there (not a source checkout)")
    example = synth.render_example(kind, split, index)
    jpeg, text = example.files()
    committed_json = (folder / f"{example.stem}.json").read_bytes()
    committed_jpeg = (folder / f"{example.stem}.jpg").read_bytes()
    if text == committed_json and jpeg == committed_jpeg:
        return  # byte-identical, as on the machine that made data/
    # Another platform may round a float differently here and there (numpy's SIMD sin/exp):
    # allow that, but nothing like a change of the code (which changes every image completely).
    new, old = json.loads(text), json.loads(committed_json)
    assert [s["label"] for s in new["shapes"]] == [s["label"] for s in old["shapes"]]
    assert (new["imageWidth"], new["imageHeight"]) == (old["imageWidth"], old["imageHeight"])
    size = (new["imageWidth"], new["imageHeight"])
    for a, b in zip(new["shapes"], old["shapes"]):
        ma, mb = polygon_mask(a["points"], size), polygon_mask(b["points"], size)
        assert (ma & mb).sum() / max((ma | mb).sum(), 1) > 0.98
    assert np.abs(decode(jpeg) - decode(committed_jpeg)).mean() < 1.0


def test_committed_data_layout():
    if not (DATA / "cats").is_dir():
        pytest.skip("data/ is not there (not a source checkout)")
    for kind in ("cats", "pets"):
        assert (DATA / kind / "labels.txt").read_text().splitlines() == synth.label_names(kind)
        for split, n in synth.DEFAULT_SIZES[kind].items():
            jsons = sorted((DATA / kind / split).glob("*.json"))
            images = sorted((DATA / kind / split).glob("*.jpg"))
            assert [p.stem for p in jsons] == [p.stem for p in images] == [synth.stem_for(split, i) for i in range(n)]
