import type { Message } from '../core/message.js';
import type { ReplicaId } from '../core/types.js';

/** A message on the wire. */
export interface Envelope<T, D> {
  readonly deliverAt: number;
  /** Breaks ties in `deliverAt` by send order, which keeps delivery deterministic. */
  readonly seq: number;
  readonly from: ReplicaId;
  readonly message: Message<T, D>;
}

const before = <T, D>(a: Envelope<T, D>, b: Envelope<T, D>): boolean =>
  a.deliverAt < b.deliverAt || (a.deliverAt === b.deliverAt && a.seq < b.seq);

/** A binary min-heap of envelopes by (deliverAt, seq): a node's inbox. */
export class Inbox<T, D> {
  private readonly items: Envelope<T, D>[] = [];

  get size(): number {
    return this.items.length;
  }
  peek(): Envelope<T, D> | undefined {
    return this.items[0];
  }
  clear(): void {
    this.items.length = 0;
  }

  push(e: Envelope<T, D>): void {
    const a = this.items;
    let i = a.push(e) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(e, a[parent]!)) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = e;
  }

  pop(): Envelope<T, D> | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const child = r < a.length && before(a[r]!, a[l]!) ? r : l;
      if (!before(a[child]!, last)) break;
      a[i] = a[child]!;
      i = child;
    }
    a[i] = last;
    return top;
  }
}
