/**
 * tickraft/file: `FileStorage`, a durable {@link Storage} in one directory (a CRC-checked,
 * segmented log with one fsync per save, atomic snapshots, torn-tail recovery), its errors and
 * its default codec; and `SharedLog`, one write-ahead log for the many groups of a process
 * (`tickraft/multi`).
 * @packageDocumentation
 * @module tickraft/file
 */
export { FileStorage, type FileStorageOptions } from './storage/file-storage.js';
export { SharedLog, type SharedLogOptions, type SharedLogStats } from './storage/shared-log.js';
export type { FileStorageRecovery } from './storage/file-recovery.js';
export { CorruptStorageError, StorageFormatError, StorageLockedError } from './storage/file-errors.js';
export { jsonStorageCodec, type StorageCodec } from './storage/codec.js';
export type { Codec } from './core/codec.js';
export type { Storage } from './core/storage.js';
