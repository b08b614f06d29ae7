// A user's own design of kvm_tdp_mmu_put_root(), written as a tdplab variant:
// Paolo's first proposal from seed thread 003 ("decrement unless one", then
// force the count to 0 and free). tdplab finds Sean's interleaving:
//   tdplab check seed-003-put-root --kernel v5.18 --variant examples/put-root-dec-not-one.mjs
import {
  call_rcu,
  defineVariant,
  kvm_tdp_root_mark_invalid,
  list_del_rcu,
  refcount_dec_not_one,
  refcount_set,
  spin_lock,
  spin_unlock,
  tdp_mmu_free_sp_rcu_callback,
  tdp_mmu_zap_root,
} from "tdplab";

export default defineVariant({
  name: "my-put-root",
  description: "put_root with refcount_dec_not_one() and a forced refcount_set(0)",
  // The design predates the worker: the last put zaps the root itself.
  features: { asyncZapWorker: false, defunctRoots: true },
  overrides: {
    // Receives the original implementation first, then the kernel function's arguments.
    *kvm_tdp_mmu_put_root(_original, kvm, root, shared = false) {
      if (yield* refcount_dec_not_one(root.tdp_mmu_root_count)) return;
      if (!(yield* kvm_tdp_root_mark_invalid(root))) {
        yield* tdp_mmu_zap_root(kvm, root, shared);
        if (yield* refcount_dec_not_one(root.tdp_mmu_root_count)) return;
      }
      yield* refcount_set(root.tdp_mmu_root_count, 0);
      yield* spin_lock(kvm.tdp_mmu_pages_lock);
      yield* list_del_rcu(root.link);
      yield* spin_unlock(kvm.tdp_mmu_pages_lock);
      yield* call_rcu(root.rcu_head, () => tdp_mmu_free_sp_rcu_callback(root, kvm));
    },
  },
});
