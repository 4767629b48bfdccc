-- depends: 0010_local_id_digests
-- The source system that gave each local id, so that an amendment is checked against ids its
-- own source gave only: checked against every source's, a refusal told the caller whether a
-- text it sent held another trust's id for the person, and a few thousand corrections could
-- find it. A source, unlike the organisation a report names, is bound to the caller's API key.
-- NULL where it is not known (kept before this) or where two sources gave the same id: such
-- an id is checked for every source, which tells none of them anything it did not give.
ALTER TABLE intake.local_ids ADD COLUMN source_system text;
