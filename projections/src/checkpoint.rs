//! Where each projection stands in the log. A checkpoint moves only in the transaction
//! that applied the events up to it.

use cartie_store::{on_pool, on_tx, Backend, Database, LogPosition, Tx};

/// The checkpoint of `projection`, or the start of the log.
pub async fn load(db: &Database, projection: &str) -> Result<LogPosition, sqlx::Error> {
    let row: Option<(i64, i64)> = on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT transaction_id, global_position FROM projection_checkpoints WHERE projection = $1",
        )
        .bind(projection)
        .fetch_optional(pool)
        .await
    })?;
    Ok(row
        .map(|(xid, pos)| LogPosition::new(xid, pos))
        .unwrap_or(LogPosition::START))
}

/// Makes sure `projection` has a checkpoint row (at the start of the log) to lock.
pub async fn ensure(db: &Database, projection: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "INSERT INTO projection_checkpoints (projection) VALUES ($1) ON CONFLICT (projection) DO NOTHING",
        )
        .bind(projection)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await
}

/// Reads the checkpoint inside a writing transaction and holds it: another runner of the
/// same projection (another process, or a rebuild) waits until this transaction ends.
/// The row must exist ([`ensure`]).
pub async fn lock(tx: &mut Tx, projection: &str) -> Result<LogPosition, sqlx::Error> {
    // SQLite holds the database write lock already (BEGIN IMMEDIATE); PostgreSQL locks the row.
    let sql = match tx.backend() {
        Backend::Sqlite => {
            "SELECT transaction_id, global_position FROM projection_checkpoints WHERE projection = $1"
        }
        Backend::Postgres => {
            "SELECT transaction_id, global_position FROM projection_checkpoints WHERE projection = $1 FOR UPDATE"
        }
    };
    let (xid, pos): (i64, i64) = on_tx!(tx, conn => {
        sqlx::query_as(sql).bind(projection).fetch_one(&mut *conn).await
    })?;
    Ok(LogPosition::new(xid, pos))
}

pub async fn save(tx: &mut Tx, projection: &str, position: LogPosition) -> Result<(), sqlx::Error> {
    let now = chrono::Utc::now();
    on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE projection_checkpoints SET transaction_id = $2, global_position = $3, updated_at = $4 \
             WHERE projection = $1",
        )
        .bind(projection)
        .bind(position.transaction_id)
        .bind(position.global_position)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|_| ())
    })
}
