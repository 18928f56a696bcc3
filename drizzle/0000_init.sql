CREATE TABLE "tasks" (
	"id" serial PRIMARY KEY NOT NULL,
	"title" text NOT NULL,
	"done" boolean DEFAULT false NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tasks_title_length" CHECK (char_length("tasks"."title") between 1 and 500),
	CONSTRAINT "tasks_title_trimmed" CHECK ("tasks"."title" = btrim("tasks"."title", E' \t\n\r')),
	CONSTRAINT "tasks_title_no_control_chars" CHECK ("tasks"."title" !~ '[\x01-\x1f\x7f-\x9f]'),
	CONSTRAINT "tasks_version_positive" CHECK ("tasks"."version" >= 1)
);
