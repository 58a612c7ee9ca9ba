"""segkit.predict: probabilities and masks at each photo's own size, batches, folders of photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from segkit.data import SegmentationFolder, letterbox_box, open_image, preprocess, read_mask
from segkit.draw import blend_overlay, default_palette
from segkit.model import UNet
from segkit.predict import predict_folder, predict_mask, predict_proba, probabilities_to_mask


def tiny_unet(num_classes: int = 1, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return UNet(num_classes=num_classes, base_features=4, depth=2)


def random_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


class RedIsForeground(nn.Module):
    """Foreground logit large where the input is red, so a prediction shows the photo's geometry."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] - 0.5) * 40 + self.offset


class ColourIsClass(nn.Module):
    """Three classes: 0 where red dominates, 1 green, 2 blue (logits = 40 * the channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(40.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class FixedLogits(nn.Module):
    """The same (1, C, h, w) logits whatever the input, which must be h x w (image_size)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2:] == self.logits.shape[-2:], "predict must feed the network image_size"
        return self.logits.expand(x.shape[0], -1, -1, -1)


class Recorder(nn.Module):
    """Keeps every batch it is given (and the mode it was in); answers zero logits on the CPU."""

    def __init__(self, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros((), device=device, dtype=dtype))
        self.inputs: list[torch.Tensor] = []
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x)
        self.modes.append(self.training)
        return torch.zeros(x.shape[0], 1, *x.shape[-2:])


def by_hand(model: nn.Module, photo, image_size, resize: str = "stretch") -> np.ndarray:
    """predict_proba's recipe written out: preprocess, model in eval mode, sigmoid/softmax, upsample."""
    photo = open_image(photo)
    model.eval()
    with torch.no_grad():
        logits = model(preprocess(photo, image_size, resize)[None])
    probs = torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)
    height, width = photo.height, photo.width
    shrinking = probs.shape[-2] > height or probs.shape[-1] > width
    probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking)[0]
    return probs[0].numpy() if probs.shape[0] == 1 else probs.numpy()


# --------------------------------------------------------------------------------------------
# predict_proba / predict_mask: sizes, value ranges, the recipe
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width", [(97, 131), (31, 17)])
def test_binary_probabilities_and_masks_come_back_at_the_photo_size(height, width):
    model = tiny_unet()
    photo = random_photo(height, width)
    probs = predict_proba(model, photo, image_size=32)
    assert probs.shape == (height, width) and probs.dtype == np.float32
    assert 0.0 <= probs.min() and probs.max() <= 1.0 and probs.std() > 0
    mask = predict_mask(model, photo, image_size=32)
    assert mask.shape == (height, width) and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, probs > 0.5)


def test_multiclass_probabilities_sum_to_one_and_the_mask_is_their_argmax():
    model = tiny_unet(num_classes=4)
    photo = random_photo(45, 70)
    probs = predict_proba(model, photo, image_size=24)
    assert probs.shape == (4, 45, 70) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    mask = predict_mask(model, photo, image_size=24)
    assert mask.shape == (45, 70) and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, probs.argmax(axis=0))


@pytest.mark.parametrize("num_classes", [1, 3])
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_predict_proba_is_the_model_on_preprocess_then_upsampled(num_classes, resize):
    model = tiny_unet(num_classes)
    photo = random_photo(40, 50, seed=4)  # larger than 16 x 24 both ways: upsampling only
    if resize == "stretch":
        expected = by_hand(model, photo, (16, 24), "stretch")
        np.testing.assert_allclose(predict_proba(model, photo, image_size=(16, 24)), expected, atol=1e-6)
    else:  # letterbox: the model's answer inside the photo's box, upsampled
        left, top, right, bottom = letterbox_box((50, 40), (16, 24))
        model.eval()
        with torch.no_grad():
            logits = model(preprocess(open_image(photo), (16, 24), "letterbox")[None])
        probs = torch.sigmoid(logits) if num_classes == 1 else torch.softmax(logits, dim=1)
        probs = F.interpolate(probs[..., top:bottom, left:right], size=(40, 50), mode="bilinear",
                              align_corners=False)[0]
        got = predict_proba(model, photo, image_size=(16, 24), resize="letterbox")
        np.testing.assert_allclose(got, probs[0].numpy() if num_classes == 1 else probs.numpy(), atol=1e-6)


def test_shrinking_is_antialiased_on_either_side():
    # A photo lower than the training size but wider: the height shrinks, the width grows.
    model = tiny_unet()
    photo = random_photo(10, 64, seed=5)
    got = predict_proba(model, photo, image_size=32)
    np.testing.assert_allclose(got, by_hand(model, photo, 32), atol=1e-6)


def test_the_network_reads_exactly_what_training_fed_it(tmp_path):
    # Training's SegmentationFolder and predict_proba must preprocess a photo identically.
    root = tmp_path / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    pixels = random_photo(37, 53, seed=6)
    Image.fromarray(pixels).save(root / "JPEGImages" / "a.png")
    Image.fromarray(np.zeros((37, 53), dtype=np.uint8)).save(root / "SegmentationClass" / "a.png")
    for resize in ("stretch", "letterbox"):
        trained_on = SegmentationFolder(root, image_size=(24, 32), resize=resize)[0][0]
        model = Recorder()
        predict_proba(model, root / "JPEGImages" / "a.png", image_size=(24, 32), resize=resize)
        (seen,) = model.inputs
        assert seen.shape == (1, 3, 24, 32) and seen.dtype == torch.float32
        torch.testing.assert_close(seen[0], trained_on, rtol=0, atol=0)


def test_same_prediction_from_path_pil_and_array(tmp_path):
    model = tiny_unet()
    pixels = random_photo(33, 50)
    path = tmp_path / "p.png"
    Image.fromarray(pixels).save(path)
    reference = predict_proba(model, pixels, image_size=16)
    for source in (path, str(path), Image.fromarray(pixels)):
        np.testing.assert_array_equal(predict_proba(model, source, image_size=16), reference)


def test_image_size_none_runs_each_photo_at_its_own_size():
    model = Recorder()
    photos = [random_photo(37, 45), random_photo(20, 30, seed=1)]
    probs = predict_proba(model, photos, image_size=None, batch_size=8)
    assert [p.shape for p in probs] == [(37, 45), (20, 30)]
    assert [tuple(x.shape) for x in model.inputs] == [(1, 3, 37, 45), (1, 3, 20, 30)]
    unet = tiny_unet()
    np.testing.assert_allclose(predict_proba(unet, photos[0], image_size=None), by_hand(unet, photos[0], None),
                               atol=1e-6)


def test_bad_sizes_and_resize_modes_are_refused():
    model = tiny_unet()
    with pytest.raises(ValueError, match="resize"):
        predict_proba(model, random_photo(8, 8), image_size=8, resize="crop")
    with pytest.raises(ValueError, match="positive"):
        predict_proba(model, random_photo(8, 8), image_size=0)


# --------------------------------------------------------------------------------------------
# the order: upsample first, threshold / argmax after
# --------------------------------------------------------------------------------------------

def test_probabilities_are_upsampled_before_thresholding():
    logits = torch.logit(torch.tensor([[[[0.9, 0.1], [0.1, 0.1]]]]))
    model = FixedLogits(logits)
    photo = random_photo(8, 8)
    probs = predict_proba(model, photo, image_size=2)
    # By hand: pixel (0, 3) sits 3/8 of the way from the 0.9 cell centre to the 0.1 one; (0, 0) is clamped.
    assert probs[0, 3] == pytest.approx(0.9 - 0.375 * 0.8, abs=1e-6)
    assert probs[0, 0] == pytest.approx(0.9, abs=1e-6)
    expected = F.interpolate(torch.sigmoid(logits), size=(8, 8), mode="bilinear", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    mask = predict_mask(model, photo, image_size=2)
    np.testing.assert_array_equal(mask, expected > 0.5)
    # Thresholding first and resizing the mask after (the wrong order) would give a 4x4 block.
    blocky = np.kron(np.array([[1, 0], [0, 0]]), np.ones((4, 4), dtype=int))
    assert mask.sum() < blocky.sum() and blocky[3, 3] and not mask[3, 3]


def test_multiclass_argmax_happens_after_upsampling():
    # Class 2 wins only in the top-left cell; after bilinear upsampling its area shrinks.
    small = torch.tensor([[[0.2, 0.6], [0.6, 0.6]], [[0.3, 0.4], [0.4, 0.4]], [[0.5, 0.0], [0.0, 0.0]]])
    logits = torch.log(small.clamp_min(1e-6))[None]
    model = FixedLogits(logits)
    probs = predict_proba(model, random_photo(8, 8), image_size=2)
    expected = F.interpolate(torch.softmax(logits, 1), size=(8, 8), mode="bilinear", align_corners=False)[0].numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    mask = predict_mask(model, random_photo(8, 8), image_size=2)
    np.testing.assert_array_equal(mask, expected.argmax(0))
    assert 0 < (mask == 2).sum() < 16  # not the 4x4 block a resized class-index mask would give


def test_higher_thresholds_give_subsets_and_threshold_is_checked():
    model = tiny_unet()
    photo = random_photo(40, 60, seed=3)
    probs = predict_proba(model, photo, image_size=16)
    previous = None
    for threshold in (0.0, 0.2, float(np.median(probs)), 0.6, 1.0):
        mask = predict_mask(model, photo, threshold=threshold, image_size=16).astype(bool)
        np.testing.assert_array_equal(mask, probs > threshold)
        if previous is not None:
            assert not (mask & ~previous).any()
        previous = mask
    assert not previous.any()  # nothing is above 1.0
    with pytest.raises(ValueError, match="threshold"):
        predict_mask(model, photo, threshold=1.5, image_size=16)


def test_probabilities_to_mask():
    binary = np.array([[0.5, 0.51], [0.0, 1.0]], dtype=np.float32)
    mask = probabilities_to_mask(binary)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, [[0, 1], [0, 1]])  # strictly above: 0.5 is background
    np.testing.assert_array_equal(probabilities_to_mask(binary, threshold=0.0), [[1, 1], [0, 1]])
    np.testing.assert_array_equal(probabilities_to_mask(binary, threshold=1.0), [[0, 0], [0, 0]])
    three = np.array([[[0.7, 0.2, 0.1]], [[0.2, 0.3, 0.1]], [[0.1, 0.5, 0.8]]])  # (3, 1, 3)
    np.testing.assert_array_equal(probabilities_to_mask(three), [[0, 2, 2]])
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match="threshold"):
            probabilities_to_mask(binary, threshold=bad)
    with pytest.raises(ValueError, match=r"\(H, W\) or \(C, H, W\)"):
        probabilities_to_mask(np.zeros((1, 2, 3, 4)))


# --------------------------------------------------------------------------------------------
# geometry: stretch and letterbox map back onto the photo
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_a_wide_photo_keeps_its_geometry(resize):
    photo = np.zeros((20, 40, 3), dtype=np.uint8)
    photo[:10, :, 0] = 255  # red top half
    # letterbox into 32 x 32: the photo is 32 x 16 at rows 8..24, black bars above and below.
    mask = predict_mask(RedIsForeground(), photo, image_size=32, resize=resize)
    assert mask.shape == (20, 40)
    assert mask[:9].all(), "the red half must reach the photo's top edge (the bar is cropped off)"
    assert not mask[11:].any()


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_a_tall_photo_keeps_its_geometry(resize):
    photo = np.zeros((40, 20, 3), dtype=np.uint8)
    photo[:, :10, 0] = 255  # red left half; letterbox puts bars left and right
    mask = predict_mask(RedIsForeground(), photo, image_size=32, resize=resize)
    assert mask.shape == (40, 20)
    assert mask[:, :9].all() and not mask[:, 11:].any()


# --------------------------------------------------------------------------------------------
# mode, device, number format
# --------------------------------------------------------------------------------------------

def test_runs_in_eval_mode_and_restores_the_mode():
    probe = Recorder()
    probe.train()
    predict_proba(probe, random_photo(8, 8), image_size=8)
    assert probe.modes == [False] and probe.training
    probe.eval()
    predict_proba(probe, random_photo(8, 8), image_size=8)
    assert probe.modes == [False, False] and not probe.training
    # BatchNorm in a model left in train mode: its running statistics are used, not the batch's.
    unet = tiny_unet()
    unet.train()
    got = predict_proba(unet, random_photo(30, 30), image_size=16)
    assert unet.training
    np.testing.assert_allclose(got, by_hand(unet, random_photo(30, 30), 16), atol=1e-6)


def test_the_mode_is_restored_when_the_model_fails():
    class Broken(Recorder):
        def forward(self, x):
            raise RuntimeError("boom")

    model = Broken()
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        predict_proba(model, random_photo(8, 8), image_size=8)
    assert model.training


def test_the_batch_goes_to_the_models_device():
    # No GPU needed: a model whose parameter lives on the 'meta' device must be sent meta tensors.
    model = Recorder(device="meta")
    probs = predict_proba(model, random_photo(12, 10), image_size=8)
    assert model.inputs[0].device.type == "meta"
    assert isinstance(probs, np.ndarray) and probs.shape == (12, 10)
    np.testing.assert_allclose(probs, 0.5)  # the zero logits, upsampled on the CPU


def test_a_float64_model_is_fed_float64_and_agrees_with_float32():
    recorder = Recorder(dtype=torch.float64)
    predict_proba(recorder, random_photo(8, 8), image_size=8)
    assert recorder.inputs[0].dtype == torch.float64
    model = tiny_unet()
    photo = random_photo(30, 20)
    single = predict_proba(model, photo, image_size=16)
    double = predict_proba(model.double(), photo, image_size=16)
    assert double.dtype == np.float32 and next(model.parameters()).dtype == torch.float64
    np.testing.assert_allclose(double, single, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_model_predicts_on_the_gpu_and_answers_numpy():
    model = tiny_unet(num_classes=3)
    photo = random_photo(50, 70)
    on_cpu = predict_proba(model, photo, image_size=32)
    model.cuda()
    on_gpu = predict_proba(model, [photo, photo], image_size=32)
    assert next(model.parameters()).is_cuda  # left where it was
    for probs in on_gpu:
        assert isinstance(probs, np.ndarray) and probs.dtype == np.float32
        np.testing.assert_allclose(probs, on_cpu, atol=1e-4)


# --------------------------------------------------------------------------------------------
# one photo or many
# --------------------------------------------------------------------------------------------

def test_a_single_photo_gives_an_array_a_list_gives_a_list():
    model = tiny_unet()
    photo = random_photo(20, 24)
    one = predict_proba(model, photo, image_size=16)
    assert isinstance(one, np.ndarray)
    for many in (predict_proba(model, [photo], image_size=16), predict_proba(model, (photo,), image_size=16)):
        assert isinstance(many, list) and len(many) == 1
        np.testing.assert_array_equal(many[0], one)


def test_batches_give_what_one_by_one_gives():
    model = tiny_unet(num_classes=2)
    photos = [random_photo(30, 41, seed=1), random_photo(64, 20, seed=2), random_photo(17, 17, seed=3),
              random_photo(25, 25, seed=4), random_photo(12, 40, seed=5)]
    batched = predict_proba(model, photos, image_size=16, batch_size=2)
    assert [p.shape for p in batched] == [(2, 30, 41), (2, 64, 20), (2, 17, 17), (2, 25, 25), (2, 12, 40)]
    for photo, probs in zip(photos, batched):
        np.testing.assert_allclose(probs, predict_proba(model, photo, image_size=16), atol=1e-5)
    recorder = Recorder()
    predict_proba(recorder, photos, image_size=16, batch_size=2)
    assert [len(x) for x in recorder.inputs] == [2, 2, 1]


# --------------------------------------------------------------------------------------------
# predict_folder
# --------------------------------------------------------------------------------------------

def banded_photo(height: int, width: int, rows: int) -> np.ndarray:
    photo = np.zeros((height, width, 3), dtype=np.uint8)
    photo[:rows, :, 0] = 255  # red band on top: RedIsForeground's foreground
    return photo


def make_folder(folder):
    folder.mkdir()
    Image.fromarray(banded_photo(37, 53, 10)).save(folder / "cat1.png")
    Image.fromarray(banded_photo(20, 30, 5)).save(folder / "cat2.bmp")
    (folder / "notes.txt").write_text("not a photo")
    (folder / "cat1.json").write_text("{}")
    Image.fromarray(banded_photo(8, 8, 2)).save(folder / ".hidden.png")
    return folder


def test_predict_folder_writes_masks_and_overlays_at_each_photo_size(tmp_path):
    folder = make_folder(tmp_path / "photos")
    out = tmp_path / "out"
    model = RedIsForeground()
    results = predict_folder(model, folder, out, image_size=16, alpha=0.6, progress=False)
    assert [r["photo"] for r in results] == [folder / "cat1.png", folder / "cat2.bmp"]
    assert sorted(p.name for p in out.iterdir()) == ["cat1_mask.png", "cat1_overlay.jpg",
                                                     "cat2_mask.png", "cat2_overlay.jpg"]
    for result, (size, rows) in zip(results, [((53, 37), 10), ((30, 20), 5)]):
        assert result["mask"] == out / f"{result['photo'].stem}_mask.png"
        assert result["overlay"] == out / f"{result['photo'].stem}_overlay.jpg"
        with Image.open(result["mask"]) as mask_file:
            assert mask_file.mode == "P" and mask_file.size == size
        mask = read_mask(result["mask"])
        np.testing.assert_array_equal(mask, predict_mask(model, result["photo"], image_size=16))
        assert mask[:rows - 1].all() and not mask[rows + 1:].any()
        assert result["class_pixels"] == {0: int((mask == 0).sum()), 1: int((mask == 1).sum())}
        assert sum(result["class_pixels"].values()) == size[0] * size[1]
        with Image.open(result["overlay"]) as overlay_file:
            assert overlay_file.size == size and overlay_file.mode == "RGB"
            overlay = np.asarray(overlay_file, dtype=float)
        expected = np.asarray(blend_overlay(result["photo"], mask, alpha=0.6), dtype=float)
        assert np.abs(overlay - expected).mean() < 3  # the same picture, up to JPEG
        assert np.abs(overlay - np.asarray(open_image(result["photo"]), dtype=float)).mean() > 10


def test_predict_folder_mask_png_keeps_class_indices(tmp_path):
    photo = np.zeros((12, 18, 3), dtype=np.uint8)
    photo[:, :6, 0] = 255
    photo[:, 6:12, 1] = 255
    photo[:, 12:, 2] = 255
    Image.fromarray(photo).save(tmp_path / "rgb.png")
    (result,) = predict_folder(ColourIsClass(), tmp_path / "rgb.png", tmp_path / "out", image_size=None,
                               progress=False)
    expected = np.repeat([[0] * 6 + [1] * 6 + [2] * 6], 12, axis=0)
    with Image.open(result["mask"]) as mask_file:
        assert mask_file.mode == "P"
        np.testing.assert_array_equal(np.asarray(mask_file), expected)  # indices, not colours
        colours = np.asarray(mask_file.convert("RGB"))
    palette = default_palette()
    assert [tuple(colours[0, x]) for x in (0, 6, 12)] == [palette[0], palette[1], palette[2]]
    assert result["class_pixels"] == {0: 72, 1: 72, 2: 72}


def test_predict_folder_refuses_a_non_empty_out_dir_unless_overwrite(tmp_path):
    folder = make_folder(tmp_path / "photos")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        predict_folder(RedIsForeground(), folder, out, image_size=16, progress=False)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    predict_folder(RedIsForeground(), folder, out, image_size=16, overwrite=True, progress=False)
    before = read_mask(out / "cat1_mask.png")
    assert before.any()
    # overwrite replaces files of the same name and leaves others alone.
    predict_folder(RedIsForeground(), folder, out, image_size=16, threshold=1.0, overwrite=True, progress=False)
    assert not read_mask(out / "cat1_mask.png").any()
    assert (out / "keep.txt").read_text() == "mine"
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        predict_folder(RedIsForeground(), folder, afile, image_size=16, overwrite=True, progress=False)


def test_predict_folder_inputs_and_errors(tmp_path):
    folder = make_folder(tmp_path / "photos")
    single = predict_folder(RedIsForeground(), folder / "cat2.bmp", tmp_path / "one", image_size=16, progress=False)
    assert [r["photo"].name for r in single] == ["cat2.bmp"]
    listed = predict_folder(RedIsForeground(), [str(folder / "cat2.bmp"), folder / "cat1.png"], tmp_path / "two",
                            image_size=16, progress=False)
    assert [r["photo"].name for r in listed] == ["cat2.bmp", "cat1.png"]  # the list's order
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no photos"):
        predict_folder(RedIsForeground(), empty, tmp_path / "o", progress=False)
    with pytest.raises(ValueError, match="no photos"):
        predict_folder(RedIsForeground(), [], tmp_path / "o", progress=False)
    Image.fromarray(banded_photo(8, 8, 2)).save(folder / "cat1.jpg")  # same stem as cat1.png
    with pytest.raises(ValueError, match="stem"):
        predict_folder(RedIsForeground(), folder, tmp_path / "o2", progress=False)
    assert not (tmp_path / "o2").exists()  # refused before anything is written
    with pytest.raises(FileNotFoundError, match="nowhere"):
        predict_folder(RedIsForeground(), tmp_path / "nowhere.jpg", tmp_path / "o3", progress=False)
