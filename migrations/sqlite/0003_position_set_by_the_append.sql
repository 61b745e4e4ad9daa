-- The command bus now sets global_position in the INSERT itself (so the append can return
-- it); the trigger assigns one only to rows inserted without (e.g. by sqlite-es when an
-- aggregate uses snapshots).
DROP TRIGGER events_assign_global_position;

CREATE TRIGGER events_assign_global_position
    AFTER INSERT ON events
    WHEN NEW.global_position IS NULL
BEGIN
    UPDATE events
       SET global_position = (SELECT COALESCE(MAX(global_position), 0) + 1 FROM events)
     WHERE rowid = NEW.rowid;
END;
