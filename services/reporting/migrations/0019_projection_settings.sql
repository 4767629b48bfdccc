-- depends: 0018_reason_retention
-- The settings the live projection is built under, recorded by reporting at each start, so
-- that `vanda reporting rebuild`, run from an operator's shell, replays under the same ones
-- or refuses: under other police criteria a promotion would prompt the police for
-- incidents the trust no longer refers, and under another consumer group its checks that
-- reporting is stopped would ask about a group nobody consumes in.
CREATE TABLE reporting.projection_settings (
    name text PRIMARY KEY,
    value text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
