-- A photo's thumbnail and preview (made by the embedder beside its faces, in the photo's S3
-- prefix) and the upright size of the photo, which scales a face's box onto them. NULL: the
-- photo was indexed before renditions existed (`facepass renditions backfill` makes them).
ALTER TABLE photos
    ADD COLUMN IF NOT EXISTS thumbnail_key text,
    ADD COLUMN IF NOT EXISTS preview_key   text,
    ADD COLUMN IF NOT EXISTS width         integer CHECK (width > 0),
    ADD COLUMN IF NOT EXISTS height        integer CHECK (height > 0),
    -- the bucket of the original when it is not S3_BUCKET (an upstream system's own)
    ADD COLUMN IF NOT EXISTS object_bucket text;
