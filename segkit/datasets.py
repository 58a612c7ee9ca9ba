"""Real photos: the cats of the Oxford-IIIT Pet dataset, written in the VOC layout segkit reads.

    from segkit.datasets import oxford_pet_cats
    voc = oxford_pet_cats("downloads", "data/pets-cats-voc", download=True)   # needs internet once
    dataset = SegmentationFolder(voc, image_size=256, binary_target=True)

The dataset (Parkhi et al., 2012; https://www.robots.ox.ac.uk/~vgg/data/pets/, CC BY-SA 4.0) has
37 breeds, 12 of them cats. Each photo has a "trimap": 1 = pet, 2 = background, 3 = the uncertain
border around the pet. The border becomes 255 = ignore, so neither loss nor metrics count it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.datasets import OxfordIIITPet
from tqdm.auto import tqdm

from .data import mask_to_array
from .metrics import IGNORE_INDEX
from .palette import flat_palette

CAT_BREEDS = (
    "Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau",
    "Maine_Coon", "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx",
)  # for reference; cats are picked by the species column of the annotation lists (1 = cat)
CLASS_NAMES = ("_background_", "cat")
TRIMAP_TO_CLASS = {1: 1, 2: 0, 3: IGNORE_INDEX}  # pet -> cat, background -> 0, border -> ignore

_URLS = (
    "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
    "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
)


def _how_to_get(root: Path, missing: list[str]) -> str:
    base = root / "oxford-iiit-pet"
    hint = ""
    if root.name == "oxford-iiit-pet":
        hint = f"\nNote: root is the folder that CONTAINS oxford-iiit-pet/; try root='{root.parent}'."
    return (
        f"Oxford-IIIT Pet not found under {base}/ (missing: {', '.join(missing)}).\n"
        "Get it in one of two ways:\n"
        f"  1. oxford_pet_cats(..., download=True): needs internet, about 800 MB, saved under {base}/.\n"
        f"  2. Download {_URLS[0]}\n"
        f"     and {_URLS[1]} yourself, put both archives in {base}/\n"
        "     and call with download=True: torchvision checks them and extracts them without downloading.\n"
        f"     (Or extract them there yourself: {base}/images/*.jpg, {base}/annotations/trainval.txt,\n"
        f"     {base}/annotations/test.txt and {base}/annotations/trimaps/*.png.)" + hint
    )


def _missing_files(root: Path, split: str) -> list[str]:
    base = root / "oxford-iiit-pet"
    needed = [base / "images", base / "annotations" / "trimaps", base / "annotations" / f"{split}.txt"]
    return [str(path.relative_to(root)) for path in needed if not path.exists()]


def _read_split_list(path: Path) -> list[tuple[str, int]]:
    """(stem, species) per line of trainval.txt / test.txt: "<stem> <class_id> <species> <breed_id>",
    species 1 = cat, 2 = dog. Read in file order, the order OxfordIIITPet indexes them."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 4:
            raise ValueError(f"{path}, line {number}: expected '<stem> <class_id> <species> <breed_id>', got {line!r}")
        rows.append((fields[0], int(fields[2])))
    return rows


def _is_non_empty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def trimap_to_mask(trimap: np.ndarray, path: str | Path = "trimap") -> np.ndarray:
    """Trimap (H, W) of 1 pet, 2 background, 3 border -> uint8 mask of 1 cat, 0 background, 255 ignore."""
    unexpected = sorted(set(np.unique(trimap).tolist()) - set(TRIMAP_TO_CLASS))
    if unexpected:
        raise ValueError(f"{path}: a trimap holds only 1, 2 and 3, found {unexpected}")
    lookup = np.zeros(256, np.uint8)
    for value, class_index in TRIMAP_TO_CLASS.items():
        lookup[value] = class_index
    return lookup[trimap]


def oxford_pet_cats(
    root: str | Path,
    out_dir: str | Path,
    split: str = "trainval",
    download: bool = False,
    limit: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write the cat photos of Oxford-IIIT Pet as a VOC folder; returns `out_dir`.

    root: torchvision's dataset root (the folder that holds or will hold oxford-iiit-pet/).
    split: "trainval" (3680 photos) or "test" (3669 photos); about a third of them are cats.
    limit: keep this many cats, evenly spread over the list (which is sorted by breed, so the
        first N would all be Abyssinians).
    Output: out_dir/JPEGImages/<stem>.jpg, out_dir/SegmentationClass/<stem>.png (palette PNG, 0
    background, 1 cat, 255 ignore) and out_dir/class_names.txt. A non-empty out_dir is only
    written into with overwrite=True (which replaces the files it writes and leaves the rest).
    """
    root, out_dir = Path(root), Path(out_dir)
    if split not in ("trainval", "test"):
        raise ValueError(f"split must be 'trainval' or 'test', got {split!r}")
    if _is_non_empty_dir(out_dir) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; choose an empty folder or pass overwrite=True.")
    missing = _missing_files(root, split)
    if missing and not download:
        raise FileNotFoundError(_how_to_get(root, missing))

    try:
        pets = OxfordIIITPet(root, split=split, target_types=["binary-category", "segmentation"], download=download)
    except (OSError, RuntimeError) as error:  # no internet, a broken archive, ...
        raise RuntimeError(f"Could not get Oxford-IIIT Pet: {error}\n" + _how_to_get(root, _missing_files(root, split) or ["?"])) from error
    missing = _missing_files(root, split)
    if missing:
        raise FileNotFoundError(_how_to_get(root, missing))

    base = root / "oxford-iiit-pet"
    rows = _read_split_list(base / "annotations" / f"{split}.txt")
    if len(rows) != len(pets):
        raise RuntimeError(f"{base}/annotations/{split}.txt lists {len(rows)} photos, torchvision read {len(pets)}.")
    cat_species = pets.bin_class_to_idx["Cat"] + 1  # torchvision stores species - 1
    cats = [index for index, (_, species) in enumerate(rows) if species == cat_species]
    if limit is not None and limit < len(cats):
        cats = [cats[i * len(cats) // limit] for i in range(limit)]

    image_dir, mask_dir = out_dir / "JPEGImages", out_dir / "SegmentationClass"
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    palette = flat_palette()
    failed = []
    for index in tqdm(cats, desc=f"Oxford-IIIT Pet cats ({split})", disable=not progress):
        stem = rows[index][0]
        trimap_path = base / "annotations" / "trimaps" / f"{stem}.png"
        try:
            image, (species_label, trimap) = pets[index]  # image already RGB
            if species_label != cat_species - 1:
                raise ValueError("listed as a cat, but torchvision's label says dog")
            if image.size != trimap.size:
                raise ValueError(f"photo is {image.size}, trimap {trimap.size}")
            mask = trimap_to_mask(mask_to_array(trimap, trimap_path), trimap_path)
        except (OSError, ValueError) as error:  # a few photos of the real set are damaged
            failed.append(f"{stem}: {error}")
            continue
        image.save(image_dir / f"{stem}.jpg", quality=95)
        mask_image = Image.fromarray(mask)
        mask_image.putpalette(palette)  # "L" -> "P": pixel values stay the class indices
        mask_image.save(mask_dir / f"{stem}.png")

    if failed and len(failed) == len(cats):
        raise RuntimeError(f"No photo could be converted; first errors: {failed[:5]}")
    if failed:
        warnings.warn(f"Skipped {len(failed)} photo(s): " + "; ".join(failed[:10]), stacklevel=2)
    (out_dir / "class_names.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    return out_dir


# --- the dataset shipped with the course ---------------------------------------------------

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # the repository's data/ folder


def bundled(kind: str = "cats", split: str = "train", cache_dir: str | Path | None = None) -> Path:
    """The bundled labelme project `data/<kind>/<split>`, exported once to the VOC layout.

    Returns the VOC folder (JPEGImages/, SegmentationClass/, class_names.txt) that
    SegmentationFolder reads. The export runs the same `export_labelme_folder` a learner runs
    on their own photos; its result is kept in `runs/bundled/<kind>/<split>` (or `cache_dir`)
    and reused while the labelme files are unchanged, so every lesson can start with one call.
    kind: "cats" (background / cat) or "pets" (background / cat / dog); split: "train" or "test".
    """
    import hashlib
    import os
    import shutil
    import tempfile

    from .export import export_labelme_folder

    project = DATA_DIR / kind
    source = project / split
    if not source.is_dir():
        choices = sorted(p.name for p in DATA_DIR.iterdir() if (p / "labels.txt").is_file()) if DATA_DIR.is_dir() else []
        raise FileNotFoundError(f"No bundled labelme project at {source}. Bundled kinds: {choices}; "
                                f"splits: train, test. Regenerate with `segkit make-data data/{kind} --kind {kind}`.")
    cache = Path(cache_dir) if cache_dir is not None else DATA_DIR.parent / "runs" / "bundled"
    target = cache / kind / split

    # A fingerprint of the inputs: names, sizes and modification times of the labelme files.
    digest = hashlib.sha256()
    for path in sorted([*source.iterdir(), project / "labels.txt"]):
        stat = path.stat()
        digest.update(f"{path.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    stamp = target / ".segkit-export"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return target

    # Export into a temporary folder and swap it in, so two notebooks running at once (or an
    # interrupted export) never see a half-written dataset.
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{split}-") as tmp:
        report = export_labelme_folder(source, Path(tmp) / "voc", project / "labels.txt", progress=False)
        if report.failures:
            raise RuntimeError(report.summary())
        (Path(tmp) / "voc" / ".segkit-export").write_text(digest.hexdigest())
        if stamp.is_file() and stamp.read_text() == digest.hexdigest():
            return target  # another process finished first
        old = Path(tmp) / "old"
        try:
            if target.exists():
                os.replace(target, old)
            os.replace(Path(tmp) / "voc", target)
        except OSError:
            if stamp.is_file() and stamp.read_text() == digest.hexdigest():
                return target  # lost a race with another process exporting the same files
            raise
        shutil.rmtree(old, ignore_errors=True)
    return target


def shipped_checkpoint(kind: str = "cats") -> Path:
    """The small trained checkpoint shipped in `data/checkpoints/<kind>_unet.pt`.

    Load it with `segkit.load_checkpoint(path)`. Beside it, `<kind>_unet.json` records the
    `segkit train` command that made it and the `segkit evaluate` result on the test split
    (data/README.md says more).
    """
    path = DATA_DIR / "checkpoints" / f"{kind}_unet.pt"
    if not path.is_file():
        shipped = sorted(p.stem.removesuffix("_unet") for p in (DATA_DIR / "checkpoints").glob("*_unet.pt"))
        raise FileNotFoundError(f"No shipped checkpoint at {path}. Shipped kinds: {shipped}. "
                                "Retrain it with the command in data/README.md.")
    return path
