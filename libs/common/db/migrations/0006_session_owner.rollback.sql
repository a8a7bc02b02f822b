-- Roll back: sessions forget which key uploaded them (webhooks then find no owner).
ALTER TABLE IF EXISTS sessions DROP COLUMN IF EXISTS owner_key_id;
