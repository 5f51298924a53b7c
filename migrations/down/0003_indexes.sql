-- vibing2:no-transaction
-- Back to the indexes of migration 2: the Prisma-era indexes are rebuilt first, then the set of
-- docs/indexes.md is dropped, all CONCURRENTLY so writers are never blocked. Idempotent, like
-- the up step, so an interrupted revert can simply be repeated.

CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_userId_idx" ON "Project" ("userId");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_visibility_updatedAt_idx" ON "Project" ("visibility", "updatedAt");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_projectType_idx" ON "Project" ("projectType");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "ProjectFile_projectId_idx" ON "ProjectFile" ("projectId");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "Message_projectId_createdAt_idx" ON "Message" ("projectId", "createdAt");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "TokenUsage_userId_timestamp_idx" ON "TokenUsage" ("userId", "timestamp");
CREATE INDEX CONCURRENTLY IF NOT EXISTS "TokenUsage_endpoint_idx" ON "TokenUsage" ("endpoint");

DROP INDEX CONCURRENTLY IF EXISTS "Project_userId_updatedAt_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Project_public_likeCount_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Project_public_forkCount_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Project_public_viewCount_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Project_public_createdAt_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Project_public_projectType_createdAt_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Project_public_featured_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Project_public_name_trgm_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Project_public_description_trgm_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Message_projectId_cursor_key";
DROP INDEX CONCURRENTLY IF EXISTS "Message_projectId_role_cursor_idx";
DROP INDEX CONCURRENTLY IF EXISTS "TokenUsage_userId_timestamp_id_idx";
DROP INDEX CONCURRENTLY IF EXISTS "TokenUsage_projectId_idx";
DROP INDEX CONCURRENTLY IF EXISTS "ProjectCollaborator_userId_projectId_idx";
DROP INDEX CONCURRENTLY IF EXISTS "CollaborationInvite_pending_key";
DROP INDEX CONCURRENTLY IF EXISTS "CollaborationInvite_projectId_idx";
DROP INDEX CONCURRENTLY IF EXISTS "CollaborationInvite_toUserId_status_createdAt_idx";
DROP INDEX CONCURRENTLY IF EXISTS "CollaborationInvite_fromUserId_idx";
DROP INDEX CONCURRENTLY IF EXISTS "ProjectLike_userId_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Competition_projectId_key";
DROP INDEX CONCURRENTLY IF EXISTS "Competition_status_createdAt_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Account_userId_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Session_userId_idx";
DROP INDEX CONCURRENTLY IF EXISTS "Session_expires_idx";
DROP INDEX CONCURRENTLY IF EXISTS "VerificationToken_expires_idx";
DROP INDEX CONCURRENTLY IF EXISTS "user_token_summary_key";
DROP INDEX CONCURRENTLY IF EXISTS "project_stats_projectId_key";
