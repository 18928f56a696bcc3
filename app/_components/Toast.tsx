"use client";

import { useEffect, useState, type RefObject } from "react";

/**
 * A delete the person can take back. The server keeps a deleted task 30 days, so Undo restores it:
 * the same id, in its own place, under one idempotency key for every try.
 */
export type UndoOffer = { id: number; title: string; done: boolean; idempotencyKey: string; restoring: boolean };
export type Toast = { key: number; text: string; undo?: UndoOffer };

/** How long a toast stays up, and how long one offering Undo stays up. */
const TOAST_MS = 5000;
const UNDO_MS = 6000;

/**
 * The toast region (a polite live region, always in the page so announcements are heard). The
 * toast goes away on its own, but never while the pointer or keyboard focus is on it, nor while a
 * restore is running; an offer to undo stays a little longer than a plain message.
 */
export default function ToastRegion({
  toast,
  regionRef,
  onUndo,
  onDismiss,
}: {
  toast: Toast | null;
  regionRef: RefObject<HTMLDivElement | null>;
  onUndo: (key: number) => void;
  /** Must keep its identity between renders: a new one restarts the timer. */
  onDismiss: (key: number) => void;
}) {
  // Held by the key of the toast being held, so a new toast is never born held.
  const [hovered, setHovered] = useState<number | null>(null);
  const [focused, setFocused] = useState<number | null>(null);
  const key = toast?.key;
  const held = key !== undefined && (hovered === key || focused === key);
  const ms = toast?.undo ? (toast.undo.restoring ? null : UNDO_MS) : TOAST_MS;
  useEffect(() => {
    if (key === undefined || ms === null || held) return;
    const timer = setTimeout(() => onDismiss(key), ms);
    return () => clearTimeout(timer);
  }, [key, ms, held, onDismiss]);

  return (
    <div className="toast-region" role="status" aria-live="polite" ref={regionRef}>
      {toast && (
        <div
          className="toast"
          key={toast.key}
          onMouseEnter={() => setHovered(toast.key)}
          onMouseLeave={() => setHovered(null)}
          onFocus={() => setFocused(toast.key)}
          onBlur={(e) => {
            if (!e.currentTarget.contains(e.relatedTarget)) setFocused(null);
          }}
        >
          <span>{toast.text}</span>
          {toast.undo && (
            <button
              type="button"
              className="toast-action"
              aria-label={`Undo delete of “${toast.undo.title}”`}
              aria-disabled={toast.undo.restoring || undefined}
              onClick={() => onUndo(toast.key)}
            >
              Undo
            </button>
          )}
          <button
            type="button"
            className="toast-close"
            aria-label="Dismiss notification"
            onClick={() => onDismiss(toast.key)}
          >
            ×
          </button>
        </div>
      )}
    </div>
  );
}
