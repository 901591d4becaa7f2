-- Each unit's rolling-aggregate windows, so that a restart resumes "SoC
-- falling faster than 20 % in 10 minutes" where it stopped instead of
-- refilling the window from the stream. A compact binary snapshot written
-- by the engine (8 bytes a sample, keyed by rule name); empty when the
-- unit holds no samples. Written with the unit's frontier, in the same
-- transaction.
ALTER TABLE alert.units ADD COLUMN windows bytea NOT NULL DEFAULT '';
