"""Putting similar free-text answers next to each other, so a grader scores alike alike.

Answers are normalised (case, accents, punctuation and spacing aside), cut into
overlapping character 4-grams ("shingles") and compared by Jaccard similarity. Answers
at least `threshold` similar are linked; linked answers form a group (single linkage).
Groups come largest first; within a group each answer is followed by the one most like
it (a nearest-neighbour chain from the group's most typical answer).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

SHINGLE = 4
THRESHOLD = 0.35


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", plain.casefold()).split())


def shingles(text: str, size: int = SHINGLE) -> frozenset[str]:
    norm = normalise(text)
    if len(norm) <= size:
        return frozenset([norm]) if norm else frozenset()
    return frozenset(norm[i : i + size] for i in range(len(norm) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def group_similar(texts: Sequence[str], threshold: float = THRESHOLD) -> list[list[int]]:
    """Indices of `texts` in groups of similar answers, in the order to grade them."""
    n = len(texts)
    sets = [shingles(t) for t in texts]
    sim = [[1.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            sim[i][j] = sim[j][i] = jaccard(sets[i], sets[j])
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if sim[i][j] >= threshold:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (-len(g), min(g)))
    return [_chain(group, sim) for group in ordered]


def _chain(group: list[int], sim: list[list[float]]) -> list[int]:
    if len(group) <= 2:
        return sorted(group)
    # Start from the most typical answer: the highest mean similarity to the others.
    start = max(group, key=lambda i: (sum(sim[i][j] for j in group), -i))
    order, left = [start], set(group) - {start}
    while left:
        last = order[-1]
        nearest = max(left, key=lambda j: (sim[last][j], -j))
        order.append(nearest)
        left.remove(nearest)
    return order
