-- depends: 0009_identity_key_ids
-- Local ids given beside the NHS number that keys a subject (one per trust that reported the
-- person, or more where records were merged): each as a keyed digest of its letters and digits,
-- upper case, with its length, so that intake can refuse an amendment that would publish one
-- in free text without keeping the id itself. `k<version>:<hex>`, keyed under that pseudonym
-- key version. Deleted with the identity.
CREATE TABLE intake.local_ids (
    subject_id text NOT NULL REFERENCES intake.identities (subject_id) ON DELETE CASCADE,
    digest     text NOT NULL,
    length     int NOT NULL,
    PRIMARY KEY (subject_id, digest)
);
