"""Look inside a trained network: evaluate a checkpoint and draw what it learned.

    python -m simple_conv_net.report --checkpoint runs/simple-vector-.../checkpoint.pt
    python -m simple_conv_net.report --checkpoint CKPT --impl torch --test-samples 1000 --out DIR

The model is built with build_model from the checkpoint's own arguments (model, dataset,
impl) and evaluated on that dataset's test set with ``--impl`` (default: the checkpoint's).
Written to ``--out`` (default ``<checkpoint dir>/report``), each file atomically:

    confusion_matrix.png    rows = true class, columns = predicted class (seed 004, ex. 6)
    filters.png             the first convolution layer's filters (seed 004, ex. 6)
    input.png               the chosen test image (``--image-index``, default 0)
    features_<layer>.png    every channel of each convolution and pooling layer's output for
                            that image, one figure per layer (seed 003, section 7, Q8)
    misclassified.png       misclassified test images, most confident first, with true and
                            predicted labels and the predicted probability
    training_curves.png     loss and accuracy per epoch, from the checkpoint's metrics: the epochs
                            its model has seen (skipped, with a note, when it holds none)
    report.json             every figure's numbers: the confusion matrix, per-class precision and
                            recall, accuracy, filter weights, feature maps, the misclassified images'
                            indices, the per-epoch metrics, the per-layer parameter and multiply-add counts
    index.html              all of the above on one page, with relative image paths (open it from disk)

Precision of class k = cm[k, k] / (column k's sum: images predicted k); recall of class k =
cm[k, k] / (row k's sum: images of class k); either is None (null) when its denominator is 0.
Figures are drawn with matplotlib's Agg backend: no display is needed.
"""

from .checkpoint import ReportError, build_from_checkpoint, load_checkpoint
from .make import main, make_report
from .metrics import accuracy, confusion_matrix, precision_recall

__all__ = ["ReportError", "accuracy", "build_from_checkpoint", "confusion_matrix", "load_checkpoint", "main",
           "make_report", "precision_recall"]
