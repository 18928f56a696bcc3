import pino from "pino";
import { env } from "./env";

/**
 * Structured JSON logs (pino), one object per line. Details that must never reach a client (driver
 * errors, stacks) go here and only here.
 */
const holder = globalThis as unknown as { __logger?: pino.Logger };
const logger = (holder.__logger ??= pino({
  level: env.LOG_LEVEL,
  base: { service: "writethrough-tasks" },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
}));

type Fields = Record<string, unknown>;

export const log = {
  debug: (msg: string, fields?: Fields) => logger.debug(fields ?? {}, msg),
  info: (msg: string, fields?: Fields) => logger.info(fields ?? {}, msg),
  warn: (msg: string, fields?: Fields) => logger.warn(fields ?? {}, msg),
  error: (msg: string, fields?: Fields) => logger.error(fields ?? {}, msg),
};
