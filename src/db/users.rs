//! The `User` aggregate. Password hashes leave this module only as [`Credentials`], which is
//! neither serializable nor cacheable.

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;

use crate::domain::UtcTime;
use crate::telemetry::queries::timed;

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

crate::telemetry::queries::one_row!(UserRow);

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
    timed("users.create", async move {
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
    })
    .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<UserRow>> {
    timed("users.by_id", async move {
        sqlx::query_as!(
            UserRow,
            r#"SELECT "id", "name", "email", "image", "plan", "tokenBalance" AS "token_balance",
                      "contextUsed" AS "context_used", "createdAt" AS "created_at: UtcTime"
               FROM "User" WHERE "id" = $1"#,
            id
        )
        .fetch_optional(db)
        .await
    })
    .await
}

/// Whether an account holds this (lower-case) e-mail.
pub async fn email_taken(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<bool> {
    timed("users.email_taken", async move {
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM "User" WHERE "email" = $1) AS "taken!""#, email)
            .fetch_one(db)
            .await
    })
    .await
}

pub async fn credentials_by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<Credentials>> {
    timed("users.credentials_by_email", async move {
        sqlx::query_as!(Credentials, r#"SELECT "id", "password" FROM "User" WHERE "email" = $1"#, email)
            .fetch_optional(db)
            .await
    })
    .await
}

/// The stored password hash of a user.
pub async fn password_hash(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<String>> {
    timed("users.password_hash", async move {
        sqlx::query_scalar!(r#"SELECT "password" FROM "User" WHERE "id" = $1"#, id).fetch_optional(db).await
    })
    .await
}

pub async fn set_password_hash(db: impl PgExecutor<'_>, id: &str, hash: &str) -> sqlx::Result<()> {
    timed("users.set_password_hash", async move {
        sqlx::query!(
            r#"UPDATE "User" SET "password" = $2, "updatedAt" = now() AT TIME ZONE 'UTC' WHERE "id" = $1"#,
            id,
            hash
        )
        .execute(db)
        .await?;
        Ok(())
    })
    .await
}

/// Replaces the password hash only if it is still `expected` (a rehash must not undo a
/// password change that landed meanwhile); whether it did.
pub async fn replace_password_hash(
    db: impl PgExecutor<'_>,
    id: &str,
    expected: &str,
    hash: &str,
) -> sqlx::Result<bool> {
    timed("users.replace_password_hash", async move {
        let replaced = sqlx::query!(
            r#"UPDATE "User" SET "password" = $3, "updatedAt" = now() AT TIME ZONE 'UTC'
               WHERE "id" = $1 AND "password" = $2"#,
            id,
            expected,
            hash
        )
        .execute(db)
        .await?;
        Ok(replaced.rows_affected() == 1)
    })
    .await
}

/// A user's id by (lower-case) e-mail, served by `User_email_key`.
pub async fn id_by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<String>> {
    timed("users.id_by_email", async move {
        sqlx::query_scalar!(r#"SELECT "id" FROM "User" WHERE "email" = $1"#, email).fetch_optional(db).await
    })
    .await
}

pub async fn exists(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<bool> {
    timed("users.exists", async move {
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM "User" WHERE "id" = $1) AS "exists!""#, id)
            .fetch_one(db)
            .await
    })
    .await
}
