//! Likes: one per user and project, with `Project.likeCount` kept exactly equal to the number
//! of `ProjectLike` rows. Each change is one statement: the like row and the counter move
//! together, and the counter only moves when the like row did.

use sqlx::PgExecutor;

/// Likes (`liked`) or unlikes the project; returns the like count after. Doing it twice
/// changes nothing.
pub async fn set(db: impl PgExecutor<'_>, project_id: &str, user_id: &str, liked: bool) -> sqlx::Result<i32> {
    let (change, delta) = if liked {
        (
            r#"INSERT INTO "ProjectLike" ("projectId", "userId") VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1"#,
            "+ 1",
        )
    } else {
        (r#"DELETE FROM "ProjectLike" WHERE "projectId" = $1 AND "userId" = $2 RETURNING 1"#, "- 1")
    };
    sqlx::query_scalar(&format!(
        r#"WITH changed AS ({change}), counted AS (
               UPDATE "Project" SET "likeCount" = "likeCount" {delta}
               WHERE "id" = $1 AND EXISTS (SELECT 1 FROM changed) RETURNING "likeCount"
           )
           SELECT COALESCE((SELECT "likeCount" FROM counted),
                           (SELECT "likeCount" FROM "Project" WHERE "id" = $1))"#
    ))
    .bind(project_id)
    .bind(user_id)
    .fetch_one(db)
    .await
}
