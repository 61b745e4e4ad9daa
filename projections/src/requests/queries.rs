//! Reads of the Requests model. Lists are newest first, keyset-paginated by creation time
//! and position; every read is scoped to a workspace, and a partner's reads to the requests
//! addressed to it and its own variants.

use cartie_domain::values::Currency;
use cartie_store::{on_pool, Database};
use chrono::{DateTime, Utc};
use sqlx::{Encode, QueryBuilder, Type};
use uuid::Uuid;

use super::{
    PartnerRow, ProposalRow, RequestRow, VariantRow, PARTNER_COLUMNS, REQUEST_COLUMNS,
    VARIANT_COLUMNS,
};

/// Which requests to list; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFilter {
    pub statuses: Vec<String>,
    pub assignee: Option<Uuid>,
    /// Case-insensitive.
    pub brand: Option<String>,
    /// Budgets in this currency only; a budget range needs it (the API refuses one without).
    pub budget_currency: Option<Currency>,
    pub budget_min: Option<i64>,
    pub budget_max: Option<i64>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

fn push_filter<'a, DB>(q: &mut QueryBuilder<'a, DB>, workspace: Uuid, filter: &RequestFilter)
where
    DB: sqlx::Database,
    Uuid: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    DateTime<Utc>: Encode<'a, DB> + Type<DB>,
{
    q.push(" WHERE workspace_id = ").push_bind(workspace);
    if !filter.statuses.is_empty() {
        q.push(" AND status IN (");
        let mut s = q.separated(", ");
        for status in &filter.statuses {
            s.push_bind(status.clone());
        }
        q.push(")");
    }
    if let Some(assignee) = filter.assignee {
        q.push(" AND assignee = ").push_bind(assignee);
    }
    if let Some(brand) = filter
        .brand
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        q.push(" AND brand_key = ").push_bind(brand.to_lowercase());
    }
    match filter.budget_currency {
        Some(currency) => {
            q.push(" AND budget_currency = ")
                .push_bind(currency.code().to_string());
        }
        None if filter.budget_min.is_some() || filter.budget_max.is_some() => {
            // Never compare budgets across currencies.
            q.push(" AND 1 = 0");
        }
        None => {}
    }
    if let Some(min) = filter.budget_min {
        q.push(" AND budget_minor >= ").push_bind(min);
    }
    if let Some(max) = filter.budget_max {
        q.push(" AND budget_minor <= ").push_bind(max);
    }
    if let Some(from) = filter.created_from {
        q.push(" AND created_at >= ").push_bind(from);
    }
    if let Some(to) = filter.created_to {
        q.push(" AND created_at < ").push_bind(to);
    }
}

/// Up to `limit` requests after the one created at `before_position` (the cursor), newest
/// first (by creation time, then log position), and whether more follow. A cursor that
/// names no request of the workspace ends the list.
pub async fn list(
    db: &Database,
    workspace: Uuid,
    filter: &RequestFilter,
    before_position: Option<i64>,
    limit: i64,
) -> Result<(Vec<RequestRow>, bool), sqlx::Error> {
    let mut rows: Vec<RequestRow> = on_pool!(db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new(format!("SELECT {REQUEST_COLUMNS} FROM requests"));
        push_filter(&mut q, workspace, filter);
        if let Some(before) = before_position {
            // The cursor names the last request shown by its creation position; the list
            // goes on from that request's place in (creation time, position) order.
            q.push(
                " AND (created_at, created_position) < \
                 (SELECT created_at, created_position FROM requests WHERE workspace_id = ",
            )
            .push_bind(workspace)
            .push(" AND created_position = ")
            .push_bind(before)
            .push(")");
        }
        q.push(" ORDER BY created_at DESC, created_position DESC LIMIT ")
            .push_bind(limit + 1);
        q.build_query_as().fetch_all(pool).await?
    });
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    Ok((rows, more))
}

/// How many requests match `filter`.
pub async fn count(
    db: &Database,
    workspace: Uuid,
    filter: &RequestFilter,
) -> Result<i64, sqlx::Error> {
    on_pool!(db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new("SELECT COUNT(*) FROM requests");
        push_filter(&mut q, workspace, filter);
        q.build_query_scalar().fetch_one(pool).await
    })
}

pub async fn get(
    db: &Database,
    workspace: Uuid,
    id: Uuid,
) -> Result<Option<RequestRow>, sqlx::Error> {
    // By the primary key alone, the workspace checked on the row (ADR 0019).
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE request_id = $1");
    let row: Option<RequestRow> =
        on_pool!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
    Ok(row.filter(|r| r.workspace_id == workspace))
}

/// The variants of a request, in the order they were offered; only `partner`'s when given.
pub async fn variants(
    db: &Database,
    workspace: Uuid,
    request: Uuid,
    partner: Option<Uuid>,
) -> Result<Vec<VariantRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {VARIANT_COLUMNS} FROM request_variants WHERE workspace_id = $1 AND request_id = $2 \
         AND ($3 IS NULL OR partner_id = $3) ORDER BY offered_position, variant_id"
    );
    on_pool!(db, pool => sqlx::query_as(&sql).bind(workspace).bind(request).bind(partner).fetch_all(pool).await)
}

/// The variants a proposal shows: shortlisted and accepted ones.
pub async fn proposed_variants(
    db: &Database,
    workspace: Uuid,
    request: Uuid,
) -> Result<Vec<VariantRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {VARIANT_COLUMNS} FROM request_variants WHERE workspace_id = $1 AND request_id = $2 \
         AND status IN ('SHORTLISTED', 'ACCEPTED') ORDER BY offered_position, variant_id"
    );
    on_pool!(db, pool => sqlx::query_as(&sql).bind(workspace).bind(request).fetch_all(pool).await)
}

pub async fn variant(
    db: &Database,
    workspace: Uuid,
    variant: Uuid,
) -> Result<Option<VariantRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {VARIANT_COLUMNS} FROM request_variants WHERE workspace_id = $1 AND variant_id = $2"
    );
    on_pool!(db, pool => sqlx::query_as(&sql).bind(workspace).bind(variant).fetch_optional(pool).await)
}

/// Whether a request is addressed to a partner.
pub async fn addressed_to(
    db: &Database,
    request: Uuid,
    partner: Uuid,
) -> Result<bool, sqlx::Error> {
    on_pool!(db, pool => {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT addressed_position FROM request_partners WHERE request_id = $1 AND partner_id = $2",
        )
        .bind(request)
        .bind(partner)
        .fetch_optional(pool)
        .await?;
        Ok(found.is_some())
    })
}

/// The partners a request is addressed to.
pub async fn addressees(db: &Database, request: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_scalar(
        "SELECT partner_id FROM request_partners WHERE request_id = $1 ORDER BY addressed_position, partner_id",
    )
    .bind(request)
    .fetch_all(pool)
    .await)
}

/// Requests addressed to a partner, most recently addressed first, keyset-paginated by the
/// position they were addressed at.
pub async fn for_partner(
    db: &Database,
    workspace: Uuid,
    partner: Uuid,
    before_position: Option<i64>,
    limit: i64,
) -> Result<(Vec<(i64, RequestRow)>, bool), sqlx::Error> {
    let columns: String = REQUEST_COLUMNS
        .split(", ")
        .map(|c| format!("r.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT p.addressed_position, {columns} FROM request_partners p \
         JOIN requests r ON r.request_id = p.request_id \
         WHERE p.partner_id = $1 AND p.workspace_id = $2 AND p.addressed_position < $3 \
         ORDER BY p.addressed_position DESC, p.request_id DESC LIMIT $4"
    );
    let rows: Vec<AddressedRow> = on_pool!(db, pool => sqlx::query_as(&sql)
        .bind(partner)
        .bind(workspace)
        .bind(before_position.unwrap_or(i64::MAX))
        .bind(limit + 1)
        .fetch_all(pool)
        .await?);
    let more = rows.len() as i64 > limit;
    Ok((
        rows.into_iter()
            .take(limit.max(0) as usize)
            .map(|r| (r.addressed_position, r.request))
            .collect(),
        more,
    ))
}

#[derive(sqlx::FromRow)]
struct AddressedRow {
    addressed_position: i64,
    #[sqlx(flatten)]
    request: RequestRow,
}

pub async fn proposal(db: &Database, id: Uuid) -> Result<Option<ProposalRow>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_as(
        "SELECT proposal_id, request_id, workspace_id, shared_at, revoked_at FROM request_proposals \
         WHERE proposal_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)
}

pub async fn proposals(
    db: &Database,
    workspace: Uuid,
    request: Uuid,
) -> Result<Vec<ProposalRow>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_as(
        "SELECT proposal_id, request_id, workspace_id, shared_at, revoked_at FROM request_proposals \
         WHERE workspace_id = $1 AND request_id = $2 ORDER BY shared_at, proposal_id",
    )
    .bind(workspace)
    .bind(request)
    .fetch_all(pool)
    .await)
}

/// The workspace's partners by name.
pub async fn partners(db: &Database, workspace: Uuid) -> Result<Vec<PartnerRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {PARTNER_COLUMNS} FROM partners WHERE workspace_id = $1 ORDER BY name, partner_id"
    );
    on_pool!(db, pool => sqlx::query_as(&sql).bind(workspace).fetch_all(pool).await)
}

pub async fn partner(
    db: &Database,
    workspace: Uuid,
    id: Uuid,
) -> Result<Option<PartnerRow>, sqlx::Error> {
    // By the primary key alone, the workspace checked on the row (ADR 0019).
    let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE partner_id = $1");
    let row: Option<PartnerRow> =
        on_pool!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
    Ok(row.filter(|r| r.workspace_id == workspace))
}

/// Where the request's row last changed (it or one of its variants): `None` when unknown.
pub async fn changed_position(
    db: &Database,
    workspace: Uuid,
    request: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_scalar(
        "SELECT changed_position FROM requests WHERE workspace_id = $1 AND request_id = $2",
    )
    .bind(workspace)
    .bind(request)
    .fetch_optional(pool)
    .await)
}
