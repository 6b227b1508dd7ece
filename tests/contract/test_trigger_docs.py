"""docs/triggers.md says what is true: its event catalogue is the one ``python -m api.trigger_docs``
writes from the models events are made from, and each verification snippet and receiver on it, run
as written with python3, node and sh (openssl), accepts a delivery the gateway really signed and
refuses a tampered one."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from api.trigger_docs import TRIGGERS_PAGE, rewritten
from domain.signature import SIGNATURE_HEADER
from tests.api.conftest import cancel_with_a_quote, flight, new_partner
from tests.waits import eventually
from tests.workflows.receiver import Received, WebhookReceiver

BOUND_S = 60
RUN_BOUND_S = 30
RUNNERS = {".py": "python3", ".js": "node", ".sh": "sh"}


def snippets() -> dict[str, str]:
    """Each code block of docs/triggers.md marked ``<!-- snippet: name -->``, by name."""
    page = TRIGGERS_PAGE.read_text()
    return dict(re.findall(r"<!-- snippet: (\S+) -->\n```\w+\n(.*?)```", page, re.DOTALL))


def test_the_event_catalogue_is_the_one_the_models_give() -> None:
    page = TRIGGERS_PAGE.read_text()

    assert rewritten(page) == page, "docs/triggers.md's event catalogue is stale: run python -m api.trigger_docs"


def test_the_page_has_every_snippet_the_test_runs() -> None:
    assert set(snippets()) == {"verify.py", "verify.js", "verify.sh", "receiver.py", "receiver.js"}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'aftersales.db'}"


async def signed_delivery(http: TestClient) -> tuple[Received, str]:
    """A ``cancellation.completed`` the gateway pushed to a real receiver, and the partner's secret."""
    partner = await new_partner(http, "Snippets Travel")
    secret = partner.body["webhook_secret"]
    async with WebhookReceiver(secret=secret) as receiver:
        assert (await http.put("/v1/partner/webhook", json={"url": receiver.url}, headers=partner.headers)).status == 200
        created = await http.post("/v1/sandbox/reservations", headers=partner.headers, json={
            "travellers": [{"traveller_id": "T1", "name": "Ada Lovelace"}], "products": [flight()]})
        product_id = (await created.json())["products"][0]["product_id"]
        assert (await cancel_with_a_quote(http, partner, product_id)).status == 200
        await receiver.until(lambda: any(r.body["type"] == "cancellation.completed" for r in receiver.received), BOUND_S)
    [delivery] = [r for r in receiver.received if r.body["type"] == "cancellation.completed"]
    assert delivery.signed and delivery.raw and delivery.signature.startswith("t=")
    return delivery, secret


def run(snippet: Path, body: Path, secret: str, signature: str) -> subprocess.CompletedProcess[str]:
    runner = shutil.which(RUNNERS[snippet.suffix])
    assert runner is not None, f"{RUNNERS[snippet.suffix]} is not installed"
    environ = {**os.environ, "AFTERSALES_WEBHOOK_SECRET": secret, "AFTERSALES_SIGNATURE": signature}
    return subprocess.run([runner, str(snippet), str(body)], env=environ, capture_output=True, text=True,
                          timeout=RUN_BOUND_S, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def post_when_listening(url: str, body: bytes, signature: str) -> int:
    """POST the delivery to a receiver that is starting: retried while nothing listens yet, within a bound."""
    async with aiohttp.ClientSession() as session:
        async def post() -> int | None:
            try:
                async with session.post(url, data=body, headers={SIGNATURE_HEADER: signature,
                                                                  "Content-Type": "application/json"}) as answer:
                    return answer.status
            except aiohttp.ClientConnectorError:
                return None  # not listening yet
        return await eventually(post, BOUND_S, f"a receiver listening at {url}")


async def test_every_snippet_accepts_a_real_delivery_and_refuses_a_tampered_one(http: TestClient, tmp_path: Path) -> None:
    delivery, secret = await signed_delivery(http)
    body, tampered = tmp_path / "body.json", tmp_path / "tampered.json"
    body.write_bytes(delivery.raw)
    tampered.write_bytes(delivery.raw.replace(b'"cancelled"', b'"rejected"', 1))
    assert tampered.read_bytes() != delivery.raw

    for name, code in snippets().items():
        snippet = tmp_path / name
        snippet.write_text(code)
        if name.startswith("verify"):
            accepted = run(snippet, body, secret, delivery.signature)
            assert accepted.returncode == 0 and accepted.stdout.strip() == "valid", f"{name}: {accepted.stderr}"
            assert run(snippet, tampered, secret, delivery.signature).returncode == 1, name
            assert run(snippet, body, "whsec_not-the-secret", delivery.signature).returncode == 1, name
            continue
        runner = shutil.which(RUNNERS[snippet.suffix])
        assert runner is not None
        port = free_port()
        receiver = await asyncio.create_subprocess_exec(
            runner, str(snippet), env={**os.environ, "AFTERSALES_WEBHOOK_SECRET": secret, "PORT": str(port)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            url = f"http://127.0.0.1:{port}/hooks/aftersales"
            assert await post_when_listening(url, delivery.raw, delivery.signature) == 204, name
            assert await post_when_listening(url, delivery.raw, delivery.signature) == 204, name  # a repeat: still 2xx
            assert await post_when_listening(url, tampered.read_bytes(), delivery.signature) == 401, name
        finally:
            receiver.terminate()
            output, _ = await receiver.communicate()
        # Each receiver prints what it handles: once, though delivered twice (deduplicated by id).
        assert output.decode().count("cancellation.completed") == 1, name
