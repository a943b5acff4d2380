"""Classification metrics shared by every LightningModule (torchmetrics, reduced across ranks)."""

from __future__ import annotations

from typing import Any

from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

METRIC_NAMES = ("accuracy", "precision", "recall", "f1")


def classification_metrics(num_labels: int = 2) -> MetricCollection:
    """Accuracy over all examples; precision, recall and F1 per class; the confusion matrix."""
    per_class = {"num_classes": num_labels, "average": None}
    return MetricCollection({
        "accuracy": MulticlassAccuracy(num_classes=num_labels, average="micro"),
        "precision": MulticlassPrecision(**per_class),
        "recall": MulticlassRecall(**per_class),
        "f1": MulticlassF1Score(**per_class),
        "confusion_matrix": MulticlassConfusionMatrix(num_classes=num_labels),
    })


def scalar_metrics(collection: MetricCollection, positive_label: int | None = 1) -> dict[str, float]:
    """Plain floats: precision/recall/F1 of ``positive_label`` (clone, vulnerable), or their macro
    average when ``positive_label`` is None (tasks with more than two classes)."""
    values = {}
    for name, value in collection.compute().items():
        if name == "confusion_matrix":
            continue
        if value.dim():
            value = value.mean() if positive_label is None else value[positive_label]
        values[name] = float(value)
    return values


def prediction_record(collection: MetricCollection) -> dict[str, Any]:
    """``confusion_matrix`` (rows: true class, columns: predicted) and ``prediction_counts`` per class."""
    matrix = collection["confusion_matrix"].compute().long()
    return {"confusion_matrix": matrix.tolist(), "prediction_counts": matrix.sum(0).tolist()}
