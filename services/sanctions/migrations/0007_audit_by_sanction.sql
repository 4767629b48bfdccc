-- depends: 0006_reason_retention
-- A reviewer's retried decision is recognised by the audit row of the one already taken.
CREATE INDEX audit_sanction_idx ON sanctions.audit (sanction_id, actor, action);
