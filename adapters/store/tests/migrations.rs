//! Migrations that rewrite a table keep what it held.

use cartie_store::Database;

/// SQLite migration 0011 moves the price history into a table without rowid: every row
/// stays, and the key still refuses a second row for a listing's version.
#[tokio::test]
async fn the_sqlite_price_history_keeps_its_rows_when_it_loses_its_rowid() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("cartie.db").display());
    let db = Database::connect(&url, 2).await.unwrap();
    let Database::Sqlite(sqlite) = &db else {
        unreachable!("a sqlite: URL")
    };

    // The schema as it was before migration 0011: the files before it, migrated alone.
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
    let earlier = dir.path().join("earlier");
    std::fs::create_dir(&earlier).unwrap();
    let mut later = 0;
    for file in std::fs::read_dir(&all).unwrap() {
        let file = file.unwrap();
        let name = file.file_name().into_string().unwrap();
        if name.as_str() < "0011" {
            std::fs::copy(file.path(), earlier.join(&name)).unwrap();
        } else {
            later += 1;
        }
    }
    assert!(later > 0, "migration 0011 exists");
    sqlx::migrate::Migrator::new(earlier)
        .await
        .unwrap()
        .run(&sqlite.write)
        .await
        .unwrap();

    let (listing, other, workspace) = (
        uuid::Uuid::from_u128(1),
        uuid::Uuid::from_u128(2),
        uuid::Uuid::from_u128(9),
    );
    let rows = [
        (listing, 1, 1_000_000, "USD", "2026-12-01T10:00:00Z"),
        (listing, 3, 950_000, "USD", "2026-12-02T10:00:00Z"),
        (other, 1, 4_200_000, "UAH", "2026-12-03T10:00:00Z"),
    ];
    for (id, version, amount, currency, at) in rows {
        sqlx::query(
            "INSERT INTO inventory_price_history \
             (listing_id, version, workspace_id, price_minor, price_currency, changed_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(version)
        .bind(workspace)
        .bind(amount)
        .bind(currency)
        .bind(at)
        .execute(&sqlite.write)
        .await
        .unwrap();
    }

    db.migrate().await.unwrap();

    let after: Vec<(uuid::Uuid, i64, uuid::Uuid, i64, String, String)> = sqlx::query_as(
        "SELECT listing_id, version, workspace_id, price_minor, price_currency, changed_at \
         FROM inventory_price_history ORDER BY listing_id, version",
    )
    .fetch_all(&sqlite.read)
    .await
    .unwrap();
    let expected: Vec<_> = rows
        .iter()
        .map(|(id, version, amount, currency, at)| {
            (
                *id,
                *version,
                workspace,
                *amount,
                currency.to_string(),
                at.to_string(),
            )
        })
        .collect();
    assert_eq!(after, expected);

    let definition: String = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'inventory_price_history'",
    )
    .fetch_one(&sqlite.read)
    .await
    .unwrap();
    assert!(definition.contains("WITHOUT ROWID"), "{definition}");
    let duplicate = sqlx::query(
        "INSERT INTO inventory_price_history \
         (listing_id, version, workspace_id, price_minor, price_currency, changed_at) \
         VALUES (?, 3, ?, 1, 'USD', '2026-12-04T10:00:00Z')",
    )
    .bind(listing)
    .bind(workspace)
    .execute(&sqlite.write)
    .await;
    assert!(
        duplicate.is_err(),
        "a second price for one version is refused"
    );
    db.close().await;
}
