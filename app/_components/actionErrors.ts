import type { ActionError } from "@/app/actions";
import { fullNavigation } from "./fullNavigation";

/** What the page says when an action got no answer at all (the network, not the server). */
export const UNREACHABLE_MESSAGE = "Couldn't reach the server. Check your connection and try again.";

/** An action's refusal, carried through react-query as an Error. */
export class ActionFailedError extends Error {
  readonly code: ActionError["code"];
  constructor(error: ActionError) {
    super(error.message);
    this.name = "ActionFailedError";
    this.code = error.code;
  }
}

/**
 * The error to throw for a refused action. A session that ended (signed out in another tab, or
 * revoked) sends the person to sign in, and back here afterwards.
 */
export function failed(error: ActionError): ActionFailedError {
  if (error.code === "unauthorized") fullNavigation(`/sign-in?next=${encodeURIComponent(window.location.pathname)}`);
  return new ActionFailedError(error);
}

/** True when the server never answered (so whether it acted is unknown): such a write may be retried. */
export function isUnanswered(err: unknown): boolean {
  return !(err instanceof ActionFailedError);
}

/** Anything thrown on the way (e.g. the network) becomes a public, friendly error. */
export function toActionError(err: unknown): ActionError {
  if (err instanceof ActionFailedError) return { code: err.code, message: err.message };
  return { code: "internal_error", message: UNREACHABLE_MESSAGE };
}
