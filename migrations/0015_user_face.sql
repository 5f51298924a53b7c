-- A user's public face, the columns other users' pages show (name, image), in a table of its
-- own: on Citus a reference table, a copy on every node, so the project group's reads that
-- show an owner's or a member's name (projects.get, collab.members, collab.pending_of_project,
-- collab.set_role) join it on the project's shard (docs/scaling.md). The balance, the
-- password hash and the e-mail stay in "User" alone.
--
-- Kept in step with "User" by the triggers below, whoever writes it: the service's sign-up,
-- `vibing2 import` (COPY fires them), `bench seed` (which sets triggers aside and fills the
-- table itself), an operator's UPDATE. A user's deletion takes the face with it (the foreign
-- key). On Citus the triggers and the foreign key go: a reference table cannot reference a
-- distributed one, nor be written by a trigger on a distributed table's shards, so the
-- service writes the face in the transaction that writes the user (docs/scaling.md).
CREATE TABLE "UserFace" (
    "id" TEXT COLLATE "C" NOT NULL,
    "name" TEXT,
    "image" TEXT,
    CONSTRAINT "UserFace_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "UserFace_id_fkey" FOREIGN KEY ("id") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- New users: once per statement, from the statement's new rows, so a COPY of a million users
-- adds their faces in one INSERT.
CREATE FUNCTION "_vibing2_user_face_insert"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "UserFace" ("id", "name", "image")
    SELECT "id", "name", "image" FROM "_vibing2_new_users"
    ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name", "image" = EXCLUDED."image";
    RETURN NULL;
END $$;
CREATE TRIGGER "_vibing2_user_face_insert" AFTER INSERT ON "User"
    REFERENCING NEW TABLE AS "_vibing2_new_users"
    FOR EACH STATEMENT EXECUTE FUNCTION "_vibing2_user_face_insert"();

-- A changed name or image: only when one of them is set and differs, so the balance's updates
-- (every usage call) never run it. Should one UPDATE change a user's id and name together, the
-- foreign key's ON UPDATE CASCADE (an RI_ConstraintTrigger_…, which fires before this trigger,
-- triggers firing in name order) has moved the face to the new id by the time this runs.
CREATE FUNCTION "_vibing2_user_face_update"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "UserFace" ("id", "name", "image") VALUES (NEW."id", NEW."name", NEW."image")
    ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name", "image" = EXCLUDED."image";
    RETURN NULL;
END $$;
CREATE TRIGGER "_vibing2_user_face_update" AFTER UPDATE OF "name", "image" ON "User"
    FOR EACH ROW WHEN (OLD."name" IS DISTINCT FROM NEW."name" OR OLD."image" IS DISTINCT FROM NEW."image")
    EXECUTE FUNCTION "_vibing2_user_face_update"();

-- The existing users, once the triggers are in place: creating them locked "User" against
-- writes until this transaction commits, so no user is written between the two.
INSERT INTO "UserFace" ("id", "name", "image") SELECT "id", "name", "image" FROM "User";
