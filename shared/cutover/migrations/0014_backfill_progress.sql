-- A running backfill's latest progress (points and windows done of planned,
-- rate, ETA, throttle state and reason), written every few seconds by the
-- run so that readers of the state store (the console) see it without
-- reaching the backfill process. Numbered 0014 after the console issue, to
-- stay clear of the low numbers other changes take.
ALTER TABLE cutover.backfill_runs ADD COLUMN progress jsonb;
ALTER TABLE cutover.backfill_runs ADD COLUMN progress_at timestamptz;
