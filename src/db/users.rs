//! The `User` aggregate. Password hashes leave this module only as [`Credentials`], which is
//! neither serializable nor cacheable.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use utoipa::ToSchema;

/// A user as they see themselves: never the password hash.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: Option<String>,
    pub email: String,
    pub image: Option<String>,
    pub plan: String,
    pub token_balance: i32,
    pub context_used: f64,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
}

/// What login needs: the id and the stored password value.
pub struct Credentials {
    pub id: String,
    pub password: String,
}

const USER_COLUMNS: &str = r#""id", "name", "email", "image", "plan", "tokenBalance", "contextUsed", "createdAt""#;

/// Inserts a user on plan FREE with the default balance. A taken e-mail is a unique violation
/// on `User_email_key`, for the caller to map.
pub async fn create(
    db: impl PgExecutor<'_>,
    id: &str,
    name: &str,
    email: &str,
    password_hash: &str,
) -> sqlx::Result<User> {
    sqlx::query_as(&format!(
        r#"INSERT INTO "User" ("id", "name", "email", "password") VALUES ($1, $2, $3, $4)
           RETURNING {USER_COLUMNS}"#
    ))
    .bind(id)
    .bind(name)
    .bind(email)
    .bind(password_hash)
    .fetch_one(db)
    .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!(r#"SELECT {USER_COLUMNS} FROM "User" WHERE "id" = $1"#)).bind(id).fetch_optional(db).await
}

pub async fn credentials_by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<Credentials>> {
    let row: Option<(String, String)> = sqlx::query_as(r#"SELECT "id", "password" FROM "User" WHERE "email" = $1"#)
        .bind(email)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|(id, password)| Credentials { id, password }))
}

pub async fn set_password_hash(db: impl PgExecutor<'_>, id: &str, hash: &str) -> sqlx::Result<()> {
    sqlx::query(r#"UPDATE "User" SET "password" = $2, "updatedAt" = now() AT TIME ZONE 'UTC' WHERE "id" = $1"#)
        .bind(id)
        .bind(hash)
        .execute(db)
        .await?;
    Ok(())
}
