"""Admin (docs/api.md#admin): partners, agents and every principal's API keys, and a flow parked on a record
the store refused (admin: docs/operations.md#a-refused-record); a partner's own
webhook URL, key rotation and webhook secret rotation (partner); who a key belongs to (anyone).
What each request checks and does is ``services.accounts``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, TypeAdapter

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from domain.record_retry import RecordRetried, RefusedRecord
from services import accounts, record_retries
from services.requester import Requester
from store.accounts import KeyView

resource = Resource("admin")

# The stored URL (normalised) fits the column: docs/api.md#put-v1partnerwebhook.
MAX_WEBHOOK_URL = 2000
_HTTP_URL = TypeAdapter(AnyHttpUrl)
SHOWN_ONCE = "Shown only in this answer; null when an Idempotency-Key replays it (a secret is never stored in clear)"


def _normalised_url(value: str) -> str:
    text = str(_HTTP_URL.validate_python(value))
    if len(text) > MAX_WEBHOOK_URL:
        raise ValueError(f"the URL, normalised, must be at most {MAX_WEBHOOK_URL} characters")
    return text


WebhookUrl = Annotated[
    str, Field(min_length=1, max_length=MAX_WEBHOOK_URL, json_schema_extra={"format": "uri"}),
    AfterValidator(_normalised_url),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewPartner(_Body):
    name: str = Field(min_length=1, max_length=200)
    webhook_url: WebhookUrl | None = None


class PartnerCreated(BaseModel):
    partner_id: str
    name: str
    api_key: str | None = Field(description=SHOWN_ONCE)
    webhook_url: str | None
    webhook_secret: str | None = Field(description="Signs triggers. " + SHOWN_ONCE)


class NewAgent(_Body):
    name: str = Field(min_length=1, max_length=200)


class AgentCreated(BaseModel):
    agent_id: str
    name: str
    api_key: str | None = Field(description=SHOWN_ONCE)


class Caller(BaseModel):
    role: str = Field(description="partner, agent or admin")
    id: str
    name: str


class Webhook(_Body):
    url: WebhookUrl | None


class WebhookSet(BaseModel):
    url: str | None


class KeyInfo(BaseModel):
    key_id: str
    principal_id: str
    role: str
    status: Literal["active", "expiring", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class KeyList(BaseModel):
    items: list[KeyInfo]
    next: str | None = None


class KeysQuery(_Body):
    principal_id: str = Field(min_length=1, max_length=40)


class KeysOf(_Body):
    principal_id: str = Field(min_length=1, max_length=40)


class KeyIssued(BaseModel):
    key_id: str
    principal_id: str
    role: str
    api_key: str | None = Field(description=SHOWN_ONCE)


class KeyRotation(_Body):
    pass


class KeyRotated(BaseModel):
    key_id: str
    api_key: str | None = Field(description=SHOWN_ONCE)
    previous_key_expires_at: datetime = Field(description="Until then the key this call was made with keeps working")


class FlowRecordState(BaseModel):
    code: str
    refused_record: RefusedRecord | None = Field(
        description="the transition the flow is parked on, which the store refused for good; null when it is not parked"
    )


class ParkedFlow(BaseModel):
    code: str
    kind: str
    partner_id: str
    status: str = Field(description="the flow's status as stored: the one before the refused move")
    reason: str = Field(description="the store's refusal")
    since: datetime = Field(description="when the store last refused it")


class ParkedFlows(BaseModel):
    items: list[ParkedFlow] = Field(description="the longest parked first, at most 500")


class SecretRotated(BaseModel):
    webhook_secret: str | None = Field(description=SHOWN_ONCE)
    previous_secret_expires_at: datetime = Field(description="Until then deliveries carry a second v1= signed with the previous secret")


def _info(view: KeyView) -> KeyInfo:
    return KeyInfo(
        key_id=view.key_id, principal_id=view.principal_id, role=view.role,
        status=view.status(datetime.now(timezone.utc)),
        created_at=view.created_at, expires_at=view.expires_at, revoked_at=view.revoked_at,
    )


@resource.route("POST", "/v1/admin/partners", summary="Create a partner", roles=("admin",), body=NewPartner,
                answers={201: PartnerCreated})
async def create_partner(request: web.Request, requester: Requester, body: NewPartner) -> Reply:
    partner, api_key = await accounts.create_partner(request.app[DEPS], body.name, body.webhook_url)
    return Reply(201, PartnerCreated(partner_id=partner.partner_id, name=partner.name, api_key=api_key,
                                     webhook_url=partner.webhook_url, webhook_secret=partner.webhook_secret))


@resource.route("POST", "/v1/admin/agents", summary="Create an agent", roles=("admin",), body=NewAgent,
                answers={201: AgentCreated})
async def create_agent(request: web.Request, requester: Requester, body: NewAgent) -> Reply:
    agent_id, api_key = await accounts.create_agent(request.app[DEPS], body.name)
    return Reply(201, AgentCreated(agent_id=agent_id, name=body.name, api_key=api_key))


@resource.route("GET", "/v1/admin/api-keys", summary="A principal's API keys (never the keys themselves)",
                roles=("admin",), query=KeysQuery, answers={200: KeyList})
async def list_keys(request: web.Request, requester: Requester, query: KeysQuery) -> Reply:
    views = await accounts.keys_of(request.app[DEPS], query.principal_id)
    return Reply(200, KeyList(items=[_info(view) for view in views]))


@resource.route("POST", "/v1/admin/api-keys", summary="Issue another API key to a partner, agent or supplier",
                roles=("admin",), body=KeysOf, answers={201: KeyIssued})
async def issue_key(request: web.Request, requester: Requester, body: KeysOf) -> Reply:
    view, api_key = await accounts.issue_key(request.app[DEPS], body.principal_id)
    return Reply(201, KeyIssued(key_id=view.key_id, principal_id=view.principal_id, role=view.role, api_key=api_key))


@resource.route("POST", "/v1/admin/api-keys/{key_id}/revoke", summary="Revoke one API key now",
                roles=("admin",), answers={200: KeyInfo})
async def revoke_key(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, _info(await accounts.revoke_key(request.app[DEPS], request.match_info["key_id"])))


@resource.route("POST", "/v1/admin/api-keys/revoke", summary="Revoke every API key of a principal now",
                roles=("admin",), body=KeysOf, answers={200: KeyList})
async def revoke_all_keys(request: web.Request, requester: Requester, body: KeysOf) -> Reply:
    views = await accounts.revoke_all_keys(request.app[DEPS], body.principal_id)
    return Reply(200, KeyList(items=[_info(view) for view in views]))


@resource.route("GET", "/v1/admin/refused-records", summary="Every flow parked on a record the store refused for good",
                roles=("admin",), answers={200: ParkedFlows})
async def list_refused_records(request: web.Request, requester: Requester) -> Reply:
    rows = await record_retries.parked_flows(request.app[DEPS])
    return Reply(200, ParkedFlows(items=[ParkedFlow(code=row.code, kind=row.kind, partner_id=row.partner_id, status=row.status,
                                                    reason=row.reason, since=row.since) for row in rows]))


@resource.route("GET", "/v1/admin/flows/{code}/refused-record",
                summary="The transition a flow is parked on because the store refused it for good, if any",
                roles=("admin",), answers={200: FlowRecordState})
async def get_refused_record(request: web.Request, requester: Requester) -> Reply:
    code = request.match_info["code"]
    return Reply(200, FlowRecordState(code=code, refused_record=await record_retries.refused_record(request.app[DEPS], code)))


@resource.route("POST", "/v1/admin/flows/{code}/retry-record",
                summary="Record a parked flow's refused transition again, once its cause is repaired",
                roles=("admin",), answers={200: RecordRetried})
async def retry_record(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await record_retries.retry_record(request.app[DEPS], requester, request.match_info["code"]))


@resource.route("PUT", "/v1/partner/webhook", summary="Set the caller's webhook URL", roles=("partner",),
                body=Webhook, answers={200: WebhookSet})
async def set_webhook(request: web.Request, requester: Requester, body: Webhook) -> Reply:
    return Reply(200, WebhookSet(url=await accounts.set_webhook(request.app[DEPS], requester, body.url)))


@resource.route("GET", "/v1/me", summary="Who the API key belongs to", roles=("partner", "agent", "admin"),
                answers={200: Caller})
async def me(request: web.Request, requester: Requester) -> Reply:
    """Lets a client (the agent console) check a key and greet its owner without acting on anything."""
    who = requester.principal
    return Reply(200, Caller(role=who.role, id=who.principal_id, name=await accounts.name_of(request.app[DEPS], requester)))


@resource.route("POST", "/v1/partner/api-keys/rotate", summary="Replace the caller's API key",
                roles=("partner",), body=KeyRotation, answers={201: KeyRotated})
async def rotate_key(request: web.Request, requester: Requester, body: KeyRotation) -> Reply:
    issued, previous_expires_at = await accounts.rotate_key(request.app[DEPS], requester)
    return Reply(201, KeyRotated(key_id=issued.key_id, api_key=issued.api_key,
                                 previous_key_expires_at=previous_expires_at))


@resource.route("POST", "/v1/partner/webhook/rotate-secret", summary="Replace the caller's webhook signing secret",
                roles=("partner",), body=KeyRotation, answers={201: SecretRotated})
async def rotate_webhook_secret(request: web.Request, requester: Requester, body: KeyRotation) -> Reply:
    rotated = await accounts.rotate_webhook_secret(request.app[DEPS], requester)
    return Reply(201, SecretRotated(webhook_secret=rotated.webhook_secret,
                                    previous_secret_expires_at=rotated.previous_secret_expires_at))
