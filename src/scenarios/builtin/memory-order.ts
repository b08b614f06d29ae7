import { host } from "../../engine/host.js";
import type { Gen } from "../../engine/op.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../../kernel/atomic.js";
import { bootMachine } from "../../kernel/machine.js";
import { kvm_make_vcpu_request, VcpuHandshake, vcpu_enter_guest } from "../../mmu/vcpu_request.js";
import type { Scenario } from "../define.js";

/**
 * Scenarios about memory ordering rather than the root protocol: what `--memory-model tso` adds.
 * Each reports when its final state is one that a store-to-load reordering produces.
 */

/** Report `invariant` once every task is done and `bad()` holds of the final values. */
function finalCheck(done: () => boolean, bad: () => string | null, invariant: string): void {
  host().addCheck(invariant, () => {
    if (!done()) return;
    const why = bad();
    if (why !== null) host().report({ invariant, message: why });
  });
}

/**
 * The store-buffering litmus test (SB) as a scenario: each task stores its flag and loads the
 * other's. Under SC one of the loads sees 1; x86 allows both to see 0.
 */
export const litmusSb: Scenario = {
  name: "litmus-sb",
  description: "SB: P0 WRITE_ONCE(x, 1); r0 = READ_ONCE(y) || P1 WRITE_ONCE(y, 1); r1 = READ_ONCE(x)",
  exercises: "litmus-exists: r0 == 0 && r1 == 0, reachable under tso, not under sc",
  build:
    (cfg) =>
    ({ spawn }) => {
      bootMachine(cfg.machine);
      const x = new Atomic("x");
      const y = new Atomic("y");
      const r: (number | null)[] = [null, null];
      function* side(i: number, mine: Atomic, theirs: Atomic): Gen<void> {
        yield* WRITE_ONCE(mine, 1);
        r[i] = yield* READ_ONCE(theirs);
      }
      spawn("P0", side(0, x, y));
      spawn("P1", side(1, y, x));
      finalCheck(
        () => r[0] !== null && r[1] !== null,
        () =>
          r[0] === 0 && r[1] === 0 ? "SB: r0 == 0 && r1 == 0, each load passed the other CPU's store" : null,
        "litmus-exists",
      );
    },
};

/** The message-passing litmus test (MP): x86 keeps stores in order and loads in order. */
export const litmusMp: Scenario = {
  name: "litmus-mp",
  description:
    "MP: P0 WRITE_ONCE(data, 1); WRITE_ONCE(flag, 1) || P1 r0 = READ_ONCE(flag); r1 = READ_ONCE(data)",
  exercises: "litmus-exists: r0 == 1 && r1 == 0, reachable under neither sc nor tso",
  build:
    (cfg) =>
    ({ spawn }) => {
      bootMachine(cfg.machine);
      const data = new Atomic("data");
      const flag = new Atomic("flag");
      const r: (number | null)[] = [null, null];
      spawn(
        "P0",
        (function* (): Gen<void> {
          yield* WRITE_ONCE(data, 1);
          yield* WRITE_ONCE(flag, 1);
        })(),
      );
      spawn(
        "P1",
        (function* (): Gen<void> {
          r[0] = yield* READ_ONCE(flag);
          r[1] = yield* READ_ONCE(data);
        })(),
      );
      finalCheck(
        () => r[1] !== null,
        () => (r[0] === 1 && r[1] === 0 ? "MP: r0 == 1 && r1 == 0, the flag was seen before the data" : null),
        "litmus-exists",
      );
    },
};

/**
 * A vCPU entering the guest against a CPU making a request of it (a remote TLB flush): the
 * vcpu->mode / vcpu->requests handshake. Whatever the order, either the vCPU sees the request and
 * backs out of the entry, or the requester sees it in the guest and kicks it; a request both sides
 * miss stays pending while the guest runs on a stale TLB ("request-lost").
 */
export const vcpuRequestHandshake: Scenario = {
  name: "vcpu-request-handshake",
  description:
    "vcpu_enter_guest() (smp_store_mb(vcpu->mode, IN_GUEST_MODE), then the request check) against " +
    "kvm_make_vcpu_request() (set_bit, then cmpxchg of the mode to EXITING_GUEST_MODE and a kick)",
  exercises:
    "request-lost: the Dekker pattern of vcpu->mode and vcpu->requests; with the variant " +
    "vcpu-enter-guest-without-smp-mb it is lost under tso only",
  build:
    (cfg) =>
    ({ spawn }) => {
      bootMachine(cfg.machine);
      const v = new VcpuHandshake("vcpu0");
      spawn(
        "vcpu0",
        (function* (): Gen<void> {
          yield* vcpu_enter_guest(v);
        })(),
      );
      spawn(
        "flusher",
        (function* (): Gen<void> {
          yield* kvm_make_vcpu_request(v);
        })(),
      );
      finalCheck(
        () => v.entered !== null && v.kicked !== null,
        () =>
          v.entered === "without-request" && !v.kicked
            ? "vcpu0 entered the guest without seeing the request, and the requester saw it outside the guest and sent no kick"
            : null,
        "request-lost",
      );
    },
};
