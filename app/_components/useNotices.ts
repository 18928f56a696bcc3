"use client";

import { useCallback, useRef, useState } from "react";
import { changeToast, dropToast, pushToast, type Toast, type Undo } from "./toasts";

export type Notice = { key: number; text: string };

/**
 * The page's notices: one error banner (role=alert) and a stack of toasts (in a polite live
 * region). Each new one gets a fresh key, so a repeated message is announced again and each toast
 * runs its own timer.
 */
export function useNotices() {
  const [alert, setAlert] = useState<Notice | null>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const keys = useRef(0);
  /** The stack as last set, for handlers that must read it outside a render. */
  const current = useRef<Toast[]>([]);

  const apply = useCallback((fn: (stack: Toast[]) => Toast[]) => {
    current.current = fn(current.current);
    setToasts(current.current);
  }, []);

  const nextKey = useCallback(() => ++keys.current, []);
  const showAlert = useCallback((text: string) => setAlert({ key: ++keys.current, text }), []);
  const dismissAlert = useCallback(() => setAlert(null), []);
  /** Adds a toast on top of the stack; returns its key. */
  const showToast = useCallback(
    (text: string, undo?: Undo) => {
      const key = ++keys.current;
      apply((stack) => pushToast(stack, { key, text, ...(undo ? { undo } : {}) }));
      return key;
    },
    [apply],
  );
  /** Changes the toast with this key, if it is still showing (null removes it). */
  const updateToast = useCallback(
    (key: number, fn: (toast: Toast) => Toast | null) => apply((stack) => changeToast(stack, key, fn)),
    [apply],
  );
  const dismissToast = useCallback((key: number) => apply((stack) => dropToast(stack, key)), [apply]);
  const getToasts = useCallback(() => current.current, []);

  return { alert, toasts, nextKey, showAlert, dismissAlert, showToast, updateToast, dismissToast, getToasts };
}
