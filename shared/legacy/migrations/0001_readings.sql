-- The legacy store: one row per reading, identified by (unit, ts).
-- record holds the normalised record (TELEMETRY_XML.md) as JSON.
CREATE TABLE legacy.readings (
    unit       text        NOT NULL,
    ts         timestamptz NOT NULL,
    site       text,
    record     jsonb       NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit, ts)
);

-- Counts and Total scan by time across all units. Readings arrive roughly in
-- time order, so a BRIN index is small and nearly free to maintain on the
-- write path, unlike a second B-tree.
CREATE INDEX readings_ts_brin ON legacy.readings USING brin (ts);
