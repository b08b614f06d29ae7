/**
 * tdplab's public API: what a user's scenario or variant module imports.
 * The engine runs generator tasks; the kernel primitives are built on it;
 * the MMU model is written against them.
 */

export { explore } from "./engine/explore/explore.js";
export { shrink } from "./engine/explore/shrink.js";
export type { ExploreOptions, ExploreResult, Strategy } from "./engine/explore/types.js";
export { host } from "./engine/host.js";
export { currentFn, type ModelFn, modelFn, type Override } from "./engine/model-fn.js";
export type { AccessKind, AccessOp, Gen, Yielded } from "./engine/op.js";
export { decodeChoices, encodeChoices } from "./engine/replay-codec.js";
export { formatSeed, parseSeed, SplitMix64 } from "./engine/rng.js";
export { type Program, type ProgramContext, type RunResult, Runtime, runProgram } from "./engine/runtime.js";
export { RandomScheduler, ReplayScheduler, RoundRobinScheduler, type Scheduler } from "./engine/scheduler.js";

export * from "./kernel/alloc.js";
export * from "./kernel/atomic.js";
export * from "./kernel/lockdep.js";
export { bootMachine, ktask, type MachineConfig, machine, type PreemptionModel } from "./kernel/machine.js";
export * from "./kernel/rcu.js";
export * from "./kernel/rculist.js";
export * from "./kernel/refcount.js";
export * from "./kernel/rwlock.js";
export * from "./kernel/sched.js";
export * from "./kernel/spinlock.js";
export * from "./kernel/warn.js";
export * from "./kernel/workqueue.js";
export * from "./mmu/ept_access.js";
export * from "./mmu/fast_page_fault.js";
export type { FeatureName, Features } from "./mmu/features.js";
export * from "./mmu/host_mm.js";
export { default_hold_bound, hold_bound, unmetered_walk } from "./mmu/invariants/bounded_hold.js";
export { check_spte_within_max_gfn } from "./mmu/invariants/max_gfn.js";
export { register_page_table_checks } from "./mmu/invariants/pages.js";
export { check_yield_progress, registerInvariants } from "./mmu/invariants/roots.js";
export { check_split_preserves_mapping, split_child_problem } from "./mmu/invariants/split.js";
export {
  kvm_arch_prepare_memory_region,
  kvm_create_vm,
  kvm_mmu_max_gfn,
  kvm_vcpu_create,
  reuse_root_frames,
  tdp_mmu_alloc_sp,
} from "./mmu/kvm.js";
// Every model function a variant may override or call, from every module that defines them.
export * from "./mmu/kvm_destroy.js";
export * from "./mmu/mmu_notifier.js";
export * from "./mmu/nx_huge_page_list.js";
export * from "./mmu/nx_huge_page_recovery.js";
export * from "./mmu/page_track.js";
export { PRESETS, presetByName, resolveFeatures } from "./mmu/presets.js";
export { vcpuRoundsTask, yieldingRootWalkTask } from "./mmu/protocol_tasks.js";
export * from "./mmu/pte_list.js";
export * from "./mmu/rmap.js";
export * from "./mmu/rmap_lock.js";
export { ROLE, tdpRootRole } from "./mmu/role.js";
export * from "./mmu/spte.js";
export * from "./mmu/tdp_iter.js";
export * from "./mmu/tdp_mmu_age.js";
export * from "./mmu/tdp_mmu_dirty.js";
export * from "./mmu/tdp_mmu_invalidate.js";
export * from "./mmu/tdp_mmu_iter_roots.js";
export * from "./mmu/tdp_mmu_map.js";
export { kvm_tdp_mmu_map, kvm_tdp_mmu_page_fault } from "./mmu/tdp_mmu_map.js";
export * from "./mmu/tdp_mmu_recover.js";
export * from "./mmu/tdp_mmu_root.js";
export * from "./mmu/tdp_mmu_split.js";
export * from "./mmu/tdp_mmu_spte.js";
export { tdp_mmu_free_sp_rcu_callback } from "./mmu/tdp_mmu_spte.js";
export * from "./mmu/tdp_mmu_walks.js";
export * from "./mmu/tdp_mmu_zap.js";
export {
  tdp_mmu_iter_cond_resched,
  tdp_mmu_max_gfn_exclusive,
  tdp_mmu_zap_leafs,
  tdp_mmu_zap_root,
} from "./mmu/tdp_mmu_zap.js";
export * from "./mmu/tlb.js";
export type { Kvm, KvmMmuPage, Memslot, NxHugePages, TlbEntry, Vcpu } from "./mmu/types.js";
export * from "./mmu/vcpu.js";
export { kvm_mmu_free_roots, kvm_mmu_load, kvm_mmu_unload } from "./mmu/vcpu.js";
// The mode handshake of vcpu_enter_guest() on its own (the memory-order scenarios); vcpu.ts has the
// request-handling half under the same kernel name.
export {
  enter_unless_request,
  KVM_REQ_TLB_FLUSH,
  kvm_make_vcpu_request,
  VcpuHandshake,
  vcpu_enter_guest as vcpu_enter_guest_handshake,
} from "./mmu/vcpu_request.js";
export * from "./mmu/vcpu_tlb.js";
export * from "./mmu/workloads.js";
export { BUILTIN_SCENARIOS } from "./scenarios/builtin/index.js";
export {
  defineScenario,
  defineVariant,
  type RunConfig,
  type Scenario,
  type Variant,
} from "./scenarios/define.js";
export { SEED_DESIGNS } from "./scenarios/seeds.js";
export { BUILTIN_VARIANTS } from "./scenarios/variants/index.js";
