// No `import "server-only"`: the page applies these too (app/_components/useWriteQueue.ts).
import type { Task } from "../tasks/schema";

/** One task's change, as GET /api/tasks/events sends it. `task` is the new state (absent for a delete). */
export type LiveChange = {
  op: "create" | "update" | "delete" | "restore";
  id: number;
  version: number;
  task?: Task;
};
