"use client";

import { useEffect, useId, useState, type FocusEvent, type KeyboardEvent, type ReactNode, type RefObject } from "react";
import { TITLE_INPUT_MAX_LENGTH, titleCounter, titleError, type TitleKind } from "./title";

/** How long typing must pause before a screen reader hears the count (not at every keystroke). */
const COUNT_ANNOUNCE_DELAY_MS = 800;

type Props = {
  /** Which schema checks it: a new task's title, or a rename. */
  kind: TitleKind;
  value: string;
  onValueChange: (value: string) => void;
  /** The message shown beside the field (role=alert), or null. */
  error: string | null;
  onErrorChange: (error: string | null) => void;
  inputRef: RefObject<HTMLInputElement | null>;
  id?: string;
  name?: string;
  /** The accessible name, when no <label> names the field. */
  label?: string;
  placeholder?: string;
  /** The smaller field of the inline editor. */
  inline?: boolean;
  /** Another element describing the field (a hint), read after the error. */
  describedBy?: string;
  onKeyDown?: (event: KeyboardEvent<HTMLInputElement>) => void;
  onBlur?: (event: FocusEvent<HTMLInputElement>) => void;
  /** Rendered right after the input: the add form's button, the editor's hint. */
  children?: ReactNode;
  /** Puts the input and `children` in a row of this class, with the error below the row. */
  rowClassName?: string;
};

/**
 * The one title field, for the add form and the inline editor: the same maxlength, the same
 * messages (the shared schema's), and once an error shows it follows what is typed. Near the
 * limit a counter shows ("420 / 500"); a screen reader is told the count politely, once typing
 * pauses, and nothing at all while the title is far from the limit.
 */
export default function TitleField({
  kind,
  value,
  onValueChange,
  error,
  onErrorChange,
  inputRef,
  id,
  name,
  label,
  placeholder,
  inline = false,
  describedBy,
  onKeyDown,
  onBlur,
  children,
  rowClassName,
}: Props) {
  const errorId = useId();
  const counter = titleCounter(value);
  const announced = useAnnouncement(counter.announcement);
  const describedByIds = [error !== null ? errorId : null, describedBy].filter(Boolean).join(" ");

  const input = (
    <input
      ref={inputRef}
      id={id}
      name={name}
      type="text"
      className={inline ? "text-input text-input-inline" : "text-input"}
      aria-label={label}
      placeholder={placeholder}
      autoComplete="off"
      maxLength={TITLE_INPUT_MAX_LENGTH}
      value={value}
      onChange={(e) => {
        onValueChange(e.target.value);
        if (error !== null) onErrorChange(titleError(e.target.value, kind));
      }}
      onKeyDown={onKeyDown}
      onBlur={onBlur}
      aria-invalid={error !== null || undefined}
      aria-describedby={describedByIds || undefined}
    />
  );

  return (
    <>
      {rowClassName ? (
        <div className={rowClassName}>
          {input}
          {children}
        </div>
      ) : (
        <>
          {input}
          {children}
        </>
      )}
      {(error !== null || counter.text !== null) && (
        <div className="field-meta">
          {error !== null && (
            <p id={errorId} className="field-error" role="alert">
              {error}
            </p>
          )}
          {counter.text !== null && (
            // Seen, not read: the live region below says it in words.
            <p className={counter.over ? "title-counter title-counter-over" : "title-counter"} aria-hidden="true">
              {counter.text}
            </p>
          )}
        </div>
      )}
      <p className="visually-hidden" aria-live="polite" aria-atomic="true">
        {announced}
      </p>
    </>
  );
}

/** `text` once it has stayed the same for COUNT_ANNOUNCE_DELAY_MS; "" while it is null. */
function useAnnouncement(text: string | null): string {
  const [settled, setSettled] = useState("");
  useEffect(() => {
    const timer = setTimeout(() => setSettled(text ?? ""), text === null ? 0 : COUNT_ANNOUNCE_DELAY_MS);
    return () => clearTimeout(timer);
  }, [text]);
  return text === null ? "" : settled;
}
