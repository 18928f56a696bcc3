"use client";

import type { Notice } from "./useNotices";

/** The page's error banner: the latest refusal, until dismissed or replaced. */
export default function AlertBanner({ notice, onDismiss }: { notice: Notice | null; onDismiss: () => void }) {
  if (!notice) return null;
  return (
    <div className="banner banner-error" role="alert" key={notice.key}>
      <p>{notice.text}</p>
      <button type="button" className="button button-ghost button-small" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}
