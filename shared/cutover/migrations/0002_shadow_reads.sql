-- Shadow reads of the query service: in shadow-read and influx-primary, a
-- share of the API's requests is answered by the other store too, after the
-- response is sent, and the answers compared. Counts per (phase version,
-- endpoint), flushed in batches; one row per mismatch with its first
-- differing record.
CREATE TABLE cutover.shadow_counts (
    phase          text   NOT NULL,
    phase_version  bigint NOT NULL,
    endpoint       text   NOT NULL,
    comparisons    bigint NOT NULL DEFAULT 0,
    mismatches     bigint NOT NULL DEFAULT 0,
    errors         bigint NOT NULL DEFAULT 0,
    first_at       timestamptz NOT NULL DEFAULT now(),
    last_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (phase_version, endpoint)
);

CREATE TABLE cutover.shadow_mismatches (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    phase          text   NOT NULL,
    phase_version  bigint NOT NULL,
    endpoint       text   NOT NULL,
    params         text   NOT NULL,
    primary_store  text   NOT NULL,
    shadow_store   text   NOT NULL,
    path           text   NOT NULL,
    primary_value  text   NOT NULL,
    shadow_value   text   NOT NULL
);
CREATE INDEX shadow_mismatches_version ON cutover.shadow_mismatches (phase_version, id);
