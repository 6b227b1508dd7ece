"""Admin (docs/api.md#admin): partners and agents (admin), and a partner's own webhook URL."""

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
