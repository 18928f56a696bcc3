"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import type { Task } from "@/lib/tasks/schema";

/** Whether keyboard focus has nowhere meaningful to be (its element left the page). */
function focusLost(): boolean {
  const active = document.activeElement;
  return !active || active === document.body || !document.contains(active);
}

function enabledCheckbox(scope: Element | null | undefined): HTMLElement | null {
  return scope?.querySelector<HTMLElement>('input[type="checkbox"]:not(:disabled)') ?? null;
}

/**
 * Keeps keyboard focus somewhere sensible as rows come and go: when a deleted row leaves the list
 * its neighbour (or the new-task field) takes focus, and a restored task takes focus when it
 * appears, unless the person has already moved on to something else.
 */
export function useFocusRestore(tasks: Task[]) {
  const listRef = useRef<HTMLUListElement>(null);
  const addInputRef = useRef<HTMLInputElement>(null);
  const toastRegionRef = useRef<HTMLDivElement>(null);
  const afterDelete = useRef<{ id: number; index: number } | null>(null);
  const afterRestore = useRef<number | null>(null);
  const [restoredTick, setRestoredTick] = useState(0);

  useEffect(() => {
    const target = afterDelete.current;
    if (!target || tasks.some((t) => t.id === target.id)) return;
    afterDelete.current = null;
    if (!focusLost()) return;
    const rows = listRef.current?.querySelectorAll<HTMLElement>(":scope > li") ?? [];
    const row = rows[Math.min(target.index, rows.length - 1)];
    (enabledCheckbox(row) ?? addInputRef.current)?.focus();
  }, [tasks]);

  useEffect(() => {
    const id = afterRestore.current;
    if (id === null) return;
    const control = enabledCheckbox(listRef.current?.querySelector(`li[data-task-id="${id}"]`));
    if (!control) return; // not rendered yet
    afterRestore.current = null;
    if (focusLost() || toastRegionRef.current?.contains(document.activeElement)) control.focus();
  }, [tasks, restoredTick]);

  /** Call as the row with this task starts to leave (its index among the rows shown). */
  const focusAfterDelete = useCallback((id: number, index: number) => {
    afterDelete.current = { id, index };
  }, []);
  /** Call once the restored task is in the list data. */
  const focusAfterRestore = useCallback((id: number) => {
    afterRestore.current = id;
    setRestoredTick((n) => n + 1);
  }, []);

  return { listRef, addInputRef, toastRegionRef, focusAfterDelete, focusAfterRestore };
}
