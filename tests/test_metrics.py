"""Tests for segkit.metrics: hand-counted cases, and torchmetrics as an independent oracle.

Where segkit and torchmetrics 1.x define things differently, the difference is asserted
explicitly (so a change in either library shows up here):
  * per-class IoU / F1 / recall of an absent class: segkit NaN, torchmetrics 0 (zero_division).
  * MulticlassAccuracy(average="macro") counts a class predicted but absent from the truth as
    recall 0; segkit's mean_pixel_accuracy leaves it out.
  * nothing counted (every pixel ignored): segkit NaN, torchmetrics accuracy 0.
  * segmentation.MeanIoU averages per-image IoUs; segkit accumulates pixels over the dataset.
  * binary_iou of an empty prediction on an empty mask: segkit NaN, BinaryJaccardIndex 0.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torchmetrics.classification import (
    BinaryJaccardIndex,
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)
from torchmetrics.segmentation import DiceScore, MeanIoU

from segkit.metrics import IGNORE_INDEX, ConfusionMatrix, binary_iou, logits_to_pred

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)  # same examples every run: no flaky CI


# ---------------------------------------------------------------- hand-counted cases

# 3x3, three classes, one ignored pixel (bottom right). Counted pairs (truth, pred):
# (0,0) (0,1) (1,1) / (0,0) (1,1) (1,2) / (2,2) (2,0)  ->  rows = truth, cols = pred
TARGET = torch.tensor([[0, 0, 1], [0, 1, 1], [2, 2, 255]])
PRED = torch.tensor([[0, 1, 1], [0, 1, 2], [2, 0, 0]])
HAND_MAT = torch.tensor([[2, 1, 0], [0, 2, 1], [1, 0, 1]])


def hand_matrix() -> ConfusionMatrix:
    cm = ConfusionMatrix(3)
    cm.update(PRED[None], TARGET[None])
    return cm


def test_hand_confusion_matrix():
    cm = hand_matrix()
    assert cm.mat.dtype == torch.int64
    assert torch.equal(cm.mat, HAND_MAT)


def test_hand_metrics():
    cm = hand_matrix()
    # row sums (truth) 3, 3, 2; column sums (pred) 3, 3, 2; diagonal 2, 2, 1; 8 pixels counted
    assert cm.iou().tolist() == pytest.approx([2 / 4, 2 / 4, 1 / 3])
    assert cm.miou() == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)
    assert cm.miou(include_background=False) == pytest.approx((0.5 + 1 / 3) / 2)
    assert cm.dice().tolist() == pytest.approx([4 / 6, 4 / 6, 2 / 4])
    assert cm.pixel_accuracy() == pytest.approx(5 / 8)
    assert cm.class_accuracy().tolist() == pytest.approx([2 / 3, 2 / 3, 1 / 2])
    assert cm.mean_pixel_accuracy() == pytest.approx((2 / 3 + 2 / 3 + 1 / 2) / 3)
    assert cm.frequency_weighted_iou() == pytest.approx(3 / 8 * 0.5 + 3 / 8 * 0.5 + 2 / 8 * (1 / 3))


def test_absent_class_is_nan_and_left_out_of_means():
    cm = ConfusionMatrix(4)  # class 3 appears in neither truth nor prediction
    cm.update(PRED[None], TARGET[None])
    iou = cm.iou()
    assert math.isnan(iou[3]) and math.isnan(cm.dice()[3]) and math.isnan(cm.class_accuracy()[3])
    assert cm.miou() == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)
    assert cm.mean_pixel_accuracy() == pytest.approx((2 / 3 + 2 / 3 + 1 / 2) / 3)


def test_class_predicted_but_absent_from_truth():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 2], [1, 1]]), torch.tensor([[0, 0], [1, 1]]))
    # class 2: predicted once, never true -> IoU 0 (counts in mIoU), recall undefined (NaN)
    assert cm.iou().tolist() == pytest.approx([1 / 2, 1.0, 0.0])
    assert cm.miou() == pytest.approx(0.5)
    assert math.isnan(cm.class_accuracy()[2])
    assert cm.mean_pixel_accuracy() == pytest.approx((1 / 2 + 1) / 2)


def test_accumulates_over_updates_and_reset():
    cm = ConfusionMatrix(3)
    cm.update(PRED[None], TARGET[None])
    cm.update(PRED[None], TARGET[None])
    assert torch.equal(cm.mat, 2 * HAND_MAT)
    assert cm.miou() == pytest.approx(hand_matrix().miou())
    cm.reset()
    assert cm.mat.sum() == 0
    assert math.isnan(cm.miou()) and math.isnan(cm.pixel_accuracy()) and math.isnan(cm.frequency_weighted_iou())


def test_all_ignored_counts_nothing():
    cm = ConfusionMatrix(2)
    cm.update(torch.ones(1, 3, 3, dtype=torch.long), torch.full((1, 3, 3), IGNORE_INDEX))
    assert cm.mat.sum() == 0
    assert math.isnan(cm.miou(include_background=False))


def test_ignore_index_none_counts_everything():
    cm = ConfusionMatrix(2, ignore_index=None)
    cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
    assert torch.equal(cm.mat, torch.tensor([[1, 1], [0, 1]]))


def test_accepts_numpy_and_small_int_dtypes():
    cm = ConfusionMatrix(3)
    cm.update(PRED.numpy().astype(np.uint8), TARGET.numpy().astype(np.uint8))
    assert torch.equal(cm.mat, HAND_MAT)


def test_summary_is_json_ready():
    cm = ConfusionMatrix(4)
    cm.update(PRED[None], TARGET[None])
    s = cm.summary(class_names=["background", "cat", "dog", "bird"])
    text = json.dumps(s, allow_nan=False)  # fails on NaN: NaN must have become None
    back = json.loads(text)
    assert back["miou"] == pytest.approx(4 / 9)
    assert back["miou_foreground"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert back["iou"][:3] == pytest.approx([0.5, 0.5, 1 / 3]) and back["iou"][3] is None
    assert back["iou_per_class"]["dog"] == pytest.approx(1 / 3) and back["iou_per_class"]["bird"] is None
    assert back["pixel_accuracy"] == pytest.approx(5 / 8)
    assert back["mean_pixel_accuracy"] == pytest.approx(11 / 18)
    assert back["fw_iou"] == pytest.approx(11 / 24)
    assert back["dice"][:3] == pytest.approx([2 / 3, 2 / 3, 1 / 2])
    assert back["pixels"] == 8
    assert all(type(v) in (float, int) or v is None for v in back["iou"])


def test_logits_to_pred():
    binary = torch.tensor([-1.0, 0.0, 2.0]).reshape(1, 1, 1, 3)
    assert logits_to_pred(binary).tolist() == [[[0, 0, 1]]]  # sigmoid(0) = 0.5 is not > 0.5
    assert logits_to_pred(binary, threshold=0.2).tolist() == [[[1, 1, 1]]]
    multi = torch.tensor([[[[0.1, 3.0]], [[0.2, 1.0]], [[-5.0, 2.0]]]])  # (1, 3, 1, 2)
    out = logits_to_pred(multi)
    assert out.dtype == torch.int64 and out.tolist() == [[[1, 0]]]
    with pytest.raises(ValueError, match="unsqueeze"):
        logits_to_pred(torch.zeros(3, 4, 4))


def test_binary_iou_hand():
    probs = np.array([[0.9, 0.6, 0.1], [0.4, 0.7, 0.2], [0.8, 0.3, 0.95]], dtype=np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 255]], dtype=np.uint8)
    # prediction > 0.5: (0,0) (0,1) (1,1) (2,0) [(2,2) ignored]; truth: (0,0) (0,1) (1,0)
    assert binary_iou(probs, mask) == pytest.approx(2 / 5)
    # > 0.65: (0,0) (1,1) (2,0)
    assert binary_iou(probs, mask, threshold=0.65) == pytest.approx(1 / 5)
    assert binary_iou(torch.from_numpy(probs)[None, None], torch.from_numpy(mask)[None]) == pytest.approx(2 / 5)


def test_binary_iou_both_empty_is_nan():
    assert math.isnan(binary_iou(torch.zeros(4, 4), torch.zeros(4, 4, dtype=torch.long)))
    assert binary_iou(torch.ones(4, 4), torch.zeros(4, 4, dtype=torch.long)) == 0.0
    # torchmetrics' convention differs: zero_division=0
    tm = BinaryJaccardIndex(ignore_index=IGNORE_INDEX)
    assert float(tm(torch.zeros(4, 4), torch.zeros(4, 4, dtype=torch.long))) == 0.0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("pred", "target", "error", "match"),
    [
        (torch.zeros(2, 3, 3, dtype=torch.long), torch.zeros(2, 3, 4, dtype=torch.long), ValueError, "same shape"),
        (torch.zeros(2, 3, 3), torch.zeros(2, 3, 3, dtype=torch.long), TypeError, "logits_to_pred"),
        (torch.zeros(2, 3, 3, dtype=torch.long), torch.zeros(2, 3, 3), TypeError, "integer"),
        (torch.full((1, 2, 2), 3), torch.zeros(1, 2, 2, dtype=torch.long), ValueError, r"pred holds values \[3\]"),
        (torch.full((1, 2, 2), -1), torch.zeros(1, 2, 2, dtype=torch.long), ValueError, "pred holds"),
        (torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([[[0, 3], [254, 255]]]), ValueError, r"\[3, 254\]"),
        ([0, 1], torch.zeros(2, dtype=torch.long), TypeError, "torch.Tensor or numpy"),
    ],
)
def test_update_rejects_bad_input(pred, target, error, match):
    cm = ConfusionMatrix(3)
    with pytest.raises(error, match=match):
        cm.update(pred, target)
    assert cm.mat.sum() == 0


def test_constructor_and_summary_errors():
    with pytest.raises(ValueError, match="ConfusionMatrix\\(2\\)"):
        ConfusionMatrix(1)
    with pytest.raises(ValueError, match="ignore_index"):
        ConfusionMatrix(3, ignore_index=2)
    with pytest.raises(ValueError, match="class names"):
        hand_matrix().summary(class_names=["bg", "cat"])


def test_binary_iou_errors():
    with pytest.raises(ValueError, match="sigmoid"):
        binary_iou(torch.tensor([-2.0, 3.0]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="0 \\(background\\), 1"):
        binary_iou(torch.tensor([0.2, 0.9]), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="same shape"):
        binary_iou(torch.rand(3, 4), torch.zeros(4, 3, dtype=torch.long))


# ---------------------------------------------------------------- devices


def test_keeps_cpu_device():
    cm = ConfusionMatrix(3, device="cpu")
    cm.update(PRED[None], TARGET[None])
    assert cm.mat.device.type == "cpu"
    assert cm.iou().device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_follows_cuda_tensors():
    cm = ConfusionMatrix(3)
    cm.update(PRED[None].cuda(), TARGET[None])  # target on CPU is moved to pred's device
    cm.update(PRED[None].cuda(), TARGET[None].cuda())
    assert cm.mat.device.type == "cuda"
    assert torch.equal(cm.mat.cpu(), 2 * HAND_MAT)
    assert cm.miou() == pytest.approx(hand_matrix().miou())


# ---------------------------------------------------------------- torchmetrics oracle (property tests)


@st.composite
def multiclass_batches(draw, with_ignore: bool = True, batch_sizes=(1, 3)):
    """(K, [(pred, target), ...]): 1-3 batches of (N, H, W) int64 tensors, target may hold 255."""
    k = draw(st.integers(2, 5))
    target_values = list(range(k)) + ([IGNORE_INDEX] if with_ignore else [])
    batches = []
    for _ in range(draw(st.integers(1, 3))):
        shape = (draw(st.integers(*batch_sizes)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
        pred = draw(arrays(np.int64, shape, elements=st.integers(0, k - 1)))
        target = draw(arrays(np.int64, shape, elements=st.sampled_from(target_values)))
        batches.append((torch.from_numpy(pred), torch.from_numpy(target)))
    return k, batches


def assert_equal_where_defined(ours: torch.Tensor, theirs: torch.Tensor, undefined: torch.Tensor) -> None:
    """ours is NaN exactly where `undefined`; torchmetrics puts its zero_division value (0) there."""
    assert torch.equal(torch.isnan(ours), undefined)
    assert torch.allclose(ours[~undefined], theirs.double()[~undefined], atol=1e-6)
    assert torch.all(theirs[undefined] == 0)


def close_or_both_nan(ours: float, theirs: float) -> bool:
    return (math.isnan(ours) and math.isnan(theirs)) or ours == pytest.approx(theirs, abs=1e-6)


ALL_IGNORED = (2, [(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), IGNORE_INDEX))])
# class 2 predicted, never true: the mean-accuracy difference
PREDICTED_ONLY = (3, [(torch.tensor([[[0, 2], [1, 1]]]), torch.tensor([[[0, 0], [1, 1]]]))])


@SETTINGS
@example(ALL_IGNORED)
@example(PREDICTED_ONLY)
@given(multiclass_batches())
def test_matches_torchmetrics_over_a_dataset(case):
    k, batches = case
    kw = dict(num_classes=k, ignore_index=IGNORE_INDEX)
    tm = {
        "mat": MulticlassConfusionMatrix(**kw),
        "iou": MulticlassJaccardIndex(average="none", **kw),
        "miou": MulticlassJaccardIndex(average="macro", **kw),
        "fw_iou": MulticlassJaccardIndex(average="weighted", **kw),  # weights = true-pixel counts
        "acc": MulticlassAccuracy(average="micro", **kw),
        "recall": MulticlassAccuracy(average="none", **kw),
        "mean_acc": MulticlassAccuracy(average="macro", **kw),
        "f1": MulticlassF1Score(average="none", **kw),
        "mean_f1": MulticlassF1Score(average="macro", **kw),
    }
    ours = ConfusionMatrix(k)
    for pred, target in batches:
        ours.update(pred, target)
        for metric in tm.values():
            metric.update(pred, target)
    got = {name: metric.compute() for name, metric in tm.items()}

    assert torch.equal(ours.mat, got["mat"].long())
    truth, predicted = got["mat"].sum(1), got["mat"].sum(0)
    absent = (truth + predicted) == 0

    assert_equal_where_defined(ours.iou(), got["iou"], absent)
    assert_equal_where_defined(ours.dice(), got["f1"], absent)
    assert_equal_where_defined(ours.class_accuracy(), got["recall"], truth == 0)
    assert close_or_both_nan(ours.miou(), float(got["miou"]))

    if ours.mat.sum() == 0:  # every pixel ignored: segkit says "undefined", torchmetrics mostly 0
        assert math.isnan(ours.miou()) and math.isnan(float(got["miou"]))
        assert math.isnan(float(torch.nanmean(ours.dice()))) and float(got["mean_f1"]) == 0
        assert math.isnan(ours.pixel_accuracy()) and float(got["acc"]) == 0
        assert math.isnan(ours.frequency_weighted_iou())
        assert math.isnan(ours.mean_pixel_accuracy()) and float(got["mean_acc"]) == 0
        return
    assert float(torch.nanmean(ours.dice())) == pytest.approx(float(got["mean_f1"]), abs=1e-6)
    assert ours.pixel_accuracy() == pytest.approx(float(got["acc"]), abs=1e-6)
    assert ours.frequency_weighted_iou() == pytest.approx(float(got["fw_iou"]), abs=1e-6)
    # Mean accuracy: torchmetrics averages recall over classes seen in truth OR prediction,
    # counting "predicted but never true" as 0; segkit averages over classes seen in truth.
    in_truth = int((truth > 0).sum())
    predicted_only = int(((truth == 0) & (predicted > 0)).sum())
    expected = ours.mean_pixel_accuracy() * in_truth / (in_truth + predicted_only)
    assert float(got["mean_acc"]) == pytest.approx(expected, abs=1e-6)
    if predicted_only == 0:
        assert ours.mean_pixel_accuracy() == pytest.approx(float(got["mean_acc"]), abs=1e-6)


@SETTINGS
@given(multiclass_batches())
def test_miou_without_background_matches_torchmetrics(case):
    k, batches = case
    ours = ConfusionMatrix(k)
    tm = MulticlassJaccardIndex(num_classes=k, average="none", ignore_index=IGNORE_INDEX)
    tm_mat = MulticlassConfusionMatrix(num_classes=k, ignore_index=IGNORE_INDEX)
    for pred, target in batches:
        ours.update(pred, target)
        tm.update(pred, target)
        tm_mat.update(pred, target)
    mat = tm_mat.compute()
    present = (mat.sum(0) + mat.sum(1)) > 0
    theirs = tm.compute()[1:][present[1:]]
    expected = float(theirs.mean()) if theirs.numel() else math.nan
    assert close_or_both_nan(ours.miou(include_background=False), expected)


@SETTINGS
@given(multiclass_batches(with_ignore=False))
def test_dice_matches_torchmetrics_dice_score_global(case):
    """DiceScore has no ignore_index, so no ignored pixels here; both give NaN for absent classes."""
    k, batches = case
    ours = ConfusionMatrix(k)
    tm = DiceScore(num_classes=k, average="none", aggregation_level="global", input_format="index")
    for pred, target in batches:
        ours.update(pred, target)
        tm.update(pred, target)
    assert torch.allclose(ours.dice(), tm.compute().double(), atol=1e-6, equal_nan=True)


@SETTINGS
@given(multiclass_batches(with_ignore=False, batch_sizes=(1, 1)))
def test_single_image_matches_torchmetrics_mean_iou(case):
    """segmentation.MeanIoU averages per image, so it equals segkit only for one image."""
    k, batches = case
    pred, target = batches[0]
    ours = ConfusionMatrix(k)
    ours.update(pred, target)
    per_class = MeanIoU(num_classes=k, per_class=True, input_format="index")(pred, target)
    assert torch.allclose(ours.iou().nan_to_num(-1.0), per_class.double(), atol=1e-6)  # -1 = absent there
    for include_background in (True, False):
        mean = MeanIoU(num_classes=k, include_background=include_background, input_format="index")(pred, target)
        assert close_or_both_nan(ours.miou(include_background=include_background), float(mean))


def test_dataset_miou_differs_from_torchmetrics_per_image_mean():
    # image A: all four pixels cat, predicted cat. image B: one cat pixel, predicted background.
    target = torch.tensor([[[1, 1], [1, 1]], [[1, 0], [0, 0]]])
    pred = torch.tensor([[[1, 1], [1, 1]], [[0, 0], [0, 0]]])
    ours = ConfusionMatrix(2)
    ours.update(pred, target)
    assert ours.miou(include_background=False) == pytest.approx(4 / 5)  # 4 TP, 1 FN over the dataset
    per_image = MeanIoU(num_classes=2, include_background=False, input_format="index")(pred, target)
    assert float(per_image) == pytest.approx((1.0 + 0.0) / 2)  # mean of image IoUs 1 and 0


@st.composite
def binary_batches(draw):
    batches = []
    for _ in range(draw(st.integers(1, 3))):
        shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
        probs = draw(arrays(np.float32, shape, elements=st.floats(0, 1, width=32)))
        target = draw(arrays(np.int64, shape, elements=st.sampled_from([0, 1, IGNORE_INDEX])))
        batches.append((torch.from_numpy(probs), torch.from_numpy(target)))
    return draw(st.sampled_from([0.3, 0.5, 0.7])), batches


@SETTINGS
@given(binary_batches())
def test_binary_matches_torchmetrics_jaccard(case):
    threshold, batches = case
    dataset = ConfusionMatrix(2)
    tm_dataset = BinaryJaccardIndex(threshold=threshold, ignore_index=IGNORE_INDEX)
    for probs, target in batches:
        ours = binary_iou(probs, target, threshold=threshold)
        theirs = float(BinaryJaccardIndex(threshold=threshold, ignore_index=IGNORE_INDEX)(probs, target))
        if math.isnan(ours):  # empty prediction on an empty mask: NaN here, 0 in torchmetrics
            valid = target != IGNORE_INDEX
            assert not (probs > threshold)[valid].any() and not (target[valid] == 1).any()
            assert theirs == 0.0
        else:
            assert ours == pytest.approx(theirs, abs=1e-6)
        dataset.update((probs > threshold).long(), target)
        tm_dataset.update(probs, target)
    ours, theirs = dataset.miou(include_background=False), float(tm_dataset.compute())
    if dataset.mat[1].sum() + dataset.mat[:, 1].sum() == 0:  # no foreground anywhere
        assert math.isnan(ours) and theirs == 0.0
    else:
        assert ours == pytest.approx(theirs, abs=1e-6)


def test_read_only_numpy_masks_are_accepted_without_a_warning():
    import warnings

    from PIL import Image

    pred = np.asarray(Image.fromarray(np.eye(4, dtype=np.uint8)))
    assert not pred.flags.writeable  # what np.asarray gives for a PIL image
    cm = ConfusionMatrix(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about non-writable arrays
        cm.update(pred, pred.copy())
    assert cm.iou().tolist() == [1.0, 1.0]
