"""tools/make_data.py on two small fake snapshots made in the test: the same layout as the real
source repositories, a few photos each, as git repositories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import make_data  # noqa: E402

from segkit.data import read_mask  # noqa: E402
from segkit.export import export_labelme_folder  # noqa: E402

FERAL = make_data.FERAL_ROOT


def git_commit(repo: Path) -> str:
    run = lambda *args: subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True)
    run("init", "-q")
    run("add", "-A")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "snapshot")
    return run("rev-parse", "HEAD").stdout.strip()


def photo_with_cats(seed: int, boxes: list[tuple[float, float, float, float]], noise: float = 0.0) -> Image.Image:
    """A 64x64 textured photo with bright squares (the "cats"); salt-and-pepper noise on a share of pixels."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(Image.fromarray(rng.integers(60, 120, (8, 8, 3), dtype=np.uint8)).resize((64, 64)))
    pixels = pixels.copy()
    for x0, y0, x1, y1 in boxes:
        pixels[int(y0 * 64):int(y1 * 64), int(x0 * 64):int(x1 * 64)] = (230, 170, 90)
    salt = rng.random((64, 64)) < noise
    pixels[salt] = rng.choice([0, 255], size=(int(salt.sum()), 1))
    return Image.fromarray(pixels)


def yolo_line(box: tuple[float, float, float, float]) -> str:
    x0, y0, x1, y1 = box
    return "0 " + " ".join(f"{v:.4f}" for v in (x0, y0, x1, y0, x1, y1, x0, y1))


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("snapshots")
    feral = base / "feral"
    for split, sources in (("train", ["group0001", "group0002", "group0003", "group0126"]),
                           ("valid", ["group0101", "group0102", "group0103"])):
        for index, source in enumerate(sources):
            boxes = [(0.1, 0.1, 0.4, 0.5)] + ([(0.6, 0.6, 0.8, 0.9)] if index % 2 else [])
            # train/ holds three versions of each source photo, two of them with salt-and-pepper noise
            versions = [0.05, 0.0, 0.05] if split == "train" else [0.0]
            for version, noise in enumerate(versions):
                name = f"{source}_jpeg.rf.{version:032d}"
                folder = "images_1st_500" if split == "train" else "images"
                (feral / FERAL / split / folder).mkdir(parents=True, exist_ok=True)
                (feral / FERAL / split / folder.replace("images", "labels")).mkdir(parents=True, exist_ok=True)
                photo_with_cats(index * 10 + version + (100 if split == "valid" else 0), boxes, noise).save(
                    feral / FERAL / split / folder / f"{name}.jpg", quality=95)
                (feral / FERAL / split / folder.replace("images", "labels") / f"{name}.txt").write_text(
                    "\n".join(yolo_line(b) for b in boxes) + "\n")
    (feral / FERAL / "test" / "images").mkdir(parents=True)
    (feral / FERAL / "test" / "images" / "group0999_jpeg.rf.x.jpg").write_bytes(b"not read by make_data")
    pets = base / "pets"
    (pets / "images").mkdir(parents=True)
    (pets / "annotations" / "trimaps").mkdir(parents=True)
    stems = [f"Abyssinian_{i}" for i in range(1, 7)] + [f"Bengal_{i}" for i in (2, 3)] + \
            [f"american_bulldog_{i}" for i in range(1, 5)]
    for index, stem in enumerate(stems):
        trimap = np.full((48, 72), 2, np.uint8)
        trimap[10:38, 20 + index:52 + index] = 3   # the border band
        trimap[13:35, 23 + index:49 + index] = 1   # the animal
        trimap[20:25, 30 + index:34 + index] = 2   # a hole in it (background between the legs)
        texture = np.asarray(photo_with_cats(1000 + index, []).resize((72, 48)))  # each photo its own background
        colour = np.where(trimap[..., None] == 1, np.array([200, 120, 60]), texture)
        Image.fromarray(colour.astype(np.uint8)).save(pets / "images" / f"{stem}.jpg", quality=95)
        Image.fromarray(trimap).save(pets / "annotations" / "trimaps" / f"{stem}.png")
    return {"feral": feral, "feral_commit": git_commit(feral), "pets": pets, "pets_commit": git_commit(pets)}


@pytest.fixture()
def small(monkeypatch):
    """Split sizes for the fake snapshots (the real ones need hundreds of photos)."""
    monkeypatch.setattr(make_data, "COUNTS", {("cats", "train"): {"feral": 2, "oxford_cat": 1},
                                              ("cats", "test"): {"feral": 2, "oxford_cat": 1},
                                              ("pets", "train"): {"oxford_cat": 1, "oxford_dog": 1},
                                              ("pets", "test"): {"oxford_cat": 1, "oxford_dog": 1}})
    monkeypatch.setattr(make_data, "MY_CATS", 1)
    monkeypatch.setattr(make_data, "WATERMARKED", {"Bengal_3"})
    monkeypatch.setattr(make_data, "UNLABELLED", [])
    monkeypatch.setitem(make_data.SOURCES["feral"], "commit", "c" * 40)  # not the fake's: a warning, not an error


def build(snapshots: dict, out: Path, *extra: str) -> int:
    return make_data.main(["--feral", str(snapshots["feral"]), "--pets", str(snapshots["pets"]),
                           "--out", str(out), *extra])


def test_builds_labelme_projects_and_records_the_sources(snapshots, small, tmp_path, capsys):
    assert build(snapshots, tmp_path / "data", "--pool", str(tmp_path / "pool")) == 0
    assert "is at commit" in capsys.readouterr().err  # the fake feral repo is not at the expected commit
    data = tmp_path / "data"
    record = json.loads((data / "sources.json").read_text())
    assert record["sources"]["feral"]["commit"] == snapshots["feral_commit"]
    assert record["sources"]["oxford"]["commit"] == snapshots["pets_commit"]
    assert (data / "cats" / "labels.txt").read_text().split() == ["__ignore__", "_background_", "cat"]
    assert (data / "pets" / "labels.txt").read_text().split() == ["__ignore__", "_background_", "cat", "dog"]
    stems = {split: sorted(p.stem for p in (data / split).glob("*.jpg"))
             for split in ("cats/train", "cats/test", "pets/train", "pets/test", "my_cats")}
    assert [len(stems[s]) for s in stems] == [3, 3, 2, 2, 1]
    held_out = set(stems["cats/test"]) | set(stems["pets/test"]) | set(stems["my_cats"])
    assert not held_out & (set(stems["cats/train"]) | set(stems["pets/train"]))  # disjoint by source photo
    pool = {p.stem for p in (tmp_path / "pool").rglob("*.jpg")}
    assert pool and not pool & held_out
    # left out: the feral photo that repeats a test photo, the watermarked Oxford photo
    everything = {p.stem for p in data.rglob("*.jpg")} | pool
    assert "feral_group0126" not in everything and "oxford_Bengal_3" not in everything
    for json_path in data.rglob("*.json"):
        if json_path.name == "sources.json":
            continue
        labelme = json.loads(json_path.read_text())
        assert labelme["imageData"] is None and labelme["imagePath"] == json_path.with_suffix(".jpg").name
        with Image.open(json_path.with_suffix(".jpg")) as photo:
            assert photo.size == (labelme["imageWidth"], labelme["imageHeight"])


def test_feral_keeps_the_least_noisy_version_with_a_polygon_per_cat(snapshots, small, tmp_path):
    assert build(snapshots, tmp_path / "data", "--pool", str(tmp_path / "pool")) == 0
    versions = json.loads((tmp_path / "data" / "sources.json").read_text())["feral_versions"]
    assert versions["feral_group0001"]["kept"].endswith(f"{1:032d}.jpg")  # version 1 is the clean one
    assert versions["feral_group0001"]["impulse_noise"] < make_data.NOISY
    record = json.loads(next((tmp_path / "pool").rglob("feral_group0002.json")).read_text())
    assert [s["group_id"] for s in record["shapes"]] == [1, 2] and {s["label"] for s in record["shapes"]} == {"cat"}
    assert record["imageWidth"] == 64  # small photos are not enlarged


def test_oxford_trimaps_export_back_to_0_1_255(snapshots, small, tmp_path):
    assert build(snapshots, tmp_path / "data", "--pool", str(tmp_path / "pool")) == 0
    pool = tmp_path / "pool" / "pets"
    report = export_labelme_folder(pool / "train", tmp_path / "voc", pool / "labels.txt", progress=False)
    assert report.ok and report.exported
    for stem in report.exported:
        mask = read_mask(tmp_path / "voc" / "SegmentationClass" / f"{stem}.png")
        animal = 2 if "bulldog" in stem else 1
        trimap = np.asarray(Image.open(snapshots["pets"] / "annotations" / "trimaps" / f"{stem.removeprefix('oxford_')}.png"))
        truth = np.select([trimap == 1, trimap == 3], [animal, 255], 0)
        assert set(np.unique(mask).tolist()) == {0, animal, 255}
        assert (mask == truth).mean() > 0.9  # the polygons' outlines differ by about a pixel
        assert (mask[truth == 0] == 0).mean() > 0.9  # the hole between the "legs" is background again


def test_same_snapshots_give_the_same_bytes(snapshots, small, tmp_path):
    assert build(snapshots, tmp_path / "a") == 0
    assert build(snapshots, tmp_path / "b") == 0
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and files_a
    for relative in files_a:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative


def test_never_overwrites_without_the_flag(snapshots, small, tmp_path, capsys):
    data = tmp_path / "data"
    assert build(snapshots, data) == 0
    keep = data / "cats" / "train" / "mine.txt"
    keep.write_text("a learner's file")
    (data / "README.md").write_text("not make_data's file")
    assert build(snapshots, data) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert keep.read_text() == "a learner's file"
    assert build(snapshots, data, "--overwrite") == 0
    assert (data / "README.md").read_text() == "not make_data's file"  # only its own products are replaced


def test_refuses_a_snapshot_without_the_expected_folders(snapshots, small, tmp_path):
    empty = tmp_path / "empty"
    (empty / "somewhere").mkdir(parents=True)
    (empty / "somewhere" / "file.txt").write_text("x")
    git_commit(empty)
    with pytest.raises(SystemExit) as error:
        make_data.main(["--feral", str(empty), "--pets", str(snapshots["pets"]), "--out", str(tmp_path / "d")])
    message = str(error.value)
    assert str(empty) in message and "lacks" in message and make_data.SOURCES["feral"]["commit"] in message
    with pytest.raises(SystemExit, match="not a git repository"):
        make_data.main(["--feral", str(tmp_path / "nothing"), "--pets", str(snapshots["pets"]),
                        "--out", str(tmp_path / "d")])


def test_near_duplicates_are_grouped():
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    photos = [make_data.Photo("a", "feral", base, [], np.zeros((32, 32), np.uint8)),
              make_data.Photo("b", "feral", base.copy(), [], np.zeros((32, 32), np.uint8)),
              make_data.Photo("c", "feral", base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), [],
                              np.zeros((32, 32), np.uint8))]
    assert make_data.near_duplicates(photos) == [["a", "b"]]


def test_trace_reproduces_nested_regions():
    labels = np.zeros((40, 40), np.uint8)
    labels[5:35, 5:35] = 255
    labels[8:32, 8:32] = 1
    labels[15:25, 15:25] = 0      # a hole in the cat
    labels[18:22, 18:22] = 1      # an island in the hole
    shapes = make_data.trace(labels, np.ones_like(labels, bool), 0, 1.0,
                             {0: "_background_", 1: "cat", 255: "__ignore__"}, min_pixels=4)
    from segkit.export import shapes_to_mask

    mask = shapes_to_mask(shapes, labels.shape, {"_background_": 0, "cat": 1, "__ignore__": 255})
    assert (mask == labels).mean() > 0.9  # the outlines differ by about a pixel
    assert mask[20, 20] == 1 and mask[16, 16] == 0 and mask[10, 10] == 1 and mask[6, 6] == 255
