-- depends: 0004_warning_lapse
-- Where the policy asks for two people, a proposed ban records each yes as it is given, so
-- the worklist can say whose it still awaits.
ALTER TABLE sanctions.cards ADD COLUMN approved_by text, ADD COLUMN agreed_by text;
