-- depends: 0009_identity_key_ids
-- A subject keyed by NHS number whose reports also gave a local id: a keyed digest of that id
-- (letters and digits, upper case) and its length, so that intake can refuse an amendment
-- that would publish it in free text without keeping the id itself. `k<version>:<hex>`, keyed
-- under that pseudonym key version; NULL where none was given (or shorter than 6).
ALTER TABLE intake.identities ADD COLUMN local_digest text, ADD COLUMN local_length int;
