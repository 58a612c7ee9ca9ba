"""Tests for segkit.metrics: hand-counted cases, property tests, and torchmetrics as an independent oracle.

Where segkit and torchmetrics 1.x define things differently, the difference is asserted
explicitly next to segkit's own value (so a change in either library shows up here):
  * per-class IoU / Dice / recall of an absent class: segkit NaN (left out of every mean),
    torchmetrics average="none" gives 0 (its zero_division value).
  * MulticlassAccuracy(average="macro") counts a class predicted but absent from the truth as
    recall 0; segkit's mean_class_accuracy leaves it out.
  * nothing counted (every pixel ignored): segkit NaN, torchmetrics accuracy and F1 0.
  * segmentation.MeanIoU averages per-image IoUs; segkit counts the pixels of the whole dataset.
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

from segkit.data import IGNORE_INDEX
from segkit.metrics import ConfusionMatrix, logits_to_pred

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)  # same examples every run: no flaky CI
SUMMARY_KEYS = {"foreground_iou", "miou", "iou", "dice", "pixel_accuracy", "class_accuracy",
                "mean_class_accuracy", "frequency_weighted_iou", "pixels"}


# ---------------------------------------------------------------- hand-counted cases

# 3x3, three classes, one ignored pixel (bottom right). Counted pairs (truth, pred):
# (0,0) (0,1) (1,1) / (0,0) (1,1) (1,2) / (2,2) (2,0)  ->  rows = truth, cols = pred
TARGET = torch.tensor([[0, 0, 1], [0, 1, 1], [2, 2, 255]])
PRED = torch.tensor([[0, 1, 1], [0, 1, 2], [2, 0, 0]])
HAND_MAT = torch.tensor([[2, 1, 0], [0, 2, 1], [1, 0, 1]])


def hand_matrix(num_classes: int = 3) -> ConfusionMatrix:
    cm = ConfusionMatrix(num_classes)
    cm.update(PRED[None], TARGET[None])
    return cm


def test_hand_confusion_matrix():
    cm = hand_matrix()
    assert cm.mat.dtype == torch.int64 and cm.mat.device.type == "cpu"
    assert torch.equal(cm.mat, HAND_MAT)
    assert repr(cm) == "ConfusionMatrix(num_classes=3, pixels=8)"


def test_hand_metrics():
    cm = hand_matrix()
    # row sums (truth) 3, 3, 2; column sums (pred) 3, 3, 2; diagonal 2, 2, 1; 8 pixels counted
    assert cm.iou().tolist() == pytest.approx([2 / 4, 2 / 4, 1 / 3])
    assert cm.miou() == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)
    assert cm.foreground_iou() == pytest.approx((0.5 + 1 / 3) / 2)  # background (class 0) left out
    assert cm.dice().tolist() == pytest.approx([4 / 6, 4 / 6, 2 / 4])
    assert cm.pixel_accuracy() == pytest.approx(5 / 8)
    assert cm.class_accuracy().tolist() == pytest.approx([2 / 3, 2 / 3, 1 / 2])
    assert cm.frequency_weighted_iou() == pytest.approx(3 / 8 * 0.5 + 3 / 8 * 0.5 + 2 / 8 * (1 / 3))
    for value in (cm.iou(), cm.dice(), cm.class_accuracy()):
        assert value.dtype == torch.float64 and value.shape == (3,)


def test_binary_hand_case_with_thresholds():
    """A binary model: sigmoid > threshold (logits_to_pred), scored by ConfusionMatrix(2): foreground_iou = cat IoU."""
    probs = torch.tensor([[0.9, 0.6, 0.1], [0.4, 0.7, 0.2], [0.8, 0.3, 0.95]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 255]])
    logits = torch.logit(probs)[None, None]
    for threshold, expected in ((0.5, 2 / 5), (0.65, 1 / 5)):
        # > 0.5: (0,0) (0,1) (1,1) (2,0) [(2,2) ignored]; truth (0,0) (0,1) (1,0): 2 TP, 2 FP, 1 FN
        # > 0.65: (0,0) (1,1) (2,0): 1 TP, 2 FP, 2 FN
        cm = ConfusionMatrix(2)
        cm.update(logits_to_pred(logits, threshold), mask[None])
        assert cm.foreground_iou() == pytest.approx(expected)
        assert cm.iou()[1] == pytest.approx(expected)


def test_empty_mask_and_empty_prediction_is_nan_not_zero():
    """Mended: the old test ended on torchmetrics' value; here segkit's NaN is the subject, torchmetrics a contrast."""
    background = torch.zeros(1, 4, 4, dtype=torch.long)
    cm = ConfusionMatrix(2)
    cm.update(background, background)  # no cat in the truth, none predicted: IoU = 0 / 0
    assert cm.iou()[0] == 1.0 and math.isnan(cm.iou()[1])
    assert math.isnan(cm.foreground_iou()) and math.isnan(cm.dice()[1]) and math.isnan(cm.class_accuracy()[1])
    assert cm.miou() == 1.0  # the undefined class is left out of the mean, not counted as 0
    summary = cm.summary(["background", "cat"])
    assert summary["foreground_iou"] is None and summary["iou"] == {"background": 1.0, "cat": None}
    theirs = MulticlassJaccardIndex(num_classes=2, average="none", ignore_index=IGNORE_INDEX)(background, background)
    assert theirs.tolist() == [1.0, 0.0]  # torchmetrics' convention: 0 where segkit says "undefined"
    # one false cat pixel is a defined IoU of 0, not NaN
    false_cat = background.clone()
    false_cat[0, 0, 0] = 1
    cm = ConfusionMatrix(2)
    cm.update(false_cat, background)
    assert cm.foreground_iou() == 0.0 and cm.iou()[1] == 0.0


def test_absent_class_is_nan_and_left_out_of_means():
    cm = hand_matrix(4)  # class 3 appears in neither truth nor prediction
    assert math.isnan(cm.iou()[3]) and math.isnan(cm.dice()[3]) and math.isnan(cm.class_accuracy()[3])
    assert cm.miou() == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)
    assert cm.foreground_iou() == pytest.approx((0.5 + 1 / 3) / 2)
    assert cm.frequency_weighted_iou() == pytest.approx(hand_matrix(3).frequency_weighted_iou())
    assert cm.summary()["mean_class_accuracy"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 2) / 3)


def test_class_predicted_but_absent_from_truth():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 2], [1, 1]]), torch.tensor([[0, 0], [1, 1]]))
    # class 2: predicted once, never true -> IoU 0 (counts in the means), recall undefined (NaN)
    assert cm.iou().tolist() == pytest.approx([1 / 2, 1.0, 0.0])
    assert cm.miou() == pytest.approx(0.5)
    assert cm.foreground_iou() == pytest.approx(0.5)
    assert cm.dice()[2] == 0.0
    assert math.isnan(cm.class_accuracy()[2])
    assert cm.summary()["mean_class_accuracy"] == pytest.approx((1 / 2 + 1) / 2)


def test_accumulates_over_updates():
    cm = ConfusionMatrix(3)
    cm.update(PRED[None], TARGET[None])
    cm.update(PRED.flip(0)[None], TARGET.flip(0)[None])  # same pixels, another order
    assert torch.equal(cm.mat, 2 * HAND_MAT)
    assert cm.miou() == pytest.approx(hand_matrix().miou())


def test_dataset_iou_counts_all_pixels_not_a_mean_of_images():
    """Mended: segkit's dataset IoU (count first, divide last) against an oracle on the pooled pixels.

    Image A: four cat pixels, all found. Image B: one cat pixel, missed. Over the dataset: 4 TP,
    1 FN -> 4/5. A mean of per-image IoUs would say (1 + 0) / 2.
    """
    target = torch.tensor([[[1, 1], [1, 1]], [[1, 0], [0, 0]]])
    pred = torch.tensor([[[1, 1], [1, 1]], [[0, 0], [0, 0]]])
    one_batch, image_by_image = ConfusionMatrix(2), ConfusionMatrix(2)
    one_batch.update(pred, target)
    for p, t in zip(pred, target):
        image_by_image.update(p[None], t[None])
    pooled = float(MeanIoU(num_classes=2, include_background=False, input_format="index")(
        pred.reshape(1, 1, -1), target.reshape(1, 1, -1)))  # torchmetrics on all pixels as one image
    assert pooled == pytest.approx(4 / 5)
    for cm in (one_batch, image_by_image):
        assert cm.foreground_iou() == pytest.approx(pooled)
        assert cm.summary()["pixels"] == 8


def test_all_ignored_counts_nothing():
    cm = ConfusionMatrix(2)
    cm.update(torch.ones(1, 3, 3, dtype=torch.long), torch.full((1, 3, 3), IGNORE_INDEX))
    assert cm.mat.sum() == 0
    assert math.isnan(cm.foreground_iou()) and math.isnan(cm.miou())
    assert math.isnan(cm.pixel_accuracy()) and math.isnan(cm.frequency_weighted_iou())
    summary = cm.summary()
    assert summary["pixels"] == 0
    assert all(v is None for k, v in summary.items() if not isinstance(v, (dict, int)))
    assert all(v is None for key in ("iou", "dice", "class_accuracy") for v in summary[key].values())


def test_accepts_small_int_and_bool_tensors():
    cm = ConfusionMatrix(3)
    cm.update(PRED.to(torch.uint8), TARGET.to(torch.uint8))  # uint8 holds 255 = ignore
    cm.update(PRED.int(), TARGET.int())
    assert torch.equal(cm.mat, 2 * HAND_MAT)
    binary = ConfusionMatrix(2)
    binary.update(torch.tensor([True, False, True]), torch.tensor([1, 0, 0]))
    assert binary.mat.tolist() == [[1, 1], [0, 1]]


def test_summary_is_json_ready():
    cm = hand_matrix(4)
    names = ["background", "cat", "dog", "bird"]
    summary = cm.summary(class_names=names)
    assert set(summary) == SUMMARY_KEYS
    back = json.loads(json.dumps(summary, allow_nan=False))  # fails on NaN: NaN must have become None
    assert back["miou"] == pytest.approx(4 / 9)
    assert back["foreground_iou"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert list(back["iou"]) == names
    assert back["iou"] == {"background": pytest.approx(0.5), "cat": pytest.approx(0.5), "dog": pytest.approx(1 / 3),
                           "bird": None}
    assert back["dice"] == {"background": pytest.approx(2 / 3), "cat": pytest.approx(2 / 3), "dog": pytest.approx(0.5),
                            "bird": None}
    assert back["class_accuracy"]["dog"] == pytest.approx(0.5) and back["class_accuracy"]["bird"] is None
    assert back["pixel_accuracy"] == pytest.approx(5 / 8)
    assert back["mean_class_accuracy"] == pytest.approx(11 / 18)
    assert back["frequency_weighted_iou"] == pytest.approx(11 / 24)
    assert back["pixels"] == 8 and type(back["pixels"]) is int
    assert back == summary  # already plain Python: nothing changed on the way through JSON
    assert list(cm.summary()["iou"]) == ["class_0", "class_1", "class_2", "class_3"]


def test_logits_to_pred():
    binary = torch.tensor([-1.0, 0.0, 2.0]).reshape(1, 1, 1, 3)
    assert logits_to_pred(binary).tolist() == [[[0, 0, 1]]]  # sigmoid(0) = 0.5 is not > 0.5
    assert logits_to_pred(binary, threshold=0.2).tolist() == [[[1, 1, 1]]]
    assert logits_to_pred(binary.bfloat16()).dtype == torch.int64
    multi = torch.tensor([[[[0.1, 3.0]], [[0.2, 1.0]], [[-5.0, 2.0]]]])  # (1, 3, 1, 2)
    out = logits_to_pred(multi)
    assert out.dtype == torch.int64 and out.tolist() == [[[1, 0]]]
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*unsqueeze\(0\)"):
        logits_to_pred(torch.zeros(3, 4, 4))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("pred", "target", "error", "match"),
    [
        (torch.zeros(2, 3, 3, dtype=torch.long), torch.zeros(2, 3, 4, dtype=torch.long), ValueError,
         r"pred \(2, 3, 3\) and target \(2, 3, 4\) differ.*logits_to_pred"),
        (torch.zeros(2, 3, 3, 3), torch.zeros(2, 3, 3, dtype=torch.long), ValueError, "logits_to_pred"),  # raw logits
        (torch.zeros(2, 3, 3), torch.zeros(2, 3, 3, dtype=torch.long), TypeError, "integer.*logits_to_pred"),
        (torch.zeros(2, 3, 3, dtype=torch.long), torch.zeros(2, 3, 3), TypeError, "integer class indices"),
        (torch.full((1, 2, 2), 3), torch.zeros(1, 2, 2, dtype=torch.long), ValueError,
         r"pred holds \[3\], outside 0\.\.2\. Is num_classes=3 right\?"),
        (torch.full((1, 2, 2), -1), torch.zeros(1, 2, 2, dtype=torch.long), ValueError, r"pred holds \[-1\]"),
        # pred is checked everywhere, also under ignored pixels: it comes from the model, never 255
        (torch.tensor([[[0, 255]]]), torch.tensor([[[0, 255]]]), ValueError, r"pred holds \[255\]"),
        (torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([[[0, 3], [254, 255]]]), ValueError,
         r"target holds \[3, 254\], outside 0\.\.2 and 255 \(ignore\)\. Is num_classes=3 right\?"),
        (np.zeros((1, 2, 2), np.int64), torch.zeros(1, 2, 2, dtype=torch.long), TypeError, "torch.from_numpy"),
        (torch.zeros(1, 2, 2, dtype=torch.long), np.zeros((1, 2, 2), np.int64), TypeError, "ndarray"),
    ],
)
def test_update_rejects_bad_input(pred, target, error, match):
    cm = hand_matrix()
    with pytest.raises(error, match=match):
        cm.update(pred, target)
    assert torch.equal(cm.mat, HAND_MAT)  # a refused batch changes nothing


@pytest.mark.parametrize("num_classes", [1, 0, 255, 2.0, "2"])
def test_constructor_rejects_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match=r"2\.\.254.*ConfusionMatrix\(2\)"):
        ConfusionMatrix(num_classes)


def test_constructor_bounds_and_summary_names():
    assert ConfusionMatrix(254).mat.shape == (254, 254)  # the most classes next to 255 = ignore
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        hand_matrix().summary(class_names=["bg", "cat"])


# ---------------------------------------------------------------- devices


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_counts_cuda_tensors_into_a_cpu_matrix():
    cm = ConfusionMatrix(3)
    cm.update(PRED[None].cuda(), TARGET[None])  # target on the CPU is moved to pred's device
    cm.update(PRED[None].cuda(), TARGET[None].cuda())
    assert cm.mat.device.type == "cpu"
    assert torch.equal(cm.mat, 2 * HAND_MAT)
    assert cm.iou().device.type == "cpu"
    with pytest.raises(ValueError, match=r"target holds \[3\]"):
        cm.update(PRED[None].cuda(), torch.full_like(TARGET[None], 3).cuda())


# ---------------------------------------------------------------- property tests and the torchmetrics oracle


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
    summary = ours.summary()

    assert torch.equal(ours.mat, got["mat"].long())
    truth, predicted = got["mat"].sum(1), got["mat"].sum(0)
    absent = (truth + predicted) == 0

    assert_equal_where_defined(ours.iou(), got["iou"], absent)
    assert_equal_where_defined(ours.dice(), got["f1"], absent)
    assert_equal_where_defined(ours.class_accuracy(), got["recall"], truth == 0)
    assert close_or_both_nan(ours.miou(), float(got["miou"]))
    # foreground_iou: torchmetrics' per-class IoU, background and absent classes left out
    foreground = got["iou"][1:][~absent[1:]]
    assert close_or_both_nan(ours.foreground_iou(), float(foreground.mean()) if foreground.numel() else math.nan)

    if ours.mat.sum() == 0:  # every pixel ignored: segkit says "undefined", torchmetrics mostly 0
        assert math.isnan(ours.miou()) and math.isnan(float(got["miou"]))
        assert math.isnan(float(torch.nanmean(ours.dice()))) and float(got["mean_f1"]) == 0
        assert math.isnan(ours.pixel_accuracy()) and float(got["acc"]) == 0
        assert math.isnan(ours.frequency_weighted_iou())
        assert summary["mean_class_accuracy"] is None and float(got["mean_acc"]) == 0
        return
    assert float(torch.nanmean(ours.dice())) == pytest.approx(float(got["mean_f1"]), abs=1e-6)
    assert ours.pixel_accuracy() == pytest.approx(float(got["acc"]), abs=1e-6)
    assert ours.frequency_weighted_iou() == pytest.approx(float(got["fw_iou"]), abs=1e-6)
    # Mean accuracy: torchmetrics averages recall over classes seen in truth OR prediction,
    # counting "predicted but never true" as 0; segkit averages over classes seen in truth.
    in_truth = int((truth > 0).sum())
    predicted_only = int(((truth == 0) & (predicted > 0)).sum())
    ours_mean_acc = summary["mean_class_accuracy"]
    assert float(got["mean_acc"]) == pytest.approx(ours_mean_acc * in_truth / (in_truth + predicted_only), abs=1e-5)
    if predicted_only == 0:
        assert ours_mean_acc == pytest.approx(float(got["mean_acc"]), abs=1e-5)


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
    for include_background, ours_mean in ((True, ours.miou()), (False, ours.foreground_iou())):
        mean = MeanIoU(num_classes=k, include_background=include_background, input_format="index")(pred, target)
        assert close_or_both_nan(ours_mean, float(mean))


@SETTINGS
@given(multiclass_batches())
def test_batches_add_up_to_one_big_update(case):
    """Counting batch by batch equals counting all pixels at once, in any order and any shape."""
    k, batches = case
    by_batch, reversed_order, at_once = ConfusionMatrix(k), ConfusionMatrix(k), ConfusionMatrix(k)
    for pred, target in batches:
        by_batch.update(pred, target)
    for pred, target in reversed(batches):
        reversed_order.update(pred, target)
    at_once.update(torch.cat([p.flatten() for p, _ in batches]), torch.cat([t.flatten() for _, t in batches]))
    assert torch.equal(by_batch.mat, at_once.mat) and torch.equal(reversed_order.mat, at_once.mat)
    assert by_batch.summary() == at_once.summary()
    # and the table is the plain count of (truth, pred) pairs
    pairs = torch.zeros(k, k, dtype=torch.int64)
    for pred, target in batches:
        for t, p in zip(target.flatten().tolist(), pred.flatten().tolist()):
            if t != IGNORE_INDEX:
                pairs[t, p] += 1
    assert torch.equal(by_batch.mat, pairs)


@SETTINGS
@given(multiclass_batches(), st.randoms(use_true_random=False))
def test_ignored_pixels_never_count(case, random):
    """Whatever is predicted under a 255 pixel changes nothing; only labelled pixels are counted."""
    k, batches = case
    ours, scrambled = ConfusionMatrix(k), ConfusionMatrix(k)
    labelled = 0
    for pred, target in batches:
        ours.update(pred, target)
        other = pred.clone()
        ignored = target == IGNORE_INDEX
        other[ignored] = torch.tensor([random.randrange(k) for _ in range(int(ignored.sum()))], dtype=torch.int64)
        scrambled.update(other, target)
        labelled += int((~ignored).sum())
    assert torch.equal(ours.mat, scrambled.mat)
    assert int(ours.mat.sum()) == labelled == ours.summary()["pixels"]


@st.composite
def binary_batches(draw):
    """(threshold, [(logits (N, 1, H, W), target (N, H, W)), ...]) for a one-channel model."""
    batches = []
    for _ in range(draw(st.integers(1, 3))):
        shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
        logits = draw(arrays(np.float32, shape, elements=st.floats(-6, 6, width=32)))
        target = draw(arrays(np.int64, shape, elements=st.sampled_from([0, 1, IGNORE_INDEX])))
        batches.append((torch.from_numpy(logits)[:, None], torch.from_numpy(target)))
    return draw(st.sampled_from([0.3, 0.5, 0.7])), batches


@SETTINGS
@given(binary_batches())
def test_binary_foreground_iou_matches_torchmetrics_jaccard(case):
    threshold, batches = case
    ours = ConfusionMatrix(2)
    theirs = BinaryJaccardIndex(threshold=threshold, ignore_index=IGNORE_INDEX)
    for logits, target in batches:
        ours.update(logits_to_pred(logits, threshold), target)
        theirs.update(torch.sigmoid(logits[:, 0]), target)  # probabilities in (0, 1): thresholded, not re-sigmoided
    ours_iou, theirs_iou = ours.foreground_iou(), float(theirs.compute())
    if ours.mat[1].sum() + ours.mat[:, 1].sum() == 0:  # no cat anywhere: 0 / 0
        assert math.isnan(ours_iou) and theirs_iou == 0.0
    else:
        assert ours_iou == pytest.approx(theirs_iou, abs=1e-6)
