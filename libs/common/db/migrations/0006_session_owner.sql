-- Whose session it is: the API key (its id, a prefix of its SHA-256: never the key) that
-- first uploaded a photo into it over HTTP. Matched events of the session's notify-me
-- subscriptions go to that key's webhook (NOTIFY_WEBHOOKS). NULL: photos published to Kafka
-- directly (their platform reads facepass.photos.matched.v1 itself).
ALTER TABLE sessions ADD COLUMN owner_key_id text;
