-- Roll back: new face rows move their small columns out of line again (PostgreSQL's default).
ALTER TABLE IF EXISTS face_embeddings RESET (toast_tuple_target);
