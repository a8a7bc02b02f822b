-- Incremental in-memory sessions: every change of a session's faces (a photo indexed, failed
-- or erased) takes a number from one sequence, stored on the session and on the photo (or its
-- erasure tombstone). The writes of one session serialize on its row (touch_session), so
-- within a session the numbers follow commit order: a search process that holds a session's
-- faces as of number N reads the photos changed after N, in one snapshot with the session's
-- number, and is then exactly as new as the session (services/search_api/matrices.py).
CREATE SEQUENCE IF NOT EXISTS face_change_seq;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS change_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE photos ADD COLUMN IF NOT EXISTS change_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE erased_photos ADD COLUMN IF NOT EXISTS change_seq bigint NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS photos_session_change_idx ON photos (session_id, change_seq);
CREATE INDEX IF NOT EXISTS erased_photos_session_change_idx
    ON erased_photos (session_id, change_seq);
