-- Runs only when 0008_invite_expiry.check.sql finds nothing: every invite is PENDING,
-- ACCEPTED or DECLINED and expires 7 days after it was sent, which the up step recomputes.
ALTER TABLE "CollaborationInvite"
    DROP COLUMN "expiresAt",
    DROP CONSTRAINT "CollaborationInvite_status_check",
    ADD CONSTRAINT "CollaborationInvite_status_check"
        CHECK ("status" IN ('PENDING', 'ACCEPTED', 'DECLINED'));
