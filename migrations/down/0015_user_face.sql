-- Drops the public face table and the triggers that keep it: its rows are copies of "User"'s
-- columns, so nothing is lost.
DROP TRIGGER "_vibing2_user_face_update" ON "User";
DROP TRIGGER "_vibing2_user_face_insert" ON "User";
DROP FUNCTION "_vibing2_user_face_update"();
DROP FUNCTION "_vibing2_user_face_insert"();
DROP TABLE "UserFace";
