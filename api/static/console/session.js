// The agent's key lives in sessionStorage only: this tab, until it closes or the agent signs out.
// Never localStorage (it would outlive the tab), never a cookie or a URL (both travel and get logged).

const KEY = "aftersales.console.apiKey";

export function storedKey() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function keepKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}
