//! Likes: one per user and project, with `Project.likeCount` kept exactly equal to the number
//! of `ProjectLike` rows. Each change is one statement: the like row and the counter move
//! together, and the counter only moves when the like row did.

use crate::telemetry::queries::timed;
use sqlx::PgExecutor;

/// What a like or unlike came to.
pub struct LikeOutcome {
    pub like_count: i32,
    /// Whose project lists show the count: the owner and the collaborators.
    pub members: Vec<String>,
}

/// Likes (`liked`) or unlikes the project; returns the like count after, or None without
/// such a project. Doing it twice changes nothing. Assembled from two fragments: see
/// `db::assembled`.
pub async fn set(
    db: impl PgExecutor<'_>,
    project_id: &str,
    user_id: &str,
    liked: bool,
) -> sqlx::Result<Option<LikeOutcome>> {
    timed("likes.set", async move {
        let row: Option<(i32, Vec<String>)> =
            sqlx::query_as(&set_sql(liked)).bind(project_id).bind(user_id).fetch_optional(db).await?;
        Ok(row.map(|(like_count, members)| LikeOutcome { like_count, members }))
    })
    .await
}

/// `$1` project, `$2` user: the change to the like row, the counter moved with it, and the
/// members whose lists show the counter.
pub fn set_sql(liked: bool) -> String {
    let (change, delta) = if liked {
        (
            r#"INSERT INTO "ProjectLike" ("projectId", "userId") VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1"#,
            "+ 1",
        )
    } else {
        (r#"DELETE FROM "ProjectLike" WHERE "projectId" = $1 AND "userId" = $2 RETURNING 1"#, "- 1")
    };
    format!(
        r#"WITH changed AS ({change}), counted AS (
               UPDATE "Project" SET "likeCount" = "likeCount" {delta}
               WHERE "id" = $1 AND EXISTS (SELECT 1 FROM changed) RETURNING "likeCount"
           )
           SELECT COALESCE((SELECT "likeCount" FROM counted), p."likeCount"),
                  array_prepend(p."userId", ARRAY(SELECT c."userId" FROM "ProjectCollaborator" c
                                                  WHERE c."projectId" = $1))
           FROM "Project" p WHERE p."id" = $1"#
    )
}
