//! The `User` aggregate. Password hashes leave this module only as [`Credentials`], which is
//! neither serializable nor cacheable.

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;

use crate::domain::UtcTime;

/// A user as they see themselves: never the password hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub name: Option<String>,
    pub email: String,
    pub image: Option<String>,
    pub plan: String,
    pub token_balance: i32,
    pub context_used: f64,
    pub created_at: UtcTime,
}

/// What login needs: the id and the stored password value.
pub struct Credentials {
    pub id: String,
    pub password: String,
}

/// Inserts a user on plan FREE with the default balance. A taken e-mail is a unique violation
/// on `User_email_key`, for the caller to map.
pub async fn create(
    db: impl PgExecutor<'_>,
    id: &str,
    name: &str,
    email: &str,
    password_hash: &str,
) -> sqlx::Result<UserRow> {
    sqlx::query_as!(
        UserRow,
        r#"INSERT INTO "User" ("id", "name", "email", "password") VALUES ($1, $2, $3, $4)
           RETURNING "id", "name", "email", "image", "plan", "tokenBalance" AS "token_balance",
                     "contextUsed" AS "context_used", "createdAt" AS "created_at: UtcTime""#,
        id,
        name,
        email,
        password_hash
    )
    .fetch_one(db)
    .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT "id", "name", "email", "image", "plan", "tokenBalance" AS "token_balance",
                  "contextUsed" AS "context_used", "createdAt" AS "created_at: UtcTime"
           FROM "User" WHERE "id" = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// Whether an account holds this (lower-case) e-mail.
pub async fn email_taken(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM "User" WHERE "email" = $1) AS "taken!""#, email)
        .fetch_one(db)
        .await
}

pub async fn credentials_by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as!(Credentials, r#"SELECT "id", "password" FROM "User" WHERE "email" = $1"#, email)
        .fetch_optional(db)
        .await
}

/// The stored password hash of a user.
pub async fn password_hash(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(r#"SELECT "password" FROM "User" WHERE "id" = $1"#, id).fetch_optional(db).await
}

pub async fn set_password_hash(db: impl PgExecutor<'_>, id: &str, hash: &str) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE "User" SET "password" = $2, "updatedAt" = now() AT TIME ZONE 'UTC' WHERE "id" = $1"#,
        id,
        hash
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A user's id by (lower-case) e-mail, served by `User_email_key`.
pub async fn id_by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(r#"SELECT "id" FROM "User" WHERE "email" = $1"#, email).fetch_optional(db).await
}

pub async fn exists(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM "User" WHERE "id" = $1) AS "exists!""#, id).fetch_one(db).await
}
