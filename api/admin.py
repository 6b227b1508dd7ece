"""Admin (docs/api.md#admin): partners and agents (admin), a partner's own webhook URL, and who a key belongs to."""

from __future__ import annotations

from aiohttp import web
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from api.context import STORE
from api.endpoints import Reply, Resource
from store.accounts import Principal

resource = Resource("admin")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewPartner(_Body):
    name: str = Field(min_length=1, max_length=200)
    webhook_url: AnyHttpUrl | None = None


class PartnerCreated(BaseModel):
    partner_id: str
    name: str
    api_key: str = Field(description="Shown only in this answer")
    webhook_url: str | None
    webhook_secret: str = Field(description="Signs triggers; shown only in this answer")


class NewAgent(_Body):
    name: str = Field(min_length=1, max_length=200)


class AgentCreated(BaseModel):
    agent_id: str
    name: str
    api_key: str


class Caller(BaseModel):
    role: str = Field(description="partner, agent or admin")
    id: str
    name: str


class Webhook(_Body):
    url: AnyHttpUrl | None


class WebhookSet(BaseModel):
    url: str | None


@resource.route("POST", "/v1/admin/partners", summary="Create a partner", roles=("admin",), body=NewPartner,
                answers={201: PartnerCreated})
async def create_partner(request: web.Request, who: Principal, body: NewPartner) -> Reply:
    url = str(body.webhook_url) if body.webhook_url else None
    partner, api_key = await request.app[STORE].accounts.create_partner(body.name, url)
    return Reply(201, PartnerCreated(partner_id=partner.partner_id, name=partner.name, api_key=api_key,
                                     webhook_url=url, webhook_secret=partner.webhook_secret))


@resource.route("POST", "/v1/admin/agents", summary="Create an agent", roles=("admin",), body=NewAgent,
                answers={201: AgentCreated})
async def create_agent(request: web.Request, who: Principal, body: NewAgent) -> Reply:
    agent_id, api_key = await request.app[STORE].accounts.create_agent(body.name)
    return Reply(201, AgentCreated(agent_id=agent_id, name=body.name, api_key=api_key))


@resource.route("PUT", "/v1/partner/webhook", summary="Set the caller's webhook URL", roles=("partner",),
                body=Webhook, answers={200: WebhookSet})
async def set_webhook(request: web.Request, who: Principal, body: Webhook) -> Reply:
    url = str(body.url) if body.url else None
    await request.app[STORE].accounts.set_webhook(who.principal_id, url)
    return Reply(200, WebhookSet(url=url))


@resource.route("GET", "/v1/me", summary="Who the API key belongs to", roles=("partner", "agent", "admin"),
                answers={200: Caller})
async def me(request: web.Request, who: Principal) -> Reply:
    """Lets a client (the agent console) check a key and greet its owner without acting on anything."""
    return Reply(200, Caller(role=who.role, id=who.principal_id, name=await request.app[STORE].accounts.name_of(who)))
