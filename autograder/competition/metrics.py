"""The competition metrics, computed with scikit-learn on the trusted side only.

Each metric says what a submission holds and which way is better:

    accuracy, macro_f1   class labels, one target column              higher is better
    rmse, mae            numbers, one or more target columns           lower is better
    log_loss, roc_auc    probabilities: binary, one column with the    log_loss: lower,
                         positive class's probability; multi-class,    roc_auc: higher
                         one column per class (named by the class)

Predictions reach `score` already validated (`intake.py`): labels are class names,
numbers are finite, probabilities lie in [0, 1] and multi-class rows sum to 1.
"""

from __future__ import annotations

import enum
import functools
import math
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class MetricKind(enum.StrEnum):
    LABEL = "label"  # one column of class labels
    VALUE = "value"  # numbers, one or more columns
    PROBABILITY = "probability"  # class probabilities


class Metric(enum.StrEnum):
    ACCURACY = "accuracy"
    MACRO_F1 = "macro_f1"
    RMSE = "rmse"
    MAE = "mae"
    LOG_LOSS = "log_loss"
    ROC_AUC = "roc_auc"

    @property
    def kind(self) -> MetricKind:
        return _KINDS[self]

    @property
    def higher_is_better(self) -> bool:
        return self in (Metric.ACCURACY, Metric.MACRO_F1, Metric.ROC_AUC)

    @property
    def label(self) -> str:
        """The metric's name as people write it."""
        return _LABELS[self]

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


_KINDS = {
    Metric.ACCURACY: MetricKind.LABEL,
    Metric.MACRO_F1: MetricKind.LABEL,
    Metric.RMSE: MetricKind.VALUE,
    Metric.MAE: MetricKind.VALUE,
    Metric.LOG_LOSS: MetricKind.PROBABILITY,
    Metric.ROC_AUC: MetricKind.PROBABILITY,
}
_LABELS = {
    Metric.ACCURACY: "accuracy",
    Metric.MACRO_F1: "macro F1",
    Metric.RMSE: "RMSE",
    Metric.MAE: "MAE",
    Metric.LOG_LOSS: "log loss",
    Metric.ROC_AUC: "ROC AUC",
}


@functools.cache
def _sklearn_metrics() -> ModuleType:
    # scikit-learn (with SciPy) takes about a second to import: only scoring needs it, not
    # every `autograder` command.
    import sklearn.metrics

    return sklearn.metrics


def score(
    metric: Metric,
    y_true: npt.NDArray[np.generic],
    y_pred: npt.NDArray[np.generic],
    classes: list[str] | None = None,
    positive: str | None = None,
) -> float:
    """`metric` of the predictions `y_pred` against the truth `y_true`.

    Labels: `y_true` and `y_pred` are arrays of class names (str). Values: float arrays of
    shape (n, k). Probabilities: `y_true` holds class names; `y_pred` is (n,) with the
    probability of `positive` (binary) or (n, len(classes)) with columns in `classes` order.
    Raises ValueError when the metric is undefined for these rows.
    """
    sk = _sklearn_metrics()
    if metric is Metric.ACCURACY:
        value = sk.accuracy_score(y_true, y_pred)
    elif metric is Metric.MACRO_F1:
        # zero_division=0: a class nobody predicted scores 0 instead of warning.
        value = sk.f1_score(y_true, y_pred, average="macro", zero_division=0)
    elif metric is Metric.RMSE:
        value = sk.root_mean_squared_error(y_true, y_pred)
    elif metric is Metric.MAE:
        value = sk.mean_absolute_error(y_true, y_pred)
    else:
        value = _probability_metric(sk, metric, y_true, y_pred, classes, positive)
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{metric.label} is not finite ({result})")
    return result


def _probability_metric(
    sk: ModuleType,
    metric: Metric,
    y_true: npt.NDArray[np.generic],
    y_pred: npt.NDArray[np.generic],
    classes: list[str] | None,
    positive: str | None,
) -> float:
    import numpy as np  # here: the CLI (which imports this package) starts without numpy

    if y_pred.ndim == 1:  # binary: the probability of the positive class
        if positive is None:
            raise ValueError("a binary probability metric needs the positive class")
        truth = (y_true == positive).astype(np.int64)
        if metric is Metric.LOG_LOSS:
            return float(sk.log_loss(truth, y_pred, labels=[0, 1]))
        return float(sk.roc_auc_score(truth, y_pred))
    if classes is None or y_pred.shape[1] != len(classes):
        raise ValueError("multi-class probabilities need one column per class")
    # scikit-learn orders the columns by the sorted class names (LabelBinarizer), and
    # roc_auc_score insists on sorted `labels`: reorder our columns to match.
    order = sorted(range(len(classes)), key=lambda i: classes[i])
    labels = [classes[i] for i in order]
    probabilities = y_pred[:, order]
    if metric is Metric.LOG_LOSS:
        return float(sk.log_loss(y_true, probabilities, labels=labels))
    return float(
        sk.roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro", labels=labels)
    )


def better(metric: Metric, a: float, b: float) -> bool:
    """Whether score `a` is strictly better than `b` under `metric`."""
    return a > b if metric.higher_is_better else a < b


def sort_key(metric: Metric, value: float) -> float:
    """A key that sorts scores best first."""
    return -value if metric.higher_is_better else value
