"""segkit: semantic segmentation with UNet in PyTorch, as a course.

The names a lesson needs, importable from the package itself:

    from segkit import UNet, DiceLoss, ConfusionMatrix, fit, load_checkpoint
    from segkit import predict_mask, colorize, blend_overlay, seed_everything

Pictures and widgets live in `segkit.plots` and `segkit.widgets` (imported on demand, so
`import segkit` does not load matplotlib's pyplot or ipywidgets).
"""

from segkit.data import SegmentationFolder, make_loader, split_folder, train_transforms, train_val_split
from segkit.export import export_labelme_folder, load_labelme_json, read_labels, shapes_to_mask
from segkit.losses import BCEDiceLoss, CEDiceLoss, DiceLoss, default_loss
from segkit.metrics import IGNORE_INDEX, ConfusionMatrix, binary_iou, logits_to_pred
from segkit.model import UNet, count_parameters
from segkit.palette import default_palette
from segkit.predict import (blend_overlay, colorize, draw_contours, load_image, predict_folder,
                            predict_mask, predict_proba)
from segkit.train import TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint, seed_everything, select_device

__version__ = "0.1.0"

__all__ = [
    "BCEDiceLoss", "CEDiceLoss", "ConfusionMatrix", "DiceLoss", "IGNORE_INDEX", "SegmentationFolder",
    "TrainConfig", "UNet", "binary_iou", "blend_overlay", "colorize", "count_parameters",
    "default_loss", "default_palette", "draw_contours", "evaluate", "export_labelme_folder", "fit",
    "load_checkpoint", "load_image", "load_labelme_json", "logits_to_pred", "make_loader",
    "predict_folder", "predict_mask", "predict_proba", "read_labels", "save_checkpoint",
    "seed_everything", "select_device", "shapes_to_mask", "split_folder", "train_transforms",
    "train_val_split",
]
