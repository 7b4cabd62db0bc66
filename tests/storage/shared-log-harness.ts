// Fixtures that run the Storage conformance suite on several groups of one SharedLog at once: a
// "restart" of a group's storage restarts the whole log (close, then open from disk), once every
// group still running its check has asked for it, so that all of them reload from disk.
import { SharedLog, type SharedLogOptions } from '../../src/file.js';
import type { StorageUnderTest } from '../../src/testing.js';
import { tempDir } from './file-harness.js';
import type { Tr } from './workload.js';

/** One SharedLog directory shared by the checks of `groups`, run concurrently. */
export class SharedRound {
  log!: SharedLog<Tr, unknown>;
  /** Restarts of the whole log so far. */
  restarts = 0;
  /** Checkpoints written by the logs closed so far. */
  checkpoints = 0;
  private readonly running: Set<number>;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: unknown) => void }>();
  private removeDir: () => Promise<void> = async () => {};
  private dir = '';

  private constructor(
    groups: readonly number[],
    private readonly options: SharedLogOptions,
  ) {
    this.running = new Set(groups);
  }

  static async create(groups: readonly number[], options: SharedLogOptions = {}): Promise<SharedRound> {
    const round = new SharedRound(groups, options);
    const { dir, remove } = await tempDir('tickraft-shared-');
    round.dir = dir;
    round.removeDir = remove;
    round.log = new SharedLog<Tr, unknown>(dir, options);
    await round.log.open();
    return round;
  }

  /** The conformance fixture of group `g`: its first open() is the group's handle, later ones restart. */
  fixture(g: number): StorageUnderTest {
    let opened = false;
    return {
      open: async () => {
        if (opened) await this.restart(g);
        opened = true;
        return this.log.group(g);
      },
      cleanup: async () => {
        this.running.delete(g);
        this.release();
        if (this.running.size === 0) {
          this.checkpoints += this.log.stats.checkpoints;
          await this.log.close();
          await this.removeDir();
        }
      },
    };
  }

  private restart(g: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.set(g, { resolve, reject });
      this.release();
    });
  }

  /** Restarts the log once every running group waits for it. */
  private release(): void {
    if (this.waiting.size === 0 || this.waiting.size < this.running.size) return;
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    void (async () => {
      this.checkpoints += this.log.stats.checkpoints;
      await this.log.close();
      this.log = new SharedLog<Tr, unknown>(this.dir, this.options);
      await this.log.open();
      this.restarts++;
    })().then(
      () => waiters.forEach((w) => w.resolve()),
      (err: unknown) => waiters.forEach((w) => w.reject(err)),
    );
  }
}
