// Draft refunds of the refunds ledger (docs/api.md#refunds): an agent posts each one (it gets
// its number in the gapless sequence) or rejects it with a reason. A gateway without the
// ledger answers 404 on /v1/refunds: the section then says so and stays out of the way.

import { byId, el, setText } from "./elements.js";
import { Refused } from "./gateway.js";
import { formatMoney } from "./money.js";
import { formatTime } from "./time_left.js";

const PAGE = 100;

// A cancellation's refund links to the flow, shown on the right like the queues' flows.
function flowCell(code, onOpenFlow) {
  if (!code) return "—";
  if (!code.startsWith("CAN-")) return code;
  return el("button", { type: "button", className: "code", onclick: () => onOpenFlow(code) }, code);
}

export class DraftRefunds {
  constructor(gateway, { onUnauthorized, onOpenFlow }) {
    this.gateway = gateway;
    this.onUnauthorized = onUnauthorized;
    this.onOpenFlow = onOpenFlow;
    this.table = byId("draft-refunds");
    this.rejecting = null; // the refund whose reason is being typed: refreshing would wipe it
    this.busy = false;
    this.available = true;
  }

  async refresh() {
    if (this.rejecting || this.busy) return;
    let page;
    try {
      page = await this.gateway.get(`/v1/refunds?state=draft&limit=${PAGE}`);
    } catch (error) {
      if (error instanceof Refused && error.status === 401) return this.onUnauthorized();
      if (error instanceof Refused && error.status === 404) return this.unavailable();
      setText(byId("draft-refunds-status"), `Could not refresh: ${error.detail || error.message}`);
      return;
    }
    this.available = true;
    this.table.hidden = false;
    if (this.rejecting || this.busy) return; // an action started while the list was loading
    this.render(page);
  }

  reset() {
    this.rejecting = null;
    this.table.tBodies[0].replaceChildren();
    setText(byId("draft-refunds-done"), "");
    setText(byId("draft-refunds-problem"), "");
  }

  unavailable() {
    this.available = false;
    this.table.hidden = true;
    setText(byId("draft-refunds-status"), "Draft refunds: this gateway has no refunds ledger yet.");
  }

  render(page) {
    const rows = page.items.map((refund) => this.row(refund));
    if (!rows.length) {
      const columns = this.table.tHead.rows[0].cells.length;
      rows.push(el("tr", { className: "empty" }, el("td", { colspan: columns }, "No draft refund.")));
    }
    const focused = document.activeElement;
    const row = focused?.closest?.("#draft-refunds tr[data-refund-id]");
    this.table.tBodies[0].replaceChildren(...rows);
    if (row) {
      // A refresh must not take the keyboard away from an agent about to press Post or Reject.
      const again = [...this.table.querySelectorAll("tr[data-refund-id]")].find((r) => r.dataset.refundId === row.dataset.refundId);
      const button = again && [...again.querySelectorAll("button")].find((b) => b.textContent === focused.textContent);
      button?.focus();
    }
    const count = page.items.length;
    const more = page.next ? ` The first ${PAGE} are shown.` : "";
    setText(byId("draft-refunds-status"), `${count} draft${count === 1 ? "" : "s"}, refreshed at ${new Date().toLocaleTimeString()}.${more}`);
  }

  row(refund) {
    const actions = el("td", { className: "actions" });
    const row = el(
      "tr",
      { dataset: { refundId: refund.refund_id } },
      el("th", { scope: "row" }, refund.reference_number),
      el("td", {}, refund.reservation_id),
      el("td", {}, flowCell(refund.flow_code, this.onOpenFlow)),
      el("td", { className: "amount" }, formatMoney(refund.amount)),
      el("td", {}, refund.reason || "—"),
      el("td", {}, refund.notes || "—"),
      el("td", {}, formatTime(refund.created_at)),
      actions,
    );
    this.showButtons(refund, actions);
    return row;
  }

  showButtons(refund, actions) {
    actions.replaceChildren(
      el("button", { type: "button", onclick: () => this.post(refund) }, "Post"),
      " ",
      el("button", { type: "button", onclick: () => this.askReason(refund, actions) }, "Reject"),
    );
  }

  askReason(refund, actions) {
    this.rejecting = refund.refund_id;
    const reason = el("input", {
      type: "text", "aria-label": `Reason for rejecting refund ${refund.reference_number}`, required: true, maxlength: 500,
      placeholder: "Reason for rejecting",
    });
    const form = el(
      "form",
      { className: "reject", novalidate: true },
      reason,
      " ",
      el("button", { type: "submit" }, "Confirm"),
      " ",
      el("button", { type: "button", onclick: () => this.keep(refund, actions) }, "Keep draft"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.reject(refund, reason);
    });
    actions.replaceChildren(form);
    reason.focus();
  }

  keep(refund, actions) {
    this.rejecting = null;
    this.showButtons(refund, actions);
  }

  async post(refund) {
    await this.act(refund, `/v1/refunds/${encodeURIComponent(refund.refund_id)}/post`, undefined,
      (done) => `Refund ${done.reference_number} posted as number ${done.number}.`);
  }

  async reject(refund, reasonInput) {
    const reason = reasonInput.value.trim();
    if (!reason) {
      setText(byId("draft-refunds-problem"), `Say why refund ${refund.reference_number} is rejected.`);
      reasonInput.setAttribute("aria-invalid", "true");
      reasonInput.focus();
      return;
    }
    await this.act(refund, `/v1/refunds/${encodeURIComponent(refund.refund_id)}/reject`, { reason },
      (done) => `Refund ${done.reference_number} rejected.`);
  }

  async act(refund, path, body, said) {
    if (this.busy) return;
    this.busy = true;
    setText(byId("draft-refunds-problem"), "");
    setText(byId("draft-refunds-done"), "");
    try {
      const done = await this.gateway.post(path, body);
      setText(byId("draft-refunds-done"), said(done));
    } catch (error) {
      if (error instanceof Refused && error.status === 401) return this.onUnauthorized();
      const detail = error instanceof Refused ? error.detail : String(error);
      setText(byId("draft-refunds-problem"), `Refund ${refund.reference_number}: ${detail}`);
    } finally {
      this.busy = false;
      this.rejecting = null;
    }
    await this.refresh();
  }
}
