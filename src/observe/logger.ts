// The replica's log lines go to a logger the application hands it. Any object with pino's method
// shape fits (pino, bunyan-alikes, a console adapter), so the library depends on no logging package.

/**
 * Where a {@link Replica} writes its log lines, in pino's shape: structured fields first, then a
 * message. A pino logger, or a child of one, fits as is. The replica never lets a throwing logger
 * break its loop: the line is lost, nothing else.
 */
export interface Logger {
  /** Detail for whoever debugs a cluster (role changes, each dropped message). */
  debug(fields: object, message: string): void;
  /** What an operator follows: elections, leaders, snapshots, membership, catch-up progress. */
  info(fields: object, message: string): void;
  /** Something is off but the replica goes on: hostile messages dropped, a listener that threw. */
  warn(fields: object, message: string): void;
  /** The replica stopped for good: a storage failure, a throwing applyTransition. */
  error(fields: object, message: string): void;
}

const nothing = (): void => undefined;

/** The default logger: writes nothing. */
export const SILENT_LOGGER: Logger = { debug: nothing, info: nothing, warn: nothing, error: nothing };

/** Whether `v` has the four methods of a {@link Logger}. */
export function isLogger(v: unknown): v is Logger {
  const l = v as Record<string, unknown> | null;
  return (
    typeof l === 'object' && l !== null && ['debug', 'info', 'warn', 'error'].every((m) => typeof l[m] === 'function')
  );
}

/** The guarded form of each logger seen, so the replicas of a host that share a logger share its guard. */
const guarded = new WeakMap<Logger, Logger>();

/** A logger whose methods never throw: a line the application's logger refuses is dropped. */
export function safeLogger(logger: Logger): Logger {
  if (logger === SILENT_LOGGER) return logger; // it cannot throw: no wrapper, nothing allocated per replica
  let safe = guarded.get(logger);
  if (!safe) guarded.set(logger, (safe = guard(logger)));
  return safe;
}

function guard(logger: Logger): Logger {
  const wrap =
    (level: keyof Logger) =>
    (fields: object, message: string): void => {
      try {
        logger[level](fields, message);
      } catch {
        // The logger is the application's: its failure must not stop replication.
      }
    };
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}
