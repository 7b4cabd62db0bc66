// A fault-injecting file layer, loaded into a tickraft-kv process with
// `NODE_OPTIONS=--import=<this file>`, for machines where the suite cannot mount a small tmpfs.
// With FAULTS_ENOSPC_AFTER=<bytes>, every FileHandle write after that many bytes fails like a
// full disk (code ENOSPC). The process writes nothing but its storage, so all writes count.
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const budget = Number(process.env.FAULTS_ENOSPC_AFTER);
if (Number.isFinite(budget)) {
  const probe = await open(join(tmpdir(), `fs-fault-${process.pid}`), 'w');
  const proto = Object.getPrototypeOf(probe) as Record<string, (...args: unknown[]) => Promise<unknown>>;
  await probe.close();
  let written = 0;
  const enospc = (): NodeJS.ErrnoException =>
    Object.assign(new Error('ENOSPC: no space left on device, write (injected by the fault suite)'), {
      code: 'ENOSPC',
      errno: -28,
      syscall: 'write',
    });
  for (const name of ['write', 'writev', 'writeFile', 'appendFile']) {
    const original = proto[name];
    if (typeof original !== 'function') continue;
    proto[name] = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
      const data = args[0];
      const size =
        Buffer.isBuffer(data) || data instanceof Uint8Array
          ? data.byteLength
          : typeof data === 'string'
            ? Buffer.byteLength(data)
            : Array.isArray(data)
              ? data.reduce((n: number, b: Uint8Array) => n + b.byteLength, 0)
              : 0;
      if (written + size > budget) throw enospc();
      written += size;
      return original.apply(this, args);
    };
  }
}
