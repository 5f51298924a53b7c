-- The membership table is derived from "Project" and "ProjectCollaborator": nothing is lost.
DROP TRIGGER "_vibing2_user_projects_project_added" ON "Project";
DROP TRIGGER "_vibing2_user_projects_project_changed" ON "Project";
DROP TRIGGER "_vibing2_user_projects_project_removed" ON "Project";
DROP TRIGGER "_vibing2_user_projects_truncated" ON "Project";
DROP TRIGGER "_vibing2_user_projects_member_added" ON "ProjectCollaborator";
DROP TRIGGER "_vibing2_user_projects_member_changed" ON "ProjectCollaborator";
DROP TRIGGER "_vibing2_user_projects_member_removed" ON "ProjectCollaborator";
DROP TRIGGER "_vibing2_user_projects_truncated" ON "ProjectCollaborator";
DROP FUNCTION "_vibing2_user_projects_project_added"();
DROP FUNCTION "_vibing2_user_projects_project_changed"();
DROP FUNCTION "_vibing2_user_projects_project_removed"();
DROP FUNCTION "_vibing2_user_projects_member_added"();
DROP FUNCTION "_vibing2_user_projects_member_changed"();
DROP FUNCTION "_vibing2_user_projects_member_removed"();
DROP FUNCTION "_vibing2_user_projects_truncated"();
DROP FUNCTION "_vibing2_user_projects_rebuild"();
DROP TABLE "UserProject";
