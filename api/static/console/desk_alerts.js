// Desktop notifications, for an agent working in another window: a new flow awaiting a quote, and a
// quote deadline less than an hour away. Off until the agent turns them on: the browser is asked for
// permission only then, after a click, never on load. Each flow is announced once per kind of news.

import { byId, setText } from "./elements.js";
import { HOUR } from "./time_left.js";

const KEPT = "aftersales.console.notify"; // "on" while the agent wants them, for this tab only

export class DeskAlerts {
  constructor({ onOpen }) {
    this.onOpen = onOpen;
    this.button = byId("notify");
    this.known = null; // the codes seen awaiting a quote; null until the first list after turning on
    this.warned = new Set();
    this.button.addEventListener("click", () => this.toggle());
    this.show();
  }

  supported() {
    return typeof Notification === "function";
  }

  on() {
    return this.supported() && Notification.permission === "granted" && sessionStorage.getItem(KEPT) === "on";
  }

  async toggle() {
    if (!this.supported()) return this.show("This browser cannot show desktop notifications.");
    if (this.on()) {
      sessionStorage.removeItem(KEPT);
      return this.show();
    }
    const permission = Notification.permission === "default" ? await Notification.requestPermission() : Notification.permission;
    if (permission !== "granted") return this.show("The browser blocks notifications from this page: allow them in its site settings.");
    sessionStorage.setItem(KEPT, "on");
    this.known = null;
    this.show();
  }

  show(problem = "") {
    const on = this.on();
    this.button.setAttribute("aria-pressed", String(on));
    setText(this.button, on ? "Notifications on" : "Notify me");
    setText(byId("notify-problem"), problem);
  }

  reset() {
    this.known = null;
    this.warned.clear();
  }

  // After each refresh of the queue awaiting a quote: `items` its flow infos, `names` what the list of
  // flows says of each (by code), `now` the desk's clock.
  heard(items, names, now) {
    if (!this.on()) return;
    const codes = items.map((info) => info.code);
    if (this.known !== null) {
      const arrived = codes.filter((code) => !this.known.has(code));
      if (arrived.length === 1) {
        const partner = names.get(arrived[0])?.partner_name;
        this.notify(`New flow awaiting a quote: ${arrived[0]}`, partner ? `From ${partner}` : "", arrived[0]);
      } else if (arrived.length > 1) {
        this.notify(`${arrived.length} new flows await a quote`, arrived.join(", "), arrived[0]);
      }
    }
    this.known = new Set(codes);
    for (const info of items) {
      const left = Date.parse(info.quote_deadline) - now;
      if (left > 0 && left < HOUR && !this.warned.has(info.code)) {
        this.warned.add(info.code);
        this.notify(`Less than an hour to quote ${info.code}`, `${Math.ceil(left / 60_000)} min left`, info.code);
      }
    }
  }

  notify(title, body, code) {
    const shown = new Notification(title, { body, tag: `${title}:${code}` });
    shown.onclick = () => {
      window.focus();
      this.onOpen(code);
      shown.close();
    };
  }
}
