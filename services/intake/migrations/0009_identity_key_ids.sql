-- depends: 0008_purpose_retention
-- Which identity key sealed each row, as a digest of the key (never the key): rows under any
-- other are resealed under the current one, so that after a rotation the old key can go as
-- soon as none remain. NULL: sealed before this was kept.
ALTER TABLE intake.identities ADD COLUMN key_id text;
