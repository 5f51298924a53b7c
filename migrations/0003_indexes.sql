-- vibing2:no-transaction
-- The index set of docs/indexes.md. Built with CREATE INDEX CONCURRENTLY so an upgrade of a
-- live Phase-2 database never blocks writers; replacements are built before what they replace
-- is dropped. Every statement is idempotent, so an interrupted run can simply be repeated.

-- Project: the caller's own projects, newest activity first (GET /api/projects).
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_userId_updatedAt_idx"
    ON "Project" ("userId", "updatedAt" DESC, "id" DESC);

-- Project: discovery over PUBLIC projects, one index per sort, each with the id tie-breaker.
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_public_likeCount_idx"
    ON "Project" ("likeCount" DESC, "id" DESC) WHERE "visibility" = 'PUBLIC';
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_public_forkCount_idx"
    ON "Project" ("forkCount" DESC, "id" DESC) WHERE "visibility" = 'PUBLIC';
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_public_viewCount_idx"
    ON "Project" ("viewCount" DESC, "id" DESC) WHERE "visibility" = 'PUBLIC';
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_public_createdAt_idx"
    ON "Project" ("createdAt" DESC, "id" DESC) WHERE "visibility" = 'PUBLIC';
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_public_projectType_createdAt_idx"
    ON "Project" ("projectType", "createdAt" DESC, "id" DESC) WHERE "visibility" = 'PUBLIC';
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_public_featured_idx"
    ON "Project" ("isFeatured" DESC, "updatedAt" DESC, "id" DESC) WHERE "visibility" = 'PUBLIC';

-- Project: substring search on name OR description; two trigram indexes give a BitmapOr.
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_public_name_trgm_idx"
    ON "Project" USING gin ("name" gin_trgm_ops) WHERE "visibility" = 'PUBLIC';
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_public_description_trgm_idx"
    ON "Project" USING gin ("description" gin_trgm_ops) WHERE "visibility" = 'PUBLIC';

-- Message: keyset pages on the cursor, with and without a role filter.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Message_projectId_cursor_key"
    ON "Message" ("projectId", "cursor");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Message_projectId_role_cursor_idx"
    ON "Message" ("projectId", "role", "cursor");

-- TokenUsage: a user's usage by time, with the id tie-breaker for keyset pages.
CREATE INDEX CONCURRENTLY IF NOT EXISTS "TokenUsage_userId_timestamp_id_idx"
    ON "TokenUsage" ("userId", "timestamp", "id");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "TokenUsage_projectId_idx"
    ON "TokenUsage" ("projectId");

-- Collaboration.
CREATE INDEX CONCURRENTLY IF NOT EXISTS "ProjectCollaborator_userId_projectId_idx"
    ON "ProjectCollaborator" ("userId", "projectId");
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "CollaborationInvite_pending_key"
    ON "CollaborationInvite" ("projectId", "toUserId") WHERE "status" = 'PENDING';
CREATE INDEX CONCURRENTLY IF NOT EXISTS "CollaborationInvite_projectId_idx"
    ON "CollaborationInvite" ("projectId");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "CollaborationInvite_toUserId_status_createdAt_idx"
    ON "CollaborationInvite" ("toUserId", "status", "createdAt" DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS "CollaborationInvite_fromUserId_idx"
    ON "CollaborationInvite" ("fromUserId");

-- Likes and competitions.
CREATE INDEX CONCURRENTLY IF NOT EXISTS "ProjectLike_userId_idx"
    ON "ProjectLike" ("userId");
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Competition_projectId_key"
    ON "Competition" ("projectId");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Competition_status_createdAt_idx"
    ON "Competition" ("status", "createdAt" DESC, "id" DESC);

-- Auth tables: foreign keys that cascade from User, and the expiry cleanups.
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Account_userId_idx" ON "Account" ("userId");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Session_userId_idx" ON "Session" ("userId");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Session_expires_idx" ON "Session" ("expires");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "VerificationToken_expires_idx"
    ON "VerificationToken" ("expires");

-- Materialized views: unique keys, so REFRESH ... CONCURRENTLY works.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "user_token_summary_key"
    ON user_token_summary ("userId", "day", "endpoint", "model");
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "project_stats_projectId_key"
    ON project_stats ("projectId");

-- Prisma-era indexes that the set above makes redundant (see docs/indexes.md).
DROP INDEX CONCURRENTLY IF EXISTS "Project_userId_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Project_visibility_updatedAt_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Project_projectType_idx";
DROP INDEX CONCURRENTLY IF EXISTS "ProjectFile_projectId_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Message_projectId_createdAt_idx";
DROP INDEX CONCURRENTLY IF EXISTS "TokenUsage_userId_timestamp_idx";
DROP INDEX CONCURRENTLY IF EXISTS "TokenUsage_endpoint_idx";
