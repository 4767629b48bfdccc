-- depends: 0011_footage_retractions
-- Staff in post by sex too, for staff affected per 1,000 by sex: sexual safety's prevalence
-- is read against women and men in post. Loads made before say nothing about it.
ALTER TABLE reporting.workforce ADD COLUMN sex text NOT NULL DEFAULT 'not_stated';
ALTER TABLE reporting.workforce DROP CONSTRAINT workforce_pkey;
ALTER TABLE reporting.workforce ADD PRIMARY KEY (period, organisation, site, staff_group, ethnic_group, disability, sex);
