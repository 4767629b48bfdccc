-- depends: 0012_workforce_sex
-- A referral claim stays once made (PoliceReferralRequired went out once), but an amendment
-- can take the incident out of the criteria: it then no longer waits on the liaison, and its
-- footage no longer rests on a referral to come. Claims made before read as still meeting them.
ALTER TABLE reporting.police_referrals ADD COLUMN meets boolean NOT NULL DEFAULT true;
