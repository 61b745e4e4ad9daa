-- The price history kept in the order of its primary key, without a rowid: one B-tree
-- instead of a table and an index beside it. A listing's prices are read together, by
-- that key; a rebuild writes a third fewer B-tree entries (ADR 0025). The number follows
-- PostgreSQL's migrations, which have no counterpart of this one.
CREATE TABLE inventory_price_history_by_listing
(
    listing_id     BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    workspace_id   BLOB    NOT NULL,
    price_minor    INTEGER NOT NULL,
    price_currency TEXT    NOT NULL,
    changed_at     TEXT    NOT NULL,
    PRIMARY KEY (listing_id, version)
) STRICT, WITHOUT ROWID;

INSERT INTO inventory_price_history_by_listing
    (listing_id, version, workspace_id, price_minor, price_currency, changed_at)
SELECT listing_id, version, workspace_id, price_minor, price_currency, changed_at
FROM inventory_price_history;

DROP TABLE inventory_price_history;
ALTER TABLE inventory_price_history_by_listing RENAME TO inventory_price_history;
