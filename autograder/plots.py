"""The class summary's charts: matplotlib figures rendered to PNG, embedded as data URIs.

Figures are built with the object-oriented API on an Agg canvas (no pyplot, no global
backend, no display), so reports render the same on a headless server. Every function
takes plain numbers and returns a `data:image/png;base64,...` URI for an `<img src>`;
reports stay one self-contained file.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

# matplotlib is imported when a chart is drawn: it costs about half a second, and every
# `autograder` command (and every grading worker) imports this module through the CLI.
if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BLUE, GREEN, RED, AMBER, GREY = "#0969da", "#1a7f37", "#cf222e", "#9a6700", "#8c959f"
STATUS_COLOURS = {
    "graded": GREEN,
    "pending": AMBER,
    "error": RED,
    "timeout": "#bc4c00",
    "missing": GREY,
}
SIZE = (6.4, 3.2)  # inches; 100 dpi: 640 x 320 pixels
DPI = 100


def _figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _integer_ticks() -> object:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    # No "Software"/date chunks: the same data gives the same bytes.
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _style(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def score_histogram(scores: Sequence[float], max_score: float) -> str:
    """Distribution of the (final) scores of the submitted notebooks."""
    fig = _figure()
    ax = fig.add_subplot()
    top = max(max_score, max(scores, default=0.0), 1e-9)
    bins = min(20, max(5, round(top) + 1))
    ax.hist(scores, bins=bins, range=(0, top), color=BLUE, edgecolor="white")
    ax.set_xlabel(f"score (out of {top:g})")
    ax.set_ylabel("submissions")
    ax.set_title("Score distribution")
    ax.yaxis.set_major_locator(_integer_ticks())
    _style(ax)
    return _data_uri(fig)


def question_bars(
    ids: Sequence[str], mean_share: Sequence[float], full_share: Sequence[float]
) -> str:
    """Per question: mean score as a share of its points, and the share at full marks."""
    fig = _figure()
    ax = fig.add_subplot()
    x = range(len(ids))
    width = 0.4
    ax.bar(
        [i - width / 2 for i in x],
        [100 * v for v in mean_share],
        width,
        label="mean score",
        color=BLUE,
    )
    ax.bar(
        [i + width / 2 for i in x],
        [100 * v for v in full_share],
        width,
        label="full marks",
        color=GREEN,
    )
    ax.set_xticks(list(x), list(ids), rotation=20, ha="right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of submissions / points")
    ax.set_title("Questions")
    ax.legend(loc="lower right", fontsize="small")
    _style(ax)
    return _data_uri(fig)


def status_bars(counts: Sequence[tuple[str, int]]) -> str:
    """How many submissions have each status."""
    fig = _figure()
    ax = fig.add_subplot()
    labels = [label for label, _ in counts]
    values = [n for _, n in counts]
    colours = [STATUS_COLOURS.get(label, BLUE) for label in labels]
    bars = ax.bar(labels, values, color=colours)
    ax.bar_label(bars, padding=2)
    ax.set_ylabel("submissions")
    ax.set_title("Submissions by status")
    ax.set_ylim(0, max(values, default=0) * 1.2 + 1)
    ax.yaxis.set_major_locator(_integer_ticks())
    _style(ax)
    return _data_uri(fig)


def runtime_histogram(seconds: Sequence[float]) -> str:
    """How long grading each notebook took (sandbox start, notebook run, hidden tests)."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.hist(seconds, bins=min(20, max(5, len(seconds) // 2)), color=AMBER, edgecolor="white")
    ax.set_xlabel("seconds per submission")
    ax.set_ylabel("submissions")
    ax.set_title("Grading time")
    ax.yaxis.set_major_locator(_integer_ticks())
    _style(ax)
    return _data_uri(fig)
