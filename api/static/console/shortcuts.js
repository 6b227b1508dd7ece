// Keyboard shortcuts, listed on the page: "/" focuses the search, "j" and "k" move to the next and
// previous flow of the list the agent is in (the search results first, else the queue awaiting a
// quote), Enter opens it (the flow's code is a button). Ignored while the agent types in a field.

const LISTS = ["search-results", "awaiting-quote", "awaiting-partner", "other-flows"];

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function visible(table) {
  return table && !table.hidden && table.closest("[hidden]") === null;
}

// The code buttons of the list holding the focus, else of the first list on screen.
function currentList() {
  const here = document.activeElement?.closest?.("table");
  const table = here && LISTS.includes(here.id) ? here : LISTS.map((id) => document.getElementById(id)).find(visible);
  return table ? [...table.querySelectorAll("tbody tr[data-code] th button.code")] : [];
}

export function listenForShortcuts({ focusSearch }) {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === "/") {
      event.preventDefault();
      focusSearch();
      return;
    }
    if (event.key !== "j" && event.key !== "k") return;
    const buttons = currentList();
    if (!buttons.length) return;
    event.preventDefault();
    const at = buttons.indexOf(document.activeElement);
    const next = at === -1 ? 0 : Math.min(buttons.length - 1, Math.max(0, at + (event.key === "j" ? 1 : -1)));
    buttons[next].focus();
    buttons[next].closest("tr").scrollIntoView({ block: "nearest" });
  });
}
