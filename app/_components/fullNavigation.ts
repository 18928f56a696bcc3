/**
 * A full page load of `path` on this site. Used where a client-side route change is wrong: after
 * signing in, up or out, and when a session has ended, the server must render the next page with
 * the cookie as it now is, and no client state of the previous person may survive.
 */
export function fullNavigation(path: string): void {
  window.location.assign(new URL(path, window.location.origin).href);
}
