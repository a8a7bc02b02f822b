-- Roll back FacePass schema v2. Drops every v2 table and the data in it: back up first.
DROP TABLE IF EXISTS erased_photos;
DROP TABLE IF EXISTS erased_sessions;
DROP TABLE IF EXISTS face_embeddings;
DROP TABLE IF EXISTS photos;
DROP TABLE IF EXISTS sessions;
