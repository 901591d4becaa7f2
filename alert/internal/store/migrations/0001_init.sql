-- Alert state that survives a restart (schema "alert" in the state store).

-- One row per unit: its site, its newest reading time (absence rules measure
-- silence from it), the share rules its latest reading matched and the time
-- of its newest alarm per alarm rule.
CREATE TABLE alert.units (
    unit         text PRIMARY KEY,
    site         text NOT NULL,
    frontier_ms  bigint NOT NULL,
    matches      text[] NOT NULL DEFAULT '{}',
    last_alarms  jsonb NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Pending and firing alerts, one per (rule, key); key is the unit, the site
-- or "fleet". A row is deleted when its alert resolves.
CREATE TABLE alert.alerts (
    rule         text NOT NULL,
    key          text NOT NULL,
    state        text NOT NULL CHECK (state IN ('pending', 'firing')),
    severity     text NOT NULL,
    active_at    timestamptz NOT NULL,
    fired_at     timestamptz,
    last_alarm   timestamptz,
    value        double precision NOT NULL,
    labels       jsonb NOT NULL,
    annotations  jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, key)
);

-- Resolutions Alertmanager has not accepted yet: written in the same
-- transaction that deletes the firing row, deleted once delivered, so a
-- resolve is never lost to a crash or an Alertmanager outage.
CREATE TABLE alert.outbox (
    id           bigserial PRIMARY KEY,
    rule         text NOT NULL,
    key          text NOT NULL,
    alert        jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
