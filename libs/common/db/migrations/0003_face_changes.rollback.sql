-- Roll back the change numbers: search processes reload huge sessions whole again.
DROP INDEX IF EXISTS erased_photos_session_change_idx;
DROP INDEX IF EXISTS photos_session_change_idx;
ALTER TABLE IF EXISTS erased_photos DROP COLUMN IF EXISTS change_seq;
ALTER TABLE IF EXISTS photos DROP COLUMN IF EXISTS change_seq;
ALTER TABLE IF EXISTS sessions DROP COLUMN IF EXISTS change_seq;
DROP SEQUENCE IF EXISTS face_change_seq;
