"""The bundled labelme projects export once, the way a learner exports their own photos."""

import pytest

from segkit.data import SegmentationFolder
from segkit.datasets import DATA_DIR, bundled

pytestmark = pytest.mark.skipif(not (DATA_DIR / "cats" / "test").is_dir(), reason="needs the repository's data/")


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


def test_bundled_names_the_choices_when_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="Bundled kinds"):
        bundled("horses", "train", cache_dir=tmp_path)
