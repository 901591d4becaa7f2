-- Cutover state: the phase every consumer follows, with a version for
-- optimistic concurrency. One row.
CREATE TABLE cutover.state (
    id       int PRIMARY KEY CHECK (id = 1),
    phase    text NOT NULL,
    version  bigint NOT NULL,
    since    timestamptz NOT NULL,
    actor    text NOT NULL,
    reason   text NOT NULL DEFAULT ''
);
INSERT INTO cutover.state (id, phase, version, since, actor, reason)
VALUES (1, 'legacy', 1, now(), 'system', 'initial phase');

-- Every phase change, who made it and why.
CREATE TABLE cutover.audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    kind        text NOT NULL,          -- advance, rollback
    from_phase  text NOT NULL,
    to_phase    text NOT NULL,
    version     bigint NOT NULL,        -- version after the change
    reason      text NOT NULL DEFAULT '',
    forced      boolean NOT NULL DEFAULT false,
    gates       jsonb,
    detail      jsonb
);

-- One row per consumer process, refreshed every few seconds.
CREATE TABLE cutover.heartbeats (
    consumer_id    text PRIMARY KEY,
    host           text NOT NULL DEFAULT '',
    phase          text NOT NULL,
    phase_version  bigint NOT NULL,
    lag_messages   bigint NOT NULL DEFAULT 0,
    lag_seconds    double precision NOT NULL DEFAULT 0,
    started_at     timestamptz NOT NULL,
    beat_at        timestamptz NOT NULL
);

-- Readings a repairable sink failed to store: what backfill must repair.
CREATE TABLE cutover.gap_ledger (
    id           bigserial PRIMARY KEY,
    sink         text NOT NULL,         -- influx or legacy
    unit         text NOT NULL,
    from_ts      timestamptz NOT NULL,  -- first missed reading's time
    to_ts        timestamptz NOT NULL,  -- last missed reading's time (inclusive)
    readings     int NOT NULL,
    reason       text NOT NULL,
    consumer_id  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    repaired_at  timestamptz,
    repaired_by  text
);
CREATE INDEX gap_ledger_open ON cutover.gap_ledger (sink, from_ts) WHERE repaired_at IS NULL;

-- Backfill checkpoints: finished (unit, window) pairs of a run.
CREATE TABLE cutover.backfill_runs (
    run_id       text PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    params       jsonb NOT NULL,
    finished_at  timestamptz,
    summary      jsonb
);
CREATE TABLE cutover.backfill_windows (
    run_id        text NOT NULL REFERENCES cutover.backfill_runs (run_id) ON DELETE CASCADE,
    unit          text NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    points        bigint NOT NULL,
    done_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, unit, window_start)
);

-- Verify runs, for the gates and for status.
CREATE TABLE cutover.verify_runs (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL DEFAULT '',
    from_ts     timestamptz NOT NULL,
    to_ts       timestamptz NOT NULL,
    window_s    bigint NOT NULL,
    windows     bigint NOT NULL,
    mismatched  bigint NOT NULL,
    rate        double precision NOT NULL,
    ok          boolean NOT NULL,
    detail      jsonb
);
