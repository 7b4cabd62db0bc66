/**
 * Requests and answers over a forked child's IPC channel, for the bench's child processes
 * (server.ts and group-worker.ts): each request carries a `rid` that its answer repeats; an
 * answer with `error` rejects; a message without `rid` is an event; a child that exits rejects
 * everything still waiting.
 */
import type { ChildProcess } from 'node:child_process';

type Waiter = { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void };

export class IpcPeer {
  /** Resolves once the child has exited (immediately for a child never attached). */
  exited: Promise<void> = Promise.resolve();
  /** Messages without a `rid` other than `ready`. */
  onEvent: ((m: Record<string, unknown>) => void) | undefined;
  private child: ChildProcess | undefined;
  private rid = 0;
  private readonly waiting = new Map<number, Waiter>();

  /** `name` says who the child is in errors, e.g. "bench replica 2". */
  constructor(private readonly name: string) {}

  /** Takes over a newly forked child; resolves when it sends `{ type: 'ready' }`, rejects if it exits first. */
  attach(child: ChildProcess): Promise<void> {
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        for (const w of this.waiting.values()) w.reject(new Error(`${this.name} exited`));
        this.waiting.clear();
        resolve();
      }),
    );
    return new Promise((resolve, reject) => {
      child.once('exit', (code, signal) =>
        reject(new Error(`${this.name} exited (${code ?? signal}) before it was ready`)),
      );
      child.on('message', (raw) => {
        const m = raw as Record<string, unknown>;
        if (m.type === 'ready') return resolve();
        if (typeof m.rid !== 'number') return this.onEvent?.(m);
        const w = this.waiting.get(m.rid);
        this.waiting.delete(m.rid);
        if (m.error !== undefined) w?.reject(new Error(String(m.error)));
        else w?.resolve(m);
      });
    });
  }

  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Sends `req` with a fresh `rid`; its answer, or a rejection after `timeoutMs`. */
  request<R>(req: { type: string }, timeoutMs = 60_000): Promise<R> {
    if (!this.running) return Promise.reject(new Error(`${this.name} is not running`));
    const rid = ++this.rid;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(rid);
        reject(new Error(`${this.name}: no answer to ${req.type} in ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = (f: () => void): void => {
        clearTimeout(timer);
        f();
      };
      this.waiting.set(rid, { resolve: (v) => settle(() => resolve(v as R)), reject: (e) => settle(() => reject(e)) });
      this.child!.send({ ...req, rid });
    });
  }
}
