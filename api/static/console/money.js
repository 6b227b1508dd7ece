// Money as the API writes it: a decimal string with exactly the currency's minor units
// ("600.00" EUR, "1200" JPY, "1.250" KWD). Arithmetic is on whole minor units with BigInt:
// never a float, so 0.10 stays 0.10.

export const DECIMAL = /^[0-9]+(\.[0-9]+)?$/;

// The currency's minor units, read from an amount the API gave (it always carries all of them).
export function minorUnitsOf(amount) {
  const dot = amount.indexOf(".");
  return dot === -1 ? 0 : amount.length - dot - 1;
}

// "600.00" with 2 minor units → 60000n; null when the text is not an amount with at most `units` decimals.
export function toMinor(text, units) {
  const amount = text.trim();
  if (!DECIMAL.test(amount)) return null;
  const [whole, fraction = ""] = amount.split(".");
  if (fraction.length > units) return null;
  return BigInt(whole + fraction.padEnd(units, "0"));
}

// 60000n with 2 minor units → "600.00"; -10000n → "-100.00".
export function fromMinor(minor, units) {
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString().padStart(units + 1, "0");
  const whole = units ? digits.slice(0, -units) : digits;
  const fraction = units ? "." + digits.slice(-units) : "";
  return (negative ? "-" : "") + whole + fraction;
}

export function formatMoney(money) {
  return money ? `${money.amount} ${money.currency}` : "—";
}

// What an agent's penalty leaves to refund: paid − penalty, in the paid amount's minor units.
// {penalty, refund} as API amounts, or {error} saying what is wrong with the typed penalty.
export function refundFor(paid, penaltyText) {
  const units = minorUnitsOf(paid.amount);
  if (!penaltyText.trim()) return { error: "Enter the penalty." };
  const penalty = toMinor(penaltyText, units);
  if (penalty === null) {
    const example = fromMinor(12345n * 10n ** BigInt(units) / 100n, units);
    return { error: `Enter an amount like ${example}, with at most ${units} decimal${units === 1 ? "" : "s"} for ${paid.currency}.` };
  }
  const refund = toMinor(paid.amount, units) - penalty;
  return { penalty: fromMinor(penalty, units), refund: fromMinor(refund, units), negative: refund < 0n };
}
