//! What each Phase-1 table becomes: the columns read from SQLite, the columns written to
//! PostgreSQL, and the rules between them, row by row. Rows are kept, quarantined (a value
//! no rule can take, a missing or quarantined parent, a broken constraint) or dropped
//! (expired sessions). The stages run in this order, parents first.

use std::collections::{HashMap, HashSet};

use rusqlite::types::Value;

use super::cells::{column, Cell, Column, Kind};
use super::normalize::{self, Changed, EpochMillis, Password, Refusal};

/// One stage of the import: a Phase-1 table, or the files made from `currentCode`.
pub struct Stage {
    /// The key in `_vibing2_import_batch` and the report.
    pub name: &'static str,
    /// The target table.
    pub table: &'static str,
    /// The Phase-1 table it walks.
    pub from: &'static str,
    /// The SQLite statement, with `?1` for the last committed rowid; its first column is the
    /// rowid, the rest are `source` in order.
    pub select: &'static str,
    pub source: &'static [&'static str],
    pub target: &'static [Column],
}

/// A column written with the source rowid after the rules' cells, outside the checksum.
#[derive(Debug, Clone, Copy)]
pub struct RowidCursor {
    pub column: &'static str,
    /// The kept cell whose order the rowids follow when the source rows come in it.
    pub ordered_by: usize,
}

impl Stage {
    /// Message's `cursor`, the keyset order: the source rowid, which is right as written when
    /// the source rows come in `createdAt` order (the reader watches, and the target is
    /// renumbered when they do not).
    pub fn cursor(&self) -> Option<RowidCursor> {
        let ordered_by = self.target.iter().position(|column| column.name == "createdAt");
        (self.name == "Message").then(|| RowidCursor { column: "cursor", ordered_by: ordered_by.expect("createdAt") })
    }
}

const USER_COLUMNS: &[&str] = &[
    "id",
    "name",
    "email",
    "emailVerified",
    "password",
    "image",
    "plan",
    "tokenBalance",
    "contextUsed",
    "createdAt",
    "updatedAt",
];
const PROJECT_COLUMNS: &[&str] = &[
    "id",
    "name",
    "description",
    "projectType",
    "activeAgents",
    "currentCode",
    "visibility",
    "likes",
    "forks",
    "userId",
    "createdAt",
    "updatedAt",
];

const ACCOUNT_COLUMNS: &[&str] = &[
    "userId",
    "type",
    "provider",
    "providerAccountId",
    "refresh_token",
    "access_token",
    "expires_at",
    "token_type",
    "scope",
    "id_token",
    "session_state",
    "createdAt",
    "updatedAt",
];
const SESSION_COLUMNS: &[&str] = &["sessionToken", "userId", "expires", "createdAt", "updatedAt"];
const VERIFICATION_TOKEN_COLUMNS: &[&str] = &["identifier", "token", "expires"];
const FILE_SOURCE_COLUMNS: &[&str] = &["id", "projectId", "path", "content", "language", "createdAt", "updatedAt"];
const MESSAGE_COLUMNS: &[&str] = &["id", "role", "content", "projectId", "createdAt"];
const COLLABORATOR_COLUMNS: &[&str] = &["id", "projectId", "userId", "role", "createdAt"];
const INVITE_COLUMNS: &[&str] = &["id", "projectId", "fromUserId", "toUserId", "status", "createdAt", "updatedAt"];
const USAGE_COLUMNS: &[&str] = &["id", "tokensUsed", "contextUsed", "savedTokens", "userId", "endpoint", "timestamp"];

/// The Phase-1 tables and their columns, exactly: a source with more is not one this
/// importer can copy without loss.
pub const PHASE1_SCHEMA: &[(&str, &[&str])] = &[
    ("User", USER_COLUMNS),
    ("Account", ACCOUNT_COLUMNS),
    ("Session", SESSION_COLUMNS),
    ("VerificationToken", VERIFICATION_TOKEN_COLUMNS),
    ("Project", PROJECT_COLUMNS),
    ("ProjectFile", FILE_SOURCE_COLUMNS),
    ("Message", MESSAGE_COLUMNS),
    ("ProjectCollaborator", COLLABORATOR_COLUMNS),
    ("CollaborationInvite", INVITE_COLUMNS),
    ("TokenUsage", USAGE_COLUMNS),
];

/// Prisma's own bookkeeping, not platform data.
pub const LEFT_OUT: &[&str] = &["_prisma_migrations"];

use Kind::{Bool, Float8, Int4, Names, Text, Timestamp};

pub const STAGES: &[Stage] = &[
    Stage {
        name: "User",
        table: "User",
        from: "User",
        select: r#"SELECT rowid, "id", "name", "email", "emailVerified", "password", "image", "plan", "tokenBalance",
                   "contextUsed", "createdAt", "updatedAt" FROM "User" WHERE rowid > ?1 ORDER BY rowid"#,
        source: USER_COLUMNS,
        target: &[
            column("id", Text),
            column("name", Text),
            column("email", Text),
            column("emailVerified", Timestamp),
            column("password", Text),
            column("image", Text),
            column("plan", Text),
            column("tokenBalance", Int4),
            column("contextUsed", Float8),
            column("createdAt", Timestamp),
            column("updatedAt", Timestamp),
            column("passwordResetRequired", Bool),
        ],
    },
    Stage {
        name: "Account",
        table: "Account",
        from: "Account",
        select: r#"SELECT rowid, "userId", "type", "provider", "providerAccountId", "refresh_token", "access_token",
                   "expires_at", "token_type", "scope", "id_token", "session_state", "createdAt", "updatedAt"
                   FROM "Account" WHERE rowid > ?1 ORDER BY rowid"#,
        source: ACCOUNT_COLUMNS,
        target: &[
            column("userId", Text),
            column("type", Text),
            column("provider", Text),
            column("providerAccountId", Text),
            column("refresh_token", Text),
            column("access_token", Text),
            column("expires_at", Int4),
            column("token_type", Text),
            column("scope", Text),
            column("id_token", Text),
            column("session_state", Text),
            column("createdAt", Timestamp),
            column("updatedAt", Timestamp),
        ],
    },
    Stage {
        name: "Session",
        table: "Session",
        from: "Session",
        select: r#"SELECT rowid, "sessionToken", "userId", "expires", "createdAt", "updatedAt"
                   FROM "Session" WHERE rowid > ?1 ORDER BY rowid"#,
        source: SESSION_COLUMNS,
        target: &[
            column("tokenHash", Text),
            column("userId", Text),
            column("expires", Timestamp),
            column("createdAt", Timestamp),
            column("updatedAt", Timestamp),
        ],
    },
    Stage {
        name: "VerificationToken",
        table: "VerificationToken",
        from: "VerificationToken",
        select: r#"SELECT rowid, "identifier", "token", "expires" FROM "VerificationToken" WHERE rowid > ?1 ORDER BY rowid"#,
        source: VERIFICATION_TOKEN_COLUMNS,
        target: &[column("identifier", Text), column("token", Text), column("expires", Timestamp)],
    },
    Stage {
        name: "Project",
        table: "Project",
        from: "Project",
        // `hasFiles` decides where currentCode goes.
        select: r#"SELECT p.rowid, p."id", p."name", p."description", p."projectType", p."activeAgents",
                   p."currentCode", p."visibility", p."likes", p."forks", p."userId", p."createdAt", p."updatedAt",
                   EXISTS (SELECT 1 FROM "ProjectFile" f WHERE f."projectId" = p."id")
                   FROM "Project" p WHERE p.rowid > ?1 ORDER BY p.rowid"#,
        source: PROJECT_COLUMNS,
        target: &[
            column("id", Text),
            column("name", Text),
            column("description", Text),
            column("projectType", Text),
            column("activeAgents", Names),
            column("currentCode", Text),
            column("visibility", Text),
            column("userId", Text),
            column("createdAt", Timestamp),
            column("updatedAt", Timestamp),
            column("likeCount", Int4),
            column("forkCount", Int4),
        ],
    },
    Stage {
        name: "ProjectFile",
        table: "ProjectFile",
        from: "ProjectFile",
        select: r#"SELECT rowid, "id", "projectId", "path", "content", "language", "createdAt", "updatedAt"
                   FROM "ProjectFile" WHERE rowid > ?1 ORDER BY rowid"#,
        source: FILE_SOURCE_COLUMNS,
        target: FILE_COLUMNS,
    },
    Stage {
        name: "ProjectFile (from currentCode)",
        table: "ProjectFile",
        from: "Project",
        select: r#"SELECT p.rowid, p."id", p."currentCode", p."updatedAt" FROM "Project" p
                   WHERE p.rowid > ?1 AND p."currentCode" IS NOT NULL AND p."currentCode" <> ''
                     AND NOT EXISTS (SELECT 1 FROM "ProjectFile" f WHERE f."projectId" = p."id")
                   ORDER BY p.rowid"#,
        source: &["id", "currentCode", "updatedAt"],
        target: FILE_COLUMNS,
    },
    Stage {
        name: "Message",
        table: "Message",
        from: "Message",
        select: r#"SELECT rowid, "id", "role", "content", "projectId", "createdAt" FROM "Message"
                   WHERE rowid > ?1 ORDER BY rowid"#,
        source: MESSAGE_COLUMNS,
        target: &[
            column("id", Text),
            column("role", Text),
            column("content", Text),
            column("projectId", Text),
            column("createdAt", Timestamp),
        ],
    },
    Stage {
        name: "ProjectCollaborator",
        table: "ProjectCollaborator",
        from: "ProjectCollaborator",
        select: r#"SELECT rowid, "id", "projectId", "userId", "role", "createdAt" FROM "ProjectCollaborator"
                   WHERE rowid > ?1 ORDER BY rowid"#,
        source: COLLABORATOR_COLUMNS,
        target: &[
            column("id", Text),
            column("projectId", Text),
            column("userId", Text),
            column("role", Text),
            column("createdAt", Timestamp),
        ],
    },
    Stage {
        name: "CollaborationInvite",
        table: "CollaborationInvite",
        from: "CollaborationInvite",
        select: r#"SELECT rowid, "id", "projectId", "fromUserId", "toUserId", "status", "createdAt", "updatedAt"
                   FROM "CollaborationInvite" WHERE rowid > ?1 ORDER BY rowid"#,
        source: INVITE_COLUMNS,
        target: &[
            column("id", Text),
            column("projectId", Text),
            column("fromUserId", Text),
            column("toUserId", Text),
            column("status", Text),
            column("createdAt", Timestamp),
            column("updatedAt", Timestamp),
            column("expiresAt", Timestamp),
        ],
    },
    Stage {
        name: "TokenUsage",
        table: "TokenUsage",
        from: "TokenUsage",
        select: r#"SELECT rowid, "id", "tokensUsed", "contextUsed", "savedTokens", "userId", "endpoint", "timestamp"
                   FROM "TokenUsage" WHERE rowid > ?1 ORDER BY rowid"#,
        source: USAGE_COLUMNS,
        target: &[
            column("id", Text),
            column("tokensUsed", Int4),
            column("contextUsed", Float8),
            column("savedTokens", Int4),
            column("userId", Text),
            column("endpoint", Text),
            column("timestamp", Timestamp),
        ],
    },
];

const FILE_COLUMNS: &[Column] = &[
    column("id", Text),
    column("projectId", Text),
    column("path", Text),
    column("content", Text),
    column("language", Text),
    column("createdAt", Timestamp),
    column("updatedAt", Timestamp),
    column("size", Int4),
    column("checksum", Text),
];

/// Columns whose values are secrets: never copied into a report or the reject file.
const SECRET_COLUMNS: &[&str] = &["password", "sessionToken", "refresh_token", "access_token", "id_token", "token"];

/// Invites the service expires after a week; an imported one gets the week from its creation.
const INVITE_LIFETIME_MILLIS: i64 = 7 * 24 * 60 * 60 * 1000;

/// What the rules decided for one row.
#[derive(Debug)]
pub enum Outcome {
    Keep(Vec<Cell>),
    Quarantine(String),
    /// Left out on purpose, counted (an expired session, or one whose token holds a `.`).
    Drop,
}

/// A change a rule made to one value.
#[derive(Debug, Clone)]
pub struct Note {
    pub column: &'static str,
    pub change: Changed,
    /// The value as it was (secrets are never shown).
    pub original: Option<String>,
}

/// Values over the API's input limits, kept whole and counted.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    pub message_chars: usize,
    pub file_bytes: usize,
}

/// What the rules need to know beyond one row: the parents imported so far, the users set
/// aside, the pending invites, the clock.
pub struct Context {
    pub users: HashSet<String>,
    pub projects: HashSet<String>,
    /// Users not imported, with why: their rows are quarantined with them.
    pub set_aside_users: HashMap<String, String>,
    pub set_aside_projects: HashSet<String>,
    /// Users who lost an e-mail conflict (`--on-email-conflict keep-first`), and the user kept.
    pub email_losers: HashMap<String, String>,
    /// (project, invitee) of the pending invites imported: at most one each.
    pub pending_invites: HashSet<(String, String)>,
    pub now: EpochMillis,
    pub limits: ApiLimits,
}

/// One row as read: its rowid, its id for reports, and its values.
pub struct SourceRow {
    pub rowid: i64,
    pub values: Vec<Value>,
}

/// The rules, applied to one row of `stage`. `notes` receives the changes made.
pub fn apply(stage: &Stage, row: &SourceRow, context: &mut Context, notes: &mut Vec<Note>) -> Outcome {
    let mut reader = Reader { stage, values: &row.values, notes };
    let outcome = match stage.name {
        "User" => user(&mut reader, context),
        "Account" => account(&mut reader, context),
        "Session" => session(&mut reader, context),
        "VerificationToken" => verification_token(&mut reader),
        "Project" => project(&mut reader, context),
        "ProjectFile" => file(&mut reader, context),
        "ProjectFile (from currentCode)" => file_from_current_code(&mut reader, context),
        "Message" => message(&mut reader, context),
        "ProjectCollaborator" => collaborator(&mut reader, context),
        "CollaborationInvite" => invite(&mut reader, context),
        "TokenUsage" => usage(&mut reader, context),
        other => unreachable!("no rules for stage {other}"),
    };
    match outcome {
        Ok(outcome) => outcome,
        Err(Refusal(reason)) => Outcome::Quarantine(reason),
    }
}

/// The row's identity in reports: its id, or its natural key, never a secret.
pub fn row_id(stage: &Stage, row: &SourceRow) -> String {
    let value = |name: &str| {
        stage.source.iter().position(|column| *column == name).map(|at| plain(&row.values[at])).unwrap_or_default()
    };
    match stage.table {
        "Account" => format!("{}/{}", value("provider"), value("providerAccountId")),
        "Session" => format!("session of {} (rowid {})", value("userId"), row.rowid),
        "VerificationToken" => format!("{} (rowid {})", value("identifier"), row.rowid),
        _ => value("id"),
    }
}

/// The row as JSON for the reject file, secrets redacted.
pub fn row_json(stage: &Stage, row: &SourceRow) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (name, value) in stage.source.iter().zip(&row.values) {
        let json = if SECRET_COLUMNS.contains(name) && !matches!(value, Value::Null) {
            serde_json::Value::String("(secret, not shown)".into())
        } else {
            match value {
                Value::Null => serde_json::Value::Null,
                Value::Integer(number) => serde_json::json!(number),
                Value::Real(number) => serde_json::json!(number),
                Value::Text(text) => serde_json::Value::String(printable(text)),
                Value::Blob(bytes) => serde_json::Value::String(format!("(a blob of {} bytes)", bytes.len())),
            }
        };
        object.insert((*name).to_owned(), json);
    }
    serde_json::Value::Object(object)
}

/// PostgreSQL's text and jsonb hold no NUL: a report shows one as `\0`.
fn printable(text: &str) -> String {
    text.replace('\0', "\\0")
}

fn plain(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Integer(number) => number.to_string(),
        Value::Real(number) => number.to_string(),
        Value::Text(text) => printable(text),
        Value::Blob(bytes) => format!("(a blob of {} bytes)", bytes.len()),
    }
}

/// Reads a row's values by column name, applying a rule and noting what it changed.
struct Reader<'a> {
    stage: &'a Stage,
    values: &'a [Value],
    notes: &'a mut Vec<Note>,
}

type Rule<T> = Result<T, Refusal>;

impl Reader<'_> {
    fn value(&self, name: &'static str) -> &Value {
        let at = self.stage.source.iter().position(|column| *column == name).expect("a declared source column");
        &self.values[at]
    }

    /// The computed column after the declared ones (`Project.hasFiles`).
    fn extra(&self, offset: usize) -> &Value {
        &self.values[self.stage.source.len() + offset]
    }

    fn note(&mut self, column: &'static str, change: Option<Changed>) {
        if let Some(change) = change {
            let original = if SECRET_COLUMNS.contains(&column) { None } else { Some(plain(self.value(column))) };
            self.notes.push(Note { column, change, original });
        }
    }

    fn refused<T>(column: &'static str, result: Rule<T>) -> Rule<T> {
        result.map_err(|Refusal(reason)| Refusal(format!("{column}: {reason}")))
    }

    fn text(&mut self, column: &'static str) -> Rule<String> {
        let (text, change) = Self::refused(column, normalize::text(self.value(column)))?;
        self.note(column, change);
        Ok(text)
    }

    fn optional_text(&mut self, column: &'static str) -> Rule<Option<String>> {
        let (text, change) = Self::refused(column, normalize::optional_text(self.value(column)))?;
        self.note(column, change);
        Ok(text)
    }

    fn time(&self, column: &'static str) -> Rule<EpochMillis> {
        Self::refused(column, normalize::datetime(self.value(column)))
    }

    fn optional_time(&self, column: &'static str) -> Rule<Option<EpochMillis>> {
        match self.value(column) {
            Value::Null => Ok(None),
            value => Self::refused(column, normalize::datetime(value)).map(Some),
        }
    }

    fn int4(&mut self, column: &'static str) -> Rule<i32> {
        let (number, change) = Self::refused(column, normalize::int4(self.value(column)))?;
        self.note(column, change);
        Ok(number)
    }

    fn non_negative(&mut self, column: &'static str) -> Rule<i32> {
        let number = self.int4(column)?;
        if number < 0 {
            return Err(Refusal(format!("{column}: {number} is negative")));
        }
        Ok(number)
    }

    fn real(&self, column: &'static str) -> Rule<f64> {
        let number = Self::refused(column, normalize::real(self.value(column)))?;
        if number < 0.0 {
            return Err(Refusal(format!("{column}: {number} is negative")));
        }
        Ok(number)
    }

    fn canonical(&mut self, column: &'static str, allowed: &[&'static str]) -> Rule<&'static str> {
        let (value, change) = Self::refused(column, normalize::canonical(self.value(column), allowed))?;
        self.note(column, change);
        Ok(value)
    }
}

/// A parent user that was imported, or the reason the row cannot be.
fn user_parent(context: &Context, column: &str, id: &str) -> Rule<()> {
    if context.users.contains(id) {
        Ok(())
    } else if let Some(why) = context.set_aside_users.get(id) {
        Err(Refusal(format!("{column}: user {id} was quarantined ({why})")))
    } else {
        Err(Refusal(format!("{column}: no user {id}")))
    }
}

fn project_parent(context: &Context, id: &str) -> Rule<()> {
    if context.projects.contains(id) {
        Ok(())
    } else if context.set_aside_projects.contains(id) {
        Err(Refusal(format!("projectId: project {id} was quarantined")))
    } else {
        Err(Refusal(format!("projectId: no project {id}")))
    }
}

fn user(row: &mut Reader, context: &mut Context) -> Rule<Outcome> {
    let id = row.text("id")?;
    let outcome = user_cells(row, context, &id);
    match &outcome {
        Ok(_) => {
            context.users.insert(id);
        }
        Err(Refusal(reason)) => {
            context.set_aside_users.insert(id, reason.clone());
        }
    }
    outcome
}

fn user_cells(row: &mut Reader, context: &Context, id: &str) -> Rule<Outcome> {
    if let Some(kept) = context.email_losers.get(id) {
        return Err(Refusal(format!("email: the same e-mail as user {kept}, created earlier and kept")));
    }
    let email = row.text("email")?;
    let lowered = email.to_lowercase();
    if lowered != email {
        row.note("email", Some(Changed::counted("e-mail lower-cased")));
    }
    let stored = row.text("password")?;
    let (password, reset) = match normalize::password(&stored) {
        Password::Hash => (stored, false),
        Password::NotAHash => {
            row.note("password", Some(Changed::reported("no password hash: not kept; the account needs a reset")));
            (String::new(), true)
        }
    };
    Ok(Outcome::Keep(vec![
        Cell::Text(id.to_owned()),
        Cell::optional_text(row.optional_text("name")?),
        Cell::Text(lowered),
        Cell::optional_timestamp(row.optional_time("emailVerified")?),
        Cell::Text(password),
        Cell::optional_text(row.optional_text("image")?),
        Cell::Text(row.canonical("plan", &["FREE", "PRO", "TEAM", "ENTERPRISE"])?.to_owned()),
        Cell::Int4(row.non_negative("tokenBalance")?),
        Cell::Float8(row.real("contextUsed")?),
        Cell::Timestamp(row.time("createdAt")?),
        Cell::Timestamp(row.time("updatedAt")?),
        Cell::Bool(reset),
    ]))
}

fn account(row: &mut Reader, context: &Context) -> Rule<Outcome> {
    let user_id = row.text("userId")?;
    user_parent(context, "userId", &user_id)?;
    let expires_at = match row.value("expires_at") {
        Value::Null => Cell::Null,
        _ => Cell::Int4(row.int4("expires_at")?),
    };
    Ok(Outcome::Keep(vec![
        Cell::Text(user_id),
        Cell::Text(row.text("type")?),
        Cell::Text(row.text("provider")?),
        Cell::Text(row.text("providerAccountId")?),
        Cell::optional_text(row.optional_text("refresh_token")?),
        Cell::optional_text(row.optional_text("access_token")?),
        expires_at,
        Cell::optional_text(row.optional_text("token_type")?),
        Cell::optional_text(row.optional_text("scope")?),
        Cell::optional_text(row.optional_text("id_token")?),
        Cell::optional_text(row.optional_text("session_state")?),
        Cell::Timestamp(row.time("createdAt")?),
        Cell::Timestamp(row.time("updatedAt")?),
    ]))
}

fn session(row: &mut Reader, context: &Context) -> Rule<Outcome> {
    let user_id = row.text("userId")?;
    user_parent(context, "userId", &user_id)?;
    let expires = row.time("expires")?;
    if expires <= context.now {
        return Ok(Outcome::Drop);
    }
    // A token with a `.` would read as one of the service's `<userId>.<secret>` tokens, which
    // it is not, and could never sign in (`auth::token`): its user signs in again.
    let token = row.text("sessionToken")?;
    if token.contains('.') {
        return Ok(Outcome::Drop);
    }
    // Stored as the service stores its own sessions: the token's SHA-256, never the token.
    let token_hash = crate::auth::token::hash_token(&token);
    Ok(Outcome::Keep(vec![
        Cell::Text(token_hash),
        Cell::Text(user_id),
        Cell::Timestamp(expires),
        Cell::Timestamp(row.time("createdAt")?),
        Cell::Timestamp(row.time("updatedAt")?),
    ]))
}

fn verification_token(row: &mut Reader) -> Rule<Outcome> {
    Ok(Outcome::Keep(vec![
        Cell::Text(row.text("identifier")?),
        Cell::Text(row.text("token")?),
        Cell::Timestamp(row.time("expires")?),
    ]))
}

fn project(row: &mut Reader, context: &mut Context) -> Rule<Outcome> {
    let id = row.text("id")?;
    let outcome = project_cells(row, context, &id);
    match &outcome {
        Ok(_) => context.projects.insert(id),
        Err(_) => context.set_aside_projects.insert(id),
    };
    outcome
}

fn project_cells(row: &mut Reader, context: &Context, id: &str) -> Rule<Outcome> {
    let owner = row.text("userId")?;
    user_parent(context, "userId", &owner)?;
    let name = row.text("name")?;
    let length = name.chars().count();
    if !(1..=200).contains(&length) {
        return Err(Refusal(format!("name: {length} characters; a project name has 1 to 200")));
    }
    let (agents, change) = Reader::refused("activeAgents", normalize::agents(row.value("activeAgents")))?;
    row.note("activeAgents", change);
    // Without files, currentCode becomes the file index.html (stage "ProjectFile (from
    // currentCode)"), as `migrate` does; with files it stays where it was.
    let has_files = matches!(row.extra(0), Value::Integer(1));
    let current_code = match row.optional_text("currentCode")? {
        Some(code) if !has_files && !code.is_empty() => {
            row.note("currentCode", Some(Changed::counted("moved into the file index.html")));
            None
        }
        other => other,
    };
    let mut counter = |column: &'static str| -> Rule<i32> {
        let count = row.int4(column)?;
        if count < 0 {
            row.note(column, Some(Changed::counted("negative counter; folded as 0")));
        }
        Ok(count.max(0))
    };
    let (likes, forks) = (counter("likes")?, counter("forks")?);
    Ok(Outcome::Keep(vec![
        Cell::Text(id.to_owned()),
        Cell::Text(name),
        Cell::optional_text(row.optional_text("description")?),
        Cell::Text(row.text("projectType")?),
        Cell::Names(agents),
        Cell::optional_text(current_code),
        Cell::Text(row.canonical("visibility", &["PRIVATE", "PUBLIC"])?.to_owned()),
        Cell::Text(owner),
        Cell::Timestamp(row.time("createdAt")?),
        Cell::Timestamp(row.time("updatedAt")?),
        Cell::Int4(likes),
        Cell::Int4(forks),
    ]))
}

fn file_cells(
    id: String,
    project: String,
    path: String,
    content: String,
    language: String,
    times: (i64, i64),
) -> Vec<Cell> {
    let size = i32::try_from(content.len()).unwrap_or(i32::MAX);
    let checksum = crate::validate::checksum(&content);
    vec![
        Cell::Text(id),
        Cell::Text(project),
        Cell::Text(path),
        Cell::Text(content),
        Cell::Text(language),
        Cell::Timestamp(times.0),
        Cell::Timestamp(times.1),
        Cell::Int4(size),
        Cell::Text(checksum),
    ]
}

fn file(row: &mut Reader, context: &Context) -> Rule<Outcome> {
    let project = row.text("projectId")?;
    project_parent(context, &project)?;
    let path = row.text("path")?;
    if !(1..=255).contains(&path.len()) {
        return Err(Refusal(format!("path: {} bytes; a path has 1 to 255", path.len())));
    }
    let content = row.text("content")?;
    if content.len() > context.limits.file_bytes {
        row.note("content", Some(Changed::counted("larger than the API's file limit; kept whole")));
    }
    let times = (row.time("createdAt")?, row.time("updatedAt")?);
    Ok(Outcome::Keep(file_cells(row.text("id")?, project, path, content, row.text("language")?, times)))
}

fn file_from_current_code(row: &mut Reader, context: &Context) -> Rule<Outcome> {
    let project = row.text("id")?;
    if !context.projects.contains(&project) {
        // The project itself was quarantined, currentCode with it.
        return Ok(Outcome::Drop);
    }
    let content = row.text("currentCode")?;
    let updated = row.time("updatedAt")?;
    let id = format!("mig_{project}");
    Ok(Outcome::Keep(file_cells(id, project, "index.html".into(), content, "html".into(), (updated, updated))))
}

fn message(row: &mut Reader, context: &Context) -> Rule<Outcome> {
    let project = row.text("projectId")?;
    project_parent(context, &project)?;
    let content = row.text("content")?;
    if content.chars().count() > context.limits.message_chars {
        row.note("content", Some(Changed::counted("longer than the API's message limit; kept whole")));
    }
    Ok(Outcome::Keep(vec![
        Cell::Text(row.text("id")?),
        Cell::Text(row.canonical("role", &["user", "assistant", "system"])?.to_owned()),
        Cell::Text(content),
        Cell::Text(project),
        Cell::Timestamp(row.time("createdAt")?),
    ]))
}

fn collaborator(row: &mut Reader, context: &Context) -> Rule<Outcome> {
    let project = row.text("projectId")?;
    project_parent(context, &project)?;
    let user_id = row.text("userId")?;
    user_parent(context, "userId", &user_id)?;
    Ok(Outcome::Keep(vec![
        Cell::Text(row.text("id")?),
        Cell::Text(project),
        Cell::Text(user_id),
        Cell::Text(row.canonical("role", &["VIEWER", "EDITOR", "ADMIN"])?.to_owned()),
        Cell::Timestamp(row.time("createdAt")?),
    ]))
}

fn invite(row: &mut Reader, context: &mut Context) -> Rule<Outcome> {
    let project = row.text("projectId")?;
    project_parent(context, &project)?;
    let (from, to) = (row.text("fromUserId")?, row.text("toUserId")?);
    user_parent(context, "fromUserId", &from)?;
    user_parent(context, "toUserId", &to)?;
    if from == to {
        return Err(Refusal("toUserId: an invite to oneself".into()));
    }
    let status = row.canonical("status", &["PENDING", "ACCEPTED", "DECLINED", "REVOKED", "EXPIRED"])?;
    let created = row.time("createdAt")?;
    let updated = row.time("updatedAt")?;
    if status == "PENDING" && !context.pending_invites.insert((project.clone(), to.clone())) {
        return Err(Refusal(format!("status: a second pending invite of user {to} to project {project}")));
    }
    Ok(Outcome::Keep(vec![
        Cell::Text(row.text("id")?),
        Cell::Text(project),
        Cell::Text(from),
        Cell::Text(to),
        Cell::Text(status.to_owned()),
        Cell::Timestamp(created),
        Cell::Timestamp(updated),
        Cell::Timestamp(created + INVITE_LIFETIME_MILLIS),
    ]))
}

fn usage(row: &mut Reader, context: &Context) -> Rule<Outcome> {
    let user_id = row.text("userId")?;
    user_parent(context, "userId", &user_id)?;
    Ok(Outcome::Keep(vec![
        Cell::Text(row.text("id")?),
        Cell::Int4(row.non_negative("tokensUsed")?),
        Cell::Float8(row.real("contextUsed")?),
        Cell::Int4(row.non_negative("savedTokens")?),
        Cell::Text(user_id),
        Cell::Text(row.text("endpoint")?),
        Cell::Timestamp(row.time("timestamp")?),
    ]))
}
