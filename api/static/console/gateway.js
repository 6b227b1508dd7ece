// The console's only way out: fetch to this gateway's /v1 API with the agent's key in the
// Authorization header. Refusals come back as RFC 9457 problems and are thrown as Refused.

export class Refused extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "http_error";
    this.detail = problem.detail || problem.title || `The gateway answered ${status}.`;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

// A fresh Idempotency-Key per action: a retried request never acts twice. getRandomValues works
// over plain http too, where crypto.randomUUID does not exist.
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Gateway {
  constructor(apiKey) {
    this.apiKey = apiKey;
  }

  // What countdowns are measured from: the desk's clock (kept right by the operating system).
  now() {
    return Date.now();
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.apiKey}`, Accept: "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["Idempotency-Key"] = idempotencyKey();
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new Refused(0, { code: "unreachable", detail: "The gateway does not answer. Check your connection; the console keeps trying." });
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      answer = null;
    }
    if (!response.ok) throw new Refused(response.status, answer || {});
    return answer;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body) {
    return this.request("POST", path, body);
  }
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) search.set(name, String(value));
  }
  return search.toString();
}
