"use client";

import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo } from "react";
import { listTasksAction } from "@/app/actions";
import type { Task, TaskCounts } from "@/lib/tasks/schema";
import { failed } from "./actionErrors";
import {
  appendPage,
  COUNTS_KEY,
  firstPageData,
  loadedTasks,
  nextCursorOf,
  tasksKey,
  VIEWS,
  type Page,
  type TasksData,
  type View,
} from "./taskList";

type Reads = {
  /** Taken as a read starts (see useWriteQueue). */
  readToken: () => number;
  /** A read's counts, with the token taken as it started. */
  adoptCounts: (counts: TaskCounts, token: number) => void;
  /** Tasks a "Load more" brought, so later writes send their versions. */
  onPageLoaded: (tasks: Task[]) => void;
};

async function readPage(view: View, cursor: string | null, reads: Pick<Reads, "readToken" | "adoptCounts">): Promise<Page> {
  const { status, sort } = VIEWS[view];
  const token = reads.readToken();
  const result = await listTasksAction({ cursor, status, sort });
  if (!result.ok) throw failed(result.error);
  reads.adoptCounts(result.counts, token);
  return { tasks: result.tasks, nextCursor: result.nextCursor };
}

/**
 * The tasks of one view, starting from the page the server rendered (for the view it rendered).
 * Another view is read from its first page when it is chosen; a view left behind is dropped, so
 * coming back to it reads it afresh. "Load more" is merged into the cache when it arrives (not a
 * refetch of every page), so it never undoes a newer change. The counts live beside the lists:
 * every read brings the user's whole counts.
 */
export function useTaskList({
  view,
  initialView,
  serveInitial,
  initialTasks,
  initialNextCursor,
  initialCounts,
  reads,
}: {
  view: View;
  initialView: View;
  /** False once another view has been chosen: the server's page is no longer news. */
  serveInitial: boolean;
  initialTasks: Task[];
  initialNextCursor: string | null;
  initialCounts: TaskCounts;
  reads: Reads;
}) {
  const queryClient = useQueryClient();
  // The server's first page stands for the first view only, and only until another view is chosen.
  const initialData = serveInitial && view === initialView ? firstPageData(initialTasks, initialNextCursor) : undefined;
  const query = useInfiniteQuery<Page, Error, TasksData, ReturnType<typeof tasksKey>, string | null>({
    queryKey: tasksKey(view),
    queryFn: ({ pageParam }) => readPage(view, pageParam, reads),
    initialPageParam: null,
    getNextPageParam: (last) => last.nextCursor,
    initialData,
    // Left behind: dropped, so coming back reads it afresh.
    gcTime: 0,
    refetchOnWindowFocus: false,
  });

  const counts = useQuery<TaskCounts>({
    queryKey: COUNTS_KEY,
    queryFn: () => queryClient.getQueryData<TaskCounts>(COUNTS_KEY) ?? initialCounts,
    initialData: initialCounts,
    staleTime: Infinity,
    gcTime: Infinity,
    enabled: false,
  });

  const loadMore = useMutation<Page, Error, { view: View; cursor: string }>({
    mutationFn: ({ view: v, cursor }) => readPage(v, cursor, reads),
    onSuccess: (page, { view: v, cursor }) => {
      reads.onPageLoaded(page.tasks);
      queryClient.setQueryData<TasksData>(tasksKey(v), (d) => (d ? appendPage(d, page, cursor) : d));
    },
  });

  const tasks = useMemo(() => (query.data ? loadedTasks(query.data) : []), [query.data]);
  const nextCursor = query.data ? nextCursorOf(query.data) : null;
  const loadMoreError = loadMore.variables?.view === view ? loadMore.error : null;
  return {
    tasks,
    counts: counts.data,
    /** The view's first page has not arrived yet. */
    loading: query.isPending,
    nextCursor,
    loadMore: () => {
      if (nextCursor !== null) loadMore.mutate({ view, cursor: nextCursor });
    },
    loadingMore: loadMore.isPending && loadMore.variables?.view === view,
    /** Why the list could not be (re)read, if it couldn't. */
    error: loadMoreError ?? query.error,
    retry: () => void query.refetch(),
  };
}
