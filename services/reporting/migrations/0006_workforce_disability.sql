-- depends: 0005_footage
-- Staff in post by disability too, for the WDES gap per 1,000 staff: loads made before say
-- nothing about it.
ALTER TABLE reporting.workforce ADD COLUMN disability text NOT NULL DEFAULT 'not_stated';
ALTER TABLE reporting.workforce DROP CONSTRAINT workforce_pkey;
ALTER TABLE reporting.workforce ADD PRIMARY KEY (period, organisation, site, staff_group, ethnic_group, disability);
