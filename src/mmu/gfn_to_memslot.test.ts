import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { gfn_to_memslot, memslots_changed } from "./tdp_mmu_map.js";
import type { Kvm, Memslot } from "./types.js";

/** The lookup as a scan, the answer the index must always give. */
function scan(kvm: Kvm, gfn: number): Memslot | null {
  return (
    kvm.memslots.find(
      (s) => !s.deleted && s.as_id === 0 && gfn >= s.base_gfn && gfn < s.base_gfn + s.npages,
    ) ?? null
  );
}

describe("gfn_to_memslot over many slots (the sorted index stands for the kernel's rbtree)", () => {
  it("answers as the scan does after moves, deletes and creates, told of them or not", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom("move", "delete", "create", "invalidate"),
            slot: fc.nat(199),
            tell: fc.boolean(),
          }),
          { maxLength: 30 },
        ),
        fc.array(fc.nat(260 * 8), { minLength: 1, maxLength: 40 }),
        (changes, gfns) => {
          // The lookup reads only the memslot array.
          const kvm = { memslots: [] as Memslot[] } as unknown as Kvm;
          for (let i = 0; i < 200; i++)
            kvm.memslots.push({ id: i, as_id: 0, base_gfn: i * 8, npages: 8, flags: 0, deleted: false });
          let free = 200 * 8;
          for (const c of changes) {
            const i = kvm.memslots.findIndex((s) => s.id === c.slot && !s.deleted);
            if (c.op === "create" && i < 0) {
              kvm.memslots.push({
                id: c.slot,
                as_id: 0,
                base_gfn: free,
                npages: 8,
                flags: 0,
                deleted: false,
              });
              free += 8;
            } else if (i >= 0) {
              const old = kvm.memslots[i];
              old.deleted = true;
              // "invalidate" leaves the slot in the array, marked (kvm_invalidate_memslot()).
              if (c.op === "move") {
                kvm.memslots.splice(i, 1, { ...old, base_gfn: free, deleted: false });
                free += 8;
              } else if (c.op === "delete") kvm.memslots.splice(i, 1);
            }
            if (c.tell) memslots_changed(kvm);
            for (const g of gfns) expect(gfn_to_memslot(kvm, 0, g)).toBe(scan(kvm, g));
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});
