-- The event log. The first seven columns are the ones sqlite-es writes; the others are ours
-- and defaulted, so sqlite-es never has to know about them.
CREATE TABLE events
(
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    sequence        INTEGER NOT NULL CHECK (sequence >= 0),
    event_type      TEXT    NOT NULL,
    event_version   TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    -- Assigned by the trigger below; a stored column (not the rowid) so VACUUM never
    -- renumbers it. SQLite has one writer, so MAX + 1 is monotonic in commit order.
    global_position INTEGER,
    recorded_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- The primary key (not a unique index) is what makes sqlite-es report a conflicting
    -- append as an optimistic-lock conflict (SQLITE_CONSTRAINT_PRIMARYKEY, 1555).
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE UNIQUE INDEX events_by_global_position ON events (global_position);

CREATE TRIGGER events_assign_global_position
    AFTER INSERT ON events
BEGIN
    UPDATE events
       SET global_position = (SELECT COALESCE(MAX(global_position), 0) + 1 FROM events)
     WHERE rowid = NEW.rowid;
END;

-- Append-only: the only update ever allowed is the assignment of the position above.
CREATE TRIGGER events_refuse_update
    BEFORE UPDATE ON events
    WHEN OLD.global_position IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE refused');
END;

CREATE TRIGGER events_refuse_delete
    BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE refused');
END;

-- Used by sqlite-es when an aggregate is configured with snapshots.
CREATE TABLE snapshots
(
    aggregate_type   TEXT    NOT NULL,
    aggregate_id     TEXT    NOT NULL,
    last_sequence    INTEGER NOT NULL CHECK (last_sequence >= 0),
    current_snapshot INTEGER NOT NULL CHECK (current_snapshot >= 0),
    payload          TEXT    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

-- How far each projection (and reactor) has read the log. SQLite has one writer, so the
-- position alone orders the log; transaction_id stays 0.
CREATE TABLE projection_checkpoints
(
    projection      TEXT    NOT NULL PRIMARY KEY,
    transaction_id  INTEGER NOT NULL DEFAULT 0,
    global_position INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
