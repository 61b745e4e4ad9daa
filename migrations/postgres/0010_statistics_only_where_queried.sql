-- Planner statistics only for the columns queries filter, sort or look up by. The others
-- (texts shown but never compared, photos, versions and timestamps) cost ANALYZE most of
-- its time, on every run and after every rebuild (ADR 0022), and no plan reads them.
ALTER TABLE inventory_listings
    ALTER COLUMN title SET STATISTICS 0,
    ALTER COLUMN description SET STATISTICS 0,
    ALTER COLUMN brand SET STATISTICS 0,
    ALTER COLUMN model SET STATISTICS 0,
    ALTER COLUMN city SET STATISTICS 0,
    ALTER COLUMN colour SET STATISTICS 0,
    ALTER COLUMN vin SET STATISTICS 0,
    ALTER COLUMN photos SET STATISTICS 0,
    ALTER COLUMN version SET STATISTICS 0,
    ALTER COLUMN engine_volume_cc SET STATISTICS 0,
    ALTER COLUMN created_at SET STATISTICS 0,
    ALTER COLUMN updated_at SET STATISTICS 0;
ALTER TABLE inventory_price_history
    ALTER COLUMN price_minor SET STATISTICS 0,
    ALTER COLUMN price_currency SET STATISTICS 0,
    ALTER COLUMN changed_at SET STATISTICS 0;
