// One flow on the right-hand side, whatever its kind: what was sold and to whom, what it costs, what
// the flow is waiting for, its history, and the other flows of the same product (a schedule change
// waiting behind it is flagged). While a cancellation awaits a quote, the quote form is under it: the
// refund is always paid − penalty, computed here as the agent types and checked again by the gateway,
// whose refusal is shown by the form.

import { byId, el, setText } from "./elements.js";
import { KINDS, PRODUCT_KINDS, kindOfCode, statusLabel } from "./flow_labels.js";
import { Refused, query } from "./gateway.js";
import { formatMoney, refundFor } from "./money.js";
import { startsIn, timeLeft } from "./time_left.js";
import { deskTimeAttributes, formatDate, formatDesk, formatLocal } from "./times.js";

const ALTERNATIVES = { accept_proposed: "The airline's proposal", rebook: "Another flight", refund: "A full refund" };
const CHANGE_KINDS = { time_change: "The flight's times changed", flight_cancelled: "The flight was cancelled" };
const WAIVERS = {
  MEDICAL: "Medical", BEREAVEMENT: "Bereavement", GOODWILL: "Goodwill", SCHEDULE_CHANGE: "Schedule change", OTHER: "Other",
};

// The travellers a flow concerns: a partial cancellation names some of its product's (docs/api.md#partial-cancellation);
// any other flow, every traveller of the reservation.
function travellersConcerned(info, reservation, product) {
  const everyone = reservation?.travellers || [];
  if (!info.traveller_ids) return everyone.map((t) => t.name).join(", ");
  const named = info.traveller_ids.map((id) => everyone.find((t) => t.traveller_id === id)?.name || id);
  const covered = product?.traveller_ids?.length || everyone.length;
  return named.length < covered ? `${named.join(", ")} (${named.length} of ${covered} travellers)` : named.join(", ");
}

// "Goodwill (loyal customer), 100.00 EUR waived, by agt_…": a waiver as finance reads it.
function describeWaiver(waiver) {
  const parts = [WAIVERS[waiver.code] || waiver.code];
  if (waiver.note) parts[0] += ` (${waiver.note})`;
  if (waiver.penalty_waived) parts.push(`${formatMoney(waiver.penalty_waived)} waived`);
  if (waiver.granted_by) parts.push(waiver.granted_by === "rule:involuntary" ? "granted by the rule" : `by ${waiver.granted_by}`);
  return parts.join(", ");
}

function legs(segments) {
  return (segments || []).map(
    (s) => `${s.flight_number} ${s.origin} → ${s.destination}, departs ${formatLocal(s.departure)}, arrives ${formatLocal(s.arrival)}`,
  ).join("; ");
}

function describeProduct(product) {
  if (!product) return "—";
  if (product.kind === "flight") return `Flight (${product.carrier}): ${legs(product.segments)}`;
  if (product.kind === "hotel") return `Hotel stay: ${product.hotel}, ${formatDate(product.check_in)} to ${formatDate(product.check_out)}`;
  return `${product.name || product.kind}: ${formatLocal(product.starts_at)} to ${formatLocal(product.ends_at)}`;
}

// When the product starts, in the place's own time: the first departure, the check-in day, the service's start.
function startOf(product) {
  if (product.kind === "flight") return formatLocal(product.segments?.[0]?.departure);
  if (product.kind === "hotel") return `${formatDate(product.check_in)} (check-in)`;
  return formatLocal(product.starts_at);
}

function describePolicy(policy) {
  if (!policy) return "—";
  if (policy.mode === "manual") return "Manual: the agent quotes the penalty";
  if (policy.mode === "none") return "Not cancellable";
  const tiers = (policy.tiers || [])
    .map((t) => `${t.penalty_percent} % within ${t.hours_before_start} h of the start`)
    .join(", ");
  return `Automatic: ${tiers || "no penalty"}`;
}

function fact(term, ...value) {
  return [el("dt", {}, term), el("dd", {}, ...value)];
}

function deskTime(iso) {
  return el("time", deskTimeAttributes(iso), formatDesk(iso));
}

// A deadline in the agent's zone, with the time left while the flow still waits for it.
function deadlineFact(term, iso, waiting, now) {
  return fact(term, deskTime(iso), waiting && iso ? ` (${timeLeft(iso, now).text})` : "");
}

function kindFacts(kind, info, reservation, now) {
  if (kind === "cancellation") {
    const facts = [];
    if (info.status === "awaiting_agent_quote") facts.push(deadlineFact("Quote by", info.quote_deadline, true, now));
    if (info.involuntary) {
      facts.push(fact("Involuntary", el("strong", { className: "flag-text" }, "The airline changed this flight: no penalty may be charged")));
    }
    if (info.waiver_request) {
      const asked = WAIVERS[info.waiver_request.code] || info.waiver_request.code;
      facts.push(fact("Waiver asked for", el("strong", {}, asked), info.waiver_request.note ? `: ${info.waiver_request.note}` : ""));
    }
    if (info.waiver) facts.push(fact("Waiver", describeWaiver(info.waiver)));
    if (info.penalty) facts.push(fact("Penalty", formatMoney(info.penalty)));
    if (info.refund) facts.push(fact("Refund", formatMoney(info.refund)));
    if (info.agent_note) facts.push(fact("Agent's note", info.agent_note));
    if (info.decision_deadline) {
      facts.push(deadlineFact("Decision by", info.decision_deadline, info.status === "awaiting_partner_decision", now));
    }
    if (info.decision) facts.push(fact("Partner's decision", info.decision));
    return facts;
  }
  if (kind === "change") {
    const open = !["modified", "expired", "failed"].includes(info.status);
    return [
      fact("Resolution", info.resolution === "manual" ? "Manual: an agent's checkout" : "Automatic"),
      info.description ? fact("Description", info.description) : [],
      fact("Total due", formatMoney(info.total_due)),
      info.fare_difference ? fact("Fare difference", formatMoney(info.fare_difference)) : [],
      info.change_fee ? fact("Change fee", formatMoney(info.change_fee)) : [],
      info.itinerary ? fact("New itinerary", describeProduct(info.itinerary)) : [],
      deadlineFact("Holds until", info.expires_at, open, now),
      info.payment_method ? fact("Paid by", info.payment_method) : [],
      info.failure ? fact("Supplier's reason", info.failure) : [],
    ];
  }
  if (kind === "rescheduling") {
    const chosen = (info.alternatives || []).find((a) => a.alternative_id === info.alternative_id);
    return [
      fact("Schedule change", CHANGE_KINDS[info.change_kind] || info.change_kind),
      fact("Booked", legs(info.original_segments) || "—"),
      fact("Proposed", legs(info.proposed_segments) || "nothing: the flight is cancelled"),
      info.decision_deadline ? deadlineFact("Choose by", info.decision_deadline, info.status === "awaiting_partner_action", now) : [],
      fact("Alternatives", el("ul", { className: "alternatives" }, (info.alternatives || []).map((a) => el(
        "li", {}, ALTERNATIVES[a.kind] || a.kind, a.segments?.length ? `: ${legs(a.segments)}` : "",
        a.refund ? `: ${formatMoney(a.refund)}` : "", a.default ? " (the default)" : "",
      )))),
      chosen ? fact("Applied", ALTERNATIVES[chosen.kind] || chosen.kind) : [],
    ];
  }
  const traveller = (reservation?.travellers || []).find((t) => t.traveller_id === info.traveller_id);
  return [
    fact("Request", `${info.option?.name || "—"} (${info.option?.code || "?"})`, info.option?.price ? `, ${formatMoney(info.option.price)}` : ""),
    fact("For", traveller ? traveller.name : info.traveller_id),
    info.note ? fact("Note", info.note) : [],
    info.reason ? fact("Airline's reason", info.reason) : [],
  ];
}

export class FlowView {
  constructor(gateway, { onQuoted, onUnauthorized, onOpen }) {
    this.gateway = gateway;
    this.onQuoted = onQuoted;
    this.onUnauthorized = onUnauthorized;
    this.onOpen = onOpen;
    this.code = null;
    this.info = null;
    this.loading = 0;
    this.form = byId("quote-form");
    this.penalty = byId("penalty");
    this.note = byId("note");
    this.refund = byId("refund");
    this.waiverCode = byId("waiver-code");
    this.waiverNote = byId("waiver-note");
    this.send = byId("send-quote");
    this.penalty.addEventListener("input", () => this.showRefund());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendQuote();
    });
  }

  async open(code) {
    const fresh = code !== this.code;
    this.code = code;
    if (fresh) {
      this.info = null;
      this.penalty.value = "";
      this.note.value = "";
      this.waiverCode.value = "";
      this.waiverNote.value = "";
      this.clearProblems();
      setText(byId("quote-done"), "");
    }
    await this.load(fresh);
  }

  // Re-read the open flow (another agent may have quoted it, or it expired) without touching
  // what the agent is typing.
  async refresh() {
    if (this.code) await this.load(false);
  }

  close() {
    this.loading++; // an answer still on its way is dropped
    this.code = null;
    this.info = null;
    this.penalty.value = "";
    this.note.value = "";
    this.waiverCode.value = "";
    this.waiverNote.value = "";
    this.clearProblems();
    setText(byId("quote-done"), "");
    byId("flow").hidden = true;
    byId("flow-placeholder").hidden = false;
    document.body.classList.remove("flow-open");
  }

  async load(focus) {
    const ticket = ++this.loading;
    const code = this.code;
    const kind = kindOfCode(code);
    if (!kind) {
      this.showLoadProblem(code, `${code} is not a flow code: CAN-, CF-, RS- or SR- and 8 letters or digits.`);
      return;
    }
    let info;
    let reservation = null;
    let siblings = null;
    try {
      info = await this.gateway.get(`${KINDS[kind].path}${encodeURIComponent(code)}`);
      [reservation, siblings] = await Promise.all([
        this.gateway.get(`/v1/reservations/${encodeURIComponent(info.reservation_id)}`),
        this.gateway.get(`/v1/agent/flows?${query({ product_id: info.product_id, limit: 200 })}`),
      ]);
    } catch (error) {
      if (ticket !== this.loading) return;
      if (error instanceof Refused && error.status === 401) return this.onUnauthorized();
      this.showLoadProblem(code, `Could not read this flow: ${error.detail || error.message}`);
      return;
    }
    if (ticket !== this.loading) return; // another flow was opened meanwhile
    this.info = info;
    this.render(kind, info, reservation, siblings.items);
    if (focus) byId("flow-title").focus();
  }

  show() {
    byId("flow-placeholder").hidden = true;
    byId("flow").hidden = false;
    document.body.classList.add("flow-open");
    const title = byId("flow-title");
    title.tabIndex = -1;
    return title;
  }

  showLoadProblem(code, said) {
    setText(this.show(), code);
    setText(byId("flow-status"), said);
    byId("flow-status").dataset.status = "";
    for (const id of ["flow-facts", "flow-history", "flow-warning"]) byId(id).replaceChildren();
    byId("other-flows").tBodies[0].replaceChildren();
    this.form.hidden = true;
  }

  render(kind, info, reservation, siblings) {
    const product = (reservation?.products || []).find((p) => p.product_id === info.product_id);
    const listed = siblings.find((flow) => flow.code === info.code);
    setText(this.show(), `${KINDS[kind].label} ${info.code}`);
    setText(byId("flow-status"), statusLabel(kind, info.status));
    byId("flow-status").dataset.status = info.status;

    const now = this.gateway.now();
    const travellers = travellersConcerned(info, reservation, product);
    const paid = kind === "cancellation" ? info.paid : product?.price;
    const facts = [
      fact("Reservation", `${info.reservation_id}${reservation ? ` (${reservation.status})` : ""}`),
      fact("Partner", listed?.partner_name || info.partner_id),
      fact("Travellers", travellers || "—"),
      fact("Product", describeProduct(product), product ? ` (${product.status})` : ""),
      fact("Starts", product ? `${startOf(product)} (${startsIn(product.start, now)})` : "—"),
      fact("Paid", formatMoney(paid), product?.vat_rate ? ` (VAT rate ${product.vat_rate})` : ""),
      fact("Policy", describePolicy(product?.cancellation_policy)),
      ...kindFacts(kind, info, reservation, now),
    ];
    byId("flow-facts").replaceChildren(...facts.flat(2));

    byId("flow-history").replaceChildren(
      ...(info.history || []).map((entry) =>
        el("li", {}, deskTime(entry.at), " ", statusLabel(kind, entry.event)),
      ),
    );
    this.renderOthers(info.code, siblings);

    const quoting = kind === "cancellation" && info.status === "awaiting_agent_quote";
    this.form.hidden = !quoting;
    if (quoting) {
      setText(byId("penalty-currency"), info.paid.currency);
      setText(byId("penalty-hint"), info.involuntary
        ? `Paid ${formatMoney(info.paid)}: the airline changed this flight, so only a penalty of 0 is accepted.`
        : `Paid ${formatMoney(info.paid)}: the refund is what the penalty leaves.`);
      // What the partner asked for, or the schedule change, is offered first; the agent decides.
      if (!this.waiverCode.value) {
        this.waiverCode.value = info.waiver_request?.code || (info.involuntary ? "SCHEDULE_CHANGE" : "");
      }
      this.showRefund();
    }
  }

  // The product's other flows, nearest deadline first, then newest (the gateway's order). A schedule change that
  // has not finished is said in words, at the top of the flow too: it takes the product when this ends.
  renderOthers(code, siblings) {
    const others = siblings.filter((flow) => flow.code !== code);
    const waiting = others.filter((flow) => flow.kind === "rescheduling" && !flow.finished);
    const rows = others.map((flow) => {
      const flagged = waiting.includes(flow);
      return el(
        "tr", { dataset: { code: flow.code }, className: flagged ? "flag" : null },
        el("th", { scope: "row" }, el("button", { type: "button", className: "code", onclick: () => this.onOpen(flow.code) }, flow.code)),
        el("td", {}, KINDS[flow.kind]?.label || flow.kind, flagged ? el("strong", { className: "flag-text" }, " · schedule change waiting") : ""),
        el("td", {}, statusLabel(flow.kind, flow.status)),
        el("td", {}, deskTime(flow.created_at)),
      );
    });
    if (!rows.length) rows.push(el("tr", { className: "empty" }, el("td", { colspan: 4 }, "No other flow on this product.")));
    const focused = document.activeElement?.closest?.("#other-flows tr[data-code]")?.dataset.code;
    byId("other-flows").tBodies[0].replaceChildren(...rows);
    // A refresh must not take the keyboard away from an agent moving through these.
    if (focused) byId("other-flows").querySelector(`tr[data-code="${CSS.escape(focused)}"] button`)?.focus();
    byId("flow-warning").replaceChildren(...waiting.map((flow) => el(
      "p", {}, flow.status === "waiting_for_product"
        ? `The airline changed this flight (${flow.code}): that schedule change waits for this flow to end, then the partner gets its alternatives.`
        : `The airline changed this flight (${flow.code}): ${statusLabel(flow.kind, flow.status).toLowerCase()}.`,
    )));
  }

  showRefund() {
    if (!this.info?.paid) return;
    const typed = this.penalty.value;
    const result = refundFor(this.info.paid, typed);
    this.refund.classList.toggle("negative", Boolean(result.negative));
    if (result.error) {
      setText(this.refund, typed.trim() ? "—" : `${this.info.paid.amount} ${this.info.paid.currency}`);
      return result;
    }
    const warning = result.negative ? " (more than was paid)" : "";
    setText(this.refund, `${result.refund} ${this.info.paid.currency}${warning}`);
    return result;
  }

  clearProblems() {
    const problem = byId("quote-problem");
    problem.replaceChildren();
    for (const id of ["penalty", "refund", "note", "waiver"]) setText(byId(`${id}-error`), "");
    for (const id of ["penalty", "note", "waiver-code"]) byId(id).removeAttribute("aria-invalid");
  }

  showProblem(detail, errors) {
    const unplaced = [];
    for (const error of errors) {
      const field = String(error.field || "").split(".")[0];
      if (["penalty", "refund", "note", "waiver"].includes(field)) {
        const slot = byId(`${field}-error`);
        setText(slot, slot.textContent ? `${slot.textContent} ${error.message}` : error.message);
        // The refund is worked out from the penalty: what is wrong with it is fixed there.
        const input = { refund: "penalty", waiver: "waiver-code" }[field] || field;
        byId(input).setAttribute("aria-invalid", "true");
      } else {
        unplaced.push(error);
      }
    }
    const problem = byId("quote-problem");
    problem.replaceChildren(el("p", {}, detail));
    if (unplaced.length) problem.append(el("ul", {}, unplaced.map((e) => el("li", {}, `${e.field}: ${e.message}`))));
  }

  async sendQuote() {
    if (!this.info || this.send.disabled) return;
    this.clearProblems();
    const info = this.info;
    const result = this.showRefund();
    if (result.error) {
      this.showProblem("The quote is not complete.", [{ field: "penalty", message: result.error }]);
      this.penalty.focus();
      return;
    }
    const currency = info.paid.currency;
    this.send.disabled = true;
    try {
      const quoted = await this.gateway.post(`/v1/agent/cancellations/${encodeURIComponent(info.code)}/quote`, {
        penalty: { amount: result.penalty, currency },
        refund: { amount: result.refund, currency },
        note: this.note.value,
        ...(this.waiverCode.value ? { waiver: { code: this.waiverCode.value, note: this.waiverNote.value || null } } : {}),
      });
      setText(
        byId("quote-done"),
        `Quote sent: ${quoted.code} now awaits the partner's decision until ${formatDesk(quoted.decision_deadline)}.`,
      );
      this.info = quoted;
      this.onQuoted(quoted.code);
      await this.refresh();
    } catch (error) {
      if (error instanceof Refused && error.status === 401) return this.onUnauthorized();
      const detail = error instanceof Refused ? error.detail : String(error);
      if (error instanceof Refused && error.code === "not_awaiting_quote") {
        // Quoted by another agent, or expired: the form goes away, so say it outside the form.
        setText(byId("quote-done"), detail);
        await this.refresh();
      } else {
        this.showProblem(detail, error instanceof Refused ? error.errors : []);
      }
    } finally {
      this.send.disabled = false;
    }
  }
}
