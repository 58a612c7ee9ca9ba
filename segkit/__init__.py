"""segkit: semantic segmentation with UNet in PyTorch, as a course.

The course's path, one module each (README.md has a picture of how the data flows):

    export      labelme JSON -> masks          data        photos, masks, preprocess, the Dataset
    transforms  joint augmentation             model       UNet from small named blocks
    losses      Dice, BCE + Dice, CE + Dice    metrics     ConfusionMatrix: IoU, mIoU, ...
    device      device and number format       train       train_one_epoch, evaluate, fit
    checkpoint  save and load, fine-tuning     predict     probabilities and masks at the photo's size
    draw        palette, blend_overlay         plots, widgets, cli: pictures, the threshold slider, `segkit`

`import segkit` loads neither pyplot nor ipywidgets: `segkit.plots` and `segkit.widgets` do.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .data import IGNORE_INDEX, SegmentationFolder, open_image, preprocess, read_mask, split_folder
from .device import select_device
from .draw import blend_overlay, colorize, draw_contours
from .export import export_labelme_folder, read_labels
from .losses import BCEDiceLoss, CEDiceLoss, DiceLoss, default_loss
from .metrics import ConfusionMatrix, logits_to_pred
from .model import UNet, count_parameters
from .predict import predict_folder, predict_mask, predict_proba
from .train import TrainConfig, evaluate, fit, seed_everything, train_one_epoch
from .transforms import train_transforms

__version__ = "0.2.0"
