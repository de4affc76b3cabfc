"""Fixtures of the Ray tests: local clusters, stopped whatever happens (see `clusters`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ray.clusters import RayCluster, ray_cluster


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[RayCluster]:
    """Head + one more node (1 CPU each), shared by a module's tests that leave it whole."""
    yield from ray_cluster(2)


@pytest.fixture
def fresh_two_nodes() -> Iterator[RayCluster]:
    """Head + one more node for one test that may kill a node."""
    yield from ray_cluster(2)
