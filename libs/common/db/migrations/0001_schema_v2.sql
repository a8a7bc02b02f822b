-- FacePass schema v2: sessions, photos, face embeddings, erasure tombstones.
-- The vector column takes its dimension from EMBEDDING_DIMENSION when the file is rendered.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE sessions (
    session_id  text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- moves on every index or erasure in the session: search caches key on it
    changed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- optional retention: a periodic job erases sessions past this instant
    expires_at  timestamptz
);

CREATE TABLE photos (
    photo_id        text PRIMARY KEY,
    session_id      text NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'indexed', 'failed')),
    object_key      text NOT NULL,
    content_sha256  text,
    faces_count     integer NOT NULL DEFAULT 0,
    faces_rejected  jsonb NOT NULL DEFAULT '[]'::jsonb,
    model_id        text,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    indexed_at      timestamptz
);
CREATE INDEX photos_session_id_idx ON photos (session_id);

CREATE TABLE face_embeddings (
    photo_id    text NOT NULL REFERENCES photos (photo_id) ON DELETE CASCADE,
    face_index  smallint NOT NULL CHECK (face_index >= 0),
    session_id  text NOT NULL,
    bbox        real[] NOT NULL CHECK (cardinality(bbox) = 4),
    det_score   real NOT NULL,
    embedding   vector({embedding_dimension}) NOT NULL,
    model_id    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (photo_id, face_index)
);
-- Keep vectors in the row (a 512-d vector is ~2 kB, just over the TOAST threshold): an exact
-- scan of a session then reads heap pages, not one TOAST lookup per face.
ALTER TABLE face_embeddings ALTER COLUMN embedding SET STORAGE PLAIN;
-- Searches are per session and per model pack: an exact scan of one session's rows.
CREATE INDEX face_embeddings_session_model_idx ON face_embeddings (session_id, model_id);

-- Tombstones for erased sessions and photos, checked in the same transaction as every insert:
-- an uploaded event older than the erasure (a replay) cannot bring the faces back, while a photo
-- uploaded again after the erasure is indexed.
CREATE TABLE erased_sessions (
    session_id  text PRIMARY KEY,
    erased_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE erased_photos (
    photo_id    text PRIMARY KEY,
    session_id  text NOT NULL,
    erased_at   timestamptz NOT NULL DEFAULT now()
);
