ALTER TABLE "tasks" ADD COLUMN "due_on" date;--> statement-breakpoint
CREATE INDEX "tasks_user_id_done_id_idx" ON "tasks" USING btree ("user_id","done","id" DESC NULLS LAST) WHERE "tasks"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "tasks_user_id_due_on_id_idx" ON "tasks" USING btree ("user_id","due_on","id") WHERE "tasks"."deleted_at" is null;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_due_on_range" CHECK ("tasks"."due_on" between '2000-01-01' and '2100-12-31');