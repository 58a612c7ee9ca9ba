"""segkit.plots (matplotlib figures) and segkit.widgets (the threshold explorer), headless.

Each figure is checked for what it draws (the data behind its lines, images and titles),
against numbers computed here independently: by hand or with a ConfusionMatrix per threshold.
"""

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

from segkit.draw import blend_overlay, colorize, default_palette, draw_contours  # noqa: E402
from segkit.metrics import ConfusionMatrix  # noqa: E402
from segkit.plots import (  # noqa: E402
    LiveHistory,
    plot_confusion_matrix,
    plot_history,
    plot_threshold_sweep,
    show_batch,
    show_predictions,
    show_probability_map,
    show_samples,
    threshold_sweep,
)
from segkit.predict import probabilities_to_mask  # noqa: E402
from segkit.widgets import ThresholdExplorer  # noqa: E402

YELLOW = (255, 255, 0)


@pytest.fixture(autouse=True)
def no_figures_left_open():
    """Every helper returns its figure already released from pyplot: nothing piles up in a notebook."""
    plt.close("all")
    yield
    assert plt.get_fignums() == []


def photo_tensor(height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, height, width, generator=torch.Generator().manual_seed(seed))


def as_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def square_mask(height: int, width: int, value: int = 1) -> torch.Tensor:
    mask = torch.zeros(height, width, dtype=torch.int64)
    mask[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = value
    return mask


def shown(ax) -> np.ndarray:
    """The pixels of the (first) image drawn in an axes."""
    return np.asarray(ax.images[0].get_array())


def confusion_iou(pred: np.ndarray, truth: np.ndarray, classes: int = 2) -> float:
    matrix = ConfusionMatrix(classes)
    matrix.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(truth.astype(np.int64)))
    return matrix.foreground_iou()


class TinyDataset:
    stems = ["cat_a", "cat_b", "cat_c", "cat_d"]
    class_names = ["_background_", "cat", "dog"]

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        return photo_tensor(16, 20, seed=i), square_mask(16, 20, value=1 if i < 3 else 2)


# --------------------------------------------------------------------------------------------
# show_samples, show_batch
# --------------------------------------------------------------------------------------------

def test_show_samples_draws_each_mask_over_its_photo():
    dataset = TinyDataset()
    fig = show_samples(dataset, indices=[2, 0], cols=4)
    assert isinstance(fig, Figure)
    drawn = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in drawn] == ["cat_c", "cat_a"]
    for ax, index in zip(drawn, [2, 0]):
        image, mask = dataset[index]
        np.testing.assert_array_equal(shown(ax), np.asarray(blend_overlay(as_uint8(image), mask.numpy(), 0.3)))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["cat"]  # only the classes present

    fig = show_samples(dataset, cols=2, alpha=0.8)  # default: the first 8 (here all 4)
    drawn = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in drawn] == dataset.stems
    image, mask = dataset[3]
    np.testing.assert_array_equal(shown(drawn[3]), np.asarray(blend_overlay(as_uint8(image), mask.numpy(), 0.8)))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["cat", "dog"]


def test_show_samples_of_plain_pairs():
    pairs = [(photo_tensor(8, 8, seed=i), square_mask(8, 8)) for i in range(3)]
    fig = show_samples(pairs)
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["#0", "#1", "#2"]
    assert not fig.legends  # no class names, no legend


def test_show_batch_draws_every_image_with_its_mask():
    images = torch.stack([photo_tensor(12, 12, seed=i) for i in range(5)])
    masks = torch.stack([square_mask(12, 12, value=i % 3) for i in range(5)])
    fig = show_batch(images, masks, cols=4, alpha=0.5)
    drawn = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in drawn] == [f"#{i}" for i in range(5)]
    for ax, image, mask in zip(drawn, images, masks):
        np.testing.assert_array_equal(shown(ax), np.asarray(blend_overlay(as_uint8(image), mask.numpy(), 0.5)))


# --------------------------------------------------------------------------------------------
# plot_history, LiveHistory
# --------------------------------------------------------------------------------------------

HISTORY = [
    {"epoch": 1, "train_loss": 0.9, "val_foreground_iou": 0.20, "val_miou": 0.50, "lr": 1e-3, "seconds": 1.0},
    {"epoch": 2, "train_loss": 0.6, "val_foreground_iou": 0.70, "val_miou": 0.80, "lr": 1e-3, "seconds": 1.0},
    {"epoch": 3, "train_loss": 0.4, "val_foreground_iou": 0.70, "val_miou": 0.82, "lr": 1e-3, "seconds": 1.0},
    {"epoch": 4, "train_loss": 0.3, "val_foreground_iou": 0.65, "val_miou": 0.81, "lr": 1e-3, "seconds": 1.0},
]


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.lines}


def test_plot_history_draws_the_values_and_stars_fits_best_epoch(tmp_path):
    for source in (HISTORY, tmp_path / "history.json"):
        (tmp_path / "history.json").write_text(json.dumps(HISTORY))
        fig = plot_history(source)
        loss_ax, iou_ax = (ax for ax in fig.axes if ax.lines or ax.texts)
        np.testing.assert_allclose(loss_ax.lines[0].get_xdata(), [1, 2, 3, 4])
        np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [0.9, 0.6, 0.4, 0.3])
        lines = lines_by_label(iou_ax)
        np.testing.assert_allclose(lines["val_foreground_iou"].get_ydata(), [0.2, 0.7, 0.7, 0.65])
        np.testing.assert_allclose(lines["val_miou"].get_ydata(), [0.5, 0.8, 0.82, 0.81])
        # fit writes best.pt when the foreground IoU beats every earlier epoch: the first of a tie.
        (best,) = [line for label, line in lines.items() if label.startswith("best")]
        assert list(best.get_xdata()) == [2] and list(best.get_ydata()) == [0.7]
        assert best.get_label() == "best 0.700 (epoch 2): best.pt"
        assert [t.get_text() for t in iou_ax.get_legend().get_texts()][-1] == best.get_label()


def test_plot_history_without_validation_and_with_gaps():
    no_val = [{"epoch": e, "train_loss": 1 / e, "val_foreground_iou": None, "val_miou": None} for e in (1, 2)]
    fig = plot_history(no_val)
    loss_ax, iou_ax = fig.axes
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [1.0, 0.5])
    assert not iou_ax.lines and [t.get_text() for t in iou_ax.texts] == ["no validation photos"]

    gap = [dict(HISTORY[0], val_foreground_iou=None), HISTORY[1]]  # epoch 1's IoU undefined (NaN)
    lines = lines_by_label(plot_history(gap).axes[1])
    assert np.isnan(lines["val_foreground_iou"].get_ydata()[0])
    assert list(lines["best 0.700 (epoch 2): best.pt"].get_xdata()) == [2]

    # Foreground IoU undefined every epoch (no foreground in truth nor prediction), mIoU defined.
    undefined = [dict(row, val_foreground_iou=None) for row in HISTORY]
    lines = lines_by_label(plot_history(undefined).axes[1])
    assert set(lines) == {"val_miou"}
    # A history.json of the previous segkit (val_miou, no val_foreground_iou) still draws.
    old = [{"epoch": row["epoch"], "train_loss": row["train_loss"], "val_miou": row["val_miou"]} for row in HISTORY]
    assert set(lines_by_label(plot_history(old).axes[1])) == {"val_miou"}
    with pytest.raises(ValueError, match="empty"):
        plot_history([])


def test_live_history_updates_one_display(monkeypatch):
    import IPython.display

    calls = []

    class Handle:
        def update(self, figure):
            calls.append(("update", figure))

    def fake_display(figure, display_id=None):
        calls.append(("display", figure, display_id))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    live = LiveHistory()
    for epochs in (1, 2, 3):
        live.update(HISTORY[:epochs])
    assert [call[0] for call in calls] == ["display", "update", "update"]
    assert calls[0][2] is True  # a display id, so that later epochs replace it
    for call, epochs in zip(calls, (1, 2, 3)):
        figure = call[1]
        assert isinstance(figure, Figure)
        np.testing.assert_allclose(figure.axes[0].lines[0].get_ydata(), [r["train_loss"] for r in HISTORY[:epochs]])


# --------------------------------------------------------------------------------------------
# show_predictions
# --------------------------------------------------------------------------------------------

def test_show_predictions_titles_carry_each_photos_iou():
    images = torch.stack([photo_tensor(8, 8, seed=i) for i in range(3)])
    truth = torch.zeros(3, 8, 8, dtype=torch.int64)
    truth[:, 2:4, 2:4] = 1  # 4 foreground pixels
    pred = truth.clone()
    pred[1, 3, :] = 0  # row 1 finds 2 of the 4: IoU 2 / 4
    pred[2, 0, :] = 1  # row 2 adds 8 false pixels: IoU 4 / 12
    truth[2, 2, 2] = 255  # an ignored pixel counts for nothing: IoU 3 / 11
    fig = show_predictions(images, truth, pred, titles=["a", "b", "c"])
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles[0::4] == ["a  IoU 1.00", "b  IoU 0.50", "c  IoU 0.27"]
    assert titles[1:4] == ["truth", "prediction", "overlay + truth outline"]
    for i, title in enumerate(titles[0::4]):
        assert title.endswith(f"{confusion_iou(pred[i].numpy(), truth[i].numpy()):.2f}")


def test_show_predictions_multiclass_iou_is_the_foreground_mean():
    photo = photo_tensor(6, 6)
    truth = np.zeros((6, 6), dtype=np.uint8)
    truth[:3, :3], truth[3:, 3:] = 1, 2  # 9 pixels each
    pred = truth.copy()
    pred[3:, 3:] = 0  # class 2 missed: IoU (1 + 0) / 2
    fig = show_predictions([photo], [truth], [pred], class_names=["bg", "cat", "dog"])
    assert fig.axes[0].get_title() == "#0  IoU 0.50"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["cat", "dog"]


def test_show_predictions_panels():
    photo = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    truth = square_mask(20, 20).numpy()
    pred = np.zeros((20, 20), dtype=np.int64)
    pred[:12, :12] = 1
    fig = show_predictions([photo], [truth], [pred], alpha=0.4)
    photo_ax, truth_ax, pred_ax, overlay_ax = fig.axes[:4]
    np.testing.assert_array_equal(shown(photo_ax), photo)
    np.testing.assert_array_equal(shown(truth_ax)[..., :3], np.asarray(colorize(truth).convert("RGB")))
    np.testing.assert_array_equal(shown(pred_ax)[..., :3], np.asarray(colorize(pred).convert("RGB")))
    overlay = shown(overlay_ax)
    outline = (overlay == YELLOW).all(axis=2)
    ring = np.zeros((20, 20), dtype=bool)
    ring[5:15, 5:15] = True
    ring[6:14, 6:14] = False
    np.testing.assert_array_equal(outline, ring)  # the truth's outline, 1 pixel wide
    inside = ~ring
    np.testing.assert_array_equal(overlay[inside], np.asarray(blend_overlay(photo, pred, 0.4))[inside])

    fig = show_predictions([photo], None, [pred])  # no truth: no truth panel, no IoU, no outline
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["#0", "prediction", "overlay"]
    np.testing.assert_array_equal(shown(fig.axes[2]), np.asarray(blend_overlay(photo, pred, 0.3)))


# --------------------------------------------------------------------------------------------
# plot_confusion_matrix
# --------------------------------------------------------------------------------------------

def test_plot_confusion_matrix_shows_row_normalised_shares():
    cm = ConfusionMatrix(3)
    # truth: 0 0 1 1 2 2 2 (and one ignored); pred: 0 0 1 2 2 2 1
    cm.update(torch.tensor([0, 0, 1, 2, 2, 2, 1, 0]), torch.tensor([0, 0, 1, 1, 2, 2, 2, 255]))
    fig = plot_confusion_matrix(cm, class_names=["bg", "cat", "dog"])
    ax = fig.axes[0]
    np.testing.assert_allclose(shown(ax), [[1, 0, 0], [0, 0.5, 0.5], [0, 1 / 3, 2 / 3]])
    texts = {(t.get_position()): t.get_text() for t in ax.texts}
    assert texts[(1, 1)] == "0.50" and texts[(2, 2)] == "0.67" and texts[(0, 0)] == "1.00"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bg", "cat", "dog"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["bg", "cat", "dog"]
    assert ax.get_ylabel() == "true class" and ax.get_xlabel() == "predicted class"


def test_plot_confusion_matrix_absent_class_is_a_dash():
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 0]))  # class 1 never true
    ax = plot_confusion_matrix(cm).axes[0]
    values = shown(ax)
    np.testing.assert_allclose(values[0], [1 / 3, 2 / 3])
    assert np.isnan(np.asarray(values[1], dtype=float)).all()
    texts = {(t.get_position()): t.get_text() for t in ax.texts}
    assert texts[(0, 1)] == "-" and texts[(1, 1)] == "-"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]


# --------------------------------------------------------------------------------------------
# threshold_sweep, plot_threshold_sweep
# --------------------------------------------------------------------------------------------

def brute_force_iou(probs, truths, threshold: float) -> float:
    """predict_mask's thresholding, every photo into one ConfusionMatrix(2): the foreground IoU."""
    matrix = ConfusionMatrix(2)
    for p, t in zip(probs, truths):
        matrix.update(torch.from_numpy(probabilities_to_mask(p, threshold).astype(np.int64)),
                      torch.from_numpy(np.asarray(t, dtype=np.int64)))
    return matrix.foreground_iou()


def sweep_inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    truths = [(rng.random((20, 30)) < 0.4).astype(np.uint8), (rng.random((9, 13)) < 0.6).astype(np.uint8)]
    truths[1][:3] = 255
    probs = [np.clip(t * 0.3 + rng.random(t.shape) * 0.7, 0, 1).astype(np.float32) for t in truths]
    return probs, truths


def test_threshold_sweep_equals_a_confusion_matrix_per_threshold():
    probs, truths = sweep_inputs()
    thresholds, ious = threshold_sweep(probs, truths)
    np.testing.assert_allclose(thresholds, np.arange(1, 50) / 50)
    assert len(set(np.round(ious, 6))) > 10  # the sweep is not flat: the check below means something
    for t, iou in zip(thresholds, ious):
        assert iou == pytest.approx(brute_force_iou(probs, truths, float(t)), abs=1e-12)


def test_threshold_sweep_ties_agree_with_predict_mask():
    # Probabilities exactly at a threshold: "> threshold" leaves them out, as predict_mask does,
    # also where the threshold (0.3) has no exact float32 value.
    probs = [np.array([[0.3, 0.3, 0.5, 0.5, 0.9, 0.1]], dtype=np.float32)]
    truths = [np.array([[1, 0, 1, 0, 1, 1]], dtype=np.uint8)]
    thresholds, ious = threshold_sweep(probs, truths, thresholds=[0.3, 0.5, 0.0, 1.0])
    expected = [brute_force_iou(probs, truths, float(t)) for t in thresholds]
    np.testing.assert_allclose(ious, expected)
    np.testing.assert_allclose(ious, [2 / 5, 1 / 4, 4 / 6, 0.0])


def test_threshold_sweep_undefined_when_no_cat_anywhere():
    _, ious = threshold_sweep([np.full((4, 4), 0.2, dtype=np.float32)], [np.zeros((4, 4), dtype=np.uint8)],
                              thresholds=[0.1, 0.5])
    assert ious[0] == 0.0  # predicted cats, none true
    assert math.isnan(ious[1])  # nothing true, nothing predicted: 0 / 0


def test_plot_threshold_sweep_draws_the_sweep_and_stars_the_best():
    probs, truths = sweep_inputs(1)
    thresholds, ious = threshold_sweep(probs, truths)
    ax = plot_threshold_sweep(probs, truths).axes[0]
    curve, best, half = ax.lines
    np.testing.assert_allclose(curve.get_xdata(), thresholds)
    np.testing.assert_allclose(curve.get_ydata(), ious)
    i = int(np.nanargmax(ious))
    assert list(best.get_xdata()) == [thresholds[i]] and list(best.get_ydata()) == [ious[i]]
    assert list(half.get_xdata()) == [0.5, 0.5]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"best: {thresholds[i]:.2f} (IoU {ious[i]:.3f})",
                      f"0.50 (IoU {brute_force_iou(probs, truths, 0.5):.3f})"]


# --------------------------------------------------------------------------------------------
# show_probability_map
# --------------------------------------------------------------------------------------------

def test_show_probability_map_heat_map_and_histogram():
    image = photo_tensor(10, 12)
    probs = torch.rand(10, 12, generator=torch.Generator().manual_seed(1)).numpy()
    probs[0, :6] = 0.001  # 6 sure of background, 3 sure of cat
    probs[1, :3] = 0.999
    fig = show_probability_map(image, probs)
    photo_ax, heat_ax, hist_ax = (ax for ax in fig.axes if ax.get_title())
    np.testing.assert_array_equal(shown(photo_ax), as_uint8(image))
    np.testing.assert_allclose(shown(heat_ax), probs)
    counts, _ = np.histogram(probs, bins=50, range=(0, 1))
    np.testing.assert_array_equal([bar.get_height() for bar in hist_ax.patches], counts)
    sure = ((probs < 0.01) | (probs > 0.99)).mean()
    assert hist_ax.get_title() == f"{sure:.0%} of pixels below 0.01 or above 0.99"
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        show_probability_map(image, np.zeros((3, 10, 12)))


# --------------------------------------------------------------------------------------------
# ThresholdExplorer
# --------------------------------------------------------------------------------------------

def explorer_inputs(height: int = 24, width: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    truth = np.zeros((height, width), dtype=np.uint8)
    truth[: height // 2] = 1
    truth[-2:] = 255
    probs = np.clip(truth * 0.4 + rng.random((height, width)) * 0.6, 0, 1).astype(np.float32)
    return photo, probs, truth


def png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def test_threshold_slider_changes_the_iou_text_and_the_picture():
    photo, probs, truth = explorer_inputs()
    box = ThresholdExplorer(photo, probs, truth=truth)
    assert box.iou == pytest.approx(brute_force_iou([probs], [truth], 0.5))
    text, picture = box.text.value, box.image.value
    assert f"IoU <b>{box.iou:.3f}</b>" in text and f"cat: {(probs > 0.5).mean():.1%} of the photo" in text
    # At its own size (no downscaling), the picture is the thresholded mask over the photo, truth outlined.
    expected = draw_contours(blend_overlay(photo, (probs > 0.5).astype(np.uint8), 0.3), truth, color=YELLOW, width=1)
    np.testing.assert_array_equal(png(picture), np.asarray(expected))

    box.threshold_slider.value = 0.8
    assert box.iou == pytest.approx(brute_force_iou([probs], [truth], 0.8)) and box.iou != pytest.approx(
        brute_force_iou([probs], [truth], 0.5))
    assert box.text.value != text and f"IoU <b>{box.iou:.3f}</b>" in box.text.value
    assert f"cat: {(probs > 0.8).mean():.1%}" in box.text.value
    assert box.image.value != picture
    expected = draw_contours(blend_overlay(photo, (probs > 0.8).astype(np.uint8), 0.3), truth, color=YELLOW, width=1)
    np.testing.assert_array_equal(png(box.image.value), np.asarray(expected))

    iou, picture = box.iou, box.image.value
    box.alpha_slider.value = 0.9  # opacity changes the picture, not the IoU
    assert box.iou == iou and box.image.value != picture


def test_the_iou_is_counted_at_full_resolution_the_picture_is_small():
    photo, probs, truth = explorer_inputs(150, 300, seed=2)
    box = ThresholdExplorer(photo, probs, truth=truth, threshold=0.6, display_size=100)
    picture = png(box.image.value)
    assert picture.shape[:2] == (50, 100)
    assert (box.image.layout.width, box.image.layout.height) == ("100px", "50px")  # drawn at its pixel size
    full = brute_force_iou([probs], [truth], 0.6)
    small_probs = np.asarray(Image.fromarray(probs).resize((100, 50), Image.Resampling.BILINEAR))
    small_truth = np.asarray(Image.fromarray(truth).resize((100, 50), Image.Resampling.NEAREST))
    assert abs(full - brute_force_iou([small_probs], [small_truth], 0.6)) > 1e-3  # the two differ here
    assert box.iou == pytest.approx(full, abs=1e-12)


def test_a_small_photo_is_not_enlarged():
    photo, probs, truth = explorer_inputs(24, 32)
    box = ThresholdExplorer(photo, probs, truth=truth, display_size=360)
    assert png(box.image.value).shape[:2] == (24, 32)
    assert (box.image.layout.width, box.image.layout.height) == ("32px", "24px")


def test_threshold_explorer_without_truth():
    photo, probs, _ = explorer_inputs()
    box = ThresholdExplorer(photo, probs, threshold=0.3)
    assert box.iou is None and "IoU" not in box.text.value
    assert box.text.value == f"cat: {(probs > 0.3).mean():.1%} of the photo"
    box.threshold_slider.value = 0.7
    assert box.text.value == f"cat: {(probs > 0.7).mean():.1%} of the photo"
    np.testing.assert_array_equal(png(box.image.value),
                                  np.asarray(blend_overlay(photo, (probs > 0.7).astype(np.uint8), 0.3)))
    assert repr(box) == "Threshold explorer at threshold 0.70 (run the cell to use the sliders)"


def test_threshold_explorer_repr_and_size_errors():
    photo, probs, truth = explorer_inputs()
    box = ThresholdExplorer(photo, probs, truth=truth, threshold=0.4)
    assert repr(box) == f"Threshold explorer at threshold 0.40, IoU {box.iou:.3f} (run the cell to use the sliders)"
    with pytest.raises(ValueError, match=r"probs is \(32, 10\).*\(32, 24\).*predict_proba"):
        ThresholdExplorer(photo, probs[:10])
    with pytest.raises(ValueError, match=r"truth is \(31, 24\)"):
        ThresholdExplorer(photo, probs, truth=truth[:, :31])


def test_threshold_explorer_reads_a_photo_file_and_its_palette():
    photo, probs, truth = explorer_inputs()
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")
    box = ThresholdExplorer(Image.open(io.BytesIO(buffer.getvalue())), probs, alpha=1.0, threshold=0.0)
    assert (png(box.image.value) == default_palette()[1]).all()  # everything above 0: all green at opacity 1
