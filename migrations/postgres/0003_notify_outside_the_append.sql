-- Appends no longer NOTIFY from a trigger. PostgreSQL serialises the commits of all
-- transactions that sent a NOTIFY (a cluster-wide lock held through commit), so the
-- trigger made every append wait for the previous one's WAL flush. The process that
-- appends now sends the wake-up itself, after commit and coalesced (see docs/adr/0007).
DROP TRIGGER events_notify ON events;
DROP FUNCTION events_notify();
