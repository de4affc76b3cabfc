"""Every metric, through the whole intake (CSV text -> checked predictions -> public and
private score), against scikit-learn called directly on the same rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk

from autograder.competition import compete
from autograder.competition.intake import read_predictions
from autograder.competition.metrics import Metric
from autograder.competition.solution import Split
from tests.competition.conftest import context, make_course, spec_text

N = 60
RNG_SEED = 7
CLASSES = ["2", "7", "10"]  # numeric order 2, 7, 10; text order "10", "2", "7"


def usage(rng: np.random.Generator) -> np.ndarray:
    # Every class in every split (ROC AUC needs it): cycle the classes, shuffle the splits.
    splits = np.array(["Public"] * 24 + ["Private"] * 30 + ["Ignored"] * 6)
    rng.shuffle(splits)
    return splits


def build(
    tmp_path: Path, metric: str, header: str, rows: list[str], **extra: object
) -> compete.Context:
    solution = header + "\n" + "\n".join(rows) + "\n"
    spec = spec_text("m", metric, **extra)
    return context(make_course(tmp_path / metric, spec, solution, name="m"), "m")


def scores(ctx: compete.Context, csv_text: str) -> tuple[float, float]:
    spec, solution = ctx.competition.spec, ctx.solution
    predictions = read_predictions(csv_text.encode(), "p.csv", spec, solution)
    return compete.score_splits(ctx, predictions, "p.csv")


def split_rows(ctx: compete.Context) -> tuple[np.ndarray, np.ndarray]:
    return ctx.solution.mask(Split.PUBLIC), ctx.solution.mask(Split.PRIVATE)


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_label_metrics(tmp_path: Path, metric: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    truth = np.array(CLASSES)[np.arange(N) % 3]
    guess = np.where(rng.random(N) < 0.7, truth, np.array(CLASSES)[rng.integers(0, 3, N)])
    splits = usage(rng)
    ctx = build(
        tmp_path,
        metric,
        "id,label,Usage",
        [f"{i},{t},{u}" for i, (t, u) in enumerate(zip(truth, splits, strict=True))],
    )
    got = scores(ctx, "id,label\n" + "".join(f"{i},{g}\n" for i, g in enumerate(guess)))
    fn = (
        sk.accuracy_score
        if metric == "accuracy"
        else lambda t, p: sk.f1_score(t, p, average="macro")
    )
    pub, priv = splits == "Public", splits == "Private"
    assert got == pytest.approx((fn(truth[pub], guess[pub]), fn(truth[priv], guess[priv])))
    assert 0.3 < got[0] < 1.0  # not a degenerate case


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_value_metrics_over_two_targets(tmp_path: Path, metric: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    truth = rng.normal(size=(N, 2)) * 10
    guess = truth + rng.normal(size=(N, 2))
    splits = usage(rng)
    rows = [
        f"{i},{a:.17g},{b:.17g},{u}"
        for i, ((a, b), u) in enumerate(zip(truth, splits, strict=True))
    ]
    ctx = build(tmp_path, metric, "id,y1,y2,Usage", rows, target_columns='["y1", "y2"]')
    text = "id,y2,y1\n" + "".join(f"{i},{b:.17g},{a:.17g}\n" for i, (a, b) in enumerate(guess))
    got = scores(ctx, text)
    fn = sk.root_mean_squared_error if metric == "rmse" else sk.mean_absolute_error
    pub, priv = splits == "Public", splits == "Private"
    assert got == pytest.approx((fn(truth[pub], guess[pub]), fn(truth[priv], guess[priv])))
    if metric == "rmse":  # and by hand, for the uniform average over the two targets
        by_hand = np.mean(np.sqrt(((truth[pub] - guess[pub]) ** 2).mean(axis=0)))
        assert got[0] == pytest.approx(by_hand)


@pytest.mark.parametrize("metric", ["log_loss", "roc_auc"])
def test_binary_probabilities_of_the_positive_class(tmp_path: Path, metric: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    truth = np.array(["no", "yes"])[np.arange(N) % 2]
    p_yes = np.clip((truth == "yes") * 0.6 + rng.random(N) * 0.4, 0, 1)
    splits = usage(rng)
    ctx = build(
        tmp_path,
        metric,
        "id,label,Usage",
        [f"{i},{t},{u}" for i, (t, u) in enumerate(zip(truth, splits, strict=True))],
        positive_class='"yes"',
    )
    got = scores(ctx, "id,label\n" + "".join(f"{i},{p:.17g}\n" for i, p in enumerate(p_yes)))
    pub, priv = splits == "Public", splits == "Private"
    if metric == "log_loss":
        expected = [sk.log_loss(truth[m] == "yes", p_yes[m]) for m in (pub, priv)]
        by_hand = -np.mean(np.log(np.where(truth[pub] == "yes", p_yes[pub], 1 - p_yes[pub])))
        assert got[0] == pytest.approx(by_hand)
    else:
        expected = [sk.roc_auc_score(truth[m] == "yes", p_yes[m]) for m in (pub, priv)]
    assert got == pytest.approx(tuple(expected))


@pytest.mark.parametrize("metric", ["log_loss", "roc_auc"])
def test_multiclass_probabilities_one_column_per_class(tmp_path: Path, metric: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    index = np.arange(N) % 3  # position in CLASSES, the submission's column order
    truth = np.array(CLASSES)[index]
    raw = (rng.random((N, 3)) + np.eye(3)[index] * 1.5) / 2.5
    splits = usage(rng)
    ctx = build(
        tmp_path,
        metric,
        "id,label,Usage",
        [f"{i},{t},{u}" for i, (t, u) in enumerate(zip(truth, splits, strict=True))],
    )
    assert ctx.solution.classes == CLASSES  # numeric order, as scikit-learn's classes_
    # Columns in a scrambled order, rows not summing to 1: both are the intake's business.
    text = "id,10,2,7\n" + "".join(
        f"{i},{r[2]:.17g},{r[0]:.17g},{r[1]:.17g}\n" for i, r in enumerate(raw)
    )
    got = scores(ctx, text)
    probabilities = raw / raw.sum(axis=1, keepdims=True)
    pub, priv = splits == "Public", splits == "Private"
    if metric == "log_loss":
        # Integer labels 0, 1, 2 = the columns of `probabilities`: no ordering left to scikit-learn.
        expected = [sk.log_loss(index[m], probabilities[m], labels=[0, 1, 2]) for m in (pub, priv)]
        by_hand = -np.mean(np.log(probabilities[pub][np.arange(pub.sum()), index[pub]]))
        assert got[0] == pytest.approx(by_hand)
    else:
        expected = [
            sk.roc_auc_score(index[m], probabilities[m], multi_class="ovr") for m in (pub, priv)
        ]
    assert got == pytest.approx(tuple(expected))


def test_hand_computed_values_and_directions(tmp_path: Path) -> None:
    ctx = build(
        tmp_path,
        "accuracy",
        "id,label,Usage",
        [
            "1,a,Public",
            "2,b,Public",
            "3,a,Public",
            "4,b,Public",
            "5,a,Private",
            "6,b,Private",
            "7,a,Ignored",
        ],
    )
    # 3 of 4 public rows right, 1 of 2 private; the ignored row counts nowhere.
    assert scores(ctx, "id,label\n1,a\n2,b\n3,a\n4,a\n5,b\n6,b\n7,b\n") == (0.75, 0.5)
    assert Metric.ACCURACY.higher_is_better and Metric.ROC_AUC.higher_is_better
    assert not (
        Metric.RMSE.higher_is_better
        or Metric.MAE.higher_is_better
        or Metric.LOG_LOSS.higher_is_better
    )


def test_probabilities_outside_0_1_and_zero_rows_are_rejected(tmp_path: Path) -> None:
    ctx = build(
        tmp_path,
        "log_loss",
        "id,label,Usage",
        ["1,a,Public", "2,b,Public", "3,c,Private", "4,a,Private"],
    )
    text = "id,a,b,c\n1,0.5,0.5,0\n2,1.2,0,0\n3,0,0,0\n4,-0.1,1,0\n"
    with pytest.raises(Exception) as info:
        scores(ctx, text)
    message = str(info.value)
    assert "line 3: a: 1.2 is not a probability in [0, 1]" in message
    assert "line 4: every class has probability 0" in message
    assert "line 5: a: -0.1 is not a probability" in message
