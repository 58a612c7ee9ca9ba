"""Tests for segkit.losses.

Oracles: hand-counted 3x3 cases (with the lesson's smoothing), and torchmetrics' F1 / Dice on
hard 0/1 "probabilities" with smooth=0, where soft Dice and the classification Dice coincide.
Definition differences with torchmetrics, asserted below:
  * DiceScore / F1 (macro) drop a class absent from truth and prediction (0/0 -> NaN, nanmean);
    DiceLoss keeps it: with smooth > 0 its ratio is s / (sum(p) + s), which pushes p to 0.
  * DiceScore's default aggregation_level="samplewise" is DiceLoss(per_image=True);
    DiceLoss's default (the lesson's batch sums) is aggregation_level="global".
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn
from torchmetrics.classification import BinaryF1Score, MulticlassF1Score
from torchmetrics.segmentation import DiceScore

from segkit.losses import BCEDiceLoss, CEDiceLoss, DiceLoss, default_loss

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)  # same examples every run: no flaky CI
BIG = 60.0  # logits of +-60 give sigmoid/softmax probabilities of exactly 0 or 1 in float32


def probs_of(array) -> torch.Tensor:
    """(H, W) numbers -> (1, 1, H, W) float32 "probabilities"."""
    return torch.tensor(array, dtype=torch.float32)[None, None]


# ---------------------------------------------------------------- hand-counted cases

TRUTH = torch.tensor([[[1, 1, 0], [1, 0, 0], [0, 0, 0]]])  # 3 foreground pixels
HARD = [[1, 1, 1], [0, 1, 0], [0, 0, 0]]  # 4 predicted, 2 of them on the truth


def test_binary_hand_case_with_smoothing():
    # 1 - (2 * 2 + 1) / (4 + 3 + 1)
    assert float(DiceLoss(from_logits=False)(probs_of(HARD), TRUTH)) == pytest.approx(1 - 5 / 8)
    assert float(DiceLoss(smooth=0, from_logits=False)(probs_of(HARD), TRUTH)) == pytest.approx(1 - 4 / 7)


def test_binary_hand_case_soft_probabilities():
    soft = [[0.5, 1.0, 0.0], [0.25, 0.0, 0.0], [0.0, 0.0, 0.25]]
    # sum(p*g) = 0.5 + 1 + 0.25 = 1.75; sum(p) = 2.0; sum(g) = 3
    expected = 1 - (2 * 1.75 + 1) / (2.0 + 3 + 1)
    assert float(DiceLoss(from_logits=False)(probs_of(soft), TRUTH)) == pytest.approx(expected)


def test_binary_from_logits_applies_sigmoid():
    logits = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])[None, None]
    # every probability is 0.5: sum(p*g) = 1.5, sum(p) = 4.5, sum(g) = 3
    assert float(DiceLoss()(logits, TRUTH)) == pytest.approx(1 - (3 + 1) / (4.5 + 3 + 1))


def test_multiclass_hand_case():
    target = torch.tensor([[[0, 0, 1], [0, 1, 1], [2, 2, 2]]])
    pred = torch.tensor([[[0, 1, 1], [0, 1, 2], [2, 0, 2]]])
    probs = F.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    # per class (intersection, |P|, |G|): 0: (2, 3, 3)  1: (2, 3, 3)  2: (2, 3, 3)
    ratio = (2 * 2 + 1) / (3 + 3 + 1)
    assert float(DiceLoss(from_logits=False)(probs, target)) == pytest.approx(1 - ratio)
    # now class 2 is never predicted: 0: (2, 6, 3)  1: (2, 3, 3)  2: (0, 0, 3)
    pred2 = torch.tensor([[[0, 1, 1], [0, 1, 0], [0, 0, 0]]])
    probs2 = F.one_hot(pred2, 3).permute(0, 3, 1, 2).float()
    r0, r1, r2 = (2 * 2 + 1) / (6 + 3 + 1), (2 * 2 + 1) / (3 + 3 + 1), 1 / (0 + 3 + 1)
    assert float(DiceLoss(from_logits=False)(probs2, target)) == pytest.approx(1 - (r0 + r1 + r2) / 3)
    no_bg = DiceLoss(from_logits=False, include_background=False)
    assert float(no_bg(probs2, target)) == pytest.approx(1 - (r1 + r2) / 2)


def test_multiclass_from_logits_applies_softmax():
    logits = torch.zeros(1, 3, 1, 3)  # softmax: 1/3 per class everywhere
    target = torch.tensor([[[0, 1, 2]]])
    # each class: sum(p*g) = 1/3, sum(p) = 1, sum(g) = 1
    assert float(DiceLoss()(logits, target)) == pytest.approx(1 - (2 / 3 + 1) / (1 + 1 + 1))
    logits[0, 2, 0, 2] = float(np.log(4.0))  # last pixel: softmax (1/6, 1/6, 2/3)
    r01 = (2 * (1 / 3) + 1) / (1 / 3 + 1 / 3 + 1 / 6 + 1 + 1)
    r2 = (2 * (2 / 3) + 1) / (1 / 3 + 1 / 3 + 2 / 3 + 1 + 1)
    assert float(DiceLoss()(logits, target)) == pytest.approx(1 - (2 * r01 + r2) / 3)


def test_per_image_differs_from_batch_reduction():
    # image A: 4 foreground pixels, all found. image B: 1 foreground pixel, missed.
    target = torch.zeros(2, 3, 3, dtype=torch.long)
    target[0, :2, :2] = 1
    target[1, 2, 2] = 1
    probs = torch.zeros(2, 1, 3, 3)
    probs[0, 0, :2, :2] = 1
    batch = DiceLoss(from_logits=False)(probs, target)
    per_image = DiceLoss(from_logits=False, per_image=True)(probs, target)
    assert float(batch) == pytest.approx(1 - (2 * 4 + 1) / (4 + 5 + 1))  # one ratio over both images
    assert float(per_image) == pytest.approx(1 - ((8 + 1) / (8 + 1) + (0 + 1) / (1 + 1)) / 2)


def test_target_layouts_agree():
    logits = torch.randn(2, 1, 4, 5, generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 2, (2, 4, 5), generator=torch.Generator().manual_seed(1))
    loss = DiceLoss()
    reference = loss(logits, target)
    assert torch.equal(loss(logits, target[:, None]), reference)
    assert torch.equal(loss(logits, target.float()[:, None]), reference)  # float {0, 1} mask for binary
    assert torch.equal(loss(logits, target.bool()), reference)
    assert torch.equal(loss(logits, target.to(torch.uint8)), reference)


# ---------------------------------------------------------------- ignore_index


@pytest.mark.parametrize("channels", [1, 3])
def test_ignored_pixels_do_not_count(channels):
    g = torch.Generator().manual_seed(channels)
    logits = torch.randn(2, channels, 4, 6, generator=g)
    target = torch.randint(0, max(channels, 2), (2, 4, 6), generator=g)
    with_ignore = target.clone()
    with_ignore[:, :, -2:] = 255  # last two columns unlabelled
    loss = DiceLoss()
    value = loss(logits, with_ignore)
    # same as cropping the ignored columns off
    assert float(value) == pytest.approx(float(loss(logits[..., :-2], target[..., :-2])), abs=1e-6)
    # logits under ignored pixels change nothing, and get no gradient
    scrambled = logits.clone()
    scrambled[..., -2:] = torch.randn(2, channels, 4, 2, generator=g) * 10
    scrambled.requires_grad_(True)
    changed = loss(scrambled, with_ignore)
    assert float(changed.detach()) == pytest.approx(float(value), abs=1e-6)
    changed.backward()
    assert torch.all(scrambled.grad[..., -2:] == 0)
    assert scrambled.grad[..., :-2].abs().sum() > 0


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("fill", [0, 255], ids=["all-background", "all-ignore"])
@pytest.mark.parametrize("smooth", [1.0, 0.0])
@pytest.mark.parametrize("per_image", [False, True])
def test_gradient_is_finite_for_empty_masks(channels, fill, smooth, per_image):
    logits = torch.randn(2, channels, 5, 5, generator=torch.Generator().manual_seed(3), requires_grad=True)
    target = torch.full((2, 5, 5), fill, dtype=torch.long)
    for loss_fn in (DiceLoss(smooth=smooth, per_image=per_image), default_loss(channels)):
        logits.grad = None
        value = loss_fn(logits, target)
        value.backward()
        assert torch.isfinite(value)
        assert torch.isfinite(logits.grad).all()
        if fill == 255:
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
    """(K, pred (N,H,W), target (N,H,W)); every class appears in every image's target."""
    k = draw(st.integers(2, 4))
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(2, 6)), draw(st.integers(2, 6))
    pred = torch.from_numpy(draw(arrays(np.int64, (n, h, w), elements=st.integers(0, k - 1))))
    values = list(range(k)) + ([255] if with_ignore else [])
    target = torch.from_numpy(draw(arrays(np.int64, (n, h, w), elements=st.sampled_from(values))))
    target.view(n, -1)[:, :k] = torch.arange(k)  # so no class is absent (0/0) in any image
    return k, pred, target


@SETTINGS
@given(hard_multiclass(with_ignore=False))
def test_multiclass_matches_torchmetrics_dice_score(case):
    k, pred, target = case
    probs = F.one_hot(pred, k).permute(0, 3, 1, 2).float()
    for per_image, aggregation in ((False, "global"), (True, "samplewise")):
        tm = DiceScore(num_classes=k, average="macro", aggregation_level=aggregation, input_format="index")
        expected = 1 - float(tm(pred, target))
        ours = DiceLoss(smooth=0, from_logits=False, per_image=per_image)(probs, target)
        assert float(ours) == pytest.approx(expected, abs=1e-6)
        tm_fg = DiceScore(
            num_classes=k,
            include_background=False,
            average="macro",
            aggregation_level=aggregation,
            input_format="index",
        )
        ours_fg = DiceLoss(smooth=0, from_logits=False, per_image=per_image, include_background=False)(probs, target)
        assert float(ours_fg) == pytest.approx(1 - float(tm_fg(pred, target)), abs=1e-6)
    # from logits: saturated logits give the same hard probabilities
    logits = (2 * probs - 1) * BIG
    assert float(DiceLoss(smooth=0)(logits, target)) == pytest.approx(
        1 - float(DiceScore(num_classes=k, aggregation_level="global", input_format="index")(pred, target)), abs=1e-5
    )


@SETTINGS
@given(hard_multiclass(with_ignore=True))
def test_multiclass_with_ignore_matches_torchmetrics_f1(case):
    k, pred, target = case
    probs = F.one_hot(pred, k).permute(0, 3, 1, 2).float()
    f1 = MulticlassF1Score(num_classes=k, average="macro", ignore_index=255, multidim_average="global")
    assert float(DiceLoss(smooth=0, from_logits=False)(probs, target)) == pytest.approx(
        1 - float(f1(pred, target)), abs=1e-6
    )


@SETTINGS
@given(
    st.integers(1, 3).flatmap(
        lambda n: st.tuples(
            arrays(np.int64, (n, 4, 5), elements=st.integers(0, 1)),
            arrays(np.int64, (n, 4, 5), elements=st.sampled_from([0, 1, 255])),
        )
    )
)
def test_binary_with_ignore_matches_torchmetrics_f1(case):
    pred, target = (torch.from_numpy(a) for a in case)
    valid = target != 255
    f1 = float(BinaryF1Score(ignore_index=255)(pred, target))
    ours = DiceLoss(smooth=0, from_logits=False)(pred[:, None].float(), target)
    if not (pred.bool() & valid).any() and not (target == 1).any():
        # no foreground anywhere: F1 is 0/0 -> 0 in torchmetrics; Dice with smooth=0 is 0/eps -> loss 1
        assert f1 == 0.0 and float(ours) == pytest.approx(1.0)
    else:
        assert float(ours) == pytest.approx(1 - f1, abs=1e-6)
    with_smoothing = DiceLoss(smooth=1.0, from_logits=False)(pred[:, None].float(), target)
    inter = int((pred.bool() & (target == 1)).sum())
    assert float(with_smoothing) == pytest.approx(
        1 - (2 * inter + 1) / (int((pred.bool() & valid).sum()) + int((target == 1).sum()) + 1), abs=1e-6
    )


def test_absent_class_differs_from_torchmetrics():
    """torchmetrics drops a class absent from truth and prediction; DiceLoss keeps it (smoothed)."""
    target = torch.tensor([[[0, 0], [1, 1]]])
    pred = target.clone()  # perfect, class 2 never appears
    probs = F.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    tm = DiceScore(num_classes=3, average="macro", aggregation_level="global", input_format="index")
    assert float(tm(pred, target)) == pytest.approx(1.0)
    assert float(DiceLoss(from_logits=False)(probs, target)) == pytest.approx(0.0)  # 1 - (1+1+1)/3
    # a little probability on the absent class is penalised: its ratio is 1 / (0.4 + 1)
    soft = probs * 0.9 + 0.1 * F.one_hot(torch.full_like(pred, 2), 3).permute(0, 3, 1, 2)
    r_present = (2 * 2 * 0.9 + 1) / (2 * 0.9 + 2 + 1)
    expected = 1 - (2 * r_present + 1 / (0.4 + 1)) / 3
    assert float(DiceLoss(from_logits=False)(soft, target)) == pytest.approx(expected)


# ---------------------------------------------------------------- combined losses


def test_bce_dice_matches_torch_bce_plus_dice():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 1, 4, 4, generator=g)
    target = torch.randint(0, 2, (2, 4, 4), generator=g)
    bce = nn.BCEWithLogitsLoss()(logits[:, 0], target.float())
    dice = DiceLoss()(logits, target)
    assert float(BCEDiceLoss()(logits, target)) == pytest.approx(float(bce + dice), abs=1e-6)
    assert float(BCEDiceLoss(bce_weight=0.5, dice_weight=2.0)(logits, target)) == pytest.approx(
        float(0.5 * bce + 2 * dice), abs=1e-6
    )
    # with ignored pixels: BCE is the mean over the labelled pixels only
    target[0, 0] = 255
    valid = target != 255
    bce_valid = F.binary_cross_entropy_with_logits(logits[:, 0][valid], target[valid].float())
    assert float(BCEDiceLoss(dice_weight=0)(logits, target)) == pytest.approx(float(bce_valid), abs=1e-6)


def test_ce_dice_matches_torch_cross_entropy_plus_dice():
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(2, 3, 4, 4, generator=g)
    target = torch.randint(0, 3, (2, 4, 4), generator=g)
    target[1, :, 0] = 255
    ce = nn.CrossEntropyLoss(ignore_index=255)(logits, target)
    dice = DiceLoss()(logits, target)
    assert float(CEDiceLoss()(logits, target)) == pytest.approx(float(ce + dice), abs=1e-6)
    assert float(CEDiceLoss(ce_weight=2.0, dice_weight=0.0)(logits, target)) == pytest.approx(float(2 * ce), abs=1e-6)


def test_ce_dice_all_ignored_is_zero_where_torch_gives_nan():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    target = torch.full((1, 2, 2), 255)
    assert torch.isnan(nn.CrossEntropyLoss(ignore_index=255)(logits, target))
    value = CEDiceLoss()(logits, target)
    assert value.item() == 0.0


def test_default_loss():
    assert isinstance(default_loss(1), BCEDiceLoss)
    assert isinstance(default_loss(3), CEDiceLoss)
    with pytest.raises(ValueError, match="num_classes"):
        default_loss(0)


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


def test_float32_under_bf16_autocast():
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 3, 16, 16, generator=g).bfloat16()
    target = torch.randint(0, 3, (2, 16, 16), generator=g)
    reference = CEDiceLoss()(logits.float(), target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = CEDiceLoss()(logits, target)
        dice = DiceLoss()(logits, target)
    assert value.dtype == torch.float32 and dice.dtype == torch.float32
    assert float(value) == pytest.approx(float(reference), abs=1e-6)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("logits", "target", "error", "match"),
    [
        (torch.zeros(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), ValueError, r"\(N, C, H, W\)"),
        (torch.zeros(1, 1, 4, 4), torch.zeros(4, 4, dtype=torch.long), ValueError, "unsqueeze"),
        (torch.zeros(2, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), ValueError, r"\(2, 4, 4\)"),
        (torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long), ValueError, "disagree"),
        (torch.zeros(1, 1, 4, 4), torch.full((1, 4, 4), 2), ValueError, r"\[2\].*num_classes=K\+1"),
        (torch.zeros(1, 1, 4, 4), torch.full((1, 4, 4), 0.5), ValueError, r"\[0.5\]"),
        (torch.zeros(1, 3, 4, 4), torch.tensor([[[0, 1, 3, -1]] * 4]), ValueError, r"\[-1, 3\]"),
        (torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4), TypeError, "long"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long), TypeError, "floating"),
        (np.zeros((1, 1, 4, 4)), torch.zeros(1, 4, 4, dtype=torch.long), TypeError, "torch.Tensor"),
        (torch.zeros(1, 1, 4, 4), np.zeros((1, 4, 4)), TypeError, "torch.Tensor"),
    ],
)
def test_dice_rejects_bad_input(logits, target, error, match):
    with pytest.raises(error, match=match):
        DiceLoss()(logits, target)


def test_combined_losses_check_channels():
    with pytest.raises(ValueError, match="CEDiceLoss"):
        BCEDiceLoss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="BCEDiceLoss"):
        CEDiceLoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[4\]"):
        CEDiceLoss()(torch.zeros(1, 3, 4, 4), torch.full((1, 4, 4), 4))
    with pytest.raises(ValueError, match="smooth"):
        DiceLoss(smooth=-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda_with_cpu_target():
    logits = torch.randn(2, 3, 8, 8, device="cuda", requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    value = CEDiceLoss()(logits, target)  # target moved to the logits' device
    value.backward()
    assert value.device.type == "cuda" and torch.isfinite(logits.grad).all()
    assert value.item() == pytest.approx(CEDiceLoss()(logits.detach().cpu(), target).item(), abs=1e-5)
