"use client";

import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { useMemo } from "react";
import { listTasksAction } from "@/app/actions";
import type { Task } from "@/lib/tasks/schema";
import { failed } from "./actionErrors";
import { appendPage, firstPageData, loadedTasks, nextCursorOf, TASKS_KEY, type Page, type TasksData } from "./taskList";

async function readPage(cursor: string | null): Promise<Page> {
  const result = await listTasksAction({ cursor });
  if (!result.ok) throw failed(result.error);
  return { tasks: result.tasks, nextCursor: result.nextCursor };
}

/**
 * The loaded tasks, starting from the page the server rendered. "Load more" is merged into the
 * cache when it arrives (not a refetch of every page), so it never undoes a newer change.
 */
export function useTaskList({
  initialTasks,
  initialNextCursor,
  onPageLoaded,
}: {
  initialTasks: Task[];
  initialNextCursor: string | null;
  /** Tasks a "Load more" brought, so later writes send their versions. */
  onPageLoaded: (tasks: Task[]) => void;
}) {
  const queryClient = useQueryClient();
  const query = useInfiniteQuery<Page, Error, TasksData, typeof TASKS_KEY, string | null>({
    queryKey: TASKS_KEY,
    queryFn: ({ pageParam }) => readPage(pageParam),
    initialPageParam: null,
    getNextPageParam: (last) => last.nextCursor,
    initialData: firstPageData(initialTasks, initialNextCursor),
    refetchOnWindowFocus: false,
  });

  const loadMore = useMutation<Page, Error, string>({
    mutationFn: (cursor) => readPage(cursor),
    onSuccess: (page, cursor) => {
      onPageLoaded(page.tasks);
      queryClient.setQueryData<TasksData>(TASKS_KEY, (d) => (d ? appendPage(d, page, cursor) : d));
    },
  });

  const tasks = useMemo(() => loadedTasks(query.data), [query.data]);
  const nextCursor = nextCursorOf(query.data);
  return {
    tasks,
    nextCursor,
    loadMore: () => {
      if (nextCursor !== null) loadMore.mutate(nextCursor);
    },
    loadingMore: loadMore.isPending,
    /** Why the list could not be (re)read, if it couldn't. */
    error: loadMore.error ?? query.error,
  };
}
