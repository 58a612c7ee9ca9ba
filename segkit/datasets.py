"""The real labelled photos and trained models shipped in the repository's data/ (see data/README.md).

    voc = bundled("cats", "train")              # data/cats/train exported once to the VOC layout
    path = shipped_checkpoint("cats")           # data/checkpoints/cats_unet.pt

bundled() runs the same `export_labelme_folder` a learner runs on their own photos, once: the
result is kept in runs/bundled/<project>/<split> and reused while the labelme files are unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .export import export_labelme_folder

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def bundled(project: str = "cats", split: str | None = "train", cache_dir: str | Path | None = None) -> Path:
    """The VOC folder of a bundled labelme project: data/<project>/<split> (split None: data/<project>).

    project: "cats" (background, cat), "pets" (background, cat, dog) or "my_cats" (8 photos, no split).
    """
    source, labels = DATA_DIR / project / (split or ""), DATA_DIR / project / "labels.txt"
    if not (source.is_dir() and labels.is_file()):
        known = sorted(p.parent.name for p in DATA_DIR.glob("*/labels.txt"))
        raise FileNotFoundError(f"No bundled labelme project at {source}; bundled: {known} (splits train and test, "
                                "none for my_cats). data/README.md says how data/ is made.")
    target = Path(cache_dir or DATA_DIR.parent / "runs" / "bundled") / project / (split or "all")
    digest = hashlib.sha256()  # a fingerprint of the inputs: names, sizes and times of the files
    for path in sorted([*source.iterdir(), labels]):
        digest.update(f"{path.name} {path.stat().st_size} {path.stat().st_mtime_ns}\n".encode())
    stamp = target / ".segkit-export"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return target
    # Export beside the target and swap it in: two notebooks running at once never see half a dataset.
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        report = export_labelme_folder(source, Path(tmp) / "voc", labels, progress=False)
        if not report.ok:
            raise RuntimeError(report.summary())
        (Path(tmp) / "voc" / ".segkit-export").write_text(digest.hexdigest())
        if target.exists():
            os.replace(target, Path(tmp) / "old")
        try:
            os.replace(Path(tmp) / "voc", target)
        except OSError:  # another process swapped in the same export first
            if not (stamp.is_file() and stamp.read_text() == digest.hexdigest()):
                raise
        shutil.rmtree(Path(tmp) / "old", ignore_errors=True)
    return target


def shipped_checkpoint(kind: str = "cats") -> Path:
    """data/checkpoints/<kind>_unet.pt ("cats" or "pets"); <kind>_unet.json beside it says how it was made."""
    path = DATA_DIR / "checkpoints" / f"{kind}_unet.pt"
    if not path.is_file():
        shipped = sorted(p.stem.removesuffix("_unet") for p in (DATA_DIR / "checkpoints").glob("*_unet.pt"))
        raise FileNotFoundError(f"No shipped checkpoint at {path}; shipped: {shipped}. data/README.md says how to make one.")
    return path
