"""Tests for segkit.losses.

Oracles: hand-counted 3x3 cases (with the lesson's smoothing), torch's own BCE and cross-entropy
for the first half of the combined losses, and torchmetrics' Dice / F1 on saturated logits
(probabilities exactly 0 or 1) with smooth=0, where soft Dice and the classification Dice coincide.
Definition differences with torchmetrics, asserted below:
  * DiceScore / F1 (macro) drop a class absent from truth and prediction (0/0 -> NaN, nanmean);
    DiceLoss keeps it: with smooth > 0 its ratio is s / (sum(p) + s), which pushes p to 0.
  * DiceLoss sums over the whole batch: torchmetrics' aggregation_level="global", not "samplewise".
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torchmetrics.classification import BinaryF1Score, MulticlassF1Score
from torchmetrics.segmentation import DiceScore

from segkit.data import IGNORE_INDEX
from segkit.losses import BCEDiceLoss, CEDiceLoss, DiceLoss, default_loss

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)  # same examples every run: no flaky CI
BIG = 60.0  # logits of +-60 give sigmoid/softmax probabilities of 0 or 1 in float32 (to 1e-26)


def binary_logits(probs) -> torch.Tensor:
    """(H, W) probabilities -> (1, 1, H, W) float32 logits whose sigmoid gives them back (0 and 1 saturated)."""
    p = torch.tensor(probs, dtype=torch.float64)
    return torch.logit(p).clamp(-BIG, BIG).float()[None, None]


def onehot_logits(classes: torch.Tensor, k: int) -> torch.Tensor:
    """(N, H, W) classes -> (N, K, H, W) saturated logits: softmax is the one-hot of `classes`."""
    return (2 * F.one_hot(classes, k).permute(0, 3, 1, 2).float() - 1) * BIG


# ---------------------------------------------------------------- hand-counted cases

TRUTH = torch.tensor([[[1, 1, 0], [1, 0, 0], [0, 0, 0]]])  # 3 foreground pixels
HARD = [[1, 1, 1], [0, 1, 0], [0, 0, 0]]  # 4 predicted, 2 of them on the truth


def test_binary_hand_case_with_smoothing():
    # 1 - (2 * 2 + s) / (4 + 3 + s)
    assert float(DiceLoss()(binary_logits(HARD), TRUTH)) == pytest.approx(1 - 5 / 8)
    assert float(DiceLoss(smooth=0)(binary_logits(HARD), TRUTH)) == pytest.approx(1 - 4 / 7)
    assert float(DiceLoss(smooth=2.5)(binary_logits(HARD), TRUTH)) == pytest.approx(1 - 6.5 / 9.5)


def test_binary_hand_case_soft_probabilities():
    soft = [[0.5, 1.0, 0.0], [0.25, 0.0, 0.0], [0.0, 0.0, 0.25]]
    # sum(p*g) = 0.5 + 1 + 0.25 = 1.75; sum(p) = 2.0; sum(g) = 3
    expected = 1 - (2 * 1.75 + 1) / (2.0 + 3 + 1)
    assert float(DiceLoss()(binary_logits(soft), TRUTH)) == pytest.approx(expected, abs=1e-6)


def test_binary_applies_sigmoid_to_logits():
    logits = torch.zeros(1, 1, 3, 3)
    # every probability is 0.5: sum(p*g) = 1.5, sum(p) = 4.5, sum(g) = 3
    assert float(DiceLoss()(logits, TRUTH)) == pytest.approx(1 - (3 + 1) / (4.5 + 3 + 1))


def test_multiclass_hand_case_background_included():
    target = torch.tensor([[[0, 0, 1], [0, 1, 1], [2, 2, 2]]])
    pred = torch.tensor([[[0, 1, 1], [0, 1, 2], [2, 0, 2]]])
    # per class (intersection, |P|, |G|): 0: (2, 3, 3)  1: (2, 3, 3)  2: (2, 3, 3)
    ratio = (2 * 2 + 1) / (3 + 3 + 1)
    assert float(DiceLoss()(onehot_logits(pred, 3), target)) == pytest.approx(1 - ratio)
    # now class 2 is never predicted: 0: (2, 6, 3)  1: (2, 3, 3)  2: (0, 0, 3); the mean counts class 0
    pred2 = torch.tensor([[[0, 1, 1], [0, 1, 0], [0, 0, 0]]])
    r0, r1, r2 = (2 * 2 + 1) / (6 + 3 + 1), (2 * 2 + 1) / (3 + 3 + 1), 1 / (0 + 3 + 1)
    assert float(DiceLoss()(onehot_logits(pred2, 3), target)) == pytest.approx(1 - (r0 + r1 + r2) / 3)


def test_multiclass_applies_softmax_to_logits():
    logits = torch.zeros(1, 3, 1, 3)  # softmax: 1/3 per class everywhere
    target = torch.tensor([[[0, 1, 2]]])
    # each class: sum(p*g) = 1/3, sum(p) = 1, sum(g) = 1
    assert float(DiceLoss()(logits, target)) == pytest.approx(1 - (2 / 3 + 1) / (1 + 1 + 1))
    logits[0, 2, 0, 2] = float(np.log(4.0))  # last pixel: softmax (1/6, 1/6, 2/3)
    r01 = (2 * (1 / 3) + 1) / (1 / 3 + 1 / 3 + 1 / 6 + 1 + 1)
    r2 = (2 * (2 / 3) + 1) / (1 / 3 + 1 / 3 + 2 / 3 + 1 + 1)
    assert float(DiceLoss()(logits, target)) == pytest.approx(1 - (2 * r01 + r2) / 3)


def test_sums_run_over_the_whole_batch():
    # image A: 4 foreground pixels, all found. image B: 1 foreground pixel, missed.
    target = torch.zeros(2, 3, 3, dtype=torch.long)
    target[0, :2, :2] = 1
    target[1, 2, 2] = 1
    probs = torch.zeros(2, 3, 3)
    probs[0, :2, :2] = 1
    value = DiceLoss()(((2 * probs - 1) * BIG)[:, None], target)
    assert float(value) == pytest.approx(1 - (2 * 4 + 1) / (4 + 5 + 1))  # one ratio over both images
    per_image_mean = 1 - ((8 + 1) / (8 + 1) + (0 + 1) / (1 + 1)) / 2
    assert float(value) != pytest.approx(per_image_mean)


# ---------------------------------------------------------------- ignore_index


@pytest.mark.parametrize("channels", [1, 3])
def test_ignored_pixels_do_not_count(channels):
    g = torch.Generator().manual_seed(channels)
    logits = torch.randn(2, channels, 4, 6, generator=g)
    target = torch.randint(0, max(channels, 2), (2, 4, 6), generator=g)
    with_ignore = target.clone()
    with_ignore[:, :, -2:] = IGNORE_INDEX  # last two columns unlabelled
    for loss in (DiceLoss(), default_loss(channels)):
        value = loss(logits, with_ignore)
        # same as cropping the ignored columns off
        assert float(value) == pytest.approx(float(loss(logits[..., :-2], target[..., :-2])), abs=1e-6)


@st.composite
def logits_and_targets(draw, channels=st.integers(1, 4)):
    """(logits (N, C, H, W) float32, target (N, H, W) int64 with some 255), C drawn from `channels`."""
    c = draw(channels)
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    logits = draw(arrays(np.float32, (n, c, h, w), elements=st.floats(-8, 8, width=32)))
    target = draw(arrays(np.int64, (n, h, w), elements=st.sampled_from(list(range(max(c, 2))) + [IGNORE_INDEX])))
    return torch.from_numpy(logits), torch.from_numpy(target)


@SETTINGS
@given(logits_and_targets(), st.floats(-50, 50))
def test_ignored_pixels_get_no_gradient_and_change_nothing(case, shift):
    logits, target = case
    ignored = (target == IGNORE_INDEX).unsqueeze(1).expand_as(logits)
    for loss in (DiceLoss(), default_loss(logits.shape[1])):
        x = logits.clone().requires_grad_(True)
        value = loss(x, target)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all()
        assert torch.all(x.grad[ignored] == 0)
        # whatever the model says under an ignored pixel, the loss is the same
        moved = torch.where(ignored, logits + shift, logits)
        assert float(loss(moved, target)) == pytest.approx(value.item(), abs=1e-5)


@SETTINGS
@given(logits_and_targets(), st.sampled_from([1.0, 0.5, 3.0]))
def test_perfect_confident_prediction_has_zero_dice_loss(case, smooth):
    """Saturated logits on the truth: every class's ratio is 1, also a class absent from the batch (s / s)."""
    logits, target = case
    c = logits.shape[1]
    labels = target.masked_fill(target == IGNORE_INDEX, 0)
    perfect = (2 * labels[:, None].float() - 1) * BIG if c == 1 else onehot_logits(labels, c)
    perfect = torch.where((target == IGNORE_INDEX)[:, None], logits, perfect)  # noise under ignored pixels
    assert float(DiceLoss(smooth)(perfect, target)) == pytest.approx(0.0, abs=1e-6)
    wrong = -perfect if c == 1 else onehot_logits((labels + 1) % c, c)
    if bool((target != IGNORE_INDEX).any()):  # every labelled pixel wrong: the loss goes up
        assert float(DiceLoss(smooth)(wrong, target)) > 0.1


@SETTINGS
@given(logits_and_targets(channels=st.just(1)))
def test_bce_part_is_torch_bce_over_labelled_pixels(case):
    logits, target = case
    valid = target != IGNORE_INDEX
    bce = float(BCEDiceLoss()(logits, target) - DiceLoss()(logits, target))
    if valid.any():
        expected = F.binary_cross_entropy_with_logits(logits[:, 0][valid], target[valid].float())
        assert bce == pytest.approx(float(expected), abs=1e-5)
    else:
        assert bce == 0.0  # an all-ignored batch: 0, not NaN


@SETTINGS
@given(logits_and_targets(channels=st.integers(2, 4)))
def test_ce_part_is_torch_cross_entropy_with_ignore_index(case):
    logits, target = case
    ce = float(CEDiceLoss()(logits, target) - DiceLoss()(logits, target))
    expected = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
    if bool((target != IGNORE_INDEX).any()):
        assert ce == pytest.approx(float(expected), abs=1e-5)
    else:
        assert math.isnan(float(expected)) and ce == 0.0  # torch: 0 / 0; segkit: 0


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("fill", [0, IGNORE_INDEX], ids=["all-background", "all-ignore"])
@pytest.mark.parametrize("smooth", [1.0, 0.0])
def test_gradient_is_finite_for_empty_masks(channels, fill, smooth):
    logits = torch.randn(2, channels, 5, 5, generator=torch.Generator().manual_seed(3), requires_grad=True)
    target = torch.full((2, 5, 5), fill, dtype=torch.long)
    for loss_fn in (DiceLoss(smooth=smooth), default_loss(channels)):
        logits.grad = None
        value = loss_fn(logits, target)
        value.backward()
        assert torch.isfinite(value)
        assert torch.isfinite(logits.grad).all()
        if fill == IGNORE_INDEX:
            assert torch.all(logits.grad == 0)


def test_all_background_binary_pulls_probabilities_down():
    logits = torch.zeros(1, 1, 3, 3, requires_grad=True)
    target = torch.zeros(1, 3, 3, dtype=torch.long)
    value = DiceLoss()(logits, target)  # 1 - 1 / (4.5 + 1)
    assert value.item() == pytest.approx(1 - 1 / 5.5)
    value.backward()
    assert torch.all(logits.grad > 0)  # gradient descent lowers every logit


# ---------------------------------------------------------------- torchmetrics oracle (property tests)


@st.composite
def hard_multiclass(draw, with_ignore: bool):
    """(K, pred (N,H,W), target (N,H,W)); every class appears in the batch's target."""
    k = draw(st.integers(2, 4))
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(2, 6)), draw(st.integers(2, 6))
    pred = torch.from_numpy(draw(arrays(np.int64, (n, h, w), elements=st.integers(0, k - 1))))
    values = list(range(k)) + ([IGNORE_INDEX] if with_ignore else [])
    target = torch.from_numpy(draw(arrays(np.int64, (n, h, w), elements=st.sampled_from(values))))
    target.view(n, -1)[:, :k] = torch.arange(k)  # so no class is absent (0/0)
    return k, pred, target


@SETTINGS
@given(hard_multiclass(with_ignore=False))
def test_multiclass_matches_torchmetrics_dice_score(case):
    k, pred, target = case
    tm = DiceScore(num_classes=k, average="macro", aggregation_level="global", input_format="index")
    expected = 1 - float(tm(pred, target))
    assert float(DiceLoss(smooth=0)(onehot_logits(pred, k), target)) == pytest.approx(expected, abs=1e-6)


@SETTINGS
@given(hard_multiclass(with_ignore=True))
def test_multiclass_with_ignore_matches_torchmetrics_f1(case):
    k, pred, target = case
    f1 = MulticlassF1Score(num_classes=k, average="macro", ignore_index=IGNORE_INDEX, multidim_average="global")
    assert float(DiceLoss(smooth=0)(onehot_logits(pred, k), target)) == pytest.approx(
        1 - float(f1(pred, target)), abs=1e-6
    )


@SETTINGS
@given(
    st.integers(1, 3).flatmap(
        lambda n: st.tuples(
            arrays(np.int64, (n, 4, 5), elements=st.integers(0, 1)),
            arrays(np.int64, (n, 4, 5), elements=st.sampled_from([0, 1, IGNORE_INDEX])),
        )
    )
)
def test_binary_with_ignore_matches_torchmetrics_f1(case):
    pred, target = (torch.from_numpy(a) for a in case)
    valid = target != IGNORE_INDEX
    logits = ((2 * pred - 1) * BIG).float()[:, None]
    f1 = float(BinaryF1Score(ignore_index=IGNORE_INDEX)(pred, target))
    ours = DiceLoss(smooth=0)(logits, target)
    if not (pred.bool() & valid).any() and not (target == 1).any():
        # no foreground anywhere: F1 is 0/0 -> 0 in torchmetrics; Dice with smooth=0 is 0/eps -> loss 1
        assert f1 == 0.0 and float(ours) == pytest.approx(1.0)
    else:
        assert float(ours) == pytest.approx(1 - f1, abs=1e-6)
    with_smoothing = DiceLoss(smooth=1.0)(logits, target)
    inter = int((pred.bool() & (target == 1)).sum())
    assert float(with_smoothing) == pytest.approx(
        1 - (2 * inter + 1) / (int((pred.bool() & valid).sum()) + int((target == 1).sum()) + 1), abs=1e-6
    )


def test_absent_class_differs_from_torchmetrics():
    """torchmetrics drops a class absent from truth and prediction; DiceLoss keeps it (smoothed)."""
    target = torch.tensor([[[0, 0], [1, 1]]])
    pred = target.clone()  # perfect, class 2 never appears
    tm = DiceScore(num_classes=3, average="macro", aggregation_level="global", input_format="index")
    assert float(tm(pred, target)) == pytest.approx(1.0)
    assert float(DiceLoss()(onehot_logits(pred, 3), target)) == pytest.approx(0.0)  # 1 - (1+1+1)/3
    # a little probability on the absent class is penalised: its ratio is 1 / (0.4 + 1)
    probs = F.one_hot(pred, 3).permute(0, 3, 1, 2).double() * 0.9
    probs[:, 2] = 0.1
    logits = probs.clamp_min(1e-30).log().float()  # softmax(log p) = p
    r_present = (2 * 2 * 0.9 + 1) / (2 * 0.9 + 2 + 1)
    expected = 1 - (2 * r_present + 1 / (0.4 + 1)) / 3
    assert float(DiceLoss()(logits, target)) == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------- combined losses


def test_bce_dice_is_bce_plus_dice():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 1, 4, 4, generator=g)
    target = torch.randint(0, 2, (2, 4, 4), generator=g)
    bce = F.binary_cross_entropy_with_logits(logits[:, 0], target.float())
    assert float(BCEDiceLoss()(logits, target)) == pytest.approx(float(bce + DiceLoss()(logits, target)), abs=1e-6)
    assert float(BCEDiceLoss(smooth=0)(logits, target)) == pytest.approx(
        float(bce + DiceLoss(smooth=0)(logits, target)), abs=1e-6)  # smooth reaches the Dice half


def test_ce_dice_is_cross_entropy_plus_dice():
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(2, 3, 4, 4, generator=g)
    target = torch.randint(0, 3, (2, 4, 4), generator=g)
    target[1, :, 0] = IGNORE_INDEX
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
    assert float(CEDiceLoss()(logits, target)) == pytest.approx(float(ce + DiceLoss()(logits, target)), abs=1e-6)
    assert float(CEDiceLoss(smooth=0)(logits, target)) == pytest.approx(
        float(ce + DiceLoss(smooth=0)(logits, target)), abs=1e-6)


def test_ce_dice_all_ignored_is_zero_where_torch_gives_nan():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    target = torch.full((1, 2, 2), IGNORE_INDEX)
    assert torch.isnan(F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX))
    value = CEDiceLoss()(logits, target)
    assert value.item() == 0.0


def test_default_loss():
    assert type(default_loss(1)) is BCEDiceLoss
    assert type(default_loss(2)) is CEDiceLoss and type(default_loss(3)) is CEDiceLoss
    for bad in (0, -1, 1.0, "2"):
        with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
            default_loss(bad)


def test_loss_decreases_under_gradient_descent():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:6, 2:6] = 1
    for loss_fn, channels in ((BCEDiceLoss(), 1), (CEDiceLoss(), 2)):
        logits = torch.zeros(1, channels, 8, 8, requires_grad=True)
        opt = torch.optim.Adam([logits], lr=0.1)
        first = loss_fn(logits, target).item()
        for _ in range(30):
            opt.zero_grad()
            loss_fn(logits, target).backward()
            opt.step()
        assert loss_fn(logits, target).item() < 0.5 * first


@pytest.mark.parametrize("loss_fn,channels", [(CEDiceLoss(), 3), (DiceLoss(), 3), (BCEDiceLoss(), 1)])
def test_float32_from_bf16_logits_and_under_autocast(loss_fn, channels):
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(2, channels, 16, 16, generator=g).bfloat16()
    target = torch.randint(0, max(channels, 2), (2, 16, 16), generator=g)
    reference = loss_fn(logits.float(), target)
    assert loss_fn(logits, target).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss_fn(logits, target)
    assert value.dtype == torch.float32
    assert float(value) == pytest.approx(float(reference), abs=1e-6)


# ---------------------------------------------------------------- bad input

L1 = torch.zeros(1, 1, 4, 4)
L3 = torch.zeros(1, 3, 4, 4)
T = torch.zeros(1, 4, 4, dtype=torch.long)


@pytest.mark.parametrize(
    ("logits", "target", "error", "match"),
    [
        (torch.zeros(1, 4, 4), T, ValueError, r"logits must be float \(N, C, H, W\), got \(1, 4, 4\).*unsqueeze\(0\)"),
        (L3.long(), T, ValueError, r"logits must be float"),
        (np.zeros((1, 1, 4, 4)), T, ValueError, r"logits must be float \(N, C, H, W\), got ndarray"),
        (L1, torch.zeros(4, 4, dtype=torch.long), ValueError, r"\(N, H, W\) = \(1, 4, 4\) class indices, got \(4, 4\)"),
        (torch.zeros(2, 1, 4, 4), T, ValueError, r"\(N, H, W\) = \(2, 4, 4\)"),
        (L1, torch.zeros(1, 4, 5, dtype=torch.long), ValueError, r"resized \(nearest\)"),
        (L1, torch.zeros(1, 1, 4, 4, dtype=torch.long), ValueError, r"A \(N, 1, H, W\) mask: mask\[:, 0\]"),
        (L1, np.zeros((1, 4, 4), np.int64), ValueError, r"got ndarray"),
        (L1, torch.zeros(1, 4, 4), TypeError, r"int64 class indices, got torch.float32: use target.long\(\)"),
        (L3, T.bool(), TypeError, r"got torch.bool"),
        (L3, T.to(torch.uint8), TypeError, r"got torch.uint8: use target.long\(\)"),
        (L3, T.int(), TypeError, r"got torch.int32"),
        (L1, torch.full((1, 4, 4), 2), ValueError,
         r"classes \[2\], but a model with 1 output channel\(s\) knows 0\.\.1"),
        (L3, torch.tensor([[[0, 1, 3, -1]] * 4]), ValueError, r"classes \[-1, 3\].*3 output channel\(s\) knows 0\.\.2"),
        (L3, torch.tensor([[[0, 1, 254, 255]] * 4]), ValueError, r"\[254\].*\(255 = ignore\).*num_classes=K\+1"),
    ],
)
def test_losses_reject_bad_input(logits, target, error, match):
    for loss_fn, name in ((DiceLoss(), "DiceLoss"), (default_loss(logits.shape[1] if logits.ndim == 4 else 1), None)):
        with pytest.raises(error, match=match) as info:
            loss_fn(logits, target)
        assert str(info.value).startswith(name or type(loss_fn).__name__)  # the message names the loss


def test_combined_losses_check_channels():
    with pytest.raises(ValueError, match="BCEDiceLoss: expects 1 channel.*got 2: use CEDiceLoss"):
        BCEDiceLoss()(torch.zeros(1, 2, 4, 4), T)
    with pytest.raises(ValueError, match="CEDiceLoss: expects C >= 2.*use BCEDiceLoss"):
        CEDiceLoss()(L1, T)
    with pytest.raises(ValueError, match=r"CEDiceLoss: target holds classes \[4\]"):
        CEDiceLoss()(L3, torch.full((1, 4, 4), 4))
    with pytest.raises(ValueError, match="smooth must be >= 0, got -1"):
        DiceLoss(smooth=-1)
    with pytest.raises(ValueError, match="smooth"):
        BCEDiceLoss(smooth=-0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda():
    g = torch.Generator().manual_seed(8)
    cpu_logits = torch.randn(2, 3, 8, 8, generator=g)
    target = torch.randint(0, 3, (2, 8, 8), generator=g)
    target[0, 0] = IGNORE_INDEX
    for loss_fn, logits in ((CEDiceLoss(), cpu_logits), (BCEDiceLoss(), cpu_logits[:, :1])):
        binary = target.clamp_max(1).masked_fill(target == IGNORE_INDEX, IGNORE_INDEX)  # 0, 1 and 255
        target_k = binary if logits.shape[1] == 1 else target
        x = logits.cuda().requires_grad_(True)
        value = loss_fn(x, target_k.cuda())
        value.backward()
        assert value.device.type == "cuda" and torch.isfinite(x.grad).all()
        assert torch.all(x.grad[(target_k == IGNORE_INDEX).cuda()[:, None].expand_as(x)] == 0)
        assert value.item() == pytest.approx(loss_fn(logits, target_k).item(), abs=1e-5)
        with pytest.raises(ValueError, match=r"classes \[3\]"):  # checked before any CUDA device-side assert
            loss_fn(x, torch.full_like(target_k, 3).cuda())
