// The logger of tickraft-kv: pino, JSON lines on stdout (one object per event, with `time`,
// `level`, `replica` and `msg`), or one readable line per event when stdout is a terminal.
// Synchronous writes, so that nothing logged is lost when the process exits right after.
import { pino, type DestinationStream, type Logger } from 'pino';

/** The levels `--log-level` accepts, most verbose first; `silent` logs nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A level name `--log-level` accepts. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A logger for replica `id` writing to `out` (default stdout): JSON, or readable lines on a terminal. */
export function kvLogger(id: number, level: LogLevel, out: NodeJS.WriteStream = process.stdout): Logger {
  const options = { level, base: { replica: id }, timestamp: pino.stdTimeFunctions.isoTime };
  if (out.isTTY === true) return pino(options, readable(out));
  return pino(options, pino.destination({ dest: out === process.stderr ? 2 : 1, sync: true }));
}

const NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** `2026-01-01T00:00:00.000Z INFO  [kv 1] leader of term 3 {"extra":1}`, for people. */
function readable(out: NodeJS.WriteStream): DestinationStream {
  return {
    write(line: string): void {
      const {
        time,
        level,
        replica,
        msg,
        pid: _pid,
        hostname: _host,
        ...rest
      } = JSON.parse(line) as Record<string, unknown>;
      const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
      const name = (NAMES[level as number] ?? String(level)).padEnd(5);
      out.write(`${String(time)} ${name} [kv ${String(replica)}] ${String(msg)}${extra}\n`);
    },
  };
}

/** Whether `text` names a level (for the flag parser). */
export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

export type { Logger };
