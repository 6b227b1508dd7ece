// The two cancellation queues: awaiting an agent's quote (the work to do) and quoted, awaiting the
// partner's decision. The gateway orders both by deadline, nearest first; the "time left" cells count
// down every second between refreshes. Each row names the partner, the travellers and the product:
// the queue's flow infos carry the money, the list of flows (same filter, same order) the names.

import { el, setText } from "./elements.js";
import { PRODUCT_KINDS } from "./flow_labels.js";
import { query } from "./gateway.js";
import { formatMoney } from "./money.js";
import { timeLeft } from "./time_left.js";
import { deskTimeAttributes, formatDesk } from "./times.js";

const PAGE = 100;

export const LISTS = {
  quote: {
    table: "awaiting-quote",
    status: "awaiting_agent_quote",
    deadline: (info) => info.quote_deadline,
    // The paid amount, and what makes the quote special: the airline's change (penalty 0 only), a waiver asked for.
    cells: (info) => [formatMoney(info.paid), [
      info.involuntary ? "Involuntary: no penalty" : "",
      info.waiver_request ? `Waiver asked: ${info.waiver_request.code}` : "",
    ].filter(Boolean).join("; ")],
    empty: "No cancellation awaits a quote.",
  },
  partner: {
    table: "awaiting-partner",
    status: "awaiting_partner_decision",
    deadline: (info) => info.decision_deadline,
    cells: (info) => [formatMoney(info.penalty), formatMoney(info.refund)],
    empty: "No quote awaits a partner's decision.",
  },
};

// {items, next, names}: the queue's page, and what the list of flows says of each (by code).
export async function fetchList(gateway, list) {
  const [page, listed] = await Promise.all([
    gateway.get(`/v1/agent/cancellations?${query({ status: list.status, limit: PAGE })}`),
    gateway.get(`/v1/agent/flows?${query({ kind: "cancellation", status: list.status, limit: PAGE })}`),
  ]);
  return { ...page, names: new Map(listed.items.map((flow) => [flow.code, flow])) };
}

// A time-left element (a cell, or a span in one) painted for `now`; its row is marked urgent or overdue.
export function paintTimeLeft(node, now) {
  if (!node.dataset.deadline) return;
  const left = timeLeft(node.dataset.deadline, now);
  setText(node, left.text);
  const row = node.closest("tr");
  if (row) {
    row.classList.toggle("overdue", left.overdue);
    row.classList.toggle("urgent", left.urgent && !left.overdue);
  }
}

function whoAndWhat(flow) {
  return [
    el("td", {}, flow?.partner_name || flow?.partner_id || "—"),
    el("td", {}, flow?.travellers?.join(", ") || "—"),
    el("td", {}, PRODUCT_KINDS[flow?.product_kind] || flow?.product_kind || "—"),
  ];
}

// Replace the table's rows with `page.items`; `openCode` is the flow shown on the right.
export function renderList(list, page, { now, openCode, onOpen }) {
  const table = document.getElementById(list.table);
  const body = table.tBodies[0];
  const rows = page.items.map((info) => {
    const deadline = list.deadline(info);
    const open = el("button", { type: "button", className: "code", onclick: () => onOpen(info.code) }, info.code);
    const left = el("td", { className: "time-left", dataset: { deadline: deadline || "" } }, "not set yet");
    const row = el(
      "tr",
      { dataset: { code: info.code }, "aria-current": info.code === openCode ? "true" : null },
      el("th", { scope: "row" }, open),
      whoAndWhat(page.names.get(info.code)),
      list.cells(info).map((text) => el("td", { className: "amount" }, text)),
      el("td", {}, el("time", deskTimeAttributes(deadline), formatDesk(deadline))),
      left,
    );
    paintTimeLeft(left, now); // in its row, so the row is marked urgent or overdue at once
    return row;
  });
  if (!rows.length) {
    const columns = table.tHead.rows[0].cells.length;
    rows.push(el("tr", { className: "empty" }, el("td", { colspan: columns }, list.empty)));
  }
  body.replaceChildren(...rows);
  const count = page.items.length;
  const more = page.next ? ` The ${PAGE} nearest deadlines are shown; more are waiting.` : "";
  setText(
    document.getElementById(`${list.table}-status`),
    `${count} flow${count === 1 ? "" : "s"}, refreshed at ${new Date().toLocaleTimeString()}.${more}`,
  );
}

export function markOpen(code) {
  for (const row of document.querySelectorAll("table.queue tbody tr[data-code]")) {
    if (row.dataset.code === code) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

export function tick(now) {
  for (const node of document.querySelectorAll(".time-left[data-deadline]")) paintTimeLeft(node, now);
}
