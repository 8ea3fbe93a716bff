-- PurgeExpired deletes refresh tokens past their expiry.
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
