"""tools/fetch_pets.py, the optional downloader of more real photos, on a tiny fake Oxford-IIIT Pet laid
out like the real one and packed into the same archives (offline: the download itself is faked)."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

import sys

from segkit.data import SegmentationFolder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from fetch_pets import main, oxford_pet_cats, trimap_to_mask  # noqa: E402

# stem, class_id (1..37), species (1 cat, 2 dog), breed_id: the columns of annotations/trainval.txt
TRAINVAL = [
    ("Abyssinian_1", 1, 1, 1),
    ("american_bulldog_10", 2, 2, 1),
    ("Bengal_7", 6, 1, 2),
    ("beagle_3", 5, 2, 3),
    ("Sphynx_20", 34, 1, 12),
    ("pug_5", 26, 2, 19),
    ("Siamese_2", 33, 1, 11),
]
TEST = [("Persian_4", 24, 1, 8), ("yorkshire_terrier_9", 37, 2, 25)]


def trimap_for(index: int, size=(24, 18)) -> np.ndarray:
    """1 = pet (a box), 3 = its one-pixel border, 2 = background; a different box per photo."""
    width, height = size
    trimap = np.full((height, width), 2, np.uint8)
    trimap[2 + index % 3: 14, 3: 18 - index % 4] = 3
    trimap[3 + index % 3: 13, 4: 17 - index % 4] = 1
    return trimap


def make_fake_pets(root: Path, mode="L") -> Path:
    base = root / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    for name, rows in (("trainval", TRAINVAL), ("test", TEST)):
        (base / "annotations" / f"{name}.txt").write_text("".join(f"{s} {c} {sp} {b}\n" for s, c, sp, b in rows))
    for index, (stem, _, species, _) in enumerate(TRAINVAL + TEST):
        trimap = trimap_for(index)
        photo = np.zeros(trimap.shape + (3,), np.uint8)
        photo[trimap == 1] = (200, 120, 40) if species == 1 else (40, 40, 200)
        Image.fromarray(photo).save(base / "images" / f"{stem}.jpg", quality=95)
        Image.fromarray(trimap).convert(mode).save(base / "annotations" / "trimaps" / f"{stem}.png")
    return root


def test_trimap_mapping():
    trimap = np.array([[1, 2, 3], [3, 2, 1]], np.uint8)
    np.testing.assert_array_equal(trimap_to_mask(trimap), [[1, 0, 255], [255, 0, 1]])
    with pytest.raises(ValueError, match=r"found \[0\]"):
        trimap_to_mask(np.array([[0, 1]], np.uint8))


def test_writes_cats_only_in_voc_layout(tmp_path):
    root = make_fake_pets(tmp_path / "downloads")
    out = oxford_pet_cats(root, tmp_path / "cats", progress=False)
    assert out == tmp_path / "cats"
    cats = sorted(stem for stem, _, species, _ in TRAINVAL if species == 1)
    assert sorted(p.stem for p in (out / "JPEGImages").glob("*.jpg")) == cats
    assert sorted(p.stem for p in (out / "SegmentationClass").glob("*.png")) == cats
    assert (out / "class_names.txt").read_text().split() == ["_background_", "cat"]
    for stem in cats:
        index = [row[0] for row in TRAINVAL + TEST].index(stem)
        with Image.open(out / "SegmentationClass" / f"{stem}.png") as mask:
            assert mask.mode == "P"
            assert mask.getpalette()[3:6] == [0, 128, 0]  # segkit's palette: class 1 green
            got = np.asarray(mask)
        trimap = trimap_for(index)
        np.testing.assert_array_equal(got == 1, trimap == 1)
        np.testing.assert_array_equal(got == 0, trimap == 2)
        np.testing.assert_array_equal(got == 255, trimap == 3)


def test_output_reads_with_segmentation_folder(tmp_path):
    out = oxford_pet_cats(make_fake_pets(tmp_path / "downloads"), tmp_path / "cats", progress=False)
    ds = SegmentationFolder(out, image_size=16)
    assert len(ds) == 4 and ds.class_names == ["_background_", "cat"]
    image, mask = ds[0]
    assert image.shape == (3, 16, 16) and mask.shape == (16, 16)
    assert set(torch.unique(mask).tolist()) == {0, 1, 255}
    # the photo is orange exactly where the mask says cat (JPEG is close enough away from the edge)
    full = SegmentationFolder(out, image_size=None)
    image, mask = full[full.stems.index("Abyssinian_1")]
    assert image[0][mask == 1].mean() > 0.7 and image[0][mask == 0].mean() < 0.1


def test_test_split_palette_trimaps_and_limit(tmp_path):
    root = make_fake_pets(tmp_path / "downloads", mode="P")
    out = oxford_pet_cats(root, tmp_path / "test-cats", split="test", progress=False)
    assert [p.stem for p in (out / "JPEGImages").iterdir()] == ["Persian_4"]
    limited = oxford_pet_cats(root, tmp_path / "two", limit=2, progress=False)
    stems = sorted(p.stem for p in (limited / "JPEGImages").iterdir())
    assert stems == ["Abyssinian_1", "Sphynx_20"]  # spread over the list, not the first two
    with pytest.raises(ValueError, match="split"):
        oxford_pet_cats(root, tmp_path / "x", split="val")


def test_refuses_non_empty_out_dir_without_overwrite(tmp_path):
    root = make_fake_pets(tmp_path / "downloads")
    out = tmp_path / "cats"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        oxford_pet_cats(root, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    oxford_pet_cats(root, out, progress=False, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert len(list((out / "JPEGImages").iterdir())) == 4


def test_missing_dataset_explains_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        oxford_pet_cats(tmp_path / "empty", tmp_path / "cats", progress=False)
    message = str(info.value)
    assert "download=True" in message and "images.tar.gz" in message and "annotations.tar.gz" in message
    assert str(tmp_path / "empty" / "oxford-iiit-pet") in message
    assert not (tmp_path / "cats").exists()
    # pointing at the oxford-iiit-pet folder itself gets a hint
    root = make_fake_pets(tmp_path / "downloads")
    with pytest.raises(FileNotFoundError, match="CONTAINS oxford-iiit-pet"):
        oxford_pet_cats(root / "oxford-iiit-pet", tmp_path / "cats", progress=False)


def test_download_failure_offline_is_explained(tmp_path, monkeypatch):
    import torchvision.datasets.oxford_iiit_pet as tv_pets

    def no_network(*args, **kwargs):
        raise URLError("no internet")

    monkeypatch.setattr(tv_pets, "download_and_extract_archive", no_network)
    with pytest.raises(RuntimeError, match="no internet") as info:
        oxford_pet_cats(tmp_path / "downloads", tmp_path / "cats", download=True, progress=False)
    assert "put both archives in" in str(info.value)


def test_damaged_photo_is_skipped_with_a_warning(tmp_path):
    root = make_fake_pets(tmp_path / "downloads")
    (root / "oxford-iiit-pet" / "images" / "Bengal_7.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="Bengal_7"):
        out = oxford_pet_cats(root, tmp_path / "cats", progress=False)
    assert sorted(p.stem for p in (out / "JPEGImages").iterdir()) == ["Abyssinian_1", "Siamese_2", "Sphynx_20"]


def test_download_from_archives_and_the_command(tmp_path, monkeypatch):
    """--download unpacks the two archives, as torchvision would after fetching them (faked here)."""
    import tarfile

    import torchvision.datasets.oxford_iiit_pet as tv_pets

    source = make_fake_pets(tmp_path / "source") / "oxford-iiit-pet"
    archives = tmp_path / "archives"
    archives.mkdir()
    for name in ("images", "annotations"):
        with tarfile.open(archives / f"{name}.tar.gz", "w:gz") as tar:
            tar.add(source / name, arcname=name)

    def fake_download(url, download_root, md5=None, **kwargs):
        with tarfile.open(archives / url.rsplit("/", 1)[1]) as tar:
            tar.extractall(download_root)

    monkeypatch.setattr(tv_pets, "download_and_extract_archive", fake_download)
    assert main([str(tmp_path / "downloads"), str(tmp_path / "cats"), "--download"]) == 0
    assert len(list((tmp_path / "cats" / "JPEGImages").iterdir())) == 4
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "more")]) == 2  # no archives, no --download
