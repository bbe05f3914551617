"""Demo data sets generated once per session and read back with the csv module only."""

from __future__ import annotations

import pytest

from tests.demo.demo_set import DemoSet, read_demo
from tools.demo_data import generate


@pytest.fixture(scope="session")
def demo_3000(tmp_path_factory: pytest.TempPathFactory) -> DemoSet:
    directory = tmp_path_factory.mktemp("demo-3000-")
    generate(directory)  # the defaults: 3,000 customers, seed 20261201
    return read_demo(directory)


@pytest.fixture(scope="session")
def demo_300(tmp_path_factory: pytest.TempPathFactory) -> DemoSet:
    directory = tmp_path_factory.mktemp("demo-300-")
    generate(directory, customers=300, seed=7)
    return read_demo(directory)


@pytest.fixture(params=["demo_3000", "demo_300"])
def demo(request: pytest.FixtureRequest) -> DemoSet:
    """Both sizes: every property must hold for the default set and for a small one."""
    value = request.getfixturevalue(request.param)
    assert isinstance(value, DemoSet)
    return value
