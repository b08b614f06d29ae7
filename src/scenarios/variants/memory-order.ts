import type { Gen } from "../../engine/op.js";
import { WRITE_ONCE } from "../../kernel/atomic.js";
import { IN_GUEST_MODE } from "../../mmu/vcpu.js";
import { enter_unless_request, type VcpuHandshake } from "../../mmu/vcpu_request.js";
import { defineVariant } from "../define.js";

/**
 * vcpu_enter_guest() with a plain store of vcpu->mode where the kernel has smp_store_mb(): the
 * store-to-load order the handshake needs is gone. SC cannot tell; x86-TSO can.
 */
export const enterGuestWithoutMb = defineVariant({
  name: "vcpu-enter-guest-without-smp-mb",
  description:
    "vcpu_enter_guest(): WRITE_ONCE(vcpu->mode, IN_GUEST_MODE) without the barrier of smp_store_mb()",
  overrides: {
    vcpu_enter_guest: function* (_orig: unknown, v: VcpuHandshake): Gen<boolean> {
      yield* WRITE_ONCE(v.mode, IN_GUEST_MODE);
      return yield* enter_unless_request(v);
    },
  },
});
