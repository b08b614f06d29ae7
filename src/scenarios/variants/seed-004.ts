import {
  lockWithoutMmuLock,
  unlockReadonlyStoresZero,
  writerSkipsRmapLock,
} from "../../mmu/rmap_mutations.js";
import { type AnyOverride, defineVariant } from "../define.js";

function fromMap(m: ReadonlyMap<string, Function>): Record<string, AnyOverride> {
  return Object.fromEntries(m) as Record<string, AnyOverride>;
}

export const unlockReadonlyWritesZero = defineVariant({
  name: "rmap-unlock-readonly-writes-zero",
  thread: "004",
  description: "kvm_rmap_unlock_readonly() stores the value it saw even when that was 0 (an empty rmap)",
  overrides: fromMap(unlockReadonlyStoresZero),
});

export const rmapLockWithoutMmuLock = defineVariant({
  name: "rmap-lock-without-mmu-lock",
  thread: "004",
  description: "the non-read-only kvm_rmap_lock() taken by the ager without the write mmu_lock",
  overrides: fromMap(lockWithoutMmuLock),
});

export const writerWithoutRmapLock = defineVariant({
  name: "rmap-writer-without-bit",
  thread: "004",
  description: "pte_list_remove()/kvm_zap_all_rmap_sptes() change the chain without taking KVM_RMAP_LOCKED",
  overrides: fromMap(writerSkipsRmapLock),
});
