-- Roll back renditions: the photos forget their thumbnail and preview keys (the S3 objects
-- stay until the photo or its session is erased).
ALTER TABLE IF EXISTS photos
    DROP COLUMN IF EXISTS thumbnail_key,
    DROP COLUMN IF EXISTS preview_key,
    DROP COLUMN IF EXISTS width,
    DROP COLUMN IF EXISTS height,
    DROP COLUMN IF EXISTS object_bucket;
