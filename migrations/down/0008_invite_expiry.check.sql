-- What dropping "expiresAt" and the REVOKED and EXPIRED statuses would lose: invites whose
-- status the older check refuses, or whose expiry the up step would not recompute.
SELECT format('%s invite(s) are REVOKED or EXPIRED, or expire other than 7 days after they were sent',
              count(*))
FROM "CollaborationInvite"
WHERE "status" NOT IN ('PENDING', 'ACCEPTED', 'DECLINED')
   OR "expiresAt" IS DISTINCT FROM "createdAt" + interval '7 days'
HAVING count(*) > 0
