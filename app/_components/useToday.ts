"use client";

import { useSyncExternalStore } from "react";
import { localDate } from "./due";

/** Checks the date this often, so "Today" and "Overdue" move on at midnight. */
const CHECK_MS = 60_000;

function subscribe(onChange: () => void): () => void {
  const timer = setInterval(onChange, CHECK_MS);
  window.addEventListener("focus", onChange);
  return () => {
    clearInterval(timer);
    window.removeEventListener("focus", onChange);
  };
}

/**
 * The browser's local date (`YYYY-MM-DD`); null while rendering on the server and hydrating, whose
 * clock and time zone are not the person's.
 */
export function useToday(): string | null {
  return useSyncExternalStore(
    subscribe,
    () => localDate(new Date()),
    () => null,
  );
}
