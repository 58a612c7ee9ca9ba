"""Build data/ (the course's real labelled photos) from two public GitHub snapshots (for instructors).

    python tools/make_data.py --feral PATH --pets PATH               # writes data/cats, data/pets, data/my_cats
    python tools/make_data.py --feral PATH --pets PATH --overwrite   # replace them
    python tools/make_data.py --feral PATH --pets PATH --pool runs/pool   # every usable photo, for make_checkpoint.py

PATH is a clone or a bare git directory of each repository (see SOURCES below); files are read
from its HEAD commit with git, so a clone's working tree does not matter and the output depends
only on the commit, which is recorded in data/sources.json. The same commits give the same
files, byte for byte (same Pillow and scikit-image).

What it does, per source:

* Feral cats (Roboflow "feral-cat-segmentation" v1, YOLOv8 polygons, 640x640): the `train/` and
  `valid/` splits only; `test/` is never read (it is kept for independent evaluation), and the
  source photos that duplicate test photos are left out (EXCLUDED_FERAL). `train/` holds three
  versions of each source photo (exposure +-25%, salt-and-pepper noise on 5% of pixels): the one
  with the fewest impulse-noise pixels is kept (see `impulse_noise`), and cleaned with a
  selective median filter when all its versions are noisy (`remove_impulse_noise`). Each YOLO
  polygon becomes one labelme `cat` polygon with its own group_id. Near-duplicate pictures under
  two names (found by a difference hash) are kept once.
* Oxford-IIIT Pet (a subset: Abyssinian and Bengal cats, american_bulldog dogs): photos with a
  watermark are dropped (WATERMARKED), and so are photos whose trimap marks no pet. Each trimap (1 pet, 2 background, 3 border) is traced into
  polygons: an `__ignore__` region over the border band with the `cat` / `dog` polygon drawn over
  it, so `segkit export` gives back 0 / 1 / 255.

Photos are resized so the longer side is at most MAX_SIDE px (Oxford photos keep their aspect
ratio; the feral ones are square, as Roboflow stretched them) and saved as JPEG.

The splits are disjoint by source photo. Held out from every shipped model: data/cats/test,
data/pets/test and data/my_cats (8 photos standing for a learner's own). `--pool` writes every
other usable photo (the shipped models' training set) as labelme projects outside data/.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage
from skimage import measure

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segkit.export import read_label_set, shapes_to_mask  # noqa: E402

MAX_SIDE = 320
JPEG_QUALITY = 85
NOISY = 0.01  # impulse_noise above this: salt-and-pepper noise (Roboflow's augmentation), cleaned
SEED = 0
LABELME_VERSION = "5.5.0"

SOURCES = {
    "feral": {
        "repo": "pcashman21/feral-cat-segmentation-dataset-and-model",
        "url": "https://github.com/pcashman21/feral-cat-segmentation-dataset-and-model.git",
        "commit": "c7cdfa43c095a1f9d1892754bcc201e971e375f1",
        "folders": ["feral-cat-segmentation.v1i.yolov8/train", "feral-cat-segmentation.v1i.yolov8/valid"],
        "licence": "Public Domain (README.dataset.txt: Roboflow 'feral-cat-segmentation' v1)",
    },
    "oxford": {
        "repo": "Naveen-Dodda/Sample_Pets_dataset",
        "url": "https://github.com/Naveen-Dodda/Sample_Pets_dataset.git",
        "commit": "9281626a62066c09f278b9b41ac4bad3683d7541",
        "folders": ["images", "annotations/trimaps"],
        "licence": "Oxford-IIIT Pet (Parkhi et al., 2012): CC BY-SA 4.0; image copyright stays with the owners",
    },
}
FERAL_ROOT = "feral-cat-segmentation.v1i.yolov8"
# The same pictures as photos of the feral test split, which the course keeps out entirely.
EXCLUDED_FERAL = {"train": {"group0126", "group0659", "group0759"}, "valid": {"group0470"}}
# Oxford photos with a watermark, found by looking at all 600: stock-site marks (shutterstock,
# dreamstime, 123rf, corbis, ...), photographers' signatures and (c) lines, camera date stamps and
# one overlaid caption. A faint 8x3-pixel stamp in the top-left corner of about half the photos
# (left there when this subset was re-encoded) is not counted: it is invisible at 320 px.
WATERMARK_NUMBERS = {
    "Abyssinian": [
        2, 11, 24, 33, 65, 67, 71, 73, 77, 78, 80, 82, 86, 98, 100, 101, 102, 103, 107, 108,
        111, 112, 113, 114, 120, 125, 127, 151, 168, 169, 173, 177, 182],
    "Bengal": [
        1, 36, 101, 115, 130, 154, 176],
    "american_bulldog": [
        6, 7, 8, 14, 15, 16, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 32, 33, 34, 36, 44, 47, 48,
        49, 59, 60, 63, 64, 66, 68, 69, 70, 72, 73, 82, 84, 85, 86, 87, 107, 112, 115, 119, 120,
        122, 131, 133, 134, 135, 136, 138, 142, 143, 144, 187, 199],
}
WATERMARKED = {f"{breed}_{n}" for breed, numbers in WATERMARK_NUMBERS.items() for n in numbers}
UNLABELLED: list[str] = []  # filled while reading: Oxford photos whose trimap holds no pet pixel
OXFORD_SPECIES = {"Abyssinian": "cat", "Bengal": "cat", "american_bulldog": "dog"}

# How many photos of each kind go where.
COUNTS = {
    ("cats", "train"): {"feral": 48, "oxford_cat": 32},
    ("cats", "test"): {"feral": 48, "oxford_cat": 32},
    ("pets", "train"): {"oxford_cat": 48, "oxford_dog": 48},
    ("pets", "test"): {"oxford_cat": 24, "oxford_dog": 24},
}
MY_CATS = 8  # Oxford cats standing for a learner's own photos (data/my_cats)
LABELS = {"cats": ["__ignore__", "_background_", "cat"], "pets": ["__ignore__", "_background_", "cat", "dog"]}


# --------------------------------------------------------------------------- reading a snapshot


class Snapshot:
    """Files of a git repository's HEAD commit, read with git (a clone or a bare directory)."""

    def __init__(self, path: str | Path, name: str) -> None:
        self.path, self.name = Path(path), name
        expected = SOURCES[name]
        hint = (f"Expected a clone (or bare git directory) of {expected['url']} at commit "
                f"{expected['commit']}:\n    git clone {expected['url']} && git -C "
                f"{expected['repo'].split('/')[1]} checkout {expected['commit']}")
        try:
            self.commit = self._git("rev-parse", "HEAD").decode().strip()
            listing = self._git("ls-tree", "-r", "--name-only", "-z", "HEAD").decode()
        except (OSError, subprocess.CalledProcessError):
            raise SystemExit(f"{self.path}: not a git repository with a commit.\n{hint}") from None
        self.files = set(filter(None, listing.split("\0")))
        missing = [folder for folder in expected["folders"]
                   if not any(f.startswith(folder + "/") for f in self.files)]
        if missing:
            raise SystemExit(f"{self.path} (commit {self.commit}) lacks the folder(s) {', '.join(missing)}.\n{hint}")
        if self.commit != expected["commit"]:
            print(f"warning: {self.path} is at commit {self.commit}, not {expected['commit']}: the data will "
                  "differ from the committed data/.", file=sys.stderr)

    def _git(self, *args: str) -> bytes:
        return subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True).stdout

    def read(self, path: str) -> bytes:
        try:
            return self._git("cat-file", "blob", f"HEAD:{path}")
        except subprocess.CalledProcessError:
            raise SystemExit(f"{self.path}: cannot read {path} at commit {self.commit} (a shallow or "
                             "partial snapshot?). Use a full clone.") from None

    def image(self, path: str) -> Image.Image:
        with Image.open(io.BytesIO(self.read(path))) as image:
            return image.convert("RGB")


# --------------------------------------------------------------------------- the photos


@dataclass
class Photo:
    stem: str            # file stem in data/, e.g. feral_group0001 or oxford_Abyssinian_1
    kind: str            # feral | oxford_cat | oxford_dog
    image: Image.Image   # RGB, already at its final size
    shapes: list[dict]   # labelme shapes at the final size
    mask: np.ndarray     # uint8 (H, W): 0 background, 1 cat, 2 dog, 255 ignore (the truth the shapes trace)
    info: dict = field(default_factory=dict)


def impulse_noise(image: Image.Image) -> float:
    """Fraction of pixels far (> 60 grey levels) from the median of their 3x3 neighbourhood.

    Salt-and-pepper noise on 5% of the pixels gives about 0.02-0.04; a clean photo about 0.001.
    """
    grey = image.convert("L")
    median = np.asarray(grey.filter(ImageFilter.MedianFilter(3)), dtype=np.int16)
    return float((np.abs(np.asarray(grey, dtype=np.int16) - median) > 60).mean())


def remove_impulse_noise(image: Image.Image) -> Image.Image:
    """Replace salt-and-pepper pixels (and the JPEG halo around each) by their 3x3 median."""
    grey = image.convert("L")
    deviation = np.abs(np.asarray(grey, np.int16) - np.asarray(grey.filter(ImageFilter.MedianFilter(3)), np.int16))
    halo = Image.fromarray((deviation > 40).astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))
    median = image.filter(ImageFilter.MedianFilter(3))
    return Image.composite(median, image, halo)


def final_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def feral_photos(snapshot: Snapshot) -> list[Photo]:
    labels: dict[str, str] = {}
    versions: dict[tuple[str, str], list[str]] = {}
    for path in sorted(snapshot.files):
        parts = path.split("/")
        if parts[0] != FERAL_ROOT or parts[1] not in ("train", "valid"):
            continue
        stem = Path(parts[-1]).stem
        if parts[2].startswith("labels") and path.endswith(".txt"):
            labels[stem] = path
        elif parts[2].startswith("images") and path.endswith(".jpg"):
            source = stem.split(".rf.")[0].rsplit("_", 1)[0]  # group0001_png.rf.<hash> -> group0001
            versions.setdefault((parts[1], source), []).append(path)
    in_both = {source for split, source in versions if split == "train"} & {s for split, s in versions if split == "valid"}
    photos = []
    for (split, source), paths in sorted(versions.items()):
        if source in EXCLUDED_FERAL[split]:
            continue
        # A few names are used in both splits; near_duplicates() tells whether it is one picture.
        stem = f"feral_{source}_v" if split == "valid" and source in in_both else f"feral_{source}"
        scored = []
        for path in paths:
            image = snapshot.image(path)
            scored.append((impulse_noise(image), path, image))
        noise, path, image = min(scored, key=lambda item: item[:2])
        cleaned = split == "train" and noise > NOISY  # every version of this photo is noisy: clean one
        if cleaned:
            image = remove_impulse_noise(image)
        label_path = labels[Path(path).stem]
        size = final_size(*image.size)
        image = image.resize(size, Image.Resampling.LANCZOS)
        shapes = []
        for line in snapshot.read(label_path).decode().splitlines():
            values = [float(v) for v in line.split()]
            if not values:
                continue
            xy = np.array(values[1:]).reshape(-1, 2) * size
            points = [[round(float(x), 2), round(float(y), 2)] for x, y in xy]
            shapes.append(shape("cat", points, group_id=len(shapes) + 1))
        mask = shapes_to_mask(shapes, (size[1], size[0]), {"_background_": 0, "cat": 1})
        photos.append(Photo(stem, "feral", image, shapes, mask,
                            {"source": path, "split": split, "noise": round(noise, 5), "versions": len(paths),
                             "cleaned": cleaned}))
    return photos


def shape(label: str, points: list, group_id: int | None = None) -> dict:
    return {"label": label, "points": points, "group_id": group_id, "description": "",
            "shape_type": "polygon", "flags": {}, "mask": None}


def trace(labels: np.ndarray, area: np.ndarray, base: int, scale: float, names: dict[int, str],
          min_pixels: int) -> list[dict]:
    """Polygons that, drawn in order over `area` (already painted `base`), reproduce `labels` there.

    Each connected region of another value is drawn as its outline with its holes filled; the
    holes are then traced the same way, so shapes drawn later fix what earlier ones covered.
    """
    shapes = []
    area = area.copy()  # what is still to be drawn at this level
    for value in sorted(set(np.unique(labels[area]).tolist()) - {base}, key=lambda v: (v != 255, v)):
        components, count = ndimage.label((labels == value) & area)
        regions = [components == index for index in range(1, count + 1)]
        for component in sorted(regions, key=lambda c: -int(ndimage.binary_fill_holes(c).sum())):
            if component.sum() < min_pixels or not area[component].all():
                continue  # too small to draw, or an island already drawn inside a bigger region's hole
            filled = ndimage.binary_fill_holes(component)
            area &= ~filled
            padded = np.pad(filled, 1).astype(float)
            outline = max(measure.find_contours(padded, 0.5), key=len) - 1  # undo the padding
            outline = measure.approximate_polygon(outline, tolerance=0.6 / scale)
            # pixel centres: original (row, col) -> output (x, y)
            points = [[round(float((col + 0.5) * scale - 0.5), 2), round(float((row + 0.5) * scale - 0.5), 2)]
                      for row, col in outline[:-1]]
            if len(points) < 3:
                continue
            shapes.append(shape(names[value], points))
            shapes += trace(labels, filled & ~component, value, scale, names, min_pixels)
    return shapes


def oxford_photos(snapshot: Snapshot) -> list[Photo]:
    photos = []
    stems = sorted(Path(p).stem for p in snapshot.files if p.startswith("images/") and p.endswith(".jpg"))
    for stem in stems:
        if stem in WATERMARKED:
            continue
        breed = stem.rsplit("_", 1)[0]
        species = OXFORD_SPECIES[breed]
        image = snapshot.image(f"images/{stem}.jpg")
        with Image.open(io.BytesIO(snapshot.read(f"annotations/trimaps/{stem}.png"))) as raw:
            trimap = np.asarray(raw)
        if trimap.shape != (image.height, image.width):
            raise SystemExit(f"{snapshot.path}: images/{stem}.jpg is {image.size}, its trimap {trimap.shape[::-1]}")
        if not (trimap == 1).any():
            UNLABELLED.append(stem)  # a pet photo whose trimap marks no pet: no truth to learn from
            continue
        class_index = 1 if species == "cat" else 2
        labels = np.select([trimap == 1, trimap == 3], [class_index, 255], 0).astype(np.uint8)
        size = final_size(image.width, image.height)
        scale = size[0] / image.width
        names = {0: "_background_", class_index: species, 255: "__ignore__"}
        shapes = trace(labels, np.ones_like(labels, bool), 0, scale, names, min_pixels=round(9 / scale**2))
        image = image.resize(size, Image.Resampling.LANCZOS)
        truth = np.asarray(Image.fromarray(labels).resize(size, Image.Resampling.NEAREST))
        mask = shapes_to_mask(shapes, (size[1], size[0]), {"_background_": 0, species: class_index, "__ignore__": 255})
        photos.append(Photo(f"oxford_{stem}", f"oxford_{species}", image, shapes, mask,
                            {"source": f"images/{stem}.jpg", "agreement": float((mask == truth).mean())}))
    return photos


# --------------------------------------------------------------------------- the splits


def cats_per_photo(photo: Photo) -> int:
    return len({s["group_id"] for s in photo.shapes if s["label"] in ("cat", "dog")}) if photo.kind == "feral" else 1


def stratified_sample(photos: list[Photo], n: int, rng: random.Random) -> list[Photo]:
    """n photos drawn at random, in proportion to how many photos show 0-1, 2-4 and 5+ cats."""
    bins: dict[int, list[Photo]] = {}
    for photo in photos:
        count = cats_per_photo(photo)
        bins.setdefault(0 if count <= 1 else 1 if count <= 4 else 2, []).append(photo)
    chosen = []
    remaining = n
    for key in sorted(bins):
        share = round(n * len(bins[key]) / len(photos)) if key != max(bins) else remaining
        share = min(share, remaining, len(bins[key]))
        chosen += rng.sample(bins[key], share)
        remaining -= share
    return sorted(chosen, key=lambda p: p.stem)


def make_splits(photos: list[Photo]) -> dict[str, list[Photo]]:
    """{"cats/train": [...], ..., "my_cats": [...], "pool/cats": [...], "pool/pets": [...]}."""
    rng = random.Random(SEED)
    by_kind: dict[str, list[Photo]] = {}
    for photo in sorted(photos, key=lambda p: p.stem):
        by_kind.setdefault(photo.kind, []).append(photo)
    held_out: set[str] = set()
    splits: dict[str, list[Photo]] = {}

    def draw(kind: str, n: int, exclude: set[str]) -> list[Photo]:
        candidates = [p for p in by_kind[kind] if p.stem not in exclude]
        if kind == "feral":
            return stratified_sample(candidates, n, rng)
        return sorted(rng.sample(candidates, n), key=lambda p: p.stem)

    # Held-out photos first, so that no training split can take them.
    for key in [("cats", "test"), ("pets", "test")]:
        splits["/".join(key)] = [p for kind, n in COUNTS[key].items() for p in draw(kind, n, held_out)]
        held_out |= {p.stem for p in splits["/".join(key)]}
    splits["my_cats"] = draw("oxford_cat", MY_CATS, held_out)
    held_out |= {p.stem for p in splits["my_cats"]}
    for key in [("cats", "train"), ("pets", "train")]:
        splits["/".join(key)] = [p for kind, n in COUNTS[key].items() for p in draw(kind, n, held_out)]
    splits["pool/cats"] = [p for kind in ("feral", "oxford_cat") for p in by_kind[kind] if p.stem not in held_out]
    splits["pool/pets"] = [p for kind in ("oxford_cat", "oxford_dog") for p in by_kind[kind] if p.stem not in held_out]
    return splits


def difference_hash(image: Image.Image) -> np.ndarray:
    """240 bits: is each pixel of a 17x16 grey thumbnail brighter than its left neighbour?"""
    small = np.asarray(image.convert("L").resize((17, 16), Image.Resampling.BILINEAR), dtype=np.int16)
    return (small[:, 1:] > small[:, :-1]).flatten()


def near_duplicates(photos: list[Photo], max_bits: int = 12) -> list[list[str]]:
    """Groups of stems whose difference hashes differ in at most `max_bits` of 240 bits.

    The sources hold a few copies of the same picture under two names (one with a watermark,
    one re-encoded, ...). Each group is kept as one photo, so that no copy of a test photo trains.
    """
    stems = [p.stem for p in photos]
    hashes = np.stack([difference_hash(p.image) for p in photos])
    parent = list(range(len(stems)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(stems)):
        for j in np.flatnonzero((hashes[i + 1:] != hashes[i]).sum(1) <= max_bits) + i + 1:
            parent[root(int(j))] = root(i)
    groups: dict[int, list[str]] = {}
    for i, stem in enumerate(stems):
        groups.setdefault(root(i), []).append(stem)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


# --------------------------------------------------------------------------- writing


def write_photo(folder: Path, photo: Photo) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    photo.image.save(folder / f"{photo.stem}.jpg", quality=JPEG_QUALITY, optimize=True)
    record = {"version": LABELME_VERSION, "flags": {}, "shapes": photo.shapes, "imagePath": f"{photo.stem}.jpg",
              "imageData": None, "imageHeight": photo.image.height, "imageWidth": photo.image.width}
    (folder / f"{photo.stem}.json").write_text(json.dumps(record, indent=1) + "\n")


def write_project(folder: Path, labels: list[str], splits: dict[str, list[Photo]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(labels) + "\n")
    read_label_set(folder / "labels.txt")  # the same check segkit export makes
    for split, photos in splits.items():
        for photo in photos:
            write_photo(folder / split if split else folder, photo)


def statistics(photos: list[Photo]) -> dict:
    """Per photo kind: count, foreground area fraction, animals per photo, photo sizes."""
    stats = {}
    for kind in sorted({p.kind for p in photos}):
        group = [p for p in photos if p.kind == kind]
        area = [float(np.isin(p.mask, (1, 2)).mean()) for p in group]
        counts = [cats_per_photo(p) for p in group]
        widths, heights = [p.image.width for p in group], [p.image.height for p in group]
        stats[kind] = {
            "photos": len(group),
            "area_fraction": {"min": round(min(area), 4), "median": round(float(np.median(area)), 4),
                              "max": round(max(area), 4)},
            "animals_per_photo": {"min": min(counts), "median": float(np.median(counts)), "max": max(counts),
                                  "histogram": dict(sorted(Counter(counts).items()))},
            "width": [min(widths), max(widths)], "height": [min(heights), max(heights)],
        }
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feral", required=True, help=f"clone or bare git dir of {SOURCES['feral']['url']}")
    parser.add_argument("--pets", required=True, help=f"clone or bare git dir of {SOURCES['oxford']['url']}")
    parser.add_argument("--out", default=str(ROOT / "data"), help="the data folder to write (default: data/)")
    parser.add_argument("--pool", default=None, help="also write the shipped models' training photos here")
    parser.add_argument("--overwrite", action="store_true", help="replace cats/, pets/, my_cats/ and sources.json")
    args = parser.parse_args(argv)

    out = Path(args.out)
    products = [out / "cats", out / "pets", out / "my_cats", out / "sources.json"]
    existing = [str(p) for p in products if p.exists()]
    if existing and not args.overwrite:
        print(f"{', '.join(existing)} exist already; pass --overwrite to replace them "
              "(data/checkpoints and data/README.md are left alone).", file=sys.stderr)
        return 2
    pool = Path(args.pool) if args.pool else None
    if pool is not None and pool.exists() and any(pool.iterdir()) and not args.overwrite:
        print(f"{pool} is not empty; pass --overwrite to replace it.", file=sys.stderr)
        return 2

    feral, oxford = Snapshot(args.feral, "feral"), Snapshot(args.pets, "oxford")
    print("reading the feral cats ...", flush=True)
    photos = feral_photos(feral)
    print("reading and tracing Oxford-IIIT Pet ...", flush=True)
    photos += oxford_photos(oxford)
    duplicates = near_duplicates(photos)
    dropped = {name for group in duplicates for name in group[1:]}  # keep the first of each group
    photos = [p for p in photos if p.stem not in dropped]
    splits = make_splits(photos)

    for path in products:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    write_project(out / "cats", LABELS["cats"], {"train": splits["cats/train"], "test": splits["cats/test"]})
    write_project(out / "pets", LABELS["pets"], {"train": splits["pets/train"], "test": splits["pets/test"]})
    write_project(out / "my_cats", LABELS["cats"], {"": splits["my_cats"]})
    agreement = [p.info["agreement"] for p in photos if "agreement" in p.info]
    record = {
        "sources": {name: {**{k: v for k, v in SOURCES[name].items() if k != "folders"},
                           "commit": snapshot.commit}
                    for name, snapshot in (("feral", feral), ("oxford", oxford))},
        "max_side": MAX_SIDE, "jpeg_quality": JPEG_QUALITY, "seed": SEED,
        "excluded_feral": {k: sorted(v) for k, v in EXCLUDED_FERAL.items()},
        "watermarked": sorted(WATERMARKED),
        "trimap_without_pet": UNLABELLED,
        "near_duplicates": {"groups": duplicates, "kept": "the first stem of each group"},
        "trimap_tracing_pixel_agreement": {"min": round(min(agreement), 4), "mean": round(float(np.mean(agreement)), 4)},
        "usable": statistics(photos),
        "splits": {key: {"photos": len(value), "stems": [p.stem for p in value],
                         "statistics": statistics(value)}
                   for key, value in splits.items() if not key.startswith("pool/")},
        "pool": {key.split("/")[1]: {"photos": len(value), "statistics": statistics(value)}
                 for key, value in splits.items() if key.startswith("pool/")},
        "feral_versions": {p.stem: {"kept": p.info["source"], "impulse_noise": p.info["noise"],
                                    "cleaned": p.info["cleaned"]}
                           for p in photos if p.kind == "feral"},
    }
    (out / "sources.json").write_text(json.dumps(record, indent=1) + "\n")
    if pool is not None:
        if pool.exists():
            shutil.rmtree(pool)
        write_project(pool / "cats", LABELS["cats"], {"train": splits["pool/cats"]})
        write_project(pool / "pets", LABELS["pets"], {"train": splits["pool/pets"]})
        print(f"pool: {len(splits['pool/cats'])} cat photos in {pool / 'cats'}, "
              f"{len(splits['pool/pets'])} pet photos in {pool / 'pets'}")
    for key, value in splits.items():
        print(f"{key:10s} {len(value):4d} photos  {dict(Counter(p.kind for p in value))}")
    print(f"trimap tracing: pixel agreement min {min(agreement):.4f}, mean {np.mean(agreement):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
