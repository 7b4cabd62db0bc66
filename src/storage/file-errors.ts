// The errors FileStorage.load rejects with: damaged data, another format, a directory in use.
import { FORMAT_VERSION, OLDEST_FORMAT } from './file-format.js';

/**
 * The storage directory holds data that a torn write cannot explain: a damaged record with
 * valid data after it, a damaged record in a segment other than the last, or a missing segment.
 * {@link FileStorage.load} refuses rather than return a silently shortened log.
 */
export class CorruptStorageError extends Error {
  /** Always `'CorruptStorageError'`. */
  override readonly name = 'CorruptStorageError';
  /** The damaged file. */
  readonly file: string;
  /** Byte offset in {@link CorruptStorageError.file} of the damaged record (0 for a whole-file problem). */
  readonly offset: number;
  /**
   * @param file - The damaged file.
   * @param offset - Byte offset of the damaged record.
   * @param reason - What is wrong there.
   */
  constructor(file: string, offset: number, reason: string) {
    super(`corrupt storage: ${file} at offset ${offset}: ${reason}`);
    this.file = file;
    this.offset = offset;
  }
}

/**
 * The storage directory was written in a format this version of {@link FileStorage} does not
 * read. Format 1 (before the `FORMAT` file) did not keep a snapshot's members: a replica that
 * loaded it could restart with the wrong membership. {@link FileStorage.load} refuses it.
 */
export class StorageFormatError extends Error {
  /** Always `'StorageFormatError'`. */
  override readonly name = 'StorageFormatError';
  /** The directory. */
  readonly dir: string;
  /** The format version found. */
  readonly version: number;
  /**
   * @param dir - The directory.
   * @param version - The format version found in it.
   */
  constructor(dir: string, version: number) {
    super(
      `storage directory ${dir} is in FileStorage format ${version}; ` +
        `this version reads formats ${OLDEST_FORMAT} to ${FORMAT_VERSION}. ` +
        (version < OLDEST_FORMAT
          ? 'Format 1 did not keep the membership in snapshots: remove the directory and add the ' +
            'member back under a new id, or run it with the tickraft version that wrote it.'
          : 'Upgrade tickraft to read it.'),
    );
    this.dir = dir;
    this.version = version;
  }
}

/** Another live {@link FileStorage} or `SharedLog`, in this process or another, has the directory open. */
export class StorageLockedError extends Error {
  /** Always `'StorageLockedError'`. */
  override readonly name = 'StorageLockedError';
  /** The directory that is locked. */
  readonly dir: string;
  /** The process that holds the lock, when known. */
  readonly pid: number | undefined;
  /**
   * @param dir - The locked directory.
   * @param pid - The holder's process id, when known.
   */
  constructor(dir: string, pid: number | undefined) {
    super(
      pid === process.pid
        ? `storage directory ${dir} is already open in this process; close() the other FileStorage or SharedLog first`
        : `storage directory ${dir} is locked by process ${pid ?? '(unknown)'}, which is still running`,
    );
    this.dir = dir;
    this.pid = pid;
  }
}
