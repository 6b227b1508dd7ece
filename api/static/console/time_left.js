// How long until a deadline, as an agent reads it at a glance; overdue ones say so in words.

const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function span(ms) {
  if (ms >= DAY) {
    const days = Math.floor(ms / DAY);
    return `${days} d ${Math.floor((ms % DAY) / HOUR)} h`;
  }
  if (ms >= HOUR) {
    return `${Math.floor(ms / HOUR)} h ${String(Math.floor((ms % HOUR) / MINUTE)).padStart(2, "0")} min`;
  }
  const minutes = Math.floor(ms / MINUTE);
  const seconds = String(Math.floor((ms % MINUTE) / 1000)).padStart(2, "0");
  return minutes ? `${minutes} min ${seconds} s` : `${Math.floor(ms / 1000)} s`;
}

// {text, overdue, urgent} for a deadline (ISO string) seen at `now` (ms since the epoch).
export function timeLeft(deadline, now) {
  if (!deadline) return { text: "not set yet", overdue: false, urgent: false };
  const ms = Date.parse(deadline) - now;
  if (ms <= 0) return { text: `overdue by ${span(-ms)}`, overdue: true, urgent: true };
  return { text: span(ms), overdue: false, urgent: ms < HOUR };
}

// "in 3 d 4 h" or "started 2 h 05 min ago": how far a product's start is, which the penalty depends on.
export function startsIn(iso, now) {
  const ms = Date.parse(iso) - now;
  return ms > 0 ? `in ${span(ms)}` : `started ${span(-ms)} ago`;
}
