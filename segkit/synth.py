"""Deterministic synthetic cat photos, labelled the way a person labels them in labelme.

    make_dataset("data/cats")               # labels.txt, train/*.jpg + *.json, test/...
    make_dataset("data/pets", kind="pets")  # background / cat / dog

No real photo collection can be shipped with the course, so the bundled data is made here, from
real photos and textures that ship inside scikit-image (installed with labelme; public domain or
CC0, see SOURCES) cut, tinted and composited, plus procedural texture. One image is made in four
steps (`render_example`):

1. a background: a crop of a photo (wood table, lawn, gravel, bricks, sky...) tinted to fur
   colours half of the time, a room (wall + floor), or a rug pattern, with a light gradient;
2. distractors in the same fur colours: cushions, balls, blobs, fur rugs, cut-out photo objects;
3. zero to two animals. A silhouette is built from body parts in a pose (sitting, lying,
   walking, curled), traced, and simplified to a polygon of about 12-60 vertices, as a person
   clicks around the outline; the animal is then painted *through that polygon* (with a
   half-pixel soft edge), so the label is exactly the painted region, and animals cut by the
   image border get a polygon clipped to the border, as labelme clips clicks;
4. a camera: colour cast, exposure, sensor noise, then JPEG.

Colour alone cannot tell a cat here: backgrounds and distractors draw from the cats' own fur
palette. What tells a cat is what a CNN sees: the silhouette (ears, head, legs, tail), the fur
pattern and the face. Every image has its own numpy Generator seeded by
(seed, kind, split, index): images do not depend on each other, and the same seed gives
byte-identical JPEG and JSON files with the same Pillow and numpy.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

KINDS: dict[str, tuple[str, ...]] = {"cats": ("cat",), "pets": ("cat", "dog")}
DEFAULT_SIZES: dict[str, dict[str, int]] = {
    "cats": {"train": 160, "test": 40},
    "pets": {"train": 80, "test": 24},
}
JPEG_QUALITY = 85
# The JSON is what labelme 5.x/6.x writes (key order included); imageData is null as with --nodata.
LABELME_VERSION = "5.5.0"

# Source images inside scikit-image's data folder, with the licence its docstring states.
SOURCES: dict[str, tuple[str, str, str]] = {
    # name: (file, what it is, licence)
    "chelsea": ("chelsea.png", "Chelsea the cat (fur texture, eyes)",
                "CC0, photographer Stefan van der Walt"),
    "coffee": ("coffee.png", "coffee cup on a wooden table",
               "CC0, photographer Rachel Michetti (courtesy of Pikolo Espresso Bar)"),
    "astronaut": ("astronaut.png", "astronaut Eileen Collins (NASA)",
                  "public domain (NASA), no known copyright restrictions"),
    "rocket": ("rocket.jpg", "Falcon 9 launch (SpaceX)", "public domain (SpaceX)"),
    "retina": ("retina.jpg", "fundus photograph of a retina (Mikael Haggstrom)",
               "CC0 1.0 (Wikimedia Commons)"),
    "hubble": ("hubble_deep_field.jpg", "Hubble eXtreme Deep Field (NASA)",
               "public domain (NASA)"),
    "brick": ("brick.png", "brick wall (CC0Textures Bricks25)", "CC0"),
    "grass": ("grass.png", "grass (DeviantArt linolafett, Grass 01)", "CC0"),
    "gravel": ("gravel.png", "gravel (CC0Textures Gravel04)", "CC0"),
    "camera": ("camera.png", "cameraman on a lawn (Lav Varshney)",
               "CC0, photographer Lav Varshney"),
    "coins": ("coins.png", "Greek coins from Pompeii (Brooklyn Museum)",
              "no known copyright restrictions"),
}

# Fur colours (linear-ish sRGB in [0, 1]). Backgrounds and distractors draw from these too.
FUR = {
    "ginger": (0.80, 0.47, 0.22),
    "cream": (0.87, 0.75, 0.58),
    "tabby": (0.56, 0.44, 0.30),
    "chocolate": (0.40, 0.27, 0.18),
    "grey": (0.52, 0.52, 0.54),
    "dark": (0.27, 0.26, 0.26),
    "black": (0.11, 0.10, 0.10),
    "white": (0.91, 0.89, 0.85),
    "golden": (0.80, 0.63, 0.36),
}
OTHER_COLOURS = [(0.35, 0.45, 0.62), (0.42, 0.55, 0.33), (0.70, 0.38, 0.45), (0.25, 0.40, 0.42),
                 (0.62, 0.60, 0.42), (0.55, 0.30, 0.25)]

Polygon = list[tuple[float, float]]


# ------------------------------------------------------------------------------------------
# Public API


@dataclass
class Example:
    """One generated photo and its labelme record."""

    stem: str
    image: Image.Image          # RGB
    record: dict                # labelme JSON content

    def files(self) -> tuple[bytes, bytes]:
        """(JPEG bytes, JSON bytes), exactly as `make_dataset` writes them."""
        buffer = io.BytesIO()
        # Pinned encoder settings: same pixels -> same bytes.
        self.image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=2,
                        optimize=False, progressive=False)
        text = json.dumps(self.record, ensure_ascii=False, indent=2)  # as labelme writes it
        return buffer.getvalue(), text.encode("utf-8")


def label_names(kind: str) -> list[str]:
    """Lines of labels.txt for `kind`: ['__ignore__', '_background_', 'cat', ...]."""
    _check_kind(kind)
    return ["__ignore__", "_background_", *KINDS[kind]]


def stem_for(split: str, index: int) -> str:
    return f"{split}_{index:03d}"


def render_example(kind: str, split: str, index: int, seed: int = 0) -> Example:
    """Make image `index` of `split` ("train" or "test") of dataset `kind` ("cats" or "pets").

    Depends only on its arguments (its own random generator), so any one image can be remade.
    """
    _check_kind(kind)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rng = np.random.default_rng([seed, list(KINDS).index(kind), ("train", "test").index(split), index])
    stem = stem_for(split, index)
    image, shapes = _render_scene(rng, kind)
    record = {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": f"{stem}.jpg",
        "imageData": None,
        "imageHeight": image.height,
        "imageWidth": image.width,
    }
    return Example(stem=stem, image=image, record=record)


def make_dataset(
    out_dir: str | Path,
    kind: str = "cats",
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Write a labelme project of synthetic photos and return the JSON paths written.

    Layout: OUT/labels.txt, OUT/train/<stem>.jpg + <stem>.json, OUT/test/... (stems train_000,
    ...). n_train / n_test default to DEFAULT_SIZES[kind] (cats 160 + 40, pets 80 + 24).
    Refuses a non-empty OUT unless overwrite=True, which replaces only the files it writes.
    """
    _check_kind(kind)
    out_dir = Path(out_dir)
    sizes = dict(DEFAULT_SIZES[kind])
    if n_train is not None:
        sizes["train"] = n_train
    if n_test is not None:
        sizes["test"] = n_test
    for split, n in sizes.items():
        if n < 0:
            raise ValueError(f"n_{split} must be >= 0, got {n}")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out_dir} is not empty. Choose an empty folder, or pass overwrite=True "
            f"(--overwrite) to replace the generated files in it."
        )
    _check_sources()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "labels.txt").write_text("\n".join(label_names(kind)) + "\n", encoding="utf-8")

    jobs = [(split, i) for split, n in sizes.items() for i in range(n)]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc=f"make {kind}", unit="img")
    written = []
    for split, index in jobs:
        example = render_example(kind, split, index, seed)
        jpeg, text = example.files()
        split_dir = out_dir / split
        split_dir.mkdir(exist_ok=True)
        (split_dir / f"{example.stem}.jpg").write_bytes(jpeg)
        json_path = split_dir / f"{example.stem}.json"
        json_path.write_bytes(text)
        written.append(json_path)
    return written


# ------------------------------------------------------------------------------------------
# Sources


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")


def _skimage_data_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "segkit.synth uses the sample photos shipped with scikit-image (installed with "
            "labelme). Install it: pip install scikit-image"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.lru_cache(maxsize=None)
def _source(name: str) -> np.ndarray:
    """Source photo `name` as float32 (H, W, 3) in [0, 1] (grey images are repeated to 3 channels)."""
    path = _skimage_data_dir() / SOURCES[name][0]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall scikit-image (pip install --force-reinstall scikit-image)")
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    array.flags.writeable = False
    return array


# SHA-256 of the source files the committed data/ was made from. Other files (another
# scikit-image release) still work, but give other images: make_dataset warns.
SOURCE_SHA256: dict[str, str] = {
    "chelsea": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "astronaut": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "rocket": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "retina": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
    "hubble": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    "brick": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "grass": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "gravel": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    "camera": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "coins": "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
}


def _check_sources() -> None:
    import warnings

    for name, expected in SOURCE_SHA256.items():
        path = _skimage_data_dir() / SOURCES[name][0]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            warnings.warn(f"{path} differs from the file data/ was made from: the generated "
                          f"images will differ from the committed ones", stacklevel=3)


# ------------------------------------------------------------------------------------------
# Array helpers (float32 images in [0, 1])


def _box_blur_axis(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    if radius < 1:
        return a
    pad = [(0, 0)] * a.ndim
    pad[axis] = (radius + 1, radius)
    c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis, dtype=np.float64)
    n = a.shape[axis]
    hi = np.take(c, np.arange(2 * radius + 1, 2 * radius + 1 + n), axis=axis)
    lo = np.take(c, np.arange(0, n), axis=axis)
    return ((hi - lo) / (2 * radius + 1)).astype(np.float32)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-like blur of the first two axes: three box blurs (exact sums, deterministic)."""
    radius = int(round((math.sqrt(4 * sigma * sigma + 1) - 1) / 2))
    for _ in range(3):
        a = _box_blur_axis(_box_blur_axis(a, radius, 0), radius, 1)
    return a


def _resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float (H, W) or (H, W, 3) array."""
    if a.ndim == 2:
        return np.asarray(Image.fromarray(a, "F").resize((width, height), Image.BILINEAR))
    return np.stack([_resize(np.ascontiguousarray(a[..., c]), width, height) for c in range(3)], -1)


def _noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth noise with features about `cell` pixels wide, zero mean, unit-ish std, (H, W)."""
    cell = max(cell, 1.0)
    gh, gw = int(height / cell) + 3, int(width / cell) + 3
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big = np.asarray(Image.fromarray(grid, "F").resize(
        (int(gw * cell), int(gh * cell)), Image.BICUBIC))
    return big[:height, :width]


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _jitter_colour(rng: np.random.Generator, colour, amount: float = 0.06) -> np.ndarray:
    c = np.asarray(colour, np.float32)
    c = c * rng.uniform(1 - amount * 1.5, 1 + amount * 1.5) + rng.normal(0, amount / 2, 3)
    return np.clip(c, 0.02, 0.98).astype(np.float32)


def _palette_colour(rng: np.random.Generator, other: float = 0.2) -> np.ndarray:
    """A fur colour (mostly) or another household colour: backgrounds share the cats' colours."""
    if rng.random() < other:
        return _jitter_colour(rng, OTHER_COLOURS[rng.integers(len(OTHER_COLOURS))], 0.08)
    names = list(FUR)
    return _jitter_colour(rng, FUR[names[rng.integers(len(names))]], 0.08)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def _crop(rng: np.random.Generator, source: np.ndarray, width: int, height: int,
          zoom: tuple[float, float] = (0.4, 1.0)) -> np.ndarray:
    """A random window of `source` with the aspect of (width, height), resized to it, maybe flipped."""
    sh, sw = source.shape[:2]
    aspect = width / height
    frac = rng.uniform(*zoom)
    ch = min(sh, int(sw / aspect)) * frac
    cw = ch * aspect
    y0 = rng.uniform(0, sh - ch)
    x0 = rng.uniform(0, sw - cw)
    window = source[int(y0):int(y0 + ch), int(x0):int(x0 + cw)]
    out = _resize(np.ascontiguousarray(window), width, height)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def _tint(gray: np.ndarray, dark: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Map a (H, W) luminance to a ramp between two colours, stretched to its own range."""
    lo, hi = np.percentile(gray, [2, 98])
    t = np.clip((gray - lo) / max(hi - lo, 1e-3), 0, 1)[..., None]
    return dark * (1 - t) + light * t


def _polygon_mask(polygon: Polygon, width: int, height: int) -> np.ndarray:
    """(H, W) bool: the polygon rasterised as labelme and segkit.export do (PIL, outline included)."""
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in polygon], fill=1, outline=1)
    return np.asarray(mask, dtype=bool)


def _soft(mask: np.ndarray) -> np.ndarray:
    """Antialiased alpha from a hard mask: a half-pixel feather, centred on the mask's edge."""
    return _blur(mask.astype(np.float32), 0.6)


def _composite(canvas: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> None:
    a = alpha[..., None]
    canvas *= 1 - a
    canvas += layer * a


def _shadow(canvas: np.ndarray, mask: np.ndarray, strength: float, spread: float,
            offset: tuple[int, int]) -> None:
    """Darken the canvas under an object (soft drop shadow)."""
    dy, dx = offset
    h, w = mask.shape
    shifted = np.zeros((h, w), np.float32)  # the mask moved by (dy, dx), not wrapped around
    shifted[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        mask[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    shade = _blur(shifted, spread)
    canvas *= (1 - strength * shade)[..., None]


def _rim_shading(mask: np.ndarray, size_px: float) -> np.ndarray:
    """Volume: 1 deep inside an object, darker towards its edge. (H, W) in about [0.6, 1]."""
    inner = _blur(mask.astype(np.float32), max(size_px * 0.07, 1.0))
    rim = np.clip((inner - 0.5) * 2.0, 0, 1)
    return 0.62 + 0.38 * np.sqrt(rim)


# ------------------------------------------------------------------------------------------
# Outlines: tracing and simplifying, as a person clicks around an outline


_DIRS = [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)]  # (dy, dx), clockwise


def _trace_outline(mask: np.ndarray) -> np.ndarray:
    """Outer boundary (Moore neighbour tracing) of the blob holding the first pixel in raster
    order, as (N, 2) float (x, y) pixel centres."""
    m = np.pad(mask.astype(bool), 1)
    ys, xs = np.nonzero(m)
    if len(ys) == 0:
        return np.zeros((0, 2), np.float32)
    start = (int(ys[0]), int(xs[0]))
    offsets = {d: i for i, d in enumerate(_DIRS)}
    p, back = start, 4  # the pixel to the west of the first pixel is background
    contour = [p]
    first_move = None
    for _ in range(4 * m.size):
        for k in range(1, 9):
            d = (back + k) % 8
            q = (p[0] + _DIRS[d][0], p[1] + _DIRS[d][1])
            if m[q]:
                break
        else:
            break  # a single pixel
        if first_move is None:
            first_move = d
        elif p == start and d == first_move:
            break
        prev = _DIRS[(back + k - 1) % 8]
        b = (p[0] + prev[0], p[1] + prev[1])
        back = offsets[(b[0] - q[0], b[1] - q[1])]
        p = q
        contour.append(p)
    if len(contour) > 1 and contour[-1] == start:
        contour.pop()
    arr = np.array(contour, np.float32) - 1  # undo the padding
    return arr[:, ::-1].copy()


def _rdp(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Ramer-Douglas-Peucker on an open polyline (N, 2); keeps both ends."""
    keep = np.zeros(len(points), bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = points[i], points[j]
        seg = b - a
        norm = float(np.hypot(*seg))
        rel = points[i + 1:j] - a
        if norm < 1e-9:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(rel[:, 0] * seg[1] - rel[:, 1] * seg[0]) / norm
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            keep[i + 1 + k] = True
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return points[keep]


def _simplify_closed(contour: np.ndarray, tolerance: float) -> np.ndarray:
    far = int(np.argmax(np.hypot(*(contour - contour[0]).T)))
    first = _rdp(contour[: far + 1], tolerance)
    second = _rdp(np.concatenate([contour[far:], contour[:1]]), tolerance)
    return np.concatenate([first, second[1:-1]])


def _outline_polygon(mask: np.ndarray, scale: float, origin: tuple[float, float],
                     max_vertices: int = 60, min_vertices: int = 12) -> np.ndarray:
    """Trace a supersampled mask and simplify it to a 'hand-clicked' polygon in image coordinates."""
    contour = _trace_outline(mask)
    if len(contour) < 3:
        return contour
    tolerance = 0.9 * scale  # in mask pixels: about 0.9 image pixel
    poly = _simplify_closed(contour, tolerance)
    while len(poly) > max_vertices:
        tolerance *= 1.25
        poly = _simplify_closed(contour, tolerance)
    while len(poly) < min_vertices and tolerance > 0.3 * scale:
        tolerance *= 0.7
        poly = _simplify_closed(contour, tolerance)
    xy = (poly + 0.5) / scale - 0.5
    return xy + np.asarray(origin, np.float32)


def _clip_polygon(poly: np.ndarray, width: int, height: int) -> np.ndarray:
    """Sutherland-Hodgman clip to the image rectangle [0, W-1] x [0, H-1]."""
    def clip(points, inside, cross):
        out = []
        for i in range(len(points)):
            cur, prev = points[i], points[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cross(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross(prev, cur))
        return out

    def at_x(x0):
        return lambda p, q: (x0, p[1] + (q[1] - p[1]) * (x0 - p[0]) / (q[0] - p[0]))

    def at_y(y0):
        return lambda p, q: (p[0] + (q[0] - p[0]) * (y0 - p[1]) / (q[1] - p[1]), y0)

    pts = [tuple(map(float, p)) for p in poly]
    for inside, cross in [
        (lambda p: p[0] >= 0, at_x(0.0)),
        (lambda p: p[0] <= width - 1, at_x(width - 1.0)),
        (lambda p: p[1] >= 0, at_y(0.0)),
        (lambda p: p[1] <= height - 1, at_y(height - 1.0)),
    ]:
        if not pts:
            break
        pts = clip(pts, inside, cross)
    return np.array(pts, np.float64).reshape(-1, 2)


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _ellipse_points(cx, cy, rx, ry, angle_deg=0.0, n=40) -> Polygon:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = math.radians(angle_deg)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return list(zip(cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)))


# ------------------------------------------------------------------------------------------
# Animals: a figure of parts in a local frame (body length about 1, y down, facing +x)


@dataclass
class _Figure:
    species: str
    blobs: list[Polygon] = field(default_factory=list)             # filled polygons
    limbs: list[tuple[Polygon, float]] = field(default_factory=list)  # (polyline, width)
    head: tuple[float, float, float] = (0.0, 0.0, 0.1)               # cx, cy, radius
    face_turn: float = 0.3         # eyes shifted towards the nose: 0 frontal, 1 profile
    inner_ears: list[Polygon] = field(default_factory=list)
    snout: tuple[float, float] | None = None                       # dog nose tip

    def ellipse(self, cx, cy, rx, ry, angle=0.0):
        self.blobs.append(_ellipse_points(cx, cy, rx, ry, angle))

    def limb(self, points, width):
        self.limbs.append((list(points), width))


def _cat_ears(fig: _Figure, rng: np.random.Generator, frontal: bool) -> None:
    hx, hy, r = fig.head
    length = r * rng.uniform(0.75, 1.0)
    half = math.radians(rng.uniform(20, 26))
    angles = [-34, 30] if frontal else [-22, 38]
    for deg in angles:
        a = math.radians(deg + rng.normal(0, 4))
        base1 = (hx + r * math.sin(a - half), hy - r * math.cos(a - half))
        base2 = (hx + r * math.sin(a + half), hy - r * math.cos(a + half))
        tip = (hx + (r + length) * math.sin(a), hy - (r + length) * math.cos(a))
        fig.blobs.append([base1, tip, base2, (hx, hy)])
        inner = [(0.75 * b + 0.25 * tip_[0], 0.75 * c + 0.25 * tip_[1]) for (b, c), tip_ in
                 [(base1, tip), (base2, tip)]]
        mid = ((base1[0] + base2[0]) / 2, (base1[1] + base2[1]) / 2)
        inner_tip = (0.3 * mid[0] + 0.7 * tip[0], 0.3 * mid[1] + 0.7 * tip[1])
        fig.inner_ears.append([inner[0], inner_tip, inner[1]])


def _dog_head(fig: _Figure, rng: np.random.Generator, frontal: bool) -> None:
    hx, hy, r = fig.head
    if frontal:
        fig.ellipse(hx, hy + 0.55 * r, 0.55 * r, 0.48 * r)
        fig.snout = (hx, hy + 0.75 * r)
        sides = [-1, 1]
    else:
        sl = rng.uniform(0.75, 1.05)
        fig.ellipse(hx + 0.75 * r, hy + 0.3 * r, sl * r, 0.45 * r, rng.uniform(5, 20))
        fig.snout = (hx + (0.75 + sl * 0.9) * r, hy + 0.25 * r)
        sides = [-0.6, 0.2]
    for s in sides:  # floppy ears hang down beside the head, darker than the head
        ear = _ellipse_points(hx + s * 0.85 * r, hy + 0.45 * r, 0.3 * r, rng.uniform(0.75, 1.0) * r,
                              -s * rng.uniform(8, 20))
        fig.blobs.append(ear)
        fig.inner_ears.append(ear)


def _pose(rng: np.random.Generator, species: str) -> _Figure:
    """A random figure. Cats: sitting (side/front), lying, walking, curled. Dogs: standing,
    sitting, lying, with a snout and floppy ears."""
    j = lambda v, s=0.02: v + rng.normal(0, s)  # noqa: E731
    k = lambda lo=0.87, hi=1.15: rng.uniform(lo, hi)  # noqa: E731
    fat = k(0.8, 1.25)
    fig = _Figure(species)
    leg = 0.085 * k() * (1.15 if species == "dog" else 1.0)
    tail = 0.065 * k()
    if species == "cat":
        pose = ["sit_side", "sit_front", "lying", "walking", "curled"][rng.integers(5)]
        if pose == "sit_side":
            fig.ellipse(0, 0.05, 0.24 * fat, 0.36, j(-18, 5))
            fig.ellipse(-0.1, 0.27, 0.26 * fat, 0.2)
            fig.limb([(0.12, 0.05), (j(0.16), 0.5)], leg)
            fig.limb([(0.05, 0.08), (j(0.08), 0.5)], leg)
            fig.head = (j(0.13), j(-0.38), 0.19 * k())
            c = rng.choice([-1, 1])
            fig.limb([(-0.3, 0.38), (-0.05, 0.52 + 0.05 * c), (j(0.25, 0.05), j(0.48, 0.05))], tail)
            frontal, turn = False, 0.3
        elif pose == "sit_front":
            fig.ellipse(0, 0.1, 0.27 * fat, 0.34)
            fig.limb([(-0.08, 0.1), (-0.09, 0.5)], leg)
            fig.limb([(0.08, 0.1), (0.09, 0.5)], leg)
            fig.head = (j(0.0), j(-0.34), 0.2 * k())
            fig.limb([(0.2, 0.38), (j(0.38, 0.04), j(0.45, 0.04)), (j(0.42, 0.05), j(0.2, 0.06))], tail)
            frontal, turn = True, 0.0
        elif pose == "lying":
            fig.ellipse(0, 0, 0.46, 0.2 * fat)
            fig.ellipse(-0.25, 0.04, 0.2, 0.17 * fat)
            fig.head = (j(0.44), j(-0.18), 0.18 * k())
            fig.limb([(0.3, 0.12), (j(0.62, 0.04), 0.18)], leg)
            fig.limb([(0.22, 0.14), (j(0.55, 0.04), 0.21)], leg)
            fig.limb([(-0.42, 0.08), (j(-0.65, 0.04), j(0.18, 0.05)), (j(-0.85, 0.05), j(0.1, 0.08))], tail)
            frontal, turn = False, 0.35
        elif pose == "walking":
            fig.ellipse(0, 0, 0.42, 0.16 * fat)
            stride = rng.uniform(-0.06, 0.06)
            for x0, dx in [(0.3, 0.06), (0.24, -0.04), (-0.3, -0.06), (-0.24, 0.06)]:
                fig.limb([(x0, 0.05), (x0 + dx + stride, j(0.47))], leg)
            fig.ellipse(0.38, -0.08, 0.14, 0.1, -30)
            fig.head = (j(0.5), j(-0.2), 0.16 * k())
            fig.limb([(-0.4, -0.04), (j(-0.6, 0.04), j(-0.25, 0.05)), (j(-0.58, 0.06), j(-0.5, 0.06))], tail)
            frontal, turn = False, 0.4
        else:  # curled up, head tucked in, tail around
            fig.ellipse(0, 0, 0.4 * fat, 0.3 * fat)
            fig.head = (j(0.22), j(-0.12), 0.19 * k())
            fig.limb([(-0.35, 0.05), (-0.2, 0.3 * fat), (0.15, 0.32 * fat), (j(0.35, 0.04), j(0.18, 0.04))], tail * 1.2)
            frontal, turn = True, 0.15
        _cat_ears(fig, rng, frontal)
    else:
        pose = ["standing", "sitting", "lying"][rng.integers(3)]
        if pose == "standing":
            fig.ellipse(0, 0, 0.42, 0.2 * fat)
            for x0, dx in [(0.3, 0.03), (0.22, -0.03), (-0.3, -0.03), (-0.22, 0.04)]:
                fig.limb([(x0, 0.05), (x0 + dx, j(0.47))], leg)
            fig.ellipse(0.36, -0.12, 0.13, 0.12, -45)
            fig.head = (j(0.48), j(-0.3), 0.16 * k())
            up = rng.uniform(-0.3, 0.1)
            fig.limb([(-0.4, -0.03), (j(-0.58), up)], tail * 0.8)
            frontal, turn = False, 0.5
        elif pose == "sitting":
            fig.ellipse(0, 0.05, 0.22 * fat, 0.36, j(-15, 5))
            fig.ellipse(-0.1, 0.3, 0.25 * fat, 0.18)
            fig.limb([(0.12, 0.0), (j(0.15), 0.56)], leg)
            fig.limb([(0.05, 0.02), (j(0.07), 0.56)], leg)
            fig.head = (j(0.1), j(-0.42), 0.16 * k())
            fig.limb([(-0.3, 0.42), (j(-0.52), j(0.46))], tail * 0.8)
            frontal = bool(rng.random() < 0.4)
            turn = 0.0 if frontal else 0.5
            if frontal:
                fig.head = (0.06, fig.head[1], fig.head[2])
        else:
            fig.ellipse(0, 0, 0.5, 0.18 * fat)
            fig.ellipse(-0.28, 0.03, 0.2, 0.16 * fat)
            fig.head = (j(0.5), j(-0.1), 0.15 * k())
            fig.limb([(0.3, 0.12), (j(0.74, 0.04), 0.17)], leg)
            fig.limb([(0.22, 0.14), (j(0.68, 0.04), 0.2)], leg)
            fig.limb([(-0.48, 0.05), (j(-0.78, 0.04), j(0.1, 0.05))], tail * 0.8)
            frontal, turn = False, 0.5
        _dog_head(fig, rng, frontal)
    hx, hy, r = fig.head
    fig.blobs.append(_ellipse_points(hx, hy, r * 1.05, r))
    fig.face_turn = turn
    return fig


@dataclass
class _Placed:
    """A figure placed in the image: local (u, v) -> image (x, y) = matrix @ (u, v) + offset."""

    figure: _Figure
    matrix: np.ndarray
    offset: np.ndarray
    scale: float  # image pixels per local unit

    def to_image(self, points) -> np.ndarray:
        return np.asarray(points, np.float64) @ self.matrix.T + self.offset

    def to_local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inv = np.linalg.inv(self.matrix)
        dx, dy = x - self.offset[0], y - self.offset[1]
        return inv[0, 0] * dx + inv[0, 1] * dy, inv[1, 0] * dx + inv[1, 1] * dy


def _silhouette_polygon(placed: _Placed, width: int, height: int, supersample: int = 2) -> np.ndarray | None:
    """Draw the figure's parts, trace the outline, simplify it, clip it to the image."""
    fig, s = placed.figure, placed.scale
    shapes = [placed.to_image(b) for b in fig.blobs]
    limbs = [(placed.to_image(p), w * s) for p, w in fig.limbs]
    allpts = np.concatenate(shapes + [p for p, _ in limbs])
    pad = max([w for _, w in limbs] + [2.0]) + 2
    x0, y0 = np.floor(allpts.min(0) - pad)
    x1, y1 = np.ceil(allpts.max(0) + pad)
    ss = supersample
    canvas = Image.new("L", (int((x1 - x0) * ss), int((y1 - y0) * ss)), 0)
    draw = ImageDraw.Draw(canvas)

    def local(p):
        return [((x - x0) * ss, (y - y0) * ss) for x, y in p]

    for shape in shapes:
        draw.polygon(local(shape), fill=1)
    for points, w in limbs:
        pts = local(points)
        draw.line(pts, fill=1, width=max(int(round(w * ss)), 1), joint="curve")
        for x, y in pts:  # round caps
            r = w * ss / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill=1)
    mask = np.asarray(canvas, bool)
    poly = _outline_polygon(mask, ss, (x0, y0))
    if len(poly) < 3:
        return None
    clipped = _clip_polygon(poly, width, height)
    if len(clipped) < 3 or _polygon_area(clipped) < 60:
        return None
    return clipped


# ------------------------------------------------------------------------------------------
# Painting


_FUR_CROPS = [(165, 0, 300, 75), (30, 20, 140, 90), (200, 140, 300, 215), (20, 150, 130, 260)]


@functools.lru_cache(maxsize=None)
def _fur_detail(index: int) -> np.ndarray:
    """High-pass luminance of a patch of real fur (Chelsea), about zero mean, (h, w)."""
    x0, y0, x1, y1 = _FUR_CROPS[index]
    lum = _luminance(_source("chelsea")[y0:y1, x0:x1])
    detail = lum / np.maximum(_blur(lum, 6.0), 1e-3) - 1.0
    detail = np.clip(detail, -0.5, 0.5)
    detail.flags.writeable = False
    return detail


def _sample_detail(rng: np.random.Generator, height: int, width: int, step: float) -> np.ndarray:
    """Tile a fur-detail patch (mirrored, no seams) over an (H, W) region, `step` patch px per px."""
    detail = _fur_detail(int(rng.integers(len(_FUR_CROPS))))
    h, w = detail.shape
    oy, ox = rng.integers(0, h), rng.integers(0, w)
    yy = (np.arange(height) * step + oy).astype(np.int64) % (2 * h)
    xx = (np.arange(width) * step + ox).astype(np.int64) % (2 * w)
    yy = np.where(yy >= h, 2 * h - 1 - yy, yy)
    xx = np.where(xx >= w, 2 * w - 1 - xx, xx)
    return detail[yy[:, None], xx[None, :]]


_CAT_COATS = ["tabby", "tabby", "mackerel", "solid", "solid", "bicolour", "calico", "spotted", "pointed"]
_CAT_COLOURS = ["ginger", "cream", "tabby", "chocolate", "grey", "dark", "black", "white"]
_DOG_COATS = ["solid", "solid", "bicolour", "spotted", "saddle"]
_DOG_COLOURS = ["golden", "ginger", "chocolate", "black", "white", "cream", "grey", "tabby"]


def _coat(rng: np.random.Generator, species: str, u: np.ndarray, v: np.ndarray,
          scale: float) -> np.ndarray:
    """Fur colour (H, W, 3) at local coordinates (u, v) of the region."""
    h, w = u.shape
    coats, colours = (_CAT_COATS, _CAT_COLOURS) if species == "cat" else (_DOG_COATS, _DOG_COLOURS)
    coat = coats[rng.integers(len(coats))]
    base = _jitter_colour(rng, FUR[colours[rng.integers(len(colours))]])
    dark = base * rng.uniform(0.3, 0.5)
    white = _jitter_colour(rng, FUR["white"], 0.04)
    rgb = np.broadcast_to(base, (h, w, 3)).copy()
    # noise in local units so patterns scale with the animal
    cell = max(scale * 0.08, 2.0)
    n1 = _noise(rng, h, w, cell)
    if coat in ("tabby", "mackerel"):
        freq = rng.uniform(6, 9) if coat == "mackerel" else rng.uniform(4, 6.5)
        phase = 2 * np.pi * (u * freq + 0.25 * n1 + 0.3 * v * rng.uniform(-1, 1))
        stripe = _smoothstep(0.25, 0.75, np.sin(phase))
        if coat == "tabby":  # blotchy: stripes broken by noise
            stripe *= _smoothstep(-0.6, 0.2, _noise(rng, h, w, cell * 1.5))
        rgb = rgb * (1 - stripe[..., None]) + dark * stripe[..., None]
    elif coat == "spotted":
        spots = _smoothstep(0.7, 1.1, _noise(rng, h, w, max(scale * 0.04, 1.5)))
        spot_colour = dark if species == "cat" or rng.random() < 0.6 else FUR["chocolate"]
        if species == "dog" and rng.random() < 0.6:
            rgb = np.broadcast_to(white, (h, w, 3)).copy()  # dalmatian-like
        rgb = rgb * (1 - spots[..., None]) + np.asarray(spot_colour) * spots[..., None]
    elif coat == "calico":
        patches = _noise(rng, h, w, cell * 2.5)
        orange = _jitter_colour(rng, FUR["ginger"])
        black = _jitter_colour(rng, FUR["black"])
        t1 = _smoothstep(-0.25, 0.05, patches)[..., None]
        t2 = _smoothstep(0.45, 0.75, patches)[..., None]
        rgb = white * (1 - t1) + orange * t1
        rgb = rgb * (1 - t2) + black * t2
    elif coat == "pointed":  # siamese: cream body, dark face, legs and tail
        rgb = np.broadcast_to(_jitter_colour(rng, FUR["cream"]), (h, w, 3)).copy()
        points = _smoothstep(0.3, 0.55, np.hypot(u * 0.9, v * 1.1) + 0.05 * n1)[..., None]
        rgb = rgb * (1 - points) + _jitter_colour(rng, FUR["chocolate"]) * points
    elif coat == "saddle":  # tan dog with a black back
        back = _smoothstep(0.02, -0.05, v + 0.04 * n1 - 0.0)[..., None] * (np.abs(u) < 0.42)[..., None]
        rgb = rgb * (1 - back) + _jitter_colour(rng, FUR["black"]) * back
    if coat == "bicolour" or (coat == "solid" and rng.random() < 0.3):
        belly = _smoothstep(0.06, 0.14, v + 0.05 * n1)[..., None]  # white chest, belly and paws
        rgb = rgb * (1 - belly) + white * belly
    # mottling and real fur grain
    rgb = rgb * (1 + 0.06 * n1[..., None])
    grain = _sample_detail(rng, h, w, rng.uniform(0.6, 1.2))
    amount = rng.uniform(0.45, 0.8) if species == "cat" else rng.uniform(0.25, 0.45)
    strands = _strands(rng, u, v, scale)
    strength = rng.uniform(0.3, 0.4) if species == "cat" else rng.uniform(0.12, 0.2)
    # multiplicative, plus a little additive sheen so that black fur shows its strands too
    return (rgb * (1 + amount * grain[..., None] + strength * strands[..., None])
            + 0.25 * strength * strands[..., None])


def _strands(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
    """Fur strands: noise stretched along the body axis, a few pixels wide. (H, W), about [-1, 1]."""
    grid = rng.standard_normal((97, 97)).astype(np.float32)
    grid[96, :], grid[:, 96] = grid[0, :], grid[:, 0]  # periodic: no seam where it wraps
    gx = u * (scale / rng.uniform(10, 16)) % 96     # strands ~13 px long...
    gy = v * (scale / rng.uniform(3.0, 4.5)) % 96   # ... and ~4 px wide
    x0 = np.minimum(np.floor(gx).astype(np.int64), 95)
    y0 = np.minimum(np.floor(gy).astype(np.int64), 95)
    fx, fy = gx - x0, gy - y0
    top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
    bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
    return np.clip((top * (1 - fy) + bottom * fy) * 0.6, -1, 1)


def _paint_disc(rgb: np.ndarray, cx: float, cy: float, rx: float, ry: float, colour,
                soft: float = 0.7, angle: float = 0.0) -> None:
    """Blend an antialiased ellipse of `colour` into rgb (in place)."""
    h, w = rgb.shape[:2]
    r = max(rx, ry) + 2
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, w)
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ca, sa = math.cos(angle), math.sin(angle)
    dx, dy = xx - cx, yy - cy
    ux, uy = (dx * ca + dy * sa) / max(rx, 0.3), (-dx * sa + dy * ca) / max(ry, 0.3)
    d = (np.sqrt(ux * ux + uy * uy) - 1) * min(rx, ry)
    a = np.clip(0.5 - d / max(soft, 0.3), 0, 1)[..., None]
    rgb[y0:y1, x0:x1] = rgb[y0:y1, x0:x1] * (1 - a) + np.asarray(colour, np.float32) * a


def _paint_face(rgb: np.ndarray, rng: np.random.Generator, placed: _Placed, origin) -> None:
    fig = placed.figure
    hx, hy, r = fig.head
    (cx, cy), = placed.to_image([(hx, hy)]) - np.asarray(origin)
    rp = r * placed.scale
    if rp < 5:
        return
    flip = np.sign(placed.matrix[0, 0] * placed.matrix[1, 1] - placed.matrix[0, 1] * placed.matrix[1, 0])
    forward = placed.matrix[:, 0] / np.hypot(*placed.matrix[:, 0])  # image direction of +u
    down = placed.matrix[:, 1] / np.hypot(*placed.matrix[:, 1])
    angle = math.atan2(forward[1], forward[0]) if flip > 0 else math.atan2(-forward[1], -forward[0])
    turn = fig.face_turn
    if fig.species == "cat":
        iris = _jitter_colour(rng, [(0.75, 0.7, 0.2), (0.5, 0.65, 0.25), (0.35, 0.55, 0.7),
                                    (0.8, 0.55, 0.15)][rng.integers(4)], 0.05)
        eye_rx, eye_ry = 0.19 * rp, 0.15 * rp
    else:
        iris = _jitter_colour(rng, (0.3, 0.18, 0.1), 0.04)
        eye_rx = eye_ry = 0.12 * rp
    for side in (-1, 1):
        e = np.array([cx, cy]) + forward * rp * (0.4 * side + 0.35 * turn) - down * rp * 0.12
        if turn > 0.3 and side == -1:
            e = e + forward * rp * 0.15  # far eye, foreshortened
        _paint_disc(rgb, e[0], e[1], eye_rx * (0.7 if (turn > 0.3 and side == -1) else 1), eye_ry,
                    iris, angle=angle)
        if fig.species == "cat":
            _paint_disc(rgb, e[0], e[1], eye_rx * 0.25, eye_ry * 0.9, (0.03, 0.03, 0.03), angle=angle)
        else:
            _paint_disc(rgb, e[0], e[1], eye_rx * 0.6, eye_ry * 0.6, (0.03, 0.02, 0.02))
        _paint_disc(rgb, e[0] - 0.3 * eye_rx, e[1] - 0.4 * eye_ry, 0.22 * eye_rx, 0.22 * eye_ry,
                    (0.95, 0.95, 0.95))
    if fig.species == "cat":
        n = np.array([cx, cy]) + forward * rp * 0.35 * turn + down * rp * 0.3
        _paint_disc(rgb, n[0], n[1], 0.11 * rp, 0.08 * rp, _jitter_colour(rng, (0.8, 0.5, 0.5), 0.05))
        for tri in fig.inner_ears:
            pts = placed.to_image(tri) - np.asarray(origin)
            layer = Image.new("L", (rgb.shape[1], rgb.shape[0]), 0)
            ImageDraw.Draw(layer).polygon([tuple(p) for p in pts], fill=255)
            a = (np.asarray(layer, np.float32) / 255 * 0.7)[..., None]
            rgb[:] = rgb * (1 - a) + np.array([0.78, 0.55, 0.52], np.float32) * a
    else:
        for ear in fig.inner_ears:
            pts = placed.to_image(ear) - np.asarray(origin)
            layer = Image.new("L", (rgb.shape[1], rgb.shape[0]), 0)
            ImageDraw.Draw(layer).polygon([tuple(p) for p in pts], fill=255)
            rgb *= 1 - (np.asarray(layer, np.float32) / 255 * 0.4)[..., None]
    if fig.snout is not None:
        (nx, ny), = placed.to_image([fig.snout]) - np.asarray(origin)
        _paint_disc(rgb, nx, ny, 0.16 * rp, 0.12 * rp, (0.06, 0.05, 0.05))


def _place_figure(rng: np.random.Generator, figure: _Figure, width: int, height: int,
                  size_frac: float, centre: tuple[float, float]) -> _Placed:
    s = size_frac * min(width, height)  # body length in pixels (about the figure's extent)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    angle = math.radians(rng.normal(0, 10))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = rot @ np.diag([flip * s, s])
    return _Placed(figure, matrix, np.asarray(centre, np.float64), s)


def _paint_animal(canvas: np.ndarray, rng: np.random.Generator, placed: _Placed,
                  polygon: np.ndarray, floor_shadow: bool) -> np.ndarray:
    """Paint the animal through its label polygon; returns the polygon's (H, W) bool mask."""
    h, w = canvas.shape[:2]
    mask = _polygon_mask([tuple(p) for p in polygon], w, h)
    if floor_shadow:
        _shadow(canvas, mask, rng.uniform(0.25, 0.45), placed.scale * 0.05,
                (int(placed.scale * 0.04), int(placed.scale * rng.uniform(-0.05, 0.05))))
    ys, xs = np.nonzero(mask)
    m = 4
    y0, y1 = max(ys.min() - m, 0), min(ys.max() + m + 1, h)
    x0, x1 = max(xs.min() - m, 0), min(xs.max() + m + 1, w)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u, v = placed.to_local(xx, yy)
    rgb = _coat(rng, placed.figure.species, u.astype(np.float32), v.astype(np.float32), placed.scale)
    region = mask[y0:y1, x0:x1]
    light = 1.08 - 0.16 * (yy - y0) / max(y1 - y0, 1)  # lit from above
    rgb = rgb * (_rim_shading(region, placed.scale) * light.astype(np.float32))[..., None]
    # Backlit fur: a thin light fringe along the outline (a subtle cue no other object has).
    fringe = np.clip((0.9 - _blur(region.astype(np.float32), 2.0)) * 3, 0, 1) * region
    rgb = rgb + (rng.uniform(0.22, 0.32) * fringe)[..., None] * (1.1 - rgb)
    _paint_face(rgb, rng, placed, (x0, y0))
    alpha = _soft(mask)[y0:y1, x0:x1]
    _composite(canvas[y0:y1, x0:x1], np.clip(rgb, 0, 1), alpha)
    return mask


# ------------------------------------------------------------------------------------------
# Backgrounds and distractors


def _ramp_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    c = _palette_colour(rng)
    return c * rng.uniform(0.3, 0.6), np.clip(c * rng.uniform(1.0, 1.25), 0, 1)


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A background texture filling (H, W, 3)."""
    choice = rng.choice(["photo", "photo", "tinted", "tinted", "stripes", "plaid", "wall", "tiles"])
    if choice == "photo":
        name = rng.choice(["coffee", "coffee", "astronaut", "rocket", "retina", "hubble"])
        out = _crop(rng, _source(str(name)), width, height, (0.3, 0.9))
        if rng.random() < 0.6:
            out = _blur(out, rng.uniform(1.5, 4.0))  # shallow depth of field
        return out
    if choice == "tinted":
        name = str(rng.choice(["brick", "grass", "gravel", "camera", "coins", "coffee"]))
        gray = _luminance(_crop(rng, _source(name), width, height, (0.25, 0.8)))
        # Grass and gravel in focus look much like fur: mostly out of focus, as behind a pet.
        if name in ("grass", "gravel") or rng.random() < 0.5:
            gray = _blur(gray, rng.uniform(2.0, 5.0))
        return _tint(gray, *_ramp_pair(rng))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a = rng.uniform(0, np.pi)
    t = xx * math.cos(a) + yy * math.sin(a)
    c1, c2 = _palette_colour(rng), _palette_colour(rng)
    warp = _noise(rng, height, width, 40) * rng.uniform(0, 6)
    if choice == "stripes":
        period = rng.uniform(12, 60)
        s = _smoothstep(-0.2, 0.2, np.sin(2 * np.pi * (t + warp) / period))[..., None]
        out = c1 * s + c2 * (1 - s)
    elif choice == "plaid":
        period = rng.uniform(20, 70)
        t2 = -xx * math.sin(a) + yy * math.cos(a)
        s1 = _smoothstep(0.3, 0.6, np.sin(2 * np.pi * t / period))
        s2 = _smoothstep(0.3, 0.6, np.sin(2 * np.pi * t2 / period))
        out = c1 * (1 - 0.35 * (s1 + s2)[..., None]) + c2 * (0.35 * (s1 + s2)[..., None])
    elif choice == "tiles":
        period = rng.uniform(25, 80)
        t2 = -xx * math.sin(a) + yy * math.cos(a)
        grout = np.minimum(np.abs(((t / period) % 1) - 0.5), np.abs(((t2 / period) % 1) - 0.5))
        line = _smoothstep(0.46, 0.49, 0.5 - grout)[..., None]
        out = c1 * (1 - line) + c1 * 0.5 * line
        out = out * (1 + 0.08 * _noise(rng, height, width, period / 2)[..., None])
    else:  # a painted wall: one colour, soft light falloff, plaster grain
        n = _noise(rng, height, width, rng.uniform(60, 150))
        out = c1 * (1 + 0.08 * n)[..., None]
    # cloth/fibre grain
    grain = rng.standard_normal((height, width)).astype(np.float32)
    return out * (1 + rng.uniform(0.02, 0.08) * _blur(grain, 0.7)[..., None])


def _background(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, bool]:
    """(H, W, 3) background and whether it has a floor (for shadows)."""
    if rng.random() < 0.45:  # a room: wall above, floor below
        horizon = int(height * rng.uniform(0.2, 0.65))
        wall = _texture(rng, horizon + 1, width) if horizon > 0 else None
        floor = _texture(rng, height - horizon, width)
        out = np.concatenate([wall[:horizon], floor], 0) if horizon > 0 else floor
        out[max(horizon - 2, 0):horizon + 2] *= 0.8  # skirting shadow
        floor_shadow = True
    else:
        out = _texture(rng, height, width)
        floor_shadow = bool(rng.random() < 0.6)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    grad = ((xx - width / 2) * math.cos(a) + (yy - height / 2) * math.sin(a)) / max(width, height)
    out = out * (1 + rng.uniform(0.1, 0.4) * grad)[..., None]
    return np.clip(out, 0, 1).astype(np.float32), floor_shadow


def _blob_polygon(rng: np.random.Generator, cx, cy, r, lumpy: float) -> Polygon:
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    radius = np.ones_like(t)
    for k in range(2, 6):
        radius += lumpy / k * rng.normal() * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    radius = r * np.clip(radius, 0.45, 1.6)
    a = rng.uniform(0, np.pi)
    ex = rng.uniform(0.6, 1.0)
    x, y = radius * np.cos(t) * ex, radius * np.sin(t)
    return list(zip(cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)))


def _distractor(canvas: np.ndarray, rng: np.random.Generator, floor_shadow: bool) -> None:
    """Paint one non-animal object, mostly in fur colours: a cushion, a ball, a blob (a bag, a
    loaf, a sweater) or a round cut-out of a photo (a plate, a coin, a print)."""
    h, w = canvas.shape[:2]
    kind = rng.choice(["cushion", "cushion", "ball", "ball", "ball", "blob", "blob", "photo", "photo", "photo"])
    r = rng.uniform(0.08, 0.3) * min(w, h)
    cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(0.1, 1.1) * h
    colour = _palette_colour(rng, other=0.15)
    if kind == "cushion":
        p = rng.uniform(3, 5)
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        ct, st = np.cos(t), np.sin(t)
        ax, ay = r * rng.uniform(1.0, 1.6), r * rng.uniform(0.6, 1.0)
        x = ax * np.sign(ct) * np.abs(ct) ** (2 / p)
        y = ay * np.sign(st) * np.abs(st) ** (2 / p)
        a = rng.normal(0, 0.4)
        poly = list(zip(cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)))
    elif kind == "ball":
        poly = _ellipse_points(cx, cy, r * 0.7, r * 0.7, 0, 64)
    elif kind == "photo":  # a plate, a coin, a framed print: round or rounded objects
        poly = _ellipse_points(cx, cy, r * rng.uniform(0.7, 1.1), r * rng.uniform(0.5, 0.9), rng.uniform(0, 180), 64)
    else:
        poly = _blob_polygon(rng, cx, cy, r, rng.uniform(0.2, 0.6))
    mask = _polygon_mask(poly, w, h)
    if mask.sum() < 20:
        return
    if floor_shadow:
        _shadow(canvas, mask, rng.uniform(0.2, 0.4), r * 0.08, (int(r * 0.08), 0))
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    hh, ww = y1 - y0, x1 - x0
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    if kind == "ball":
        rr = r * 0.7
        dx, dy = (xx - cx) / rr, (yy - cy) / rr
        nz = np.sqrt(np.clip(1 - dx * dx - dy * dy, 0, 1))
        lambert = np.clip(-0.45 * dx - 0.55 * dy + 0.7 * nz, 0, 1)
        rgb = np.broadcast_to(colour, (hh, ww, 3)).copy()
        if rng.random() < 0.5:  # a band or seam in a second colour
            band = _smoothstep(0.3, 0.4, np.abs(np.sin(3 * np.arctan2(dy, dx) + rng.uniform(0, 6))))
            rgb = rgb * band[..., None] + _palette_colour(rng) * (1 - band[..., None])
        spec = _smoothstep(0.85, 0.98, lambert) * rng.uniform(0.1, 0.4)
        rgb = rgb * (0.35 + 0.8 * lambert)[..., None] + spec[..., None]
    else:
        if kind == "cushion":
            weave = np.sin(xx * rng.uniform(1.5, 2.5)) * np.sin(yy * rng.uniform(1.5, 2.5))
            rgb = colour * (1 + 0.07 * weave)[..., None]
            if rng.random() < 0.5:
                stripes = _smoothstep(-0.2, 0.2, np.sin((xx + yy * rng.uniform(-1, 1)) / rng.uniform(4, 12)))
                rgb = rgb * (1 - 0.35 * stripes[..., None])
        elif kind == "photo":
            name = str(rng.choice(["retina", "astronaut", "coffee", "coins", "brick"]))
            src = _crop(rng, _source(name), ww, hh, (0.2, 0.6))
            rgb = src if name in ("retina", "astronaut", "coffee") else _tint(_luminance(src), *_ramp_pair(rng))
        else:
            rgb = colour * (1 + 0.12 * _noise(rng, hh, ww, rng.uniform(4, 20)))[..., None]
        rgb = rgb * _rim_shading(mask[y0:y1, x0:x1], r * 2)[..., None]
    _composite(canvas[y0:y1, x0:x1], np.clip(rgb, 0, 1), _soft(mask)[y0:y1, x0:x1])


# ------------------------------------------------------------------------------------------
# One scene


def _image_size(rng: np.random.Generator) -> tuple[int, int]:
    long_side = int(rng.integers(240, 381))
    short_side = max(200, int(long_side / rng.uniform(1.0, 1.6)))
    return (long_side, short_side) if rng.random() < 0.6 else (short_side, long_side)


def _shape_record(label: str, polygon: np.ndarray) -> dict:
    return {
        "label": label,
        "points": [[round(float(x), 2), round(float(y), 2)] for x, y in polygon],
        "group_id": None,
        "description": "",
        "shape_type": "polygon",
        "flags": {},
        "mask": None,
    }


def _render_scene(rng: np.random.Generator, kind: str) -> tuple[Image.Image, list[dict]]:
    width, height = _image_size(rng)
    canvas, floor_shadow = _background(rng, height, width)
    for _ in range(int(rng.choice([0, 0, 1, 1, 1, 2, 2, 3]))):
        _distractor(canvas, rng, floor_shadow)

    # cats: 1/8 of the photos without a cat, 1/4 with two; pets: 1/6 without, 1/3 with two
    count = int(rng.choice([0, 1, 1, 1, 1, 1, 2, 2])) if kind == "cats" else int(rng.choice([0, 1, 1, 1, 2, 2]))
    shapes = []
    for i in range(count):
        species = "cat" if kind == "cats" else str(rng.choice(["cat", "dog"]))
        figure = _pose(rng, species)
        small = rng.random() < 0.05
        size_frac = rng.uniform(0.3, 0.5) if small else rng.uniform(1.0, 1.6) / (1 + 0.25 * (count - 1))
        if rng.random() < 0.15:  # cut by the image border
            edge = rng.integers(4)
            cx = [rng.uniform(-0.05, 0.1), rng.uniform(0.9, 1.05), rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)][edge]
            cy = [rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(-0.05, 0.15), rng.uniform(0.85, 1.05)][edge]
        else:
            cx, cy = rng.uniform(0.2, 0.8), rng.uniform(0.25, 0.75)
        placed = _place_figure(rng, figure, width, height, size_frac, (cx * width, cy * height))
        polygon = _silhouette_polygon(placed, width, height)
        if polygon is None:
            continue
        polygon = np.round(polygon, 2)  # what the JSON stores is what is painted
        _paint_animal(canvas, rng, placed, polygon, floor_shadow)
        shapes.append(_shape_record(species, polygon))

    # camera: white balance, exposure, sensor noise
    canvas *= (rng.uniform(0.88, 1.12) * (1 + rng.normal(0, 0.03, 3))).astype(np.float32)
    canvas += rng.normal(0, rng.uniform(0.002, 0.008), canvas.shape).astype(np.float32)
    pixels = (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(pixels, "RGB"), shapes
