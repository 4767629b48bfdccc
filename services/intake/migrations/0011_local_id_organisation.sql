-- depends: 0010_local_id_digests
-- The trust that gave each local id, so that an amendment is checked against its own trust's
-- ids only: checked against every trust's, a refusal told one trust whether a text it sent
-- held another trust's id for the person, and a few thousand corrections could find it.
-- NULL where it is not known (kept before this) or where two trusts gave the same id: such
-- an id is checked for every trust, which tells none of them anything it did not give.
ALTER TABLE intake.local_ids ADD COLUMN organisation text;
