-- Invites expire (`collab.invite_ttl_days`, 7 by default; the service sets each invite's
-- expiry when it sends it) and can be revoked by the project's managers.
ALTER TABLE "CollaborationInvite"
    ADD COLUMN "expiresAt" TIMESTAMP(3) NOT NULL DEFAULT ((now() AT TIME ZONE 'UTC') + interval '7 days');
UPDATE "CollaborationInvite" SET "expiresAt" = "createdAt" + interval '7 days';
ALTER TABLE "CollaborationInvite"
    DROP CONSTRAINT "CollaborationInvite_status_check",
    ADD CONSTRAINT "CollaborationInvite_status_check"
        CHECK ("status" IN ('PENDING', 'ACCEPTED', 'DECLINED', 'REVOKED', 'EXPIRED'));
