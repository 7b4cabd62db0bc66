import * as zlib from 'node:zlib';

/**
 * CRC-32 (IEEE 802.3, the polynomial of zlib and gzip) of `data`, continuing from `previous`
 * so that a checksum can span several buffers without concatenating them.
 *
 * Node gained a native `zlib.crc32` in 20.15 / 22.2; the package supports every Node 20, so
 * older releases fall back to a table-driven version that gives identical results.
 *
 * @param data - The bytes to checksum.
 * @param previous - The CRC of the bytes before `data`, or 0 to start.
 * @returns The unsigned 32-bit checksum.
 */
export const crc32: (data: Uint8Array, previous?: number) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? (data, previous = 0) => zlib.crc32(data, previous)
    : tableCrc32;

let table: Uint32Array | undefined;

/** The portable fallback; exported for the test that pins it to the native one. @internal */
export function tableCrc32(data: Uint8Array, previous = 0): number {
  const t = (table ??= makeTable());
  let c = ~previous >>> 0;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}
