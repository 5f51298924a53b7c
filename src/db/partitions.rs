//! TokenUsage's monthly partitions (migration 14, docs/operations.md "Partitioning").
//!
//! There is no DEFAULT partition: a row whose month has no partition is refused. So every
//! writer makes sure its months exist first: the partition job keeps this month and the
//! next ones ready for the service's writes, and the bulk loads of past months (`bench seed`,
//! `vibing2 import`) create theirs before their COPY. Retention drops whole months, as a
//! `DROP TABLE` of a partition, instead of deleting rows.
//!
//! Every partition is created by the SQL function `_vibing2_token_usage_partition`, which
//! holds the naming rule (`TokenUsage_yYYYYmMM`).

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use sqlx::PgConnection;

use super::quote_identifier;
use crate::telemetry::queries::timed;

/// One partition and its range, `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsagePartition {
    pub name: String,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
}

/// Whether TokenUsage is partitioned: migration 14 applied (a Phase-2 schema's is not).
pub async fn usage_is_partitioned(conn: &mut PgConnection) -> sqlx::Result<bool> {
    is_partitioned(conn, r#""TokenUsage""#).await
}

/// Whether `table` (a name as `regclass` reads it) is a partitioned table.
pub async fn is_partitioned(conn: &mut PgConnection, table: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass($1))")
        .bind(table)
        .fetch_one(conn)
        .await
}

/// Creates the partitions of the months `months` fall in that do not exist yet; returns the
/// names of those it created. Nothing on an unpartitioned TokenUsage.
pub async fn ensure_months(conn: &mut PgConnection, months: &[NaiveDate]) -> sqlx::Result<Vec<String>> {
    if months.is_empty() || !usage_is_partitioned(&mut *conn).await? {
        return Ok(Vec::new());
    }
    timed(
        "partitions.ensure_months",
        sqlx::query_scalar(
            r#"SELECT created FROM (
               SELECT "_vibing2_token_usage_partition"('"TokenUsage"', "month") AS created
               FROM (SELECT DISTINCT date_trunc('month', m)::date AS "month" FROM UNNEST($1::date[]) m) months
               ORDER BY "month"
           ) made WHERE created IS NOT NULL"#,
        )
        .bind(months)
        .fetch_all(conn),
    )
    .await
}

/// Creates the partitions of this month (UTC) and of the `months_ahead` after it that do not
/// exist yet; returns the names of those it created.
pub async fn ensure_ahead(conn: &mut PgConnection, months_ahead: u32) -> sqlx::Result<Vec<String>> {
    let this_month: NaiveDate =
        sqlx::query_scalar("SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date").fetch_one(&mut *conn).await?;
    let months: Vec<NaiveDate> =
        (0..=months_ahead).filter_map(|ahead| this_month.checked_add_months(chrono::Months::new(ahead))).collect();
    ensure_months(conn, &months).await
}

/// Bounds how long the transaction's statements wait for a lock (`lock_timeout`, e.g. "5s").
pub async fn limit_lock_wait(tx: &mut PgConnection, timeout: &str) -> sqlx::Result<()> {
    timed(
        "partitions.limit_lock_wait",
        sqlx::query("SELECT set_config('lock_timeout', $1, true)").bind(timeout).execute(tx),
    )
    .await
    .map(|_| ())
}

/// The first day of every month from the one `first` falls in to the one `last` falls in.
pub fn months_between(first: NaiveDate, last: NaiveDate) -> Vec<NaiveDate> {
    let Some(mut month) = first.with_day(1) else { return Vec::new() };
    let mut months = Vec::new();
    while month <= last {
        months.push(month);
        let Some(next) = month.checked_add_months(chrono::Months::new(1)) else { break };
        month = next;
    }
    months
}

/// TokenUsage's partitions, oldest first. A DEFAULT partition, which this schema never
/// creates, would have no range and is not listed.
pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<UsagePartition>> {
    timed(
        "partitions.list",
        sqlx::query_as(
            r#"SELECT name, bounds[1]::timestamp AS "from", bounds[2]::timestamp AS "to"
           FROM (SELECT c.relname::text AS name,
                        regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)')
                            AS bounds
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = to_regclass('"TokenUsage"')) p
           WHERE bounds IS NOT NULL
           ORDER BY 2"#,
        )
        .fetch_all(conn),
    )
    .await
}

/// Retention: drops the partitions that end before the `months_kept` months preceding this
/// one (UTC), so this month and `months_kept` full months stay. Returns the names dropped.
pub async fn drop_older_than(conn: &mut PgConnection, months_kept: u32) -> sqlx::Result<Vec<String>> {
    let cutoff: NaiveDateTime =
        sqlx::query_scalar("SELECT date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => $1::int)")
            .bind(i32::try_from(months_kept).unwrap_or(i32::MAX))
            .fetch_one(&mut *conn)
            .await?;
    let mut dropped = Vec::new();
    for partition in list(conn).await?.into_iter().filter(|partition| partition.to <= cutoff) {
        let statement = format!("DROP TABLE {}", quote_identifier(&partition.name));
        timed("partitions.drop", sqlx::query(&statement).execute(&mut *conn)).await?;
        tracing::info!(partition = %partition.name, "dropped a TokenUsage partition past retention");
        dropped.push(partition.name);
    }
    Ok(dropped)
}

/// The names of the partitions of `table` (a name as `regclass` reads it); none for a plain
/// table.
pub async fn partitions_of(conn: &mut PgConnection, table: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = to_regclass($1) ORDER BY 1",
    )
    .bind(table)
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_between_covers_every_month_touched() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(
            months_between(day(2025, 11, 20), day(2026, 2, 1)),
            [day(2025, 11, 1), day(2025, 12, 1), day(2026, 1, 1), day(2026, 2, 1)]
        );
        assert_eq!(months_between(day(2026, 3, 31), day(2026, 3, 1)), [day(2026, 3, 1)]);
        assert!(months_between(day(2026, 4, 1), day(2026, 3, 31)).is_empty());
    }
}
