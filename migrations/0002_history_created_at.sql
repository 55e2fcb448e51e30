-- History rows carry each entity's creation time, so that the config at any kept revision is
-- reconstructed exactly (route precedence ties depend on it), and an index so that "the newest
-- row of this entity at or below revision n" is a lookup rather than a scan.

ALTER TABLE resource_history ADD COLUMN created_at BIGINT NULL;

CREATE INDEX resource_history_by_entity ON resource_history (kind, name, revision);
