// Two kinds of time, never mixed up. Travel times (departures, arrivals, a service's start) are the
// local time of the place, as booked: shown exactly as the partner sent them, with their UTC offset,
// never converted to the desk's zone (a flight leaving Lisbon at 08:00+01:00 shows 08:00 +01:00
// wherever the agent sits). Times the gateway keeps (deadlines, history, creation) are instants:
// shown in the agent's own zone, labelled with it.

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const LOCAL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

// "20 Mar 2027, 08:00 +01:00" for "2027-03-20T08:00:00+01:00"; a time the API sent without an offset
// cannot happen (the gateway refuses one), so anything else is shown as it came.
export function formatLocal(iso) {
  if (!iso) return "—";
  const found = LOCAL.exec(iso);
  if (!found) return iso;
  const [, year, month, day, hour, minute, offset] = found;
  return `${Number(day)} ${MONTHS[Number(month) - 1]} ${year}, ${hour}:${minute} ${offset === "Z" ? "+00:00" : offset}`;
}

// "20 Mar 2027" for a date ("2027-03-20"): hotel nights have no time and no zone.
export function formatDate(date) {
  const found = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || "");
  return found ? `${Number(found[3])} ${MONTHS[Number(found[2]) - 1]} ${found[1]}` : date || "—";
}

const DESK = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});

// The agent's own zone, as the browser knows it ("Europe/Paris").
export function deskZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

// An instant in the agent's zone, with the zone's name: "20 Mar 2027, 09:05 CET".
export function formatDesk(iso) {
  if (!iso) return "—";
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? iso : DESK.format(at);
}

// A <time> element for an instant, with the full zone in its tooltip.
export function deskTimeAttributes(iso) {
  return { datetime: iso || null, title: iso ? `Your time (${deskZone()})` : null };
}
