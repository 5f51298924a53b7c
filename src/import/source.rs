//! The Phase-1 SQLite database, opened read-only: never written, and readable while another
//! process has it open.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use chrono::{Datelike, NaiveDate};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::normalize;
use super::tables::{SourceRow, Stage, LEFT_OUT, PHASE1_SCHEMA};

pub struct Source {
    pub path: PathBuf,
    connection: Connection,
}

/// Users whose e-mails differ only by case, by lower-cased e-mail: (created, id), earliest
/// first.
pub type EmailConflicts = BTreeMap<String, Vec<(Option<i64>, String)>>;

impl Source {
    /// Opens `path` read-only and checks that it is a Phase-1 database: every Phase-1 table,
    /// each with exactly its columns, and no other table but Prisma's bookkeeping.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if !path.is_file() {
            bail!("{}: no such file", path.display());
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)
            .with_context(|| format!("{}: cannot be opened as SQLite", path.display()))?;
        let source = Source { path: path.to_owned(), connection };
        source.check_phase1().with_context(|| format!("{} is not a Phase-1 database", path.display()))?;
        Ok(source)
    }

    fn check_phase1(&self) -> anyhow::Result<()> {
        let tables: Vec<String> = self
            .connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
            .map_err(|error| match error {
                rusqlite::Error::SqliteFailure(failure, _) if failure.code == rusqlite::ErrorCode::NotADatabase => {
                    anyhow::anyhow!("the file is not an SQLite database")
                }
                other => anyhow::Error::new(other).context("cannot read its tables"),
            })?;
        let mut problems = Vec::new();
        for (table, columns) in PHASE1_SCHEMA {
            if !tables.iter().any(|name| name == table) {
                problems.push(format!("no table {table}"));
                continue;
            }
            let present: Vec<String> = self
                .connection
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            for column in *columns {
                if !present.iter().any(|name| name == column) {
                    problems.push(format!("{table} has no column {column}"));
                }
            }
            for column in &present {
                if !columns.contains(&column.as_str()) {
                    problems.push(format!("{table} has a column this importer does not know: {column}"));
                }
            }
        }
        for table in &tables {
            let known = PHASE1_SCHEMA.iter().any(|(name, _)| name == table) || LEFT_OUT.contains(&table.as_str());
            if !known {
                problems.push(format!("a table this importer does not know: {table}"));
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }
        Ok(())
    }

    /// The first day of every month the usage rows fall in, their timestamps read by the
    /// import's own rule (a row it refuses counts for none): TokenUsage's partitions must
    /// exist before the COPY.
    pub fn usage_months(&self) -> anyhow::Result<Vec<NaiveDate>> {
        let mut statement = self.connection.prepare(r#"SELECT "timestamp" FROM "TokenUsage""#)?;
        let mut rows = statement.query([])?;
        let mut months = BTreeSet::new();
        while let Some(row) = rows.next()? {
            let month = normalize::datetime(&row.get::<_, Value>(0)?)
                .ok()
                .and_then(chrono::DateTime::from_timestamp_millis)
                .and_then(|at| at.date_naive().with_day(1));
            months.extend(month);
        }
        Ok(months.into_iter().collect())
    }

    /// Rows per Phase-1 table.
    pub fn row_count(&self, table: &str) -> anyhow::Result<i64> {
        Ok(self.connection.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |row| row.get(0))?)
    }

    /// The table's highest rowid, 0 when it is empty.
    pub fn max_rowid(&self, table: &str) -> anyhow::Result<i64> {
        let highest: Option<i64> =
            self.connection.query_row(&format!("SELECT max(rowid) FROM \"{table}\""), [], |row| row.get(0))?;
        Ok(highest.unwrap_or(0))
    }

    /// What identifies this source's content: each table's row count and highest rowid, and
    /// the schema. A rerun, or a resume, must see the same.
    pub fn fingerprint(&self) -> anyhow::Result<String> {
        let mut digest = Sha256::new();
        for (table, _) in PHASE1_SCHEMA {
            let (count, highest): (i64, Option<i64>) =
                self.connection.query_row(&format!("SELECT count(*), max(rowid) FROM \"{table}\""), [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
            digest.update(format!("{table}:{count}:{}\n", highest.unwrap_or(0)));
        }
        let schema: Vec<String> = self
            .connection
            .prepare("SELECT coalesce(sql, '') FROM sqlite_master ORDER BY type, name")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        digest.update(schema.join("\n"));
        Ok(hex::encode(digest.finalize()))
    }

    /// Users whose e-mails are one address once lower-cased.
    pub fn email_conflicts(&self) -> anyhow::Result<EmailConflicts> {
        let mut by_email: EmailConflicts = BTreeMap::new();
        let mut statement = self.connection.prepare(r#"SELECT "id", "email", "createdAt" FROM "User""#)?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let (id, email, created): (Value, Value, Value) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let (Value::Text(id), Value::Text(email)) = (id, email) else { continue };
            let created = normalize::datetime(&created).ok();
            by_email.entry(email.to_lowercase()).or_default().push((created, id));
        }
        by_email.retain(|_, users| users.len() > 1);
        for users in by_email.values_mut() {
            // Earliest first; a user whose creation time cannot be read comes last.
            users.sort_by_key(|(created, id)| (created.is_none(), *created, id.clone()));
        }
        Ok(by_email)
    }

    /// Streams `stage`'s rows after `after_rowid`, in rowid order, to `each` (which returns
    /// false to stop).
    pub fn for_each_row(
        &self,
        stage: &Stage,
        after_rowid: i64,
        mut each: impl FnMut(SourceRow) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let mut statement = self.connection.prepare(stage.select)?;
        let width = statement.column_count();
        let mut rows = statement.query([after_rowid])?;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            let values = (1..width).map(|at| row.get::<_, Value>(at)).collect::<Result<Vec<_>, _>>()?;
            if !each(SourceRow { rowid, values })? {
                break;
            }
        }
        Ok(())
    }
}
