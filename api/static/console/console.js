// The agent console (docs/console.md): sign in with the agent's key, then work the queues, find any
// flow, and settle refunds. Everything it shows comes from this gateway's /v1 API, refreshed every few
// seconds. A flow has its own address, /console#/flows/<code>: a reload or the Back button keeps it,
// and a colleague can be sent it (they sign in with their own key).

import { DeskAlerts } from "./desk_alerts.js";
import { byId, setText } from "./elements.js";
import { FlowSearch } from "./flow_search.js";
import { FlowView } from "./flow_view.js";
import { Gateway, Refused } from "./gateway.js";
import { LISTS, fetchList, markOpen, renderList, tick } from "./queues.js";
import { DraftRefunds } from "./refunds.js";
import { forgetKey, keepKey, storedKey } from "./session.js";
import { listenForShortcuts } from "./shortcuts.js";
import { deskZone } from "./times.js";

const REFRESH_MS = 10_000;
const TICK_MS = 1_000;
const TITLE = "Agent console · Aftersales";
const FLOW_ADDRESS = /^#\/flows\/([^/?#]+)$/;

// The flow the address names, or null.
function addressedFlow() {
  const found = FLOW_ADDRESS.exec(location.hash);
  if (!found) return null;
  try {
    return decodeURIComponent(found[1]);
  } catch {
    return null;
  }
}

class AgentConsole {
  constructor() {
    this.gateway = null;
    this.timers = [];
    this.refreshing = false;
    const opening = { onOpen: (code) => this.go(code), onUnauthorized: () => this.expired() };
    // Built once: their listeners stay bound across sign-outs; each sign-in hands them its gateway.
    this.flow = new FlowView(null, { ...opening, onQuoted: () => this.refreshLists() });
    this.refunds = new DraftRefunds(null, { onUnauthorized: () => this.expired(), onOpenFlow: (code) => this.go(code) });
    this.search = new FlowSearch(null, opening);
    this.alerts = new DeskAlerts({ onOpen: (code) => this.go(code) });
    byId("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.signIn(byId("api-key").value.trim());
    });
    byId("sign-out").addEventListener("click", () => {
      // The next person at this desk starts on the desk, not on the last agent's flow.
      history.replaceState(null, "", location.pathname);
      this.signOut();
    });
    byId("close-flow").addEventListener("click", () => this.go(null));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.gateway) this.refresh();
    });
    // Back, Forward, a pasted address: the page shows the flow the address names.
    window.addEventListener("hashchange", () => this.follow());
    listenForShortcuts({ focusSearch: () => this.search.focus() });
    setText(byId("desk-zone"), deskZone());
  }

  start() {
    const key = storedKey();
    if (key) this.signIn(key);
    else this.showSignIn("");
  }

  async signIn(key) {
    const problem = byId("sign-in-error");
    if (!key) {
      setText(problem, "Enter your agent API key.");
      return;
    }
    setText(problem, "");
    const gateway = new Gateway(key);
    let me;
    try {
      me = await gateway.get("/v1/me");
    } catch (error) {
      forgetKey();
      const status = error instanceof Refused ? error.status : 0;
      const said = status === 401
        ? "Wrong API key: the gateway does not know this key. Check it and sign in again."
        : `Could not sign in: ${error.detail || error.message}`;
      this.showSignIn(said);
      return;
    }
    if (me.role !== "agent") {
      forgetKey();
      this.showSignIn(`This is ${me.role === "admin" ? "the admin" : `a ${me.role}`} key: the console is for agents. Sign in with an agent key.`);
      return;
    }
    keepKey(key);
    byId("api-key").value = "";
    this.gateway = gateway;
    this.flow.gateway = gateway;
    this.refunds.gateway = gateway;
    this.search.gateway = gateway;
    setText(byId("who-name"), `Signed in as ${me.name}`);
    byId("who").hidden = false;
    byId("sign-in").hidden = true;
    byId("desk").hidden = false;
    this.timers.push(setInterval(() => this.refresh(), REFRESH_MS));
    this.timers.push(setInterval(() => tick(gateway.now()), TICK_MS));
    this.follow();
    await Promise.all([this.refresh(), this.search.loadPartners().catch(() => undefined)]);
  }

  expired() {
    this.signOut("The gateway no longer accepts your key. Sign in again.");
  }

  signOut(message = "") {
    forgetKey();
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.gateway = null;
    // Nothing of the last agent's work stays on screen for the next person at this desk.
    this.flow.close();
    this.refunds.reset();
    this.search.clear();
    this.alerts.reset();
    for (const id of ["awaiting-quote", "awaiting-partner"]) byId(id).tBodies[0].replaceChildren();
    document.title = TITLE;
    this.showSignIn(message);
  }

  showSignIn(message) {
    byId("desk").hidden = true;
    byId("who").hidden = true;
    byId("sign-in").hidden = false;
    setText(byId("sign-in-error"), message);
    byId("api-key").focus();
  }

  // Open a flow by giving it the address (null: the desk without a flow); the browser's history keeps each.
  go(code) {
    const hash = code ? `#/flows/${encodeURIComponent(code)}` : "#/";
    if (location.hash === hash) this.follow();
    else location.hash = hash;
  }

  follow() {
    if (!this.gateway) return; // signing in follows the address then
    const code = addressedFlow();
    markOpen(code);
    if (code) this.flow.open(code);
    else this.flow.close();
  }

  async refreshLists() {
    const gateway = this.gateway;
    if (!gateway) return;
    await Promise.all(Object.entries(LISTS).map(async ([name, list]) => {
      try {
        const page = await fetchList(gateway, list);
        if (gateway !== this.gateway) return;
        const focused = document.activeElement?.closest?.(`#${list.table} tr[data-code]`)?.dataset.code;
        renderList(list, page, { now: gateway.now(), openCode: this.flow.code, onOpen: (code) => this.go(code) });
        // A refresh must not steal the keyboard from an agent moving through the list.
        if (focused) document.querySelector(`#${list.table} tr[data-code="${CSS.escape(focused)}"] button`)?.focus();
        if (name === "quote") {
          document.title = page.items.length ? `(${page.items.length}${page.next ? "+" : ""}) ${TITLE}` : TITLE;
          this.alerts.heard(page.items, page.names, gateway.now());
        }
      } catch (error) {
        if (error instanceof Refused && error.status === 401) return this.expired();
        setText(byId(`${list.table}-status`), `Could not refresh: ${error.detail || error.message}`);
      }
    }));
  }

  async refresh() {
    if (this.refreshing || !this.gateway) return;
    this.refreshing = true;
    try {
      await Promise.all([this.refreshLists(), this.refunds.refresh(), this.flow.refresh(), this.search.refresh()]);
    } finally {
      this.refreshing = false;
    }
  }
}

new AgentConsole().start();
