-- Keep a face's small columns in its row. The row (~2.2 kB: the PLAIN 2 kB vector, ids, box) is
-- over PostgreSQL's 2 kB toast threshold, so by default photo_id, session_id, bbox and model_id
-- were moved out of line: 4 TOAST rows per face, +396 B on disk, and two TOAST lookups per face
-- when a search process loads a huge session (docs/operations.md, "What one PostgreSQL holds").
-- With the target at its maximum nothing needs moving: 2,823 B a face. Rows written from now on.
ALTER TABLE face_embeddings SET (toast_tuple_target = 8160);
