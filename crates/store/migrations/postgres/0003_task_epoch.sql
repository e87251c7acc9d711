-- A fencing token on every lease: each claim of a task moves its epoch on,
-- and every write to a held task names the epoch it was claimed at, so an
-- attempt from an earlier claim (even one by the same node, paused past its
-- lease) changes nothing once the task was claimed again.
ALTER TABLE tasks ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
