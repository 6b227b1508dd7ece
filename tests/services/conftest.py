"""The services called directly, without HTTP, over a real store (SQLite and PostgreSQL) and a real
Temporal dev server; a worker runs the flows only for the checks a running workflow makes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from domain.products import ReservationSpec
from domain.refusals import Refusal, Refused
from services import accounts, sandbox_controls
from services.bootstrap import Deps, bootstrap
from services.requester import Requester
from store.accounts import Principal
from store.repositories import Store
from tests.api.conftest import reservation_body
from tests.waits import history_event

BOUND_S = 60

Book = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def deps(settings: Settings, store: Store, temporal_env: WorkflowEnvironment) -> Deps:
    return bootstrap(settings, store, temporal_env.client)


def with_settings(deps: Deps, **changed: Any) -> Deps:
    """``deps`` under other settings (a TTL of zero: whatever it gives has expired by the next request)."""
    return replace(deps, settings=replace(deps.settings, **changed))


async def new_partner(deps: Deps, name: str = "Acme Travel") -> Requester:
    partner, _key = await accounts.create_partner(deps, name, None)
    return Requester(Principal("partner", partner.partner_id))


@pytest_asyncio.fixture
async def partner(deps: Deps) -> Requester:
    return await new_partner(deps)


@pytest_asyncio.fixture
async def other_partner(deps: Deps) -> Requester:
    return await new_partner(deps, "Other Partner")


@pytest_asyncio.fixture
async def agent(deps: Deps) -> Requester:
    agent_id, _key = await accounts.create_agent(deps, "Grace")
    return Requester(Principal("agent", agent_id))


@pytest.fixture
def book(deps: Deps) -> Book:
    """A sandbox reservation of ``products`` (``tests.api.conftest``'s bodies) for ``owner``, as it reads it back."""

    async def create(owner: Requester, *products: dict[str, Any], status: str = "confirmed") -> dict[str, Any]:
        spec = ReservationSpec.model_validate(reservation_body(*products, status=status))
        return await sandbox_controls.create_reservation(deps, owner, spec)

    return create


async def product_of(book: Book, owner: Requester, product: dict[str, Any]) -> str:
    """The id of ``product``, booked alone for ``owner``."""
    return str((await book(owner, product))["products"][0]["product_id"])


async def refused(call: Awaitable[Any], refusal: Refusal) -> Refused:
    """What ``call`` was refused with; it must be ``refusal``."""
    with pytest.raises(Refused) as raised:
        await call
    assert raised.value.refusal == refusal, raised.value
    return raised.value


async def until_history_has(deps: Deps, code: str, event_type: EventType.ValueType) -> None:
    """Wait, within a bound, until the flow's workflow history holds an event of ``event_type``."""
    await history_event(deps.temporal.get_workflow_handle(code), event_type, BOUND_S)


async def final_info(deps: Deps, code: str) -> dict[str, Any]:
    """The flow's final info, once its workflow has ended (within a bound)."""
    result: dict[str, Any] = await asyncio.wait_for(deps.temporal.get_workflow_handle(code).result(), BOUND_S)
    return result
