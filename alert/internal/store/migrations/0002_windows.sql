-- Each unit's rolling-aggregate windows, so that a restart resumes "SoC
-- falling faster than 20 % in 10 minutes" where it stopped instead of
-- refilling the window from the stream: a compact binary snapshot written
-- by the engine (8 bytes a sample, keyed by rule name; empty when the unit
-- holds no samples). Written at every unit checkpoint and at shutdown; the
-- cheaper frontier-only writes that go with alert changes leave it as it
-- is. NULL: never checkpointed (a unit first written by a frontier-only
-- write).
ALTER TABLE alert.units ADD COLUMN windows bytea;
