// What every flow kind and status is called on the desk, and where each kind's flow info is read.

export const KINDS = {
  cancellation: { label: "Cancellation", prefix: "CAN", path: "/v1/cancellations/" },
  change: { label: "Change", prefix: "CF", path: "/v1/changes/" },
  rescheduling: { label: "Rescheduling", prefix: "RS", path: "/v1/reschedulings/" },
  special_request: { label: "Special request", prefix: "SR", path: "/v1/special-requests/" },
};

export const STATUSES = {
  cancellation: {
    awaiting_agent_quote: "Awaiting an agent's quote",
    awaiting_partner_decision: "Quoted: awaiting the partner's decision",
    processing: "Being cancelled at the supplier",
    cancelled: "Cancelled",
    rejected: "Quote rejected by the partner: the product stays booked",
    no_response: "The partner did not answer in time: the product stays booked",
    expired: "Expired: no agent quoted in time",
    failed: "The supplier refused the cancellation",
  },
  change: {
    awaiting_booking: "Pre-booked: awaiting the partner's booking",
    checkout_issued: "Checkout issued: awaiting the partner",
    checkout_prebooked: "Checkout pre-booked: awaiting payment",
    modified: "Changed",
    expired: "Expired: not booked in time",
    failed: "The supplier refused the change",
  },
  rescheduling: {
    waiting_for_product: "Waiting: another flow holds the product",
    awaiting_partner_action: "Awaiting the partner's choice",
    accepted: "Accepted by the partner",
    auto_accepted: "The default was applied: the partner did not choose",
    obsolete: "Obsolete: the product was cancelled first",
    failed: "The supplier could not apply it",
  },
  special_request: {
    requested: "Asked: awaiting the airline",
    confirmed: "Confirmed by the airline",
    declined: "Declined by the airline",
  },
};

export const PRODUCT_KINDS = { flight: "Flight", hotel: "Hotel", other: "Other" };

// The kind a flow code names ("CAN-…" → "cancellation"); null for anything that is not a flow code.
export function kindOfCode(code) {
  const found = /^(CAN|CF|RS|SR)-[0-9A-Z]{8}$/.exec(code || "");
  if (!found) return null;
  return Object.keys(KINDS).find((kind) => KINDS[kind].prefix === found[1]);
}

export function statusLabel(kind, status) {
  return STATUSES[kind]?.[status] || status;
}
