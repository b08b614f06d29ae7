import { host } from "../engine/host.js";
import { currentFn, modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { kfree } from "../kernel/alloc.js";
import { atomic_fetch_add, atomic_fetch_sub } from "../kernel/atomic.js";
import { ktask } from "../kernel/machine.js";
import { commutingOp, touch } from "../kernel/shared.js";
import { WARN_ON } from "../kernel/warn.js";
import { check_teardown_clean } from "./invariants/roots.js";
import { kvm_mmu_notifier_release } from "./mmu_notifier.js";
import { kvm_mmu_uninit_tdp_mmu } from "./tdp_mmu_invalidate.js";
import type { Kvm } from "./types.js";
import { kvm_mmu_unload } from "./vcpu.js";

/**
 * The end of a VM (virt/kvm/kvm_main.c, arch/x86/kvm/x86.c): references on
 * struct kvm, and the teardown the last one triggers, in the order of
 * kernel-protocol 3.16.
 */

/** kvm_get_kvm() (kvm_main.c): take a reference on the VM (users_count). */
export function* kvm_get_kvm(kvm: Kvm): Gen<void> {
  yield* atomic_fetch_add(kvm.users_count, 1);
}

/**
 * A reference taken before any task runs, as the file descriptors of a VM's users (vCPUs, the
 * threads issuing ioctls) are opened before they do anything. Only for program setup and for the
 * prologue of a task being spawned, which runs atomically with the spawn. Taken in a task's
 * prologue, the reference gets an object of its own that the task's put completes (Kvm.userRefs).
 */
export function kvm_get_kvm_at_spawn(kvm: Kvm): void {
  kvm.users_count.v++;
  const t = host().current;
  if (t.id < 0) return;
  let refs = kvm.userRefs.get(t.id);
  if (refs === undefined) {
    refs = [];
    kvm.userRefs.set(t.id, refs);
  }
  const ref = host().newObject(`${kvm.users_count.name}:${t.name}`);
  refs.push(ref);
  kvm.liveUserRefs.add(ref);
}

/** kvm_put_kvm() (kvm_main.c): drop a reference; the last one destroys the VM. */
export const kvm_put_kvm = modelFn("kvm_put_kvm", function* (kvm: Kvm): Gen<void> {
  if (kvm.teardownHolds && ktask().isTeardown !== true) {
    // A teardown task holds its reference until every other user is gone, so this put is not
    // the last: refcount_dec_and_test() answers false whatever the order of the puts. A user that
    // took its reference in its prologue completes that reference's own object, which nothing
    // but the teardown's wait looks at; any other put is a decrement of class "kvm-users-put"
    // (they commute). Whether some put went down to the teardown's reference is the same in every
    // order of the puts, so the check below is exact.
    const refs = kvm.userRefs.get(host().current.id);
    const ref = refs?.at(-1);
    if (ref !== undefined) {
      yield {
        kind: "write",
        obj: ref,
        objs: kvm.users_count.deps,
        fn: currentFn(),
        step: "refcount_dec_and_test (not the last)",
        completes: true,
      };
      refs!.pop();
      kvm.liveUserRefs.delete(ref);
    } else {
      yield commutingOp("rmw", kvm.users_count, "refcount_dec_and_test (not the last)", "kvm-users-put");
    }
    touch(kvm.users_count, "kvm_put_kvm");
    const left = --kvm.users_count.v;
    if (left < 1) {
      host().report({
        invariant: "refcount",
        message: `kvm_put_kvm() in ${host().current.name} dropped users_count to ${left} while the teardown task still counts on its reference`,
        details: { left },
      });
    }
    return;
  }
  const old = yield* atomic_fetch_sub(kvm.users_count, 1);
  // No teardown task awaits this reference (none holds the VM, or this is the teardown itself):
  // it simply goes.
  const own = kvm.userRefs.get(host().current.id)?.pop();
  if (own !== undefined) kvm.liveUserRefs.delete(own);
  WARN_ON(old <= 0, "refcount_dec_and_test(&kvm->users_count) underflow", { old });
  if (old === 1) yield* kvm_destroy_vm(kvm);
});

/** kvm_unload_vcpu_mmus() (x86.c): drop every vCPU's current and previous roots. */
export const kvm_unload_vcpu_mmus = modelFn("kvm_unload_vcpu_mmus", function* (kvm: Kvm): Gen<void> {
  for (const vcpu of kvm.vcpus) yield* kvm_mmu_unload(vcpu);
});

/**
 * kvm_destroy_vm() (kvm_main.c), the parts that reach the TDP MMU, in order:
 * 1. mmu_notifier_unregister() -> ->release: kvm_mmu_zap_all() empties every root (they stay);
 * 2. kvm_arch_destroy_vm(): kvm_unload_vcpu_mmus() puts every vCPU reference (E3: each such last
 *    put makes its root defunct and queues it), then kvm_mmu_uninit_vm() ->
 *    kvm_mmu_uninit_tdp_mmu() (which ends with rcu_barrier());
 * 3. the model's leak check (invariant 14), then struct kvm is freed: anything still running that
 *    touches the VM is a use-after-free.
 */
export const kvm_destroy_vm = modelFn("kvm_destroy_vm", function* (kvm: Kvm): Gen<void> {
  yield* kvm_mmu_notifier_release(kvm);
  yield* kvm_unload_vcpu_mmus(kvm);
  yield* kvm_mmu_uninit_tdp_mmu(kvm);
  check_teardown_clean(kvm);
  yield* kfree(kvm.kobj);
});
