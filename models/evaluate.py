"""Segmentation metrics: confusion matrix, IoU, F1, precision and recall per class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo.errors import RasterError

CLASS_NAMES = ("background", "cleared_land", "leaching_pond")
IGNORE = 255


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n_classes: int = 3, *,
                     valid: np.ndarray | None = None) -> np.ndarray:
    """``(n, n)`` int64 counts, rows = truth, columns = prediction.

    Args:
        truth: integer labels; :data:`IGNORE` (255) pixels are skipped.
        pred: integer predictions of the same shape.
        valid: optional bool mask, **True where the pixel counts**.
    """
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape:
        raise RasterError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
    keep = truth != IGNORE
    if valid is not None:
        keep &= valid
    t = truth[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    if t.size and (t.max() >= n_classes or p.max() >= n_classes or min(t.min(), p.min()) < 0):
        raise RasterError(f"labels must lie in 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass(frozen=True)
class ClassMetrics:
    """Metrics of one class (NaN where undefined, e.g. IoU of a class absent from both maps).

    Attributes:
        iou: intersection over union.
        f1: harmonic mean of precision and recall (= Dice).
        precision: TP / (TP + FP).
        recall: TP / (TP + FN).
        support: truth pixels of the class.
    """

    iou: float
    f1: float
    precision: float
    recall: float
    support: int


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def class_metrics(cm: np.ndarray) -> dict[str, ClassMetrics]:
    """Per-class metrics from a confusion matrix, keyed by class name."""
    out = {}
    for k in range(cm.shape[0]):
        tp = cm[k, k]
        fp = cm[:, k].sum() - tp
        fn = cm[k, :].sum() - tp
        name = CLASS_NAMES[k] if k < len(CLASS_NAMES) else str(k)
        out[name] = ClassMetrics(_div(tp, tp + fp + fn), _div(2 * tp, 2 * tp + fp + fn), _div(tp, tp + fp),
                                 _div(tp, tp + fn), int(cm[k].sum()))
    return out


def report(cm: np.ndarray) -> dict:
    """JSON-friendly report: per-class metrics, overall accuracy and the confusion matrix."""
    m = class_metrics(cm)
    return {
        "classes": {k: {f: (round(v, 4) if isinstance(v, float) else v) for f, v in vars(c).items()} for k, c in m.items()},
        "accuracy": round(_div(np.trace(cm), cm.sum()), 4),
        "confusion_matrix": {"rows": "truth", "columns": "prediction", "labels": list(CLASS_NAMES[: cm.shape[0]]),
                             "counts": cm.tolist()},
    }


def format_report(rep: dict) -> str:
    """Plain-text table of :func:`report` output (for the CLI)."""
    lines = [f"{'class':<15}{'IoU':>8}{'F1':>8}{'prec':>8}{'recall':>8}{'support':>10}"]
    for name, c in rep["classes"].items():
        lines.append(f"{name:<15}{c['iou']:>8.3f}{c['f1']:>8.3f}{c['precision']:>8.3f}{c['recall']:>8.3f}{c['support']:>10d}")
    lines.append(f"accuracy {rep['accuracy']:.4f}")
    labels = rep["confusion_matrix"]["labels"]
    lines.append("confusion matrix (rows truth, columns prediction):")
    lines.append(" " * 15 + "".join(f"{lab[:12]:>14}" for lab in labels))
    for lab, row in zip(labels, rep["confusion_matrix"]["counts"]):
        lines.append(f"{lab[:14]:<15}" + "".join(f"{v:>14d}" for v in row))
    return "\n".join(lines)


def evaluate_samples(samples, *, method: str = "fused", weights: str | None = None, device: str = "auto",
                     config=None) -> dict:
    """Classify each ``(models.data.Scene, uint8 labels)`` pair with :func:`geo.stages.detect.classify` and
    return the pooled :func:`report` (pixels without a clear observation are skipped)."""
    from geo.stages.detect import FusionConfig, RuleThresholds, classify
    from geo.stack import Composite

    if config is None:
        config = RuleThresholds() if method == "rules" else FusionConfig(weights=weights, device=device)
    cm = np.zeros((3, 3), np.int64)
    for scene, truth in samples:
        valid = np.all(np.isfinite(scene.data), axis=0)
        full = (config if isinstance(config, RuleThresholds) else config.rules).full_confidence_clear_count
        comp = Composite(scene.data, np.where(valid, full, 0).astype(np.uint16), scene.bands, scene.grid)
        det = classify(comp, method=method, config=config)
        cm += confusion_matrix(truth, det.classes, valid=valid)
    return report(cm)
