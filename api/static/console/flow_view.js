// One cancellation on the right-hand side: what was sold, what was paid, the policy, the history,
// and, while it awaits a quote, the quote form. The refund is always paid − penalty, computed
// here as the agent types and checked again by the gateway, whose refusal is shown by the form.

import { byId, el, setText } from "./elements.js";
import { Refused } from "./gateway.js";
import { formatMoney, refundFor } from "./money.js";
import { formatTime, startsIn, timeLeft } from "./time_left.js";

const STATUS = {
  awaiting_agent_quote: "Awaiting an agent's quote",
  awaiting_partner_decision: "Quoted: awaiting the partner's decision",
  processing: "Being cancelled at the supplier",
  cancelled: "Cancelled",
  rejected: "Quote rejected by the partner: the product stays booked",
  no_response: "The partner did not answer in time: the product stays booked",
  expired: "Expired: no agent quoted in time",
  failed: "The supplier refused the cancellation",
};

function describeProduct(product) {
  if (!product) return "—";
  if (product.kind === "flight") {
    const legs = (product.segments || []).map(
      (s) => `${s.flight_number} ${s.origin} → ${s.destination}, departs ${formatTime(s.departure)}`,
    );
    return `Flight (${product.carrier}): ${legs.join("; ")}`;
  }
  if (product.kind === "hotel") return `Hotel stay: ${product.hotel}, ${product.check_in} to ${product.check_out}`;
  return `${product.name || product.kind}: ${formatTime(product.starts_at)} to ${formatTime(product.ends_at)}`;
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

export class FlowView {
  constructor(gateway, { onQuoted, onUnauthorized }) {
    this.gateway = gateway;
    this.onQuoted = onQuoted;
    this.onUnauthorized = onUnauthorized;
    this.code = null;
    this.info = null;
    this.loading = 0;
    this.form = byId("quote-form");
    this.penalty = byId("penalty");
    this.note = byId("note");
    this.refund = byId("refund");
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
    this.clearProblems();
    setText(byId("quote-done"), "");
    byId("flow").hidden = true;
    byId("flow-placeholder").hidden = false;
  }

  async load(focus) {
    const ticket = ++this.loading;
    const code = this.code;
    let info;
    let reservation = null;
    try {
      info = await this.gateway.get(`/v1/cancellations/${encodeURIComponent(code)}`);
      reservation = await this.gateway.get(`/v1/reservations/${encodeURIComponent(info.reservation_id)}`);
    } catch (error) {
      if (ticket !== this.loading) return;
      if (error instanceof Refused && error.status === 401) return this.onUnauthorized();
      this.showLoadProblem(code, error);
      return;
    }
    if (ticket !== this.loading) return; // another flow was opened meanwhile
    this.info = info;
    this.render(info, reservation);
    if (focus) byId("flow-title").focus();
  }

  showLoadProblem(code, error) {
    byId("flow-placeholder").hidden = true;
    byId("flow").hidden = false;
    setText(byId("flow-title"), code);
    setText(byId("flow-status"), `Could not read this flow: ${error.detail || error.message}`);
  }

  render(info, reservation) {
    const product = (reservation?.products || []).find((p) => p.product_id === info.product_id);
    byId("flow-placeholder").hidden = true;
    const section = byId("flow");
    section.hidden = false;
    const title = byId("flow-title");
    setText(title, `Cancellation ${info.code}`);
    title.tabIndex = -1;
    setText(byId("flow-status"), STATUS[info.status] || info.status);
    byId("flow-status").dataset.status = info.status;

    const now = this.gateway.now();
    const travellers = (reservation?.travellers || []).map((t) => t.name).join(", ");
    const facts = [
      fact("Reservation", `${info.reservation_id}${reservation ? ` (${reservation.status})` : ""}`),
      fact("Partner", info.partner_id),
      fact("Travellers", travellers || "—"),
      fact("Product", describeProduct(product), product ? ` (${product.status})` : ""),
      fact("Starts", product ? `${formatTime(product.start)} (${startsIn(product.start, now)})` : "—"),
      fact("Paid", formatMoney(info.paid), product?.vat_rate ? ` (VAT rate ${product.vat_rate})` : ""),
      fact("Policy", describePolicy(product?.cancellation_policy)),
    ];
    if (info.status === "awaiting_agent_quote") {
      facts.push(fact("Quote by", `${formatTime(info.quote_deadline)} (${timeLeft(info.quote_deadline, now).text})`));
    }
    if (info.penalty) facts.push(fact("Penalty", formatMoney(info.penalty)));
    if (info.refund) facts.push(fact("Refund", formatMoney(info.refund)));
    if (info.agent_note) facts.push(fact("Agent's note", info.agent_note));
    if (info.decision_deadline) {
      const left = info.status === "awaiting_partner_decision" ? ` (${timeLeft(info.decision_deadline, now).text})` : "";
      facts.push(fact("Decision by", `${formatTime(info.decision_deadline)}${left}`));
    }
    if (info.decision) facts.push(fact("Partner's decision", info.decision));
    byId("flow-facts").replaceChildren(...facts.flat());

    byId("flow-history").replaceChildren(
      ...(info.history || []).map((entry) =>
        el("li", {}, el("time", { datetime: entry.at }, formatTime(entry.at)), " ", STATUS[entry.event] || entry.event),
      ),
    );

    const quoting = info.status === "awaiting_agent_quote";
    this.form.hidden = !quoting;
    setText(byId("penalty-currency"), info.paid.currency);
    setText(byId("penalty-hint"), `Paid ${formatMoney(info.paid)}: the refund is what the penalty leaves.`);
    if (quoting) this.showRefund();
  }

  showRefund() {
    if (!this.info) return;
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
    for (const id of ["penalty", "refund", "note"]) setText(byId(`${id}-error`), "");
    for (const id of ["penalty", "note"]) byId(id).removeAttribute("aria-invalid");
  }

  showProblem(detail, errors) {
    const unplaced = [];
    for (const error of errors) {
      const field = String(error.field || "").split(".")[0];
      if (["penalty", "refund", "note"].includes(field)) {
        const slot = byId(`${field}-error`);
        setText(slot, slot.textContent ? `${slot.textContent} ${error.message}` : error.message);
        // The refund is worked out from the penalty: what is wrong with it is fixed there.
        byId(field === "refund" ? "penalty" : field).setAttribute("aria-invalid", "true");
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
      });
      setText(
        byId("quote-done"),
        `Quote sent: ${quoted.code} now awaits the partner's decision until ${formatTime(quoted.decision_deadline)}.`,
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
