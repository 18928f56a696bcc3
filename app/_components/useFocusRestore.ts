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
 * Keeps keyboard focus somewhere sensible as rows come and go: when the row holding focus leaves
 * the list (deleted, cleared, or completed out of the Active view) the row now in its place (or the
 * new-task field) takes focus; a task an Undo brought back takes focus when it appears, unless the
 * person has already moved on to something else.
 */
export function useFocusRestore(tasks: Task[]) {
  const panelRef = useRef<HTMLDivElement>(null);
  const addInputRef = useRef<HTMLInputElement>(null);
  const toastRegionRef = useRef<HTMLDivElement>(null);
  /** The row focus was last in: its task and its place among the rows. */
  const focusedRow = useRef<{ id: number; index: number } | null>(null);
  const afterUndo = useRef<number | null>(null);
  const [undoTick, setUndoTick] = useState(0);

  useEffect(() => {
    const onFocusIn = (event: FocusEvent) => {
      const target = event.target instanceof Element ? event.target : null;
      const row = target?.closest<HTMLElement>("li[data-task-id]");
      if (!row || !panelRef.current?.contains(row)) {
        focusedRow.current = null;
        return;
      }
      const rows = Array.from(panelRef.current.querySelectorAll<HTMLElement>("li[data-task-id]"));
      focusedRow.current = { id: Number(row.dataset.taskId), index: rows.indexOf(row) };
    };
    document.addEventListener("focusin", onFocusIn);
    return () => document.removeEventListener("focusin", onFocusIn);
  }, []);

  useEffect(() => {
    const was = focusedRow.current;
    if (!was || tasks.some((t) => t.id === was.id)) return;
    focusedRow.current = null;
    if (!focusLost()) return;
    const rows = panelRef.current?.querySelectorAll<HTMLElement>("li[data-task-id]") ?? [];
    const row = rows[Math.min(was.index, rows.length - 1)];
    (enabledCheckbox(row) ?? addInputRef.current)?.focus();
  }, [tasks]);

  useEffect(() => {
    const id = afterUndo.current;
    if (id === null) return;
    afterUndo.current = null;
    if (!focusLost() && !toastRegionRef.current?.contains(document.activeElement)) return;
    const control = enabledCheckbox(panelRef.current?.querySelector(`li[data-task-id="${id}"]`));
    // Not in this view (an undo that took it out of it): the view's tab, so focus is not lost.
    (control ?? document.querySelector<HTMLElement>('[role="tab"][aria-selected="true"]'))?.focus();
  }, [tasks, undoTick]);

  /** Call once an undo has put this task (or, for several, the first of them) back in the list data. */
  const focusAfterUndo = useCallback((id: number) => {
    afterUndo.current = id;
    setUndoTick((n) => n + 1);
  }, []);

  return { panelRef, addInputRef, toastRegionRef, focusAfterUndo };
}
