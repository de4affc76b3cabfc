"""Build the `digits` competition's files from scikit-learn's copy of the UCI digits.

    python competitions/digits/make_data.py

writes data/train.csv (features and label), data/test.csv (features only),
data/baseline.csv (the baseline submission: nearest class mean), the hidden
solution.csv (id, label, Usage) and the example class's submissions in
examples/digits/. Deterministic: the same files on every run.

The digits are public, so a student could look the test labels up; for a graded course
use data students cannot find. Run from anywhere: paths are relative to this file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent.parent / "examples" / "digits"
SEED = 2026
TEST_ROWS, PUBLIC_ROWS, IGNORED_ROWS = 600, 200, 20
FEATURES = [f"pixel{i}" for i in range(64)]


def write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def nearest_mean(X: np.ndarray, y: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    means = np.stack([X[y == c].mean(axis=0) for c in range(10)])
    return ((X_test[:, None, :] - means[None]) ** 2).sum(axis=2).argmin(axis=1)


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.int64)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(X))
    test, train = order[:TEST_ROWS], order[TEST_ROWS:]
    train_ids = np.arange(1, len(train) + 1)
    test_ids = np.arange(10001, 10001 + TEST_ROWS)
    usage = np.array(
        ["Public"] * PUBLIC_ROWS
        + ["Ignored"] * IGNORED_ROWS
        + ["Private"] * (TEST_ROWS - PUBLIC_ROWS - IGNORED_ROWS)
    )
    rng.shuffle(usage)

    write(
        HERE / "data" / "train.csv",
        ["id", *FEATURES, "label"],
        [[i, *X[r], y[r]] for i, r in zip(train_ids, train, strict=True)],
    )
    write(
        HERE / "data" / "test.csv",
        ["id", *FEATURES],
        [[i, *X[r]] for i, r in zip(test_ids, test, strict=True)],
    )
    write(
        HERE / "solution.csv",
        ["id", "label", "Usage"],
        [[i, y[r], u] for i, r, u in zip(test_ids, test, usage, strict=True)],
    )

    Xtr, ytr, Xte = X[train].astype(float), y[train], X[test].astype(float)
    baseline = nearest_mean(Xtr, ytr, Xte)
    write(
        HERE / "data" / "baseline.csv",
        ["id", "label"],
        [[i, p] for i, p in zip(test_ids, baseline, strict=True)],
    )

    # The example class: a few teams with a few models each.
    models = {
        "owls-1.csv": LogisticRegression(max_iter=2000, C=0.05),
        "owls-2.csv": SVC(gamma=0.001, C=10),
        "foxes-1.csv": KNeighborsClassifier(n_neighbors=1),
        "foxes-2.csv": KNeighborsClassifier(n_neighbors=7),
        "lynx-1.csv": RandomForestClassifier(n_estimators=30, random_state=SEED),
        "eli-1.csv": LogisticRegression(max_iter=2000, C=1e-5),
    }
    for name, model in models.items():
        predicted = model.fit(Xtr, ytr).predict(Xte)
        write(
            EXAMPLES / name,
            ["id", "label"],
            [[i, p] for i, p in zip(test_ids, predicted, strict=True)],
        )
    write(
        EXAMPLES / "lynx-0.csv",
        ["id", "label"],
        [[i, p] for i, p in zip(test_ids, baseline, strict=True)],
    )


if __name__ == "__main__":
    main()
