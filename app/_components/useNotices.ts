"use client";

import { useCallback, useRef, useState } from "react";
import type { Toast, UndoOffer } from "./Toast";

export type Notice = { key: number; text: string };

/**
 * The page's two notices: one error banner (role=alert) and one toast (role=status). Each new one
 * gets a fresh key, so a repeated message is announced again and a new toast starts its own timer.
 */
export function useNotices() {
  const [alert, setAlert] = useState<Notice | null>(null);
  const [toast, setToast] = useState<Toast | null>(null);
  const keys = useRef(0);

  const nextKey = useCallback(() => ++keys.current, []);
  const showAlert = useCallback((text: string) => setAlert({ key: ++keys.current, text }), []);
  const dismissAlert = useCallback(() => setAlert(null), []);
  const showToast = useCallback(
    (text: string, undo?: Omit<UndoOffer, "restoring">) =>
      setToast({ key: ++keys.current, text, ...(undo ? { undo: { ...undo, restoring: false } } : {}) }),
    [],
  );
  /** Changes the toast with this key, if it is still the one showing. */
  const updateToast = useCallback(
    (key: number, fn: (toast: Toast) => Toast | null) => setToast((t) => (t?.key === key ? fn(t) : t)),
    [],
  );
  const dismissToast = useCallback((key: number) => setToast((t) => (t?.key === key ? null : t)), []);

  return { alert, toast, nextKey, showAlert, dismissAlert, showToast, updateToast, dismissToast };
}
