//! Reads of the Leads model, newest first, keyset-paginated by creation position.

use cartie_store::{on_pool, Database};
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{LeadRow, LEAD_COLUMNS};

#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub statuses: Vec<String>,
    pub assignee: Option<Uuid>,
    pub sources: Vec<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

/// Up to `limit` leads created before the lead at `before_position` (the cursor), newest
/// first, and whether more follow.
pub async fn list(
    db: &Database,
    workspace: Uuid,
    filter: &LeadFilter,
    before_position: Option<i64>,
    limit: i64,
) -> Result<(Vec<LeadRow>, bool), sqlx::Error> {
    let mut rows: Vec<LeadRow> = on_pool!(db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new(format!("SELECT {LEAD_COLUMNS} FROM leads WHERE workspace_id = "));
        q.push_bind(workspace);
        if !filter.statuses.is_empty() {
            q.push(" AND status IN (");
            let mut s = q.separated(", ");
            for status in &filter.statuses {
                s.push_bind(status.clone());
            }
            q.push(")");
        }
        if !filter.sources.is_empty() {
            q.push(" AND source IN (");
            let mut s = q.separated(", ");
            for source in &filter.sources {
                s.push_bind(source.clone());
            }
            q.push(")");
        }
        if let Some(assignee) = filter.assignee {
            q.push(" AND assignee = ").push_bind(assignee);
        }
        if let Some(from) = filter.created_from {
            q.push(" AND created_at >= ").push_bind(from);
        }
        if let Some(to) = filter.created_to {
            q.push(" AND created_at < ").push_bind(to);
        }
        if let Some(before) = before_position {
            q.push(" AND created_position < ").push_bind(before);
        }
        q.push(" ORDER BY created_position DESC LIMIT ").push_bind(limit + 1);
        q.build_query_as().fetch_all(pool).await?
    });
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

pub async fn get(db: &Database, workspace: Uuid, id: Uuid) -> Result<Option<LeadRow>, sqlx::Error> {
    // By the primary key alone, the workspace checked on the row (ADR 0019).
    let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = $1");
    let row: Option<LeadRow> =
        on_pool!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
    Ok(row.filter(|r| r.workspace_id == workspace))
}
