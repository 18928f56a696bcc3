CREATE TABLE "cache_repairs" (
	"task_id" integer PRIMARY KEY NOT NULL,
	"index_dirty" boolean DEFAULT false NOT NULL,
	"generation" integer DEFAULT 1 NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL
);
