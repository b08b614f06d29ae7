import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { Atomic, cmpxchg, set_bit, test_bit, WRITE_ONCE } from "../kernel/atomic.js";
import { smp_mb, smp_mb__before_atomic } from "../kernel/memory.js";
import { EXITING_GUEST_MODE, IN_GUEST_MODE, OUTSIDE_GUEST_MODE } from "./vcpu.js";

/** KVM_REQ_TLB_FLUSH_CURRENT's bit, the request a remote flush makes (any request will do). */
export const KVM_REQ_TLB_FLUSH = 0;

/**
 * The two words of the request/kick handshake between a vCPU entering the guest and a CPU making a
 * request of it: vcpu->mode and vcpu->requests. Neither is protected by a lock: the handshake is a
 * store-buffering (Dekker) pattern, correct only because both sides order their store before their
 * load with a full barrier (the requester's is implied by its locked set_bit and cmpxchg).
 */
export class VcpuHandshake {
  readonly mode: Atomic;
  readonly requests: Atomic;
  /** Ghost: what each side decided, for the request-lost check. Only checks read them. */
  entered: "with-request-seen" | "without-request" | null = null;
  kicked: boolean | null = null;
  constructor(name: string) {
    this.mode = new Atomic(`${name}.mode`, OUTSIDE_GUEST_MODE);
    this.requests = new Atomic(`${name}.requests`, 0);
  }
}

/**
 * vcpu_enter_guest()'s entry handshake (arch/x86/kvm/x86.c, v4.x to v6.15):
 * smp_store_mb(vcpu->mode, IN_GUEST_MODE), then kvm_vcpu_exit_request() looks at the requests and
 * backs out of the entry if one is pending. Returns true when the vCPU entered the guest.
 */
export const vcpu_enter_guest = modelFn("vcpu_enter_guest", function* (v: VcpuHandshake): Gen<boolean> {
  // smp_store_mb(): the store, then a full barrier, so the requests are read after the mode is visible.
  yield* WRITE_ONCE(v.mode, IN_GUEST_MODE);
  yield* smp_mb();
  return yield* enter_unless_request(v);
});

/** kvm_vcpu_exit_request() and what vcpu_enter_guest() does with its answer (v5.x to v6.15). */
export function* enter_unless_request(v: VcpuHandshake): Gen<boolean> {
  if (yield* test_bit(KVM_REQ_TLB_FLUSH, v.requests)) {
    yield* WRITE_ONCE(v.mode, OUTSIDE_GUEST_MODE);
    v.entered = "with-request-seen";
    return false;
  }
  v.entered = "without-request";
  return true;
}

/**
 * kvm_make_vcpu_request() (virt/kvm/kvm_main.c, v5.16 to v6.15) for a request that needs an IPI:
 * kvm_make_request() sets the bit, then kvm_request_needs_ipi() moves an in-guest vCPU to
 * EXITING_GUEST_MODE with cmpxchg (kvm_vcpu_exiting_guest_mode()); only then is it kicked.
 */
export const kvm_make_vcpu_request = modelFn(
  "kvm_make_vcpu_request",
  function* (v: VcpuHandshake): Gen<boolean> {
    yield* set_bit(KVM_REQ_TLB_FLUSH, v.requests);
    yield* smp_mb__before_atomic();
    const old = yield* cmpxchg(v.mode, IN_GUEST_MODE, EXITING_GUEST_MODE);
    v.kicked = old === IN_GUEST_MODE;
    return v.kicked;
  },
);
