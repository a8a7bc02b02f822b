-- Roll back: every subscription and its matches are dropped with their tables.
ALTER TABLE IF EXISTS sessions DROP COLUMN IF EXISTS subscriptions_seq;
DROP TABLE IF EXISTS subscription_matches;
DROP TABLE IF EXISTS match_subscriptions;
