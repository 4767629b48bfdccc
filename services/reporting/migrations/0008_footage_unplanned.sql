-- depends: 0007_riddor_reported
-- A deletion that was not planned (in error, lost, or by a camera system on its own) is
-- recorded too, whatever the footage was then, and marked as such.
ALTER TABLE reporting.footage_deletions ADD COLUMN unplanned boolean NOT NULL DEFAULT false;
