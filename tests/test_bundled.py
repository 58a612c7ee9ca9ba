"""The bundled labelme projects export once, the way a learner exports their own photos."""

import pytest

from segkit.data import SegmentationFolder
from segkit.datasets import DATA_DIR, bundled


def test_bundled_exports_once_and_reuses(tmp_path):
    voc = bundled("cats", "test", cache_dir=tmp_path)
    jsons = sorted(p.stem for p in (DATA_DIR / "cats" / "test").glob("*.json"))
    assert sorted(p.stem for p in (voc / "SegmentationClass").glob("*.png")) == jsons
    assert (voc / "class_names.txt").read_text().split() == ["_background_", "cat"]
    stamp = voc / ".segkit-export"
    first = stamp.stat().st_mtime_ns
    assert bundled("cats", "test", cache_dir=tmp_path) == voc
    assert stamp.stat().st_mtime_ns == first  # reused, not exported again
    image, mask = SegmentationFolder(voc, image_size=64)[0]
    assert image.shape == (3, 64, 64) and set(mask.unique().tolist()) <= {0, 1, 255}


def test_a_changed_labelme_file_is_exported_again(tmp_path, monkeypatch):
    project = tmp_path / "data" / "mine"
    project.mkdir(parents=True)
    (project / "labels.txt").write_text((DATA_DIR / "my_cats" / "labels.txt").read_text())
    for labelme in sorted((DATA_DIR / "my_cats").glob("*.json"))[:3]:
        for path in (labelme, labelme.with_suffix(".jpg")):
            (project / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr("segkit.datasets.DATA_DIR", tmp_path / "data")
    voc = bundled("mine", None, cache_dir=tmp_path / "cache")
    before = sorted(p.name for p in (voc / "SegmentationClass").iterdir())
    (project / next(project.glob("*.json")).name).unlink()
    again = bundled("mine", None, cache_dir=tmp_path / "cache")
    assert len(sorted(p.name for p in (again / "SegmentationClass").iterdir())) == len(before) - 1


def test_bundled_names_the_choices_when_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundled"):
        bundled("horses", "train", cache_dir=tmp_path)
