/**
 * A first-in first-out queue holding at most `capacity` items and, if given, at most `maxBytes`
 * bytes as `sizeOf` counts them: pushing onto a full queue drops the oldest items (never the one
 * pushed, even if it alone is larger). Raft tolerates loss, so a transport bounds its memory this
 * way rather than block a sender. Push and shift are O(1) (a ring buffer).
 */
export class BoundedQueue<T> {
  private items: (T | undefined)[];
  private head = 0;
  private count = 0;
  private total = 0;

  constructor(
    readonly capacity: number,
    readonly maxBytes = Infinity,
    private readonly sizeOf: (item: T) => number = () => 0,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new TypeError(`capacity must be a positive integer, got ${String(capacity)}`);
    if (!(maxBytes >= 1)) throw new TypeError(`maxBytes must be at least 1, got ${String(maxBytes)}`);
    // Grows on demand up to `capacity`, so a large bound costs nothing until it is used.
    this.items = new Array<T | undefined>(Math.min(capacity, 16));
  }

  get length(): number {
    return this.count;
  }

  /** The bytes held, as `sizeOf` counts them. */
  get bytes(): number {
    return this.total;
  }

  /** Appends `item`; returns how many of the oldest items were dropped to make room. */
  push(item: T): number {
    let dropped = 0;
    const size = this.sizeOf(item);
    while (this.count > 0 && (this.count === this.capacity || this.total + size > this.maxBytes)) {
      this.shift();
      dropped++;
    }
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) % this.items.length] = item;
    this.count++;
    this.total += size;
    return dropped;
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    this.total -= this.sizeOf(item as T);
    return item;
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** Removes and returns every item, oldest first. */
  drain(): T[] {
    const out: T[] = new Array<T>(this.count);
    for (let i = 0; i < out.length; i++) out[i] = this.shift() as T;
    return out;
  }

  clear(): void {
    this.items = new Array<T | undefined>(Math.min(this.capacity, 16));
    this.head = 0;
    this.count = 0;
    this.total = 0;
  }

  private grow(): void {
    const size = Math.min(this.capacity, this.items.length * 2);
    const items = new Array<T | undefined>(size);
    for (let i = 0; i < this.count; i++) items[i] = this.items[(this.head + i) % this.items.length];
    this.items = items;
    this.head = 0;
  }
}
