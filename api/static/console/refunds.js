// Draft refunds of the refunds ledger (docs/api.md#refunds): an agent posts each one (it gets its
// number in the gapless sequence) or rejects it with a reason, one by one or several at once (each
// is still its own request, one after the other, so each gets its number and its own answer). A
// gateway without the ledger answers 404 on /v1/refunds: the section then says so and stays out of
// the way.

import { byId, el, setText } from "./elements.js";
import { Refused } from "./gateway.js";
import { formatMoney } from "./money.js";
import { deskTimeAttributes, formatDesk } from "./times.js";

const PAGE = 100;

// A cancellation's refund links to the flow, shown on the right like the queues' flows.
function flowCell(code, onOpenFlow) {
  if (!code) return "—";
  return el("button", { type: "button", className: "code", onclick: () => onOpenFlow(code) }, code);
}

export class DraftRefunds {
  constructor(gateway, { onUnauthorized, onOpenFlow }) {
    this.gateway = gateway;
    this.onUnauthorized = onUnauthorized;
    this.onOpenFlow = onOpenFlow;
    this.table = byId("draft-refunds");
    this.all = byId("select-all-refunds");
    this.postSelected = byId("post-selected");
    this.rejectSelected = byId("reject-selected");
    this.bulkReject = byId("bulk-reject");
    this.bulkReason = byId("bulk-reason");
    this.rejecting = null; // the refund whose reason is being typed: refreshing would wipe it
    this.selected = new Set(); // refund ids, kept across refreshes
    this.shown = [];
    this.busy = false;
    this.available = true;
    this.all.addEventListener("change", () => {
      for (const refund of this.shown) this.select(refund.refund_id, this.all.checked);
      this.render({ items: this.shown, next: this.next });
    });
    this.postSelected.addEventListener("click", () => this.postAll());
    this.rejectSelected.addEventListener("click", () => this.askBulkReason());
    this.bulkReject.addEventListener("submit", (event) => {
      event.preventDefault();
      this.rejectAll();
    });
    byId("bulk-keep").addEventListener("click", () => this.closeBulkReason());
  }

  async refresh() {
    if (this.rejecting || this.busy || !this.bulkReject.hidden) return;
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
    if (this.rejecting || this.busy || !this.bulkReject.hidden) return; // an action started while the list was loading
    this.render(page);
  }

  reset() {
    this.rejecting = null;
    this.selected.clear();
    this.shown = [];
    this.closeBulkReason();
    this.table.tBodies[0].replaceChildren();
    setText(byId("draft-refunds-done"), "");
    setText(byId("draft-refunds-problem"), "");
  }

  unavailable() {
    this.available = false;
    this.table.hidden = true;
    byId("refund-actions").hidden = true;
    setText(byId("draft-refunds-status"), "Draft refunds: this gateway has no refunds ledger yet.");
  }

  select(refundId, chosen) {
    if (chosen) this.selected.add(refundId);
    else this.selected.delete(refundId);
  }

  render(page) {
    this.shown = page.items;
    this.next = page.next;
    const ids = new Set(page.items.map((refund) => refund.refund_id));
    for (const id of [...this.selected]) if (!ids.has(id)) this.selected.delete(id); // posted or rejected meanwhile
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
      const control = again && (focused.type === "checkbox"
        ? again.querySelector("input[type=checkbox]")
        : [...again.querySelectorAll("button")].find((b) => b.textContent === focused.textContent));
      control?.focus();
    }
    this.showSelection();
    const count = page.items.length;
    const more = page.next ? ` The first ${PAGE} are shown.` : "";
    setText(byId("draft-refunds-status"), `${count} draft${count === 1 ? "" : "s"}, refreshed at ${new Date().toLocaleTimeString()}.${more}`);
  }

  showSelection() {
    const count = this.selected.size;
    this.all.checked = count > 0 && count === this.shown.length;
    this.all.indeterminate = count > 0 && count < this.shown.length;
    this.postSelected.disabled = this.rejectSelected.disabled = count === 0 || this.busy;
    setText(byId("selected-count"), count ? `${count} selected` : "");
    byId("refund-actions").hidden = !this.shown.length;
  }

  row(refund) {
    const actions = el("td", { className: "actions" });
    const pick = el("input", {
      type: "checkbox", "aria-label": `Select refund ${refund.reference_number}`, checked: this.selected.has(refund.refund_id),
      onchange: (event) => {
        this.select(refund.refund_id, event.target.checked);
        this.showSelection();
      },
    });
    const row = el(
      "tr",
      { dataset: { refundId: refund.refund_id } },
      el("td", { className: "pick" }, pick),
      el("th", { scope: "row" }, refund.reference_number),
      el("td", {}, refund.reservation_id),
      el("td", {}, flowCell(refund.flow_code, this.onOpenFlow)),
      el("td", { className: "amount" }, formatMoney(refund.amount)),
      el("td", {}, refund.reason || "—"),
      el("td", {}, refund.notes || "—"),
      el("td", {}, el("time", deskTimeAttributes(refund.created_at), formatDesk(refund.created_at))),
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
    await this.act([refund], () => undefined, "post");
  }

  async reject(refund, reasonInput) {
    const reason = this.reasonFrom(reasonInput, `Say why refund ${refund.reference_number} is rejected.`);
    if (reason) await this.act([refund], () => ({ reason }), "reject");
  }

  chosen() {
    return this.shown.filter((refund) => this.selected.has(refund.refund_id));
  }

  async postAll() {
    await this.act(this.chosen(), () => undefined, "post");
  }

  askBulkReason() {
    if (!this.selected.size) return;
    setText(byId("bulk-reason-label"), `Reason for rejecting the ${this.selected.size} selected refund${this.selected.size === 1 ? "" : "s"}`);
    this.bulkReject.hidden = false;
    this.bulkReason.focus();
  }

  closeBulkReason() {
    this.bulkReject.hidden = true;
    this.bulkReason.value = "";
    this.bulkReason.removeAttribute("aria-invalid");
  }

  async rejectAll() {
    const reason = this.reasonFrom(this.bulkReason, "Say why the selected refunds are rejected.");
    if (!reason) return;
    const chosen = this.chosen();
    this.closeBulkReason();
    await this.act(chosen, () => ({ reason }), "reject");
  }

  reasonFrom(input, ask) {
    const reason = input.value.trim();
    if (!reason) {
      setText(byId("draft-refunds-problem"), ask);
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    return reason;
  }

  // Post or reject `refunds`, one after the other, and say what became of each.
  async act(refunds, body, action) {
    if (this.busy || !refunds.length) return;
    this.busy = true;
    this.showSelection();
    const done = byId("draft-refunds-done");
    setText(byId("draft-refunds-problem"), "");
    setText(done, "");
    const outcomes = [];
    const problems = [];
    try {
      for (const [index, refund] of refunds.entries()) {
        if (refunds.length > 1) setText(done, `${action === "post" ? "Posting" : "Rejecting"} ${index + 1} of ${refunds.length}…`);
        try {
          const answer = await this.gateway.post(`/v1/refunds/${encodeURIComponent(refund.refund_id)}/${action}`, body());
          outcomes.push(action === "post"
            ? `Refund ${answer.reference_number} posted as number ${answer.number}.`
            : `Refund ${answer.reference_number} rejected.`);
          this.selected.delete(refund.refund_id);
        } catch (error) {
          if (error instanceof Refused && error.status === 401) return this.onUnauthorized();
          problems.push(`Refund ${refund.reference_number}: ${error instanceof Refused ? error.detail : String(error)}`);
        }
      }
    } finally {
      this.busy = false;
      this.rejecting = null;
    }
    setText(done, outcomes.join(" "));
    setText(byId("draft-refunds-problem"), problems.join(" "));
    await this.refresh();
  }
}
