// The crash tests' child process: boots, waits for "go", opens its storage and saves until the
// parent SIGKILLs it after a random delay; the parent then reads what it recorded as tried and
// acknowledged from its progress file (written synchronously, so a SIGKILL cannot undo a line).
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { compiled } from './file-harness.js';

export interface ChildRun {
  ready: number | undefined;
  tried: number | undefined;
  acked: number | undefined;
  lines: string[];
  killAfterMs: number;
  early: boolean;
}

/** A booted child, waiting for "go" before it opens the directory. */
export class Child {
  private readonly proc: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly run: ChildRun = {
    ready: undefined,
    tried: undefined,
    acked: undefined,
    lines: [],
    killAfterMs: 0,
    early: false,
  };
  readonly booted: Promise<void>;
  readonly closed: Promise<void>;
  private onReady: () => void = () => {};
  private killed = false;

  /**
   * @param script - The child program, compiled, relative to dist/.
   * @param args - Its arguments; the progress file is passed last.
   */
  constructor(
    script: string,
    args: string[],
    private readonly progressFile: string,
  ) {
    this.proc = spawn(process.execPath, [compiled(script), ...args, progressFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let pending = '';
    let stderr = '';
    let booted!: () => void;
    this.booted = new Promise((resolve) => (booted = resolve));
    this.proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line === 'booted') booted();
        else if (line === 'ready') this.onReady();
      }
    });
    this.proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    this.proc.stdin.on('error', () => {}); // a child killed early closes its end
    // 'close' comes after the exit and after stdout is drained: every line printed is in.
    this.closed = new Promise((resolve, reject) => {
      this.proc.on('error', reject);
      this.proc.on('close', (code, signal) => {
        if (!this.killed || signal !== 'SIGKILL')
          reject(new Error(`child ended by itself (code ${code}, signal ${signal}): ${stderr}`));
        else resolve();
      });
    });
    this.closed.catch(() => booted()); // unblock a waiter; the rejection is reported by run()
  }

  /** Lets it open the directory and SIGKILLs it after a random delay. */
  async go(rand: () => number): Promise<ChildRun> {
    await this.booted;
    // Mostly kill while it saves; sometimes early, possibly in the middle of loading and repair.
    const early = rand() < 0.15;
    const ms = early ? rand() * 40 : rand() * 25;
    Object.assign(this.run, { early, killAfterMs: ms });
    if (early) setTimeout(() => this.kill(), ms);
    else this.onReady = () => setTimeout(() => this.kill(), ms);
    this.proc.stdin.write('go\n');
    await this.closed;
    const text = await readFile(this.progressFile, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      this.run.lines.push(line);
      const [word, n] = line.split(' ');
      if (word === 'ready') this.run.ready = Number(n);
      else if (word === 'try') this.run.tried = Number(n);
      else if (word === 'ack') this.run.acked = Number(n);
    }
    return this.run;
  }

  kill(): void {
    this.killed = true;
    this.proc.kill('SIGKILL');
  }
}
