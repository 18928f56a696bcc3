import type { CacheDriverChoice } from "@/lib/names";

/** The footer's sentence about the cache, in three parts: the middle one links to the cache lab. */
export type CacheSentence = {
  before: string;
  link: string;
  after: string;
  /** The link's accessible name: its text, and where it goes. */
  linkName: string;
};

const SOURCE_OF_TRUTH = "Postgres is the source of truth; ";

/**
 * What the task page's footer says about the cache actually in use (the store's driver), or, when
 * the store could not be opened (null), about a cache without naming one.
 */
export function cacheSentence(driver: CacheDriverChoice | null): CacheSentence {
  const sentence = cacheWords(driver);
  const linkName = sentence.link === "cache lab" ? "the cache lab" : `${sentence.link} (open the cache lab)`;
  return { ...sentence, linkName };
}

function cacheWords(driver: CacheDriverChoice | null): Omit<CacheSentence, "linkName"> {
  switch (driver) {
    case "redis":
      return { before: `${SOURCE_OF_TRUTH}every write goes through the `, link: "Redis cache", after: "." };
    case "upstash":
      return { before: `${SOURCE_OF_TRUTH}every write goes through the `, link: "Upstash Redis cache", after: "." };
    case "memory":
      return { before: `${SOURCE_OF_TRUTH}every write goes through the `, link: "in-process memory cache", after: "." };
    case "none":
      return { before: `${SOURCE_OF_TRUTH}no cache is in use, so every read goes to Postgres (`, link: "cache lab", after: ")." };
    case null:
      return { before: `${SOURCE_OF_TRUTH}every write goes through the `, link: "cache", after: "." };
  }
}
