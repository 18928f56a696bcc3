"use client";

import { useMutation } from "@tanstack/react-query";
import { clockTime, requestJson, type CacheAuditReport } from "./labClient";

type AuditRun = { report: CacheAuditReport; at: Date };

const FINDING_TEXT: Record<CacheAuditReport["findings"][number]["kind"], string> = {
  stale: "stale",
  ghost: "ghost",
  missingFromList: "missing from list",
};

/** "Run audit": GET /api/cache/audit compares every cached entry (and the list index) with Postgres. */
export default function AuditPanel() {
  const audit = useMutation({
    mutationFn: async (): Promise<AuditRun> => ({
      report: await requestJson<CacheAuditReport>("/api/cache/audit"),
      at: new Date(),
    }),
  });
  const run = audit.data;

  return (
    <section className="card lab-card" aria-labelledby="lab-audit-title">
      <div className="lab-section-head lab-section-head-row">
        <div>
          <h2 id="lab-audit-title">Audit</h2>
          <p className="lab-hint">Compares every cached entry and the cached list with Postgres.</p>
        </div>
        <button
          type="button"
          className="button button-primary button-small"
          onClick={() => audit.mutate()}
          disabled={audit.isPending}
        >
          {audit.isPending ? "Auditing…" : "Run audit"}
        </button>
      </div>

      <div className="lab-audit" role="status" aria-label="Audit report">
        {audit.isError && <p className="list-error">Couldn&apos;t run the audit: {audit.error.message}</p>}
        {!run && !audit.isError && <p className="lab-subtle">No audit run yet.</p>}
        {run && (
          <>
            <p className={`lab-verdict ${run.report.ok ? "lab-verdict-ok" : "lab-verdict-drift"}`}>
              <span aria-hidden="true">{run.report.ok ? "✓" : "!"}</span>{" "}
              {run.report.ok
                ? "OK: no drift. The cache agrees with Postgres."
                : "Drift: the cache disagrees with Postgres."}
            </p>
            <dl className="lab-audit-figures">
              <div>
                <dt>Checked</dt>
                <dd>{run.report.checked}</dd>
              </div>
              <div>
                <dt>Stale</dt>
                <dd>{run.report.stale}</dd>
              </div>
              <div>
                <dt>Ghosts</dt>
                <dd>{run.report.ghosts}</dd>
              </div>
              <div>
                <dt>Missing from list</dt>
                <dd>{run.report.missingFromList}</dd>
              </div>
            </dl>
            <p className="lab-subtle">
              {`Driver ${run.report.driver}; list index ${run.report.listsChecked > 0 ? "compared" : "not built, so not compared"}. `}
              Run at {clockTime(run.at)}.
            </p>
            {run.report.findings.length > 0 && (
              <table className="lab-table lab-findings">
                <caption>Findings (up to 20)</caption>
                <thead>
                  <tr>
                    <th scope="col">Task</th>
                    <th scope="col">Kind</th>
                    <th scope="col">Cache</th>
                    <th scope="col">Postgres</th>
                  </tr>
                </thead>
                <tbody>
                  {run.report.findings.map((f, i) => (
                    <tr key={`${f.id}-${f.kind}-${i}`}>
                      <th scope="row" className="lab-num">
                        {f.id}
                      </th>
                      <td>{FINDING_TEXT[f.kind]}</td>
                      <td>{f.cached}</td>
                      <td>{f.postgres}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </div>
    </section>
  );
}
