"use client";

/** Shown instead of the list when the first page could not be read (database or cache down). */
export default function LoadErrorPanel({ message }: { message: string }) {
  return (
    <section className="load-error" role="alert" aria-labelledby="load-error-title">
      <h2 id="load-error-title">We can&rsquo;t load your tasks right now</h2>
      <p>
        The task service isn&rsquo;t answering, so nothing can be shown or saved at the moment. Your
        tasks are safe; please try again in a little while.
      </p>
      <p className="load-error-detail">{message}</p>
      {/* A full reload asks the server again. */}
      <button type="button" className="button button-primary" onClick={() => window.location.reload()}>
        Try again
      </button>
    </section>
  );
}
