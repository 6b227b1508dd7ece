// Finding any flow: words (a code, a reservation or product id, a partner's or a traveller's name, or
// the start of any of their words) and filters (kind, status, partner, due before), answered by
// GET /v1/agent/flows in the gateway's order: nearest deadline first, then newest. Finished and
// expired flows are found like the others. "More results" reads the next page.

import { byId, el, setText } from "./elements.js";
import { KINDS, PRODUCT_KINDS, STATUSES, statusLabel } from "./flow_labels.js";
import { Refused, query } from "./gateway.js";
import { paintTimeLeft } from "./queues.js";
import { deskTimeAttributes, formatDesk } from "./times.js";

const PAGE = 50;
const TYPING_PAUSE_MS = 300;
const PARTNER_PAGES = 5;

export class FlowSearch {
  constructor(gateway, { onOpen, onUnauthorized }) {
    this.gateway = gateway;
    this.onOpen = onOpen;
    this.onUnauthorized = onUnauthorized;
    this.form = byId("search-form");
    this.words = byId("search-q");
    this.kind = byId("filter-kind");
    this.status = byId("filter-status");
    this.partner = byId("filter-partner");
    this.due = byId("filter-due");
    this.table = byId("search-results");
    this.more = byId("search-more");
    this.asked = 0;
    this.next = null;
    this.shown = 0;
    this.typing = null;
    this.fillKinds();
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search();
    });
    this.words.addEventListener("input", () => {
      clearTimeout(this.typing);
      this.typing = setTimeout(() => this.search(), TYPING_PAUSE_MS);
    });
    this.kind.addEventListener("change", () => {
      this.fillStatuses();
      this.search();
    });
    for (const filter of [this.status, this.partner, this.due]) filter.addEventListener("change", () => this.search());
    byId("search-clear").addEventListener("click", () => this.clear());
    this.more.addEventListener("click", () => this.search(this.next));
  }

  fillKinds() {
    this.kind.replaceChildren(el("option", { value: "" }, "Any kind"),
      ...Object.entries(KINDS).map(([kind, about]) => el("option", { value: kind }, about.label)));
    this.fillStatuses();
  }

  // The statuses of the chosen kind, or of every kind grouped by kind.
  fillStatuses() {
    const chosen = this.status.value;
    const kinds = this.kind.value ? [this.kind.value] : Object.keys(STATUSES);
    this.status.replaceChildren(el("option", { value: "" }, "Any status"), ...kinds.map((kind) => el(
      "optgroup", { label: KINDS[kind].label },
      Object.entries(STATUSES[kind]).map(([status, label]) => el("option", { value: status }, `${status.replaceAll("_", " ")}: ${label}`)),
    )));
    this.status.value = [...this.status.options].some((option) => option.value === chosen) ? chosen : "";
  }

  // The partners to narrow to, by name (read once per sign-in; a desk has tens of partners, not thousands).
  async loadPartners() {
    const partners = [];
    let cursor = null;
    for (let page = 0; page < PARTNER_PAGES; page++) {
      const answer = await this.gateway.get(`/v1/agent/partners?${query({ limit: 200, cursor })}`);
      partners.push(...answer.items);
      if (!(cursor = answer.next)) break;
    }
    const chosen = this.partner.value;
    this.partner.replaceChildren(el("option", { value: "" }, "Any partner"),
      ...partners.map((p) => el("option", { value: p.partner_id }, p.name)));
    this.partner.value = chosen;
  }

  params() {
    const due = this.due.value ? new Date(this.due.value) : null;
    return {
      q: this.words.value.trim() || null,
      kind: this.kind.value || null,
      status: this.status.value || null,
      partner_id: this.partner.value || null,
      deadline_before: due && !Number.isNaN(due.getTime()) ? due.toISOString() : null,
    };
  }

  // Search from the start, or read the page after `cursor` and add it to the results.
  async search(cursor = null) {
    clearTimeout(this.typing);
    const params = this.params();
    const ticket = ++this.asked;
    if (!Object.values(params).some((value) => value !== null)) return this.clearResults();
    let page;
    try {
      page = await this.gateway.get(`/v1/agent/flows?${query({ ...params, limit: PAGE, cursor })}`);
    } catch (error) {
      if (ticket !== this.asked) return;
      if (error instanceof Refused && error.status === 401) return this.onUnauthorized();
      const field = error instanceof Refused ? error.errors[0] : null;
      setText(byId("search-status"), `Could not search: ${field ? `${field.field.replace("query.", "")} ${field.message}` : error.detail || error.message}`);
      return;
    }
    if (ticket !== this.asked) return; // the agent typed on meanwhile
    this.render(page, Boolean(cursor));
  }

  // The same search again (a refresh), when it shows a single page: the agent's place in a longer list stays.
  async refresh() {
    if (!this.table.hidden && !this.next && this.shown <= PAGE) await this.search();
  }

  render(page, adding) {
    const focused = document.activeElement?.closest?.("#search-results tr[data-code]")?.dataset.code;
    const rows = page.items.map((flow) => this.row(flow));
    const body = this.table.tBodies[0];
    if (adding) body.append(...rows);
    else body.replaceChildren(...(rows.length ? rows : [el("tr", { className: "empty" }, el("td", { colspan: 6 }, "No flow matches."))]));
    this.table.hidden = false;
    this.shown = (adding ? this.shown : 0) + page.items.length;
    this.next = page.next;
    this.more.hidden = !page.next;
    const now = this.gateway.now();
    for (const node of this.table.querySelectorAll(".time-left[data-deadline]")) paintTimeLeft(node, now);
    setText(byId("search-status"), `${this.shown} flow${this.shown === 1 ? "" : "s"} found${page.next ? ", more below" : ""}.`);
    if (focused) this.table.querySelector(`tr[data-code="${CSS.escape(focused)}"] button`)?.focus();
  }

  row(flow) {
    const product = PRODUCT_KINDS[flow.product_kind] || flow.product_kind || "—";
    return el(
      "tr", { dataset: { code: flow.code }, className: flow.finished ? "finished" : null },
      el("th", { scope: "row" }, el("button", { type: "button", className: "code", onclick: () => this.onOpen(flow.code) }, flow.code)),
      el("td", {}, KINDS[flow.kind]?.label || flow.kind, el("span", { className: "muted" }, ` · ${product}`)),
      el("td", {}, statusLabel(flow.kind, flow.status)),
      el("td", {}, flow.partner_name || flow.partner_id),
      el("td", {}, flow.travellers.join(", ") || "—"),
      el("td", {}, flow.deadline
        ? [el("time", deskTimeAttributes(flow.deadline), formatDesk(flow.deadline)), el("br"),
          el("span", { className: "time-left", dataset: { deadline: flow.deadline } })]
        : "—"),
    );
  }

  clearResults() {
    this.asked++;
    this.next = null;
    this.shown = 0;
    this.table.hidden = true;
    this.more.hidden = true;
    this.table.tBodies[0].replaceChildren();
    setText(byId("search-status"), "");
  }

  clear() {
    this.form.reset();
    this.fillStatuses();
    this.clearResults();
    this.words.focus();
  }

  focus() {
    this.words.focus();
    this.words.select();
  }
}
