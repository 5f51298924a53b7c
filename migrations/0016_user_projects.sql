-- A user's side of the project group (docs/scaling.md): one row per project a user owns or
-- collaborates on, with the user's access and the project's "updatedAt", so that a user's
-- project list is read by "userId" alone, from one index, and would be a router query on the
-- user's shard under Citus.
--
-- The table is derived from "Project" and "ProjectCollaborator": the triggers below keep it in
-- step within the writing statement, whoever writes (the service, `vibing2 import`'s COPY,
-- SQL by hand), and "_vibing2_user_projects_rebuild"() builds it again from them (this
-- migration, `bench seed` and the import's finish, whose loads bypass or race the triggers).
-- A collaborator row of the project's own owner is left out, as the project list always did.
-- No foreign keys: the delete triggers remove the rows, and on Citus the two groups could not
-- have them.
CREATE TABLE "UserProject" (
    "userId" TEXT COLLATE "C" NOT NULL,
    "projectId" TEXT COLLATE "C" NOT NULL,
    "access" TEXT NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    -- Project first: the triggers write by project (a touch, a deleted project, a member).
    CONSTRAINT "UserProject_pkey" PRIMARY KEY ("projectId", "userId"),
    CONSTRAINT "UserProject_access_check" CHECK ("access" IN ('owner', 'admin', 'editor', 'viewer'))
);

-- Every row again from the two tables it is derived from; returns how many there are.
CREATE FUNCTION "_vibing2_user_projects_rebuild"() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE filled bigint;
BEGIN
    TRUNCATE "UserProject";
    INSERT INTO "UserProject" ("userId", "projectId", "access", "updatedAt")
    SELECT "userId", "id", 'owner', "updatedAt" FROM "Project"
    UNION ALL
    SELECT c."userId", c."projectId", lower(c."role"), p."updatedAt"
    FROM "ProjectCollaborator" c JOIN "Project" p ON p."id" = c."projectId"
    WHERE c."userId" <> p."userId";
    GET DIAGNOSTICS filled = ROW_COUNT;
    RETURN filled;
END $$;

-- New projects (one per statement from the service, a batch from the import's COPY): the
-- owner's row, and the rows of collaborators already there (an import may load them first).
CREATE FUNCTION "_vibing2_user_projects_project_added"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "UserProject" ("userId", "projectId", "access", "updatedAt")
    SELECT "userId", "id", 'owner', "updatedAt" FROM added
    UNION ALL
    SELECT c."userId", c."projectId", lower(c."role"), a."updatedAt"
    FROM added a JOIN "ProjectCollaborator" c ON c."projectId" = a."id"
    WHERE c."userId" <> a."userId"
    ON CONFLICT ("projectId", "userId") DO UPDATE SET "access" = EXCLUDED."access", "updatedAt" = EXCLUDED."updatedAt";
    RETURN NULL;
END $$;
CREATE TRIGGER "_vibing2_user_projects_project_added" AFTER INSERT ON "Project"
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION "_vibing2_user_projects_project_added"();

-- A touch or an update moves "updatedAt" on every member's row; a new owner takes the owner's
-- row, and the old one keeps the project only if they collaborate on it. A new id takes the
-- project's rows with it: "ProjectCollaborator"'s foreign key cascades the id to the member
-- rows first (their trigger below moves their "UserProject" rows), and what is left at the old
-- id, the owner's row, moves here.
--
-- Locks: a touch holds its "Project" row, then takes the member rows of the project. The
-- collaborator triggers take the same two in the same order (the project FOR SHARE first), so
-- the two wait for each other and never deadlock.
CREATE FUNCTION "_vibing2_user_projects_project_changed"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW."id" IS DISTINCT FROM OLD."id" THEN
        UPDATE "UserProject" SET "projectId" = NEW."id" WHERE "projectId" = OLD."id";
    END IF;
    IF NEW."userId" IS DISTINCT FROM OLD."userId" THEN
        DELETE FROM "UserProject" WHERE "userId" = OLD."userId" AND "projectId" = NEW."id";
        INSERT INTO "UserProject" ("userId", "projectId", "access", "updatedAt")
        SELECT c."userId", c."projectId", lower(c."role"), NEW."updatedAt" FROM "ProjectCollaborator" c
        WHERE c."projectId" = NEW."id" AND c."userId" = OLD."userId";
        INSERT INTO "UserProject" ("userId", "projectId", "access", "updatedAt")
        VALUES (NEW."userId", NEW."id", 'owner', NEW."updatedAt")
        ON CONFLICT ("projectId", "userId") DO UPDATE SET "access" = 'owner';
    END IF;
    UPDATE "UserProject" SET "updatedAt" = NEW."updatedAt"
    WHERE "projectId" = NEW."id" AND "updatedAt" IS DISTINCT FROM NEW."updatedAt";
    RETURN NULL;
END $$;
CREATE TRIGGER "_vibing2_user_projects_project_changed" AFTER UPDATE OF "updatedAt", "userId", "id" ON "Project"
    FOR EACH ROW WHEN (NEW."updatedAt" IS DISTINCT FROM OLD."updatedAt" OR NEW."userId" IS DISTINCT FROM OLD."userId"
                       OR NEW."id" IS DISTINCT FROM OLD."id")
    EXECUTE FUNCTION "_vibing2_user_projects_project_changed"();

CREATE FUNCTION "_vibing2_user_projects_project_removed"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM "UserProject" u USING removed r WHERE u."projectId" = r."id";
    RETURN NULL;
END $$;
CREATE TRIGGER "_vibing2_user_projects_project_removed" AFTER DELETE ON "Project"
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION "_vibing2_user_projects_project_removed"();

-- An accepted invite (or an imported collaborator): the member's row, unless they own the
-- project, or the project is not there yet (the import's project rows bring it then).
--
-- The projects are locked FOR SHARE first (in id order), as a touch locks them before it
-- writes the member rows: the foreign key's check only takes KEY SHARE, which a touch does not
-- wait for, and without this lock the member's row could take the "updatedAt" from before a
-- touch in progress that, in turn, cannot see the new row to move it. With it, the insert
-- waits for the touch to commit and reads its "updatedAt" (each statement here takes a new
-- snapshot), or the touch waits for this transaction and then moves the new row.
CREATE FUNCTION "_vibing2_user_projects_member_added"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM "Project" p WHERE p."id" IN (SELECT "projectId" FROM added) ORDER BY p."id" FOR SHARE;
    INSERT INTO "UserProject" ("userId", "projectId", "access", "updatedAt")
    SELECT a."userId", a."projectId", lower(a."role"), p."updatedAt"
    FROM added a JOIN "Project" p ON p."id" = a."projectId"
    WHERE a."userId" <> p."userId"
    ON CONFLICT ("projectId", "userId") DO UPDATE SET "access" = EXCLUDED."access"
    WHERE "UserProject"."access" <> 'owner';
    RETURN NULL;
END $$;
CREATE TRIGGER "_vibing2_user_projects_member_added" AFTER INSERT ON "ProjectCollaborator"
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION "_vibing2_user_projects_member_added"();

-- A role change (an accepted invite's upgrade, `set_role`): the member's "access" is changed
-- in place, so a touch waiting on the row moves it still. A row moved to another user or
-- project (by hand) leaves its old place and is written at the new one. The project is locked
-- FOR SHARE first, as in the insert trigger above, and its "updatedAt" read after the lock.
CREATE FUNCTION "_vibing2_user_projects_member_changed"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner_id text;
    project_updated timestamp(3);
BEGIN
    SELECT p."userId", p."updatedAt" INTO owner_id, project_updated
    FROM "Project" p WHERE p."id" = NEW."projectId" FOR SHARE;
    IF NEW."userId" IS DISTINCT FROM OLD."userId" OR NEW."projectId" IS DISTINCT FROM OLD."projectId" THEN
        DELETE FROM "UserProject"
        WHERE "userId" = OLD."userId" AND "projectId" = OLD."projectId" AND "access" <> 'owner';
    END IF;
    IF owner_id IS NOT NULL AND owner_id <> NEW."userId" THEN
        INSERT INTO "UserProject" ("userId", "projectId", "access", "updatedAt")
        VALUES (NEW."userId", NEW."projectId", lower(NEW."role"), project_updated)
        ON CONFLICT ("projectId", "userId") DO UPDATE SET "access" = EXCLUDED."access"
        WHERE "UserProject"."access" <> 'owner' AND "UserProject"."access" <> EXCLUDED."access";
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER "_vibing2_user_projects_member_changed"
    AFTER UPDATE OF "role", "userId", "projectId" ON "ProjectCollaborator"
    FOR EACH ROW EXECUTE FUNCTION "_vibing2_user_projects_member_changed"();

-- A member removed, leaving, or gone with their project or account.
CREATE FUNCTION "_vibing2_user_projects_member_removed"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM "UserProject" u USING removed r
    WHERE u."userId" = r."userId" AND u."projectId" = r."projectId" AND u."access" <> 'owner';
    RETURN NULL;
END $$;
CREATE TRIGGER "_vibing2_user_projects_member_removed" AFTER DELETE ON "ProjectCollaborator"
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION "_vibing2_user_projects_member_removed"();

-- TRUNCATE fires no delete trigger: the rows derived from the truncated table go with it.
CREATE FUNCTION "_vibing2_user_projects_truncated"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'Project' THEN
        TRUNCATE "UserProject";
    ELSE
        DELETE FROM "UserProject" WHERE "access" <> 'owner';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER "_vibing2_user_projects_truncated" AFTER TRUNCATE ON "Project"
    FOR EACH STATEMENT EXECUTE FUNCTION "_vibing2_user_projects_truncated"();
CREATE TRIGGER "_vibing2_user_projects_truncated" AFTER TRUNCATE ON "ProjectCollaborator"
    FOR EACH STATEMENT EXECUTE FUNCTION "_vibing2_user_projects_truncated"();

-- The triggers hold the two tables' write locks from here to the commit: nothing is written
-- between the rebuild's read and the triggers taking over.
SELECT "_vibing2_user_projects_rebuild"();
-- The project list's keyset page, in its order: the one index by user, so a user with few
-- projects is never read through another and sorted. Built after the rebuild's rows, in one
-- pass rather than row by row.
CREATE INDEX "UserProject_userId_updatedAt_projectId_idx"
    ON "UserProject" ("userId", "updatedAt" DESC, "projectId" DESC);
