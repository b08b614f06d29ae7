import type { Variant } from "../define.js";
import { skipRootLoadFlush } from "./hardware.js";
import { enterGuestWithoutMb } from "./memory-order.js";
import { invalidateUnderReadLock, uninitUnderMmuLock, uninitUnprotected } from "./seed-000.js";
import { fifoWalk, restartOnInvalid, terminateOnInvalid } from "./seed-001.js";
import { invalidateRequeues, putRootNoQueue, zapAllFastNoFlush, zapperPutsUngifted } from "./seed-002.js";
import { decNotOneSetZero, openCodedMarkInvalid, paoloDecAndTest, seanRecursive } from "./seed-003.js";
import { rmapLockWithoutMmuLock, unlockReadonlyWritesZero, writerWithoutRmapLock } from "./seed-004.js";

/** Every built-in variant, by name. */
export const BUILTIN_VARIANTS: readonly Variant[] = [
  uninitUnderMmuLock,
  uninitUnprotected,
  invalidateUnderReadLock,
  terminateOnInvalid,
  restartOnInvalid,
  fifoWalk,
  invalidateRequeues,
  putRootNoQueue,
  zapperPutsUngifted,
  zapAllFastNoFlush,
  decNotOneSetZero,
  paoloDecAndTest,
  seanRecursive,
  openCodedMarkInvalid,
  unlockReadonlyWritesZero,
  rmapLockWithoutMmuLock,
  writerWithoutRmapLock,
  skipRootLoadFlush,
  enterGuestWithoutMb,
];
