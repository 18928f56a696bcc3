import { isDueDate } from "@/lib/tasks/rules";

/*
 * Due dates on the page. A due date is a calendar date (`YYYY-MM-DD`) with no time zone; "today"
 * is the browser's own local date, so "Overdue" and "Today" mean what the person's calendar says.
 * Pure: the caller passes today in.
 */

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The bounds a date field offers (the schema's: years 2000 to 2100). */
export const DUE_MIN = "2000-01-01";
export const DUE_MAX = "2100-12-31";

/** The local calendar date of `now` as `YYYY-MM-DD`. */
export function localDate(now: Date): string {
  const y = now.getFullYear();
  const m = String(now.getMonth() + 1).padStart(2, "0");
  const d = String(now.getDate()).padStart(2, "0");
  return `${y}-${m}-${d}`;
}

/** `YYYY-MM-DD` `days` after (or before) another one. */
export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/**
 * A due date the same way in every locale: "3 Dec", with the year when it is not this year's
 * ("3 Dec 2027"), or when this year is not known yet (the server's render, before the browser's clock).
 */
export function formatDue(dueOn: string, today: string | null): string {
  const [y, m, d] = dueOn.split("-").map(Number) as [number, number, number];
  const short = `${d} ${MONTHS[m - 1]}`;
  return today !== null && today.slice(0, 4) === dueOn.slice(0, 4) ? short : `${short} ${y}`;
}

export type DueState = "overdue" | "today" | "upcoming";

/** Where a due date stands against today; null for a task that is done or has no date (or before today is known). */
export function dueState(dueOn: string | null, done: boolean, today: string | null): DueState | null {
  if (dueOn === null || done || today === null) return null;
  // YYYY-MM-DD strings compare as dates do.
  if (dueOn < today) return "overdue";
  return dueOn === today ? "today" : "upcoming";
}

export type DueCheck = { ok: true; dueOn: string | null } | { ok: false; message: string };

/**
 * A date field's value as the schema takes it: "" is no date; an unfinished date (the field's
 * `badInput`) or one out of range gets a message instead of being sent.
 */
export function checkDue(value: string, badInput = false): DueCheck {
  if (badInput) return { ok: false, message: "Enter a whole date, or clear the field." };
  if (value === "") return { ok: true, dueOn: null };
  if (isDueDate(value)) return { ok: true, dueOn: value };
  return { ok: false, message: "Due dates run from 1 Jan 2000 to 31 Dec 2100." };
}
