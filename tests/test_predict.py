"""segkit.predict: loading photos, probabilities and masks at the photo's size, folders, overlays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from segkit.model import UNet
from segkit.predict import (
    blend_overlay,
    colorize,
    draw_contours,
    load_image,
    load_mask,
    predict_batch,
    predict_folder,
    predict_mask,
    predict_proba,
    predict_proba_batch,
    probs_to_mask,
)

GREEN, RED = (0, 128, 0), (128, 0, 0)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # Tiny convolutions on a loaded 2-core machine are far slower with 2 OpenMP threads than with 1.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_unet(num_classes: int = 1) -> UNet:
    torch.manual_seed(0)
    return UNet(num_classes=num_classes, base_features=4, depth=2)


def random_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


class RedIsForeground(nn.Module):
    """A 'model' whose foreground logit is large where the input is red: predictions show geometry."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] - 0.5) * 40 + self.offset


class FixedLogits(nn.Module):
    """Returns the same (1, C, 2, 2) logits whatever the (2x2) input."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2:] == self.logits.shape[-2:], "predict must feed the network image_size"
        return self.logits.expand(x.shape[0], -1, -1, -1)


# --------------------------------------------------------------------------------------------
# load_image / load_mask
# --------------------------------------------------------------------------------------------

def test_load_image_accepts_path_pil_array_tensor_alike(tmp_path):
    pixels = random_photo(9, 13)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    tensor = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    for source in (path, str(path), Image.fromarray(pixels), pixels, pixels / 255.0, tensor):
        image = load_image(source)
        assert image.mode == "RGB" and image.size == (13, 9)
        np.testing.assert_array_equal(np.asarray(image), pixels)


def test_load_image_converts_other_modes_to_rgb():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    assert np.asarray(load_image(gray)).shape == (3, 4, 3)
    np.testing.assert_array_equal(np.asarray(load_image(Image.fromarray(gray)))[..., 1], gray)
    rgba = Image.fromarray(random_photo(5, 6)).convert("RGBA")
    assert load_image(rgba).mode == "RGB"
    sixteen = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))  # 16-bit white stays white, not clipped garbage
    assert np.asarray(load_image(sixteen)).min() == 255
    assert np.asarray(load_image(Image.fromarray(np.full((4, 4), 257 * 100, dtype=np.uint16)))).max() == 100


def test_load_image_applies_exif_orientation(tmp_path):
    image = Image.fromarray(random_photo(20, 30))  # 30 wide, 20 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif)
    assert load_image(path).size == (20, 30)


def test_load_image_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        load_image(tmp_path / "missing.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(ValueError, match="notes.jpg"):
        load_image(text)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_image(np.full((4, 4, 3), 2.0))
    with pytest.raises(TypeError, match="astype"):
        load_image(np.zeros((4, 4, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="transpose"):
        load_image(np.zeros((3, 4, 5), dtype=np.uint8))
    with pytest.raises(TypeError):
        load_image(42)


def test_load_mask_refuses_probabilities_and_bad_values():
    np.testing.assert_array_equal(load_mask(torch.tensor([[0, 1], [2, 255]])), [[0, 1], [2, 255]])
    np.testing.assert_array_equal(load_mask(torch.ones(1, 2, 2), allow_float=True), np.ones((2, 2)))
    with pytest.raises(TypeError, match="probs_to_mask"):
        load_mask(np.full((2, 2), 0.7))
    with pytest.raises(TypeError):
        load_mask(np.ones((2, 2)))  # float, even if whole, unless allowed
    with pytest.raises(ValueError, match="0..255"):
        load_mask(np.array([[0, 256]]))
    with pytest.raises(ValueError, match="0..255"):
        load_mask(np.array([[-1, 0]]))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        load_mask(np.zeros((2, 3, 4), dtype=np.uint8))


# --------------------------------------------------------------------------------------------
# predict_proba / predict_mask
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width", [(97, 131), (640, 1024), (31, 17)])
def test_binary_probabilities_come_back_at_the_photo_size(height, width):
    probs = predict_proba(tiny_unet(), random_photo(height, width), image_size=32)
    assert probs.shape == (height, width) and probs.dtype == np.float32
    assert 0.0 <= probs.min() and probs.max() <= 1.0
    mask = predict_mask(tiny_unet(), random_photo(height, width), image_size=32)
    assert mask.shape == (height, width) and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) <= {0, 1}


def test_multiclass_probabilities_sum_to_one_and_masks_hold_valid_classes():
    model = tiny_unet(num_classes=4)
    photo = random_photo(45, 70)
    probs = predict_proba(model, photo, image_size=24)
    assert probs.shape == (4, 45, 70) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    mask = predict_mask(model, photo, image_size=24)
    assert mask.shape == (45, 70) and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(mask, probs.argmax(axis=0))


def test_image_size_none_and_pairs():
    model = tiny_unet()
    photo = random_photo(37, 45)
    assert predict_proba(model, photo, image_size=None).shape == (37, 45)  # UNet pads 37x45 itself
    assert predict_proba(model, photo, image_size=(16, 24)).shape == (37, 45)
    with pytest.raises(ValueError, match="image_size"):
        predict_proba(model, photo, image_size="big")


def test_same_prediction_from_path_pil_and_array(tmp_path):
    model = tiny_unet()
    pixels = random_photo(33, 50)
    path = tmp_path / "p.png"
    Image.fromarray(pixels).save(path)
    reference = predict_proba(model, pixels, image_size=16)
    for source in (path, Image.fromarray(pixels)):
        np.testing.assert_array_equal(predict_proba(model, source, image_size=16), reference)


def test_higher_threshold_gives_a_subset_of_pixels():
    model = tiny_unet()
    photo = random_photo(40, 60, seed=3)
    probs = predict_proba(model, photo, image_size=16)
    previous = None
    for threshold in (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0):
        mask = predict_mask(model, photo, threshold=threshold, image_size=16).astype(bool)
        np.testing.assert_array_equal(mask, probs > threshold)
        if previous is not None:
            assert not (mask & ~previous).any()
        previous = mask
    assert not previous.any()  # nothing is above 1.0
    with pytest.raises(ValueError, match="threshold"):
        predict_mask(model, photo, threshold=1.5)


def test_probabilities_are_upsampled_before_thresholding():
    logits = torch.logit(torch.tensor([[[[0.9, 0.1], [0.1, 0.1]]]]))
    model = FixedLogits(logits)
    photo = random_photo(8, 8)
    probs = predict_proba(model, photo, image_size=2)
    expected = F.interpolate(torch.sigmoid(logits), size=(8, 8), mode="bilinear", align_corners=False)[0, 0]
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-6)
    # By hand: pixel (0, 3) sits 3/8 of the way from the 0.9 cell centre to the 0.1 one.
    assert probs[0, 3] == pytest.approx(0.9 - 0.375 * 0.8, abs=1e-6)
    mask = predict_mask(model, photo, image_size=2)
    np.testing.assert_array_equal(mask, (expected > 0.5).numpy())
    # Thresholding first and then resizing the mask (the reverse order) gives a 4x4 block instead.
    blocky = np.kron((torch.sigmoid(logits)[0, 0] > 0.5).numpy(), np.ones((4, 4), dtype=bool))
    assert blocky[3, 3] and not mask[3, 3]
    assert mask.sum() < blocky.sum()


def test_multiclass_argmax_happens_after_upsampling():
    # Class 2 wins only in the top-left cell; after bilinear upsampling its share shrinks.
    probs_small = torch.tensor([[[0.2, 0.6], [0.6, 0.6]], [[0.3, 0.4], [0.4, 0.4]], [[0.5, 0.0], [0.0, 0.0]]])
    model = FixedLogits(torch.log(probs_small.clamp_min(1e-6))[None])
    probs = predict_proba(model, random_photo(8, 8), image_size=2)
    expected = F.interpolate(torch.softmax(torch.log(probs_small.clamp_min(1e-6)), 0)[None], size=(8, 8),
                             mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-6)
    mask = predict_mask(model, random_photo(8, 8), image_size=2)
    np.testing.assert_array_equal(mask, expected.argmax(0).numpy())
    assert (mask == 2).sum() < 16  # not the 4x4 block a resized class-index mask would give


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_geometry_survives_resizing_a_non_square_photo(resize):
    photo = np.zeros((97, 131, 3), dtype=np.uint8)
    photo[:40, :, 0] = 255  # a red band across the top 40 rows
    mask = predict_mask(RedIsForeground(), photo, image_size=32, resize=resize)
    assert mask.shape == (97, 131)
    assert mask[:35].all(), "the red band must be found up to the photo's top edge"
    assert not mask[46:].any()


def test_predict_keeps_train_mode_and_device():
    model = tiny_unet()
    model.train()
    predict_mask(model, random_photo(20, 20), image_size=16, device="cpu")
    assert model.training
    model.eval()
    predict_mask(model, random_photo(20, 20), image_size=16)
    assert not model.training


def test_device_auto_moves_the_model_to_the_chosen_device():
    from segkit.train import select_device

    model = tiny_unet()
    mask = predict_mask(model, random_photo(20, 24), image_size=16, device="auto")
    assert mask.shape == (20, 24)
    assert next(model.parameters()).device.type == select_device("auto").type
    with pytest.raises(ValueError, match="device"):
        predict_mask(model, random_photo(8, 8), device="gpu0")


def test_predict_rejects_wrong_models():
    with pytest.raises(ValueError, match="3-channel"):
        predict_mask(UNet(in_channels=4, base_features=4, depth=2), random_photo(8, 8))
    with pytest.raises(TypeError, match="load_checkpoint"):
        predict_mask("runs/best.pt", random_photo(8, 8))
    with pytest.raises(ValueError, match="resize"):
        predict_proba(tiny_unet(), random_photo(8, 8), resize="crop")


def test_batched_prediction_matches_one_by_one():
    model = tiny_unet()
    photos = [random_photo(30, 41, seed=1), random_photo(64, 20, seed=2), random_photo(17, 17, seed=3)]
    batched = predict_proba_batch(model, photos, image_size=16, batch_size=2)
    for photo, probs in zip(photos, batched):
        np.testing.assert_allclose(probs, predict_proba(model, photo, image_size=16), atol=1e-5)
    masks = predict_batch(model, photos, image_size=16, batch_size=3)
    assert [m.shape for m in masks] == [(30, 41), (64, 20), (17, 17)]


def test_probs_to_mask():
    np.testing.assert_array_equal(probs_to_mask(np.array([[0.5, 0.51], [0.0, 1.0]])), [[0, 1], [0, 1]])
    np.testing.assert_array_equal(probs_to_mask(torch.tensor([[[0.7, 0.2]], [[0.3, 0.8]]])), [[0, 1]])
    with pytest.raises(ValueError):
        probs_to_mask(np.zeros((1, 2, 3, 4)))


# --------------------------------------------------------------------------------------------
# predict_folder
# --------------------------------------------------------------------------------------------

def make_folder(folder):
    folder.mkdir()
    Image.fromarray(random_photo(37, 53, seed=1)).save(folder / "cat1.jpg")
    Image.fromarray(random_photo(20, 30, seed=2)).save(folder / "cat2.png")
    (folder / "notes.txt").write_text("not a photo")
    (folder / "cat1.json").write_text("{}")
    return folder


def test_predict_folder_writes_masks_and_overlays_at_each_photo_size(tmp_path):
    folder = make_folder(tmp_path / "photos")
    out = tmp_path / "out"
    model = tiny_unet()
    results = predict_folder(model, folder, out, image_size=16, progress=False)
    assert [r["image"].name for r in results] == ["cat1.jpg", "cat2.png"]
    assert sorted(p.name for p in out.iterdir()) == ["cat1_mask.png", "cat1_overlay.jpg", "cat2_mask.png", "cat2_overlay.jpg"]
    for result, size in zip(results, [(53, 37), (30, 20)]):
        with Image.open(result["mask"]) as mask_file:
            assert mask_file.mode == "P" and mask_file.size == size
            mask = np.asarray(mask_file)
        with Image.open(result["overlay"]) as overlay:
            assert overlay.size == size and overlay.mode == "RGB"
        assert (result["width"], result["height"]) == size
        np.testing.assert_array_equal(mask, predict_mask(model, result["image"], image_size=16))
        assert sum(result["class_pixels"].values()) == size[0] * size[1]


def test_predict_folder_refuses_to_overwrite(tmp_path):
    folder = make_folder(tmp_path / "photos")
    out = tmp_path / "out"
    predict_folder(tiny_unet(), folder, out, image_size=16, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        predict_folder(tiny_unet(num_classes=3), folder, out, image_size=16, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    results = predict_folder(tiny_unet(num_classes=3), folder, out, image_size=16, overwrite=True,
                             progress=False, overlay_format="png")
    assert len(results) == 2 and (out / "cat1_overlay.png").is_file()


def test_predict_folder_inputs_and_errors(tmp_path):
    folder = make_folder(tmp_path / "photos")
    single = predict_folder(tiny_unet(), folder / "cat2.png", tmp_path / "one", image_size=16, progress=False)
    assert len(single) == 1
    # Writing into the input folder: the next run must not take the masks for photos.
    predict_folder(tiny_unet(), folder, folder, image_size=16, progress=False)
    again = predict_folder(tiny_unet(), folder, folder, image_size=16, progress=False, overwrite=True)
    assert len(again) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no photos"):
        predict_folder(tiny_unet(), empty, tmp_path / "o", progress=False)
    Image.fromarray(random_photo(8, 8)).save(folder / "cat1.png")
    with pytest.raises(ValueError, match="stem"):
        predict_folder(tiny_unet(), folder, tmp_path / "o2", progress=False)
    with pytest.raises(FileNotFoundError):
        predict_folder(tiny_unet(), tmp_path / "nowhere", tmp_path / "o3", progress=False)


# --------------------------------------------------------------------------------------------
# colorize / blend_overlay / draw_contours
# --------------------------------------------------------------------------------------------

def test_colorize_keeps_indices_and_uses_the_lesson_colours(tmp_path):
    mask = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    for source in (mask, torch.from_numpy(mask).long()):
        image = colorize(source)
        assert image.mode == "P"
        np.testing.assert_array_equal(np.asarray(image), mask)
        rgb = np.asarray(image.convert("RGB"))
        assert tuple(rgb[0, 0]) == (0, 0, 0) and tuple(rgb[0, 1]) == GREEN and tuple(rgb[1, 0]) == RED
    image.save(tmp_path / "m.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png"), mask)
    custom = np.asarray(colorize(np.array([[0, 1]]), palette=[(1, 2, 3), (4, 5, 6)]).convert("RGB"))
    assert custom.tolist() == [[[1, 2, 3], [4, 5, 6]]]


def test_colorize_errors():
    with pytest.raises(TypeError, match="integer class indices"):
        colorize(np.full((2, 2), 0.3, dtype=np.float32))
    with pytest.raises(ValueError, match="0..255"):
        colorize(np.array([[300]]))
    with pytest.raises(ValueError, match="palette has only 2"):
        colorize(np.array([[0, 3]]), palette=[(0, 0, 0), (0, 128, 0)])


def test_blend_overlay_pixel_math_by_hand():
    photo = np.array([[[100, 100, 100], [200, 50, 10]], [[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    mask = np.array([[1, 0], [2, 255]])
    out = np.asarray(blend_overlay(photo, mask, alpha=0.5))
    # 0.5 * photo + 0.5 * colour where labelled; background and ignore pixels untouched.
    assert out.tolist() == [[[50, 114, 50], [200, 50, 10]], [[64, 0, 0], [255, 255, 255]]]
    lesson = np.asarray(blend_overlay(photo, mask, alpha=0.5, blend_background=True))
    assert lesson[0, 1].tolist() == [100, 25, 5]  # the lesson's Image.blend also darkens background
    assert lesson[0, 0].tolist() == [50, 114, 50]
    np.testing.assert_array_equal(np.asarray(blend_overlay(photo, mask, alpha=0.0)), photo)
    full = np.asarray(blend_overlay(photo, mask, alpha=1.0))
    assert full[0, 0].tolist() == list(GREEN) and full[1, 0].tolist() == list(RED)


def test_blend_overlay_matches_pil_blend_inside_the_mask():
    photo = random_photo(6, 7)
    mask = np.random.default_rng(1).integers(0, 3, (6, 7))
    out = np.asarray(blend_overlay(photo, mask, alpha=0.3))
    reference = np.asarray(Image.blend(Image.fromarray(photo), colorize(mask).convert("RGB"), 0.3))
    labelled = mask > 0
    np.testing.assert_array_equal(out[labelled], reference[labelled])
    np.testing.assert_array_equal(out[~labelled], photo[~labelled])


def test_overlay_size_mismatch_says_how_to_fix():
    with pytest.raises(ValueError, match="predict_mask.*NEAREST"):
        blend_overlay(random_photo(10, 20), np.zeros((256, 256), dtype=np.uint8))
    with pytest.raises(ValueError, match="predict_mask"):
        draw_contours(random_photo(10, 20), np.zeros((20, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        blend_overlay(random_photo(2, 2), np.zeros((2, 2), dtype=np.uint8), alpha=30)


def square_ring(size: int, start: int, stop: int, width: int) -> np.ndarray:
    inside = np.zeros((size, size), dtype=bool)
    inside[start:stop, start:stop] = True
    core = np.zeros((size, size), dtype=bool)
    core[start + width:stop - width, start + width:stop - width] = True
    return inside & ~core


@pytest.mark.parametrize("width", [1, 2])
def test_draw_contours_draws_only_the_boundary(width):
    photo = np.full((12, 12, 3), 200, dtype=np.uint8)
    mask = np.zeros((12, 12), dtype=np.uint8)
    mask[3:9, 3:9] = 1
    out = np.asarray(draw_contours(photo, mask, width=width))
    changed = (out != photo).any(axis=2)
    np.testing.assert_array_equal(changed, square_ring(12, 3, 9, width))
    assert (out[changed] == GREEN).all()
    red = np.asarray(draw_contours(photo, mask, color=(255, 0, 0), width=width))
    assert (red[changed] == (255, 0, 0)).all()


def test_draw_contours_per_class_colours_and_photo_border():
    photo = np.full((10, 10, 3), 200, dtype=np.uint8)
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[:, :5] = 1  # touches the photo's top, bottom and left edges
    mask[2:8, 5:9] = 2
    out = np.asarray(draw_contours(photo, mask, width=1))
    assert tuple(out[5, 4]) == GREEN and tuple(out[5, 5]) == RED  # both sides of the shared edge
    assert tuple(out[5, 0]) == (200, 200, 200)  # no line along the photo's border
    assert tuple(out[5, 2]) == (200, 200, 200)  # interiors untouched
    ignored = np.full((10, 10), 255, dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(draw_contours(photo, ignored)), photo)
