//! Likes: one per user and project, with `Project.likeCount` kept exactly equal to the number
//! of `ProjectLike` rows. Each change is one statement: the like row and the counter move
//! together, and the counter only moves when the like row did.

use sqlx::PgExecutor;

/// Likes the project; returns the like count after. Liking twice changes nothing.
pub async fn like(db: impl PgExecutor<'_>, project_id: &str, user_id: &str) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        r#"WITH inserted AS (
               INSERT INTO "ProjectLike" ("projectId", "userId") VALUES ($1, $2)
               ON CONFLICT DO NOTHING RETURNING 1
           ), counted AS (
               UPDATE "Project" SET "likeCount" = "likeCount" + 1
               WHERE "id" = $1 AND EXISTS (SELECT 1 FROM inserted) RETURNING "likeCount"
           )
           SELECT COALESCE((SELECT "likeCount" FROM counted),
                           (SELECT "likeCount" FROM "Project" WHERE "id" = $1))"#,
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_one(db)
    .await
}

/// Removes the like, if any; returns the like count after.
pub async fn unlike(db: impl PgExecutor<'_>, project_id: &str, user_id: &str) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        r#"WITH deleted AS (
               DELETE FROM "ProjectLike" WHERE "projectId" = $1 AND "userId" = $2 RETURNING 1
           ), counted AS (
               UPDATE "Project" SET "likeCount" = "likeCount" - 1
               WHERE "id" = $1 AND EXISTS (SELECT 1 FROM deleted) RETURNING "likeCount"
           )
           SELECT COALESCE((SELECT "likeCount" FROM counted),
                           (SELECT "likeCount" FROM "Project" WHERE "id" = $1))"#,
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_one(db)
    .await
}

pub async fn is_liked(db: impl PgExecutor<'_>, project_id: &str, user_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(r#"SELECT EXISTS (SELECT 1 FROM "ProjectLike" WHERE "projectId" = $1 AND "userId" = $2)"#)
        .bind(project_id)
        .bind(user_id)
        .fetch_one(db)
        .await
}
