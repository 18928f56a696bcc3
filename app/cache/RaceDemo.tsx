"use client";

import { useMutation } from "@tanstack/react-query";
import { useId } from "react";
import { clockTime, sendJson, type RaceDemoResult, type RaceRound } from "./labClient";

type RaceRun = { result: RaceDemoResult; at: Date };

/**
 * "Run the race demo": POST /api/cache/race runs the reference design's defect live, on a scratch
 * task nobody sees, through a naive cache write and through ours, and shows how many rounds ended
 * with the cache disagreeing with Postgres.
 */
export default function RaceDemo({ disabled }: { disabled: boolean }) {
  const race = useMutation({
    mutationFn: async (): Promise<RaceRun> => ({ result: await sendJson<RaceDemoResult>("/api/cache/race", "POST"), at: new Date() }),
  });
  const run = race.data;
  const roundsId = useId();

  return (
    <section className="card lab-card" aria-labelledby="lab-race-title">
      <div className="lab-section-head lab-section-head-row lab-race-head">
        <div>
          <h2 id="lab-race-title">Race demo: why every cache write compares versions</h2>
          <p className="lab-hint lab-race-lede">
            Sixteen renames of one task at once, ten rounds. Each rename writes Postgres, pauses 0–8 ms (as a busy
            server does, anywhere), then writes the cache. <strong>Naive</strong>: set the cache to what it wrote.{" "}
            <strong>Ours</strong>: the compare-and-set on the version Postgres returned, which every cache write of this
            app uses. After each round the cache is compared with Postgres. The tasks renamed are scratch rows that never
            show in your lists, removed when the demo ends.
          </p>
        </div>
        <button
          type="button"
          className="button button-primary button-small"
          onClick={() => race.mutate()}
          disabled={race.isPending || disabled}
        >
          {race.isPending ? "Racing…" : "Run the race demo"}
        </button>
      </div>

      <div className="lab-race" role="status" aria-label="Race demo result" aria-busy={race.isPending || undefined}>
        {race.isError && <p className="list-error">Couldn&apos;t run the race demo: {race.error.message}</p>}
        {!run && !race.isError && (
          <p className="lab-subtle">{race.isPending ? "Racing: 320 renames in Postgres and the cache…" : "Not run yet."}</p>
        )}
        {run && <RaceResult run={run} roundsId={roundsId} />}
      </div>
    </section>
  );
}

function RaceResult({ run, roundsId }: { run: RaceRun; roundsId: string }) {
  const { result } = run;
  const naive = result.naive.mismatchedRounds;
  const ours = result.ours.mismatchedRounds;
  return (
    <>
      <dl className="lab-race-figures">
        <div className={`lab-race-figure ${naive > 0 ? "lab-race-bad" : "lab-race-good"}`}>
          <dt>Naive: write Postgres, then set the cache</dt>
          <dd>
            <strong className="lab-race-count">{naive}</strong> of {result.rounds} rounds ended with the cache ≠ Postgres
          </dd>
        </div>
        <div className={`lab-race-figure ${ours > 0 ? "lab-race-bad" : "lab-race-good"}`}>
          <dt>Ours: write Postgres, then compare-and-set the version</dt>
          <dd>
            <strong className="lab-race-count">{ours}</strong> of {result.rounds} rounds ended with the cache ≠ Postgres
          </dd>
        </div>
      </dl>
      <p className="lab-race-verdict">
        {naive > 0
          ? `The naive cache was left holding an older version in ${naive === 1 ? "1 round" : `${naive} rounds`}: a late write landed after a newer one and overwrote it. `
          : "The naive cache happened to end right this time: the last write to land was the last commit in every round. Run it again. "}
        {ours === 0
          ? `Ours matched Postgres in every round: it refused ${result.ours.refusedWrites} late writes that carried an older version.`
          : "Ours disagreed with Postgres: that is a bug, please report it."}
      </p>
      <details className="lab-race-rounds">
        <summary>Round by round</summary>
        <div className="lab-table-wrap" role="region" aria-labelledby={roundsId} tabIndex={0}>
          <table className="lab-table lab-race-table">
            <caption id={roundsId}>
              What each round ended with ({result.writers} renames, pauses of 0–{result.maxDelayMs} ms, {result.durationMs} ms in
              all, run at {clockTime(run.at)})
            </caption>
            <thead>
              <tr>
                <th scope="col">Round</th>
                <th scope="col">Postgres</th>
                <th scope="col">Naive cache</th>
                <th scope="col">Our cache</th>
              </tr>
            </thead>
            <tbody>
              {result.naive.rounds.map((round, i) => (
                <tr key={round.round}>
                  <th scope="row" className="lab-num">
                    {round.round}
                  </th>
                  <td className="lab-num">v{round.postgres.version}</td>
                  <td className="lab-num">
                    <CacheCell round={round} />
                  </td>
                  <td className="lab-num">
                    <CacheCell round={result.ours.rounds[i]} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <p className="lab-subtle">
          Each path renames a scratch task of its own, so both reach the same version in Postgres each round; ours runs
          right after the naive one, with the same pauses.
        </p>
      </details>
    </>
  );
}

function CacheCell({ round }: { round: RaceRound | undefined }) {
  if (!round) return <>—</>;
  if (!round.cache) return <span className="lab-race-stale">empty, stale</span>;
  return round.match ? (
    <span className="lab-race-same">v{round.cache.version}, same</span>
  ) : (
    <span className="lab-race-stale">v{round.cache.version}, stale</span>
  );
}
