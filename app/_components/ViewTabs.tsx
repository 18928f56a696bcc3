"use client";

import { useRef, type KeyboardEvent } from "react";
import type { TaskCounts } from "@/lib/tasks/schema";
import { VIEW_ORDER, VIEWS, viewCount, type View } from "./taskList";

export const tabId = (base: string, view: View) => `${base}-tab-${view}`;

/**
 * The views as a tablist: All, Active, Completed (each with its count, part of its name: "Active
 * 12") and Due. One tab stop; the arrow keys, Home and End move between the tabs and show the
 * view they land on.
 */
export default function ViewTabs({
  idBase,
  panelId,
  view,
  counts,
  onSelect,
}: {
  idBase: string;
  panelId: string;
  view: View;
  counts: TaskCounts;
  onSelect: (view: View) => void;
}) {
  const tabs = useRef(new Map<View, HTMLButtonElement>());

  function handleKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    const at = VIEW_ORDER.indexOf(view);
    let next: number | null = null;
    if (event.key === "ArrowRight") next = (at + 1) % VIEW_ORDER.length;
    else if (event.key === "ArrowLeft") next = (at - 1 + VIEW_ORDER.length) % VIEW_ORDER.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = VIEW_ORDER.length - 1;
    if (next === null) return;
    event.preventDefault();
    const target = VIEW_ORDER[next]!;
    onSelect(target);
    tabs.current.get(target)?.focus();
  }

  return (
    <div className="view-tabs" role="tablist" aria-label="Views" onKeyDown={handleKeyDown}>
      {VIEW_ORDER.map((v) => {
        const selected = v === view;
        const count = viewCount(v, counts);
        return (
          <button
            key={v}
            ref={(el) => {
              if (el) tabs.current.set(v, el);
              else tabs.current.delete(v);
            }}
            id={tabId(idBase, v)}
            type="button"
            role="tab"
            className="view-tab"
            aria-selected={selected}
            aria-controls={panelId}
            tabIndex={selected ? 0 : -1}
            onClick={() => onSelect(v)}
          >
            {/* Inline, with a real space: the name reads "Active 12". */}
            {VIEWS[v].label}
            {count !== null && (
              <>
                {" "}
                <span className="view-tab-count">{count}</span>
              </>
            )}
          </button>
        );
      })}
    </div>
  );
}
