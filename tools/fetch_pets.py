"""More real photos: the cats of the full Oxford-IIIT Pet dataset, downloaded and written in the VOC layout.

    python tools/fetch_pets.py downloads runs/pet-cats --download          # about 800 MB, needs internet once
    python tools/fetch_pets.py downloads runs/pet-cats --split test --limit 200

The course ships a subset of this dataset (data/, two cat breeds); the full one has 37 breeds, 12
of them cats, about 2,400 cat photos. Each photo's trimap (1 = pet, 2 = background, 3 = the
uncertain border) becomes a mask of 1 = cat, 0 = background, 255 = ignore, so neither loss nor
metrics count the border. The output trains with `segkit train runs/pet-cats --out RUN`.
Dataset: Parkhi et al., 2012, https://www.robots.ox.ac.uk/~vgg/data/pets/, CC BY-SA 4.0.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from torchvision.datasets import OxfordIIITPet  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from segkit.data import IGNORE_INDEX, read_mask  # noqa: E402
from segkit.draw import colorize  # noqa: E402
from segkit.files import refuse_non_empty  # noqa: E402

CLASS_NAMES = ("_background_", "cat")
TRIMAP_TO_CLASS = {1: 1, 2: 0, 3: IGNORE_INDEX}  # pet -> cat, background -> 0, border -> ignore
URLS = ("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
        "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz")


def how_to_get(root: Path, missing: list[str]) -> str:
    base = root / "oxford-iiit-pet"
    hint = (f"\nNote: root is the folder that CONTAINS oxford-iiit-pet/; try {root.parent}."
            if root.name == "oxford-iiit-pet" else "")
    return (f"Oxford-IIIT Pet not found under {base}/ (missing: {', '.join(missing)}).\nGet it in one of two ways:\n"
            f"  1. --download (download=True): needs internet, about 800 MB, saved under {base}/.\n"
            f"  2. Download {URLS[0]}\n     and {URLS[1]} yourself, put both archives in {base}/\n"
            "     and use --download: torchvision checks them and extracts them without downloading." + hint)


def missing_files(root: Path, split: str) -> list[str]:
    base = root / "oxford-iiit-pet"
    needed = [base / "images", base / "annotations" / "trimaps", base / "annotations" / f"{split}.txt"]
    return [str(path.relative_to(root)) for path in needed if not path.exists()]


def trimap_to_mask(trimap: np.ndarray, path: str | Path = "trimap") -> np.ndarray:
    """Trimap (H, W) of 1 pet, 2 background, 3 border -> uint8 mask of 1 cat, 0 background, 255 ignore."""
    unexpected = sorted(set(np.unique(trimap).tolist()) - set(TRIMAP_TO_CLASS))
    if unexpected:
        raise ValueError(f"{path}: a trimap holds only 1, 2 and 3, found {unexpected}")
    lookup = np.zeros(256, np.uint8)
    for value, class_index in TRIMAP_TO_CLASS.items():
        lookup[value] = class_index
    return lookup[trimap]


def oxford_pet_cats(root: str | Path, out_dir: str | Path, split: str = "trainval", download: bool = False,
                    limit: int | None = None, progress: bool = True, overwrite: bool = False) -> Path:
    """Write the cat photos of Oxford-IIIT Pet as a VOC folder (JPEGImages/, SegmentationClass/,
    class_names.txt); returns out_dir. root: torchvision's dataset root (it holds oxford-iiit-pet/).
    split: "trainval" or "test". limit: keep this many cats, spread over the list (sorted by breed)."""
    root, out_dir = Path(root), Path(out_dir)
    if split not in ("trainval", "test"):
        raise ValueError(f"split must be 'trainval' or 'test', got {split!r}")
    refuse_non_empty(out_dir, overwrite)
    if missing_files(root, split) and not download:
        raise FileNotFoundError(how_to_get(root, missing_files(root, split)))
    try:
        pets = OxfordIIITPet(root, split=split, target_types=["binary-category", "segmentation"], download=download)
    except (OSError, RuntimeError) as error:  # no internet, a broken archive, ...
        raise RuntimeError(f"Could not get Oxford-IIIT Pet: {error}\n" + how_to_get(root, missing_files(root, split)
                                                                                    or ["?"])) from error
    base = root / "oxford-iiit-pet"
    rows = [line.split() for line in (base / "annotations" / f"{split}.txt").read_text().splitlines() if line.strip()]
    cat_species = pets.bin_class_to_idx["Cat"] + 1  # the list says 1 = cat, 2 = dog; torchvision counts from 0
    cats = [index for index, row in enumerate(rows) if int(row[2]) == cat_species]
    if limit is not None and limit < len(cats):
        cats = [cats[i * len(cats) // limit] for i in range(limit)]
    (out_dir / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (out_dir / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    failed = []
    for index in tqdm(cats, desc=f"Oxford-IIIT Pet cats ({split})", disable=not progress):
        stem = rows[index][0]
        trimap_path = base / "annotations" / "trimaps" / f"{stem}.png"
        try:
            image, (_, _) = pets[index]  # RGB photo; decoding it here finds damaged files
            mask = trimap_to_mask(read_mask(trimap_path), trimap_path)
            if image.size != (mask.shape[1], mask.shape[0]):
                raise ValueError(f"the photo is {image.size}, its trimap {mask.shape[::-1]}")
        except (OSError, ValueError) as error:  # a few photos of the real set are damaged
            failed.append(f"{stem}: {error}")
            continue
        image.save(out_dir / "JPEGImages" / f"{stem}.jpg", quality=95)
        colorize(mask).save(out_dir / "SegmentationClass" / f"{stem}.png")
    if failed and len(failed) == len(cats):
        raise RuntimeError(f"No photo could be converted; first errors: {failed[:5]}")
    if failed:
        warnings.warn(f"Skipped {len(failed)} photo(s): " + "; ".join(failed[:10]), stacklevel=2)
    (out_dir / "class_names.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="where torchvision keeps (or downloads) the archives")
    parser.add_argument("out", help="the VOC folder to write")
    parser.add_argument("--split", choices=["trainval", "test"], default="trainval")
    parser.add_argument("--download", action="store_true", help="download the archives (needs internet, ~800 MB)")
    parser.add_argument("--limit", type=int, default=None, help="keep at most this many cats")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty OUT")
    args = parser.parse_args(argv)
    try:
        out = oxford_pet_cats(args.root, args.out, args.split, args.download, args.limit, overwrite=args.overwrite)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"fetch_pets: error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote the Oxford-IIIT Pet cats ({args.split}) in the VOC layout to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
