-- "Tell me when new photos of me arrive" (issue 16): consented match subscriptions.
-- The ONE place FacePass keeps something derived from a selfie: the fused selfie embedding
-- (never the bytes), with the consent time and an expiry; deleted at expiry, on DELETE of its
-- token, and with its session (ON DELETE CASCADE: erasure and retention remove it at once).
CREATE TABLE match_subscriptions (
    subscription_id text PRIMARY KEY,
    -- the bearer token is shown once; only its SHA-256 is kept
    token_sha256    bytea NOT NULL UNIQUE,
    session_id      text NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    model_id        text NOT NULL,
    embedding       vector({embedding_dimension}) NOT NULL,
    threshold       real NOT NULL,
    consented_at    timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX match_subscriptions_session_idx ON match_subscriptions (session_id);
CREATE INDEX match_subscriptions_expires_idx ON match_subscriptions (expires_at);

-- Every photo matched so far, per subscription: those already in the session when it was made
-- (announced = false: they were in the attendee's search) and the new ones, announced by a
-- `photos.matched` event. Gone with the photo, or with the subscription.
CREATE TABLE subscription_matches (
    subscription_id text NOT NULL
                    REFERENCES match_subscriptions (subscription_id) ON DELETE CASCADE,
    photo_id        text NOT NULL REFERENCES photos (photo_id) ON DELETE CASCADE,
    similarity      real NOT NULL,
    bbox            real[] NOT NULL CHECK (cardinality(bbox) = 4),
    announced       boolean NOT NULL,
    matched_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, photo_id)
);
CREATE INDEX subscription_matches_photo_idx ON subscription_matches (photo_id);

-- Moves (from face_change_seq) whenever a subscription of the session is made or deleted: an
-- embedder keeps each session's subscriptions in memory as of this number.
ALTER TABLE sessions ADD COLUMN subscriptions_seq bigint NOT NULL DEFAULT 0;
