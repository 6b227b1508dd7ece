// The two flow lists: cancellations awaiting an agent's quote (the work to do) and quoted ones
// awaiting the partner's decision. The gateway orders both by deadline, nearest first; the
// "time left" cells count down every second between refreshes.

import { el, setText } from "./elements.js";
import { formatMoney } from "./money.js";
import { formatTime, timeLeft } from "./time_left.js";

const PAGE = 100;

export const LISTS = {
  quote: {
    table: "awaiting-quote",
    status: "awaiting_agent_quote",
    deadline: (info) => info.quote_deadline,
    cells: (info) => [info.reservation_id, formatMoney(info.paid)],
    empty: "No cancellation awaits a quote.",
  },
  partner: {
    table: "awaiting-partner",
    status: "awaiting_partner_decision",
    deadline: (info) => info.decision_deadline,
    cells: (info) => [info.reservation_id, formatMoney(info.penalty), formatMoney(info.refund)],
    empty: "No quote awaits a partner's decision.",
  },
};

export async function fetchList(gateway, list) {
  return gateway.get(`/v1/agent/cancellations?status=${list.status}&limit=${PAGE}`);
}


export function paintTimeLeft(cell, now) {
  const left = timeLeft(cell.dataset.deadline, now);
  setText(cell, left.text);
  const row = cell.closest("tr");
  if (row) {
    row.classList.toggle("overdue", left.overdue);
    row.classList.toggle("urgent", left.urgent && !left.overdue);
  }
}

// Replace the table's rows with `page.items`; `openCode` is the flow shown on the right.
export function renderList(list, page, { now, openCode, onOpen }) {
  const table = document.getElementById(list.table);
  const body = table.tBodies[0];
  const rows = page.items.map((info) => {
    const deadline = list.deadline(info);
    const open = el("button", { type: "button", className: "code", onclick: () => onOpen(info.code) }, info.code);
    const left = el("td", { className: "time-left", dataset: { deadline: deadline || "" } });
    const row = el(
      "tr",
      { dataset: { code: info.code }, "aria-current": info.code === openCode ? "true" : null },
      el("th", { scope: "row" }, open),
      list.cells(info).map((text) => el("td", {}, text)),
      el("td", {}, formatTime(deadline)),
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
  for (const cell of document.querySelectorAll("td.time-left")) paintTimeLeft(cell, now);
}
