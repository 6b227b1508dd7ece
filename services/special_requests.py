"""Special requests (docs/api.md#special-requests): the options a product offers, and asking for one.

A special request does not mutate the product, so it is started without the product's
one-active-flow lock: it is accepted while a change or a cancellation runs, and blocks neither.
The flow itself is ``workflows.special_request``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from domain.codes import FlowKind
from domain.products import SpecialRequestOption
from domain.refusals import Refusal, Refused, invalid_field
from domain.special_request_flow import SpecialRequestInfo, SpecialRequestInput
from services.bootstrap import Deps
from services.flow_start import NewFlow, opening, start_flow
from services.requester import Requester
from services.visibility import product_state, visible_product


async def options(deps: Deps, requester: Requester, product_id: str) -> list[SpecialRequestOption]:
    product = await visible_product(deps, requester.principal, product_id)
    return product.spec.special_request_options


async def ask(deps: Deps, requester: Requester, product_id: str, option_code: str, traveller_id: str, note: str | None) -> SpecialRequestInfo:
    """Ask the airline for one of the product's options for one of the reservation's travellers."""

    async def prepare(code: str) -> NewFlow:
        product = await visible_product(deps, requester.principal, product_id)
        offered = product.spec.special_request_options
        option = next((o for o in offered if o.code == option_code), None)
        if option is None:
            raise invalid_field("code", f"not an option of this product (offered: {', '.join(o.code for o in offered) or 'none'})")
        travellers = {t.traveller_id: t.status for t in product.travellers()}
        if traveller_id not in {t["traveller_id"] for t in product.reservation_travellers}:
            raise invalid_field("traveller_id", "not a traveller of this reservation")
        if traveller_id not in travellers:
            raise invalid_field("traveller_id", "not a traveller of this product")
        # A traveller cancelled from the product (docs/api.md#partial-cancellation) travels no more.
        if travellers[traveller_id] == "cancelled" and product.status != "cancelled":
            raise invalid_field("traveller_id", "cancelled from this product")
        # The product's own state still matters (nothing to ask for on a cancelled or flown product);
        # another flow running on it does not.
        state = await product_state(deps, product)
        reasons = [r for r in state.common_refusals(datetime.now(timezone.utc)) if r != "flow_in_progress"]
        if reasons:
            raise Refused(Refusal.SPECIAL_REQUEST_DISALLOWED, f"no special request on this product: {', '.join(reasons)}")
        flow_input = SpecialRequestInput(
            **opening(deps, code, product), option=option, traveller_id=traveller_id, note=note,
        )
        return NewFlow(FlowKind.SPECIAL_REQUEST, flow_input, exclusive=False)

    info = (await start_flow(deps, requester, FlowKind.SPECIAL_REQUEST, prepare)).info
    assert isinstance(info, SpecialRequestInfo)
    return info
