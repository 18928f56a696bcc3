"use client";

import { useEffect, useState, type RefObject } from "react";
import { undoLabel, type Toast } from "./toasts";

/** How long a toast stays up (its own timer, held while the pointer or focus is on it). */
export const TOAST_MS = 8000;

/**
 * The toast region: a polite live region, always in the page so each new toast is heard, holding
 * a stack of toasts, newest at the bottom. Each toast goes away on its own after TOAST_MS, but never
 * while the pointer or keyboard focus is on it, nor while its Undo is being sent.
 */
export default function ToastRegion({
  toasts,
  regionRef,
  onUndo,
  onDismiss,
}: {
  toasts: readonly Toast[];
  regionRef: RefObject<HTMLDivElement | null>;
  onUndo: (key: number) => void;
  /** Must keep its identity between renders: a new one restarts every timer. */
  onDismiss: (key: number) => void;
}) {
  return (
    <div className="toast-region" role="status" aria-live="polite" aria-relevant="additions text" ref={regionRef}>
      {toasts.map((toast) => (
        <ToastItem key={toast.key} toast={toast} onUndo={onUndo} onDismiss={onDismiss} />
      ))}
    </div>
  );
}

function ToastItem({
  toast,
  onUndo,
  onDismiss,
}: {
  toast: Toast;
  onUndo: (key: number) => void;
  onDismiss: (key: number) => void;
}) {
  const [hovered, setHovered] = useState(false);
  const [focused, setFocused] = useState(false);
  const { key, text, undo, undoing } = toast;
  const held = hovered || focused || undoing === true;
  // A toast whose text changed (an Undo went through) starts its time again.
  useEffect(() => {
    if (held) return;
    const timer = setTimeout(() => onDismiss(key), TOAST_MS);
    return () => clearTimeout(timer);
  }, [key, text, held, onDismiss]);

  return (
    <div
      className="toast"
      data-testid="toast"
      onMouseEnter={() => setHovered(true)}
      onMouseLeave={() => setHovered(false)}
      onFocus={() => setFocused(true)}
      onBlur={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget)) setFocused(false);
      }}
    >
      <span className="toast-text">{text}</span>
      {undo && (
        <button
          type="button"
          className="toast-action"
          aria-label={undoLabel(undo)}
          aria-disabled={undoing || undefined}
          onClick={() => onUndo(key)}
        >
          Undo
        </button>
      )}
      <button type="button" className="toast-close" aria-label={`Dismiss notification: ${text}`} onClick={() => onDismiss(key)}>
        ×
      </button>
    </div>
  );
}
