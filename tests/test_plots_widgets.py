"""segkit.plots (matplotlib figures) and segkit.widgets (threshold explorer), headless."""

from __future__ import annotations

import io
import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from segkit.metrics import ConfusionMatrix, binary_iou  # noqa: E402
from segkit.model import UNet  # noqa: E402
from segkit.plots import (  # noqa: E402
    plot_confusion_matrix,
    plot_history,
    plot_threshold_sweep,
    show_batch,
    show_predictions,
    show_probability_map,
    show_samples,
    threshold_sweep,
)
from segkit.predict import blend_overlay  # noqa: E402
from segkit.widgets import threshold_explorer, threshold_explorer_for  # noqa: E402


@pytest.fixture(autouse=True)
def no_figures_left_open():
    """Every helper returns its figure already released from pyplot: nothing piles up in a notebook."""
    plt.close("all")
    yield
    assert plt.get_fignums() == []


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # Tiny convolutions on a loaded 2-core machine are far slower with 2 OpenMP threads than with 1.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def photo_tensor(height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, height, width, generator=torch.Generator().manual_seed(seed))


def square_mask(height: int, width: int, value: int = 1) -> torch.Tensor:
    mask = torch.zeros(height, width, dtype=torch.int64)
    mask[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = value
    return mask


class TinyDataset:
    stems = ["cat_a", "cat_b", "cat_c"]
    class_names = ["_background_", "cat"]

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i):
        return photo_tensor(16, 20, seed=i), square_mask(16, 20)


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------

def test_show_samples_overlay_and_pairs():
    dataset = TinyDataset()
    fig = show_samples(dataset, n=8, cols=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == dataset.stems
    expected = np.asarray(blend_overlay(dataset[0][0], dataset[0][1], alpha=0.3))
    np.testing.assert_array_equal(np.asarray(fig.axes[0].images[0].get_array()), expected)
    assert fig.legends and [t.get_text() for t in fig.legends[0].get_texts()] == ["cat"]

    pairs = [(photo_tensor(8, 8, seed=i), torch.ones(1, 8, 8)) for i in range(2)]  # binary_target masks
    fig = show_samples(pairs, overlay=False)
    assert len(fig.axes) == 4
    mask_rgb = np.asarray(fig.axes[1].images[0].get_array())
    assert (mask_rgb == (0, 128, 0)).all()
    with pytest.raises(ValueError, match="nothing to show"):
        show_samples([])


def test_show_batch():
    images = torch.stack([photo_tensor(12, 12, seed=i) for i in range(5)])
    masks = torch.stack([square_mask(12, 12, value=i % 3) for i in range(5)])
    fig = show_batch(images, masks, cols=4)
    assert len(fig.axes) == 5
    assert len(show_batch(images).axes) == 5
    with pytest.raises(ValueError, match="5 images but 2 masks"):
        show_batch(images, masks[:2])


def test_plot_history(tmp_path):
    history = [
        {"epoch": 1, "train_loss": 0.9, "val_loss": 1.0, "val_miou": 0.2, "seconds": 1.0},
        {"epoch": 2, "train_loss": 0.6, "val_loss": 0.8, "val_miou": 0.5, "seconds": 1.0},
        {"epoch": 3, "train_loss": 0.4, "val_loss": 0.9, "val_miou": 0.4, "seconds": 1.0},
    ]
    fig = plot_history(history)
    loss_ax, miou_ax = fig.axes
    assert len(fig.axes) == 2
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [0.9, 0.6, 0.4])
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), [1.0, 0.8, 0.9])
    best = miou_ax.lines[1]
    assert list(best.get_xdata()) == [2] and list(best.get_ydata()) == [0.5]
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history))
    assert len(plot_history(path).axes) == 2

    no_val = [{"epoch": e, "train_loss": 1 / e, "val_loss": None, "val_miou": None} for e in (1, 2)]
    fig = plot_history(no_val)
    assert len(fig.axes[0].lines) == 1
    assert "no validation data" in [t.get_text() for t in fig.axes[1].texts]
    with pytest.raises(ValueError, match="empty"):
        plot_history([])


def test_show_predictions_layout_and_iou_titles():
    images = torch.stack([photo_tensor(8, 8, seed=i) for i in range(2)])
    truth = torch.zeros(2, 8, 8, dtype=torch.int64)
    truth[:, 2:4, 2:4] = 1  # 4 foreground pixels
    pred = truth.clone()
    pred[1, 3, :] = 0  # row 1 finds 2 of the 4 pixels: IoU 2 / 4
    probs = torch.rand(2, 8, 8)
    fig = show_predictions(images, truth, pred, probs=probs, titles=["a", "b"])
    assert len(fig.axes) == 2 * 5 + 1  # 5 panels per row + one colorbar
    assert fig.axes[0].get_title() == "a  IoU 1.00"
    assert fig.axes[5].get_title() == "b  IoU 0.50"
    assert len(show_predictions(images, truth, pred).axes) == 8
    assert len(show_predictions(images, None, pred).axes) == 6
    with pytest.raises(ValueError, match="2 images but 1 preds"):
        show_predictions(images, truth, pred[:1])


def test_plot_confusion_matrix():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 0, 1, 1, 2, 2, 2, 0]), torch.tensor([0, 0, 1, 2, 2, 2, 1, 255]))
    fig = plot_confusion_matrix(cm, class_names=["bg", "cat", "dog"])
    assert len(fig.axes) == 2  # matrix + colorbar
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(shown.sum(axis=1), 1.0)
    np.testing.assert_allclose(shown[1], [0, 0.5, 0.5])
    assert len(fig.axes[0].texts) == 9
    counts = plot_confusion_matrix(cm.mat.numpy(), normalize=False)
    np.testing.assert_array_equal(np.asarray(counts.axes[0].images[0].get_array()), cm.mat.numpy())
    empty_row = np.array([[3, 1], [0, 0]])
    assert np.isnan(np.asarray(plot_confusion_matrix(empty_row).axes[0].images[0].get_array())[1]).all()
    with pytest.raises(ValueError, match="2 class names for 3"):
        plot_confusion_matrix(cm, class_names=["a", "b"])
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)))


def test_threshold_sweep_agrees_with_binary_iou():
    rng = np.random.default_rng(0)
    probs = rng.random((2, 20, 30)).astype(np.float32)
    probs[0, 0, :5] = 0.5  # ties at the threshold: "> threshold" leaves them out in both
    truth = (rng.random((2, 20, 30)) < 0.4).astype(np.int64)
    truth[1, :3] = 255
    thresholds, ious = threshold_sweep(probs, truth, thresholds=[0.1, 0.3, 0.5, 0.7, 0.9])
    for t, iou in zip(thresholds, ious):
        assert iou == pytest.approx(binary_iou(probs, truth, threshold=float(t)), abs=1e-12)
    # A list of maps of different sizes counts all their pixels together.
    _, listed = threshold_sweep([probs[0], probs[1, :10]], [truth[0], truth[1, :10]], thresholds=[0.5])
    both = np.concatenate([probs[0].ravel(), probs[1, :10].ravel()])
    assert listed[0] == pytest.approx(binary_iou(both, np.concatenate([truth[0].ravel(), truth[1, :10].ravel()])))
    _, none = threshold_sweep(np.zeros((4, 4)), np.zeros((4, 4)), thresholds=[0.5])
    assert math.isnan(none[0])
    with pytest.raises(ValueError, match="0, 1 or 255"):
        threshold_sweep(probs, truth * 2)
    with pytest.raises(ValueError, match="differ in shape"):
        threshold_sweep(probs[0], truth[0, :10])


def test_plot_threshold_sweep_marks_best_and_half():
    rng = np.random.default_rng(1)
    truth = (rng.random((30, 30)) < 0.5).astype(np.int64)
    probs = np.clip(truth * 0.35 + rng.random((30, 30)) * 0.6, 0, 1).astype(np.float32)
    fig = plot_threshold_sweep(probs, truth)
    assert len(fig.axes) == 1
    thresholds, ious = threshold_sweep(probs, truth)
    best = fig.axes[0].lines[1]
    assert best.get_xdata()[0] == thresholds[np.nanargmax(ious)]
    assert 0.5 in thresholds
    assert any("t = 0.50" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_show_probability_map():
    image = photo_tensor(10, 12)
    probs = torch.rand(10, 12)
    fig = show_probability_map(image, probs)
    assert len(fig.axes) == 4  # photo, heat map, its colorbar, histogram
    np.testing.assert_allclose(np.asarray(fig.axes[1].images[0].get_array()), probs.numpy())
    assert len(show_probability_map(image, probs, histogram=False).axes) == 3
    multi = torch.softmax(torch.randn(3, 10, 12), 0)
    fig = show_probability_map(image, multi, class_index=2)
    np.testing.assert_allclose(np.asarray(fig.axes[1].images[0].get_array()), multi[2].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="class_index"):
        show_probability_map(image, multi, class_index=5)


# --------------------------------------------------------------------------------------------
# widgets
# --------------------------------------------------------------------------------------------

def explorer_inputs(height: int = 24, width: int = 32):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    truth = np.zeros((height, width), dtype=np.uint8)
    truth[: height // 2] = 1
    truth[-2:] = 255
    probs = np.clip(truth * 0.4 + rng.random((height, width)) * 0.6, 0, 1).astype(np.float32)
    return photo, probs, truth


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_threshold_slider_updates_iou_and_picture():
    photo, probs, truth = explorer_inputs()
    box = threshold_explorer(photo, probs, truth=truth)
    assert box.iou == pytest.approx(binary_iou(probs, truth, threshold=0.5))
    assert f"{box.iou:.3f}" in box.iou_label.value
    label, picture = box.iou_label.value, box.image_widget.value
    assert png_size(picture) == (32, 24)

    box.threshold_slider.value = 0.8
    assert box.iou == pytest.approx(binary_iou(probs, truth, threshold=0.8))
    assert box.iou_label.value != label and f"{box.iou:.3f}" in box.iou_label.value
    assert box.image_widget.value != picture
    np.testing.assert_array_equal(box.mask, probs > 0.8)

    iou, picture = box.iou, box.image_widget.value
    box.alpha_slider.value = 0.9  # opacity changes the picture, not the IoU
    assert box.iou == iou and box.image_widget.value != picture


def test_threshold_explorer_without_truth_and_bad_inputs():
    photo, probs, truth = explorer_inputs()
    box = threshold_explorer(photo, probs)
    assert box.iou is None and "IoU" not in box.iou_label.value
    text = box.iou_label.value
    box.threshold_slider.value = 0.1
    assert box.iou_label.value != text  # the foreground share is shown live
    two_class = np.stack([1 - probs, probs])
    assert threshold_explorer(photo, two_class).probs.tolist() == probs.tolist()
    with pytest.raises(ValueError, match="argmax"):
        threshold_explorer(photo, np.stack([probs, probs, probs]) / 3)
    with pytest.raises(ValueError, match="predict_proba"):
        threshold_explorer(photo, probs[:10])
    with pytest.raises(ValueError, match="found classes"):
        threshold_explorer(photo, probs, truth=truth * 2)
    with pytest.raises(ValueError, match="sigmoid"):
        threshold_explorer(photo, probs * 5)


def test_threshold_explorer_downscales_only_the_picture():
    photo, probs, truth = explorer_inputs(300, 600)
    box = threshold_explorer(photo, probs, truth=truth, display_size=128)
    assert png_size(box.image_widget.value) == (128, 64)
    assert box.mask.shape == (300, 600)  # IoU and mask stay at full resolution
    assert box.iou == pytest.approx(binary_iou(probs, truth, threshold=0.5))


def test_threshold_explorer_for_a_model():
    torch.manual_seed(0)
    model = UNet(base_features=4, depth=2)
    photo, _, truth = explorer_inputs()
    box = threshold_explorer_for(model, photo, truth=truth, image_size=16)
    assert box.probs.shape == (24, 32)
    assert isinstance(box.iou, float)
