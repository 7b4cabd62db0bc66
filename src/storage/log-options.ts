// The options FileStorage and SharedLog share, with their defaults.
import type { Codec } from '../core/codec.js';
import { jsonStorageCodec } from './codec.js';

/** The options of a log in segment files, defaults filled in. */
export interface LogOptions {
  readonly codec: Codec;
  readonly segmentBytes: number;
  readonly fsync: boolean;
  readonly onWarning: ((message: string) => void) | undefined;
}

/** Fills in the defaults (JSON, 64 MiB segments, fsync on); `who` names the class in errors. */
export function logOptions(options: Partial<LogOptions>, who: string): LogOptions {
  const segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
  if (!(segmentBytes > 0)) throw new RangeError(`${who}: segmentBytes must be positive`);
  return {
    codec: options.codec ?? jsonStorageCodec,
    segmentBytes,
    fsync: options.fsync ?? true,
    onWarning: options.onWarning,
  };
}
