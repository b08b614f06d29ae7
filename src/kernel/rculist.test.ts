import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import type { Gen } from "../engine/op.js";
import { type Program, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { type KObject, kfree, kzalloc } from "./alloc.js";
import { bootMachine, type MachineConfig } from "./machine.js";
import { call_rcu, RcuHead, rcu_read_lock, rcu_read_unlock } from "./rcu.js";
import {
  ListHead,
  list_add_rcu,
  list_add_tail_rcu,
  list_del,
  list_del_rcu,
  list_empty,
  list_entries,
  list_for_each_entry,
  list_for_each_entry_rcu,
  list_next_entry,
  peekEntries,
} from "./rculist.js";

/** A model callback whose body makes no shared access (test bookkeeping only). */
// biome-ignore lint/correctness/useYield: the body makes no shared access, so it never yields
function* noAccess<R>(f: () => R): Gen<R> {
  return f();
}

interface Entry {
  readonly name: string;
  readonly obj: KObject;
  readonly link: ListHead<Entry>;
  readonly rcu: RcuHead;
}

function entry(name: string): Entry {
  const obj = kzalloc("entry", name);
  const e = { name, obj } as { name: string; obj: KObject; link: ListHead<Entry>; rcu: RcuHead };
  e.link = new ListHead<Entry>("link", e, obj);
  e.rcu = new RcuHead(obj);
  return e;
}

function runOnce(p: Program, cfg?: { stopOnViolation?: boolean }) {
  return runProgram(p, { scheduler: new RoundRobinScheduler(), ...cfg });
}

/** Build a list a, b, c (in that order) in setup code. */
function* fill(head: ListHead<Entry>, names: string[]): Gen<Entry[]> {
  const es = names.map(entry);
  for (const e of es) yield* list_add_tail_rcu(e.link, head);
  return es;
}

describe("list_add_rcu, list_add_tail_rcu, list_empty", () => {
  it("adds at the head (newest first) and at the tail, and walks see that order", () => {
    let seen: string[] = [];
    const empty: boolean[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const head = new ListHead<Entry>("roots");
      spawn(
        "t",
        (function* () {
          empty.push(yield* list_empty(head));
          const [b] = yield* fill(head, ["b"]);
          yield* list_add_rcu(entry("a").link, head);
          yield* list_add_tail_rcu(entry("c").link, head);
          empty.push(yield* list_empty(head));
          yield* rcu_read_lock();
          seen = (yield* list_entries(head, { rcu: true })).map((e) => e.name);
          yield* rcu_read_unlock();
          expect(peekEntries(head).map((e) => e.name)).toEqual(seen);
          expect(b.link.onList).toBe(true);
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(seen).toEqual(["a", "b", "c"]);
    expect(empty).toEqual([true, false]);
  });

  it("adding an entry that is already on a list is list corruption with CONFIG_DEBUG_LIST", () => {
    for (const debugList of [true, false]) {
      const r = runOnce(({ spawn }) => {
        bootMachine({ debugList } as Partial<MachineConfig>);
        const head = new ListHead<Entry>("roots");
        spawn(
          "t",
          (function* () {
            const [a] = yield* fill(head, ["a"]);
            yield* list_add_rcu(a.link, head);
          })(),
        );
      });
      if (debugList) {
        expect(r.violations[0].invariant).toBe("list-corruption");
        expect(r.violations[0].message).toContain("list_add double add: a.link is already on a list");
      } else {
        expect(r.violations).toEqual([]);
      }
    }
  });

  it("adding a freed entry is a use-after-free", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const head = new ListHead<Entry>("roots");
      spawn(
        "t",
        (function* () {
          const a = entry("a");
          yield* kfree(a.obj);
          yield* list_add_rcu(a.link, head);
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("use-after-free");
    expect(r.violations[0].message).toContain("list_add_rcu on a.link");
  });
});

describe("list_del_rcu and list_del", () => {
  it("list_del_rcu unlinks the entry and leaves its ->next for readers standing on it", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const head = new ListHead<Entry>("roots");
      spawn(
        "t",
        (function* () {
          const [, b, c] = yield* fill(head, ["a", "b", "c"]);
          yield* list_del_rcu(b.link);
          expect(peekEntries(head).map((e) => e.name)).toEqual(["a", "c"]);
          expect(b.link.onList).toBe(false);
          yield* rcu_read_lock();
          expect(yield* list_next_entry(head, b.link, { rcu: true })).toBe(c.link);
          yield* rcu_read_unlock();
        })(),
      );
    });
    expect(r.status).toBe("ok");
  });

  it("deleting an entry twice is list corruption", () => {
    for (const del of [list_del_rcu, list_del]) {
      const r = runOnce(({ spawn }) => {
        bootMachine();
        const head = new ListHead<Entry>("roots");
        spawn(
          "t",
          (function* () {
            const [a] = yield* fill(head, ["a"]);
            yield* del(a.link);
            yield* del(a.link);
          })(),
        );
      });
      expect(r.violations[0].invariant).toBe("list-corruption");
      expect(r.violations[0].message).toContain("of a.link, which is not on a list");
    }
  });

  it("a reader standing on an entry removed with list_del (not _rcu) follows a poisoned pointer", () => {
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const head = new ListHead<Entry>("roots");
      spawn(
        "t",
        (function* () {
          const [a] = yield* fill(head, ["a", "b"]);
          yield* rcu_read_lock();
          const first = yield* list_next_entry(head, head, { rcu: true });
          yield* list_del(a.link);
          yield* list_next_entry(head, first!, { rcu: true });
          yield* rcu_read_unlock();
        })(),
      );
    });
    expect(r.violations[0].invariant).toBe("list-corruption");
    expect(r.violations[0].message).toContain("followed the poisoned ->next of a.link");
  });
});

/**
 * A reader walks the list with list_for_each_entry_rcu while an updater
 * removes the middle entry and frees it, over all schedules.
 */
function walkWhileDeleting(free: "call_rcu" | "at once", readerRcu = true): Program {
  return ({ spawn }) => {
    bootMachine();
    const head = new ListHead<Entry>("roots");
    const es = ["a", "b", "c"].map(entry);
    // Setup links the list directly (no task is running yet).
    for (const e of es) {
      e.link.prev = head.prev;
      e.link.next = head;
      head.prev.next = e.link;
      head.prev = e.link;
      e.link.onList = true;
    }
    spawn(
      "reader",
      (function* () {
        if (readerRcu) yield* rcu_read_lock();
        const seen: string[] = [];
        yield* list_for_each_entry_rcu(head, (e) =>
          noAccess(() => {
            seen.push(e.name);
            return undefined;
          }),
        );
        if (readerRcu) yield* rcu_read_unlock();
        // The first and last entries are never removed, so every walk sees them.
        expect(seen[0]).toBe("a");
        expect(seen[seen.length - 1]).toBe("c");
      })(),
    );
    spawn(
      "updater",
      (function* () {
        const b = es[1];
        yield* list_del_rcu(b.link);
        if (free === "call_rcu") yield* call_rcu(b.rcu, () => kfree(b.obj), "free b");
        else yield* kfree(b.obj);
      })(),
    );
  };
}

describe("list_for_each_entry_rcu under concurrent deletion", () => {
  it("list_del_rcu + call_rcu: no use-after-free and no corruption in any schedule", () => {
    const r = enumerateAll(walkWhileDeleting("call_rcu"));
    expect(r.complete).toBe(true);
    expect(r.firstViolation).toBeNull();
  });

  it("list_del_rcu + immediate kfree: the reader touches the freed entry in some schedule", () => {
    const r = enumerateAll(walkWhileDeleting("at once"));
    const v = r.firstViolation?.violations[0];
    expect(v?.invariant).toBe("use-after-free");
    expect(v?.message).toContain("list_for_each_entry_rcu on b.link");
    expect(v?.message).toContain("freed by updater");
  });

  it("an RCU walk outside rcu_read_lock() and without the lockdep condition is suspicious", () => {
    const r = runOnce(walkWhileDeleting("call_rcu", false));
    expect(r.violations[0].invariant).toBe("suspicious-rcu");
    expect(r.violations[0].message).toContain("roots->next");
  });

  it("the lockdep condition (e.g. mmu_lock held for write) makes a walk outside RCU legal", () => {
    const names: string[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const head = new ListHead<Entry>("roots");
      spawn(
        "t",
        (function* () {
          yield* fill(head, ["a", "b"]);
          yield* list_for_each_entry_rcu(
            head,
            (e) =>
              noAccess(() => {
                names.push(e.name);
                return undefined;
              }),
            () => true,
          );
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(names).toEqual(["a", "b"]);
  });

  it("the body may break out; ->next is read after the body, so freeing the entry in it is a use-after-free", () => {
    const names: string[] = [];
    const broke = runOnce(({ spawn }) => {
      bootMachine();
      const head = new ListHead<Entry>("roots");
      spawn(
        "t",
        (function* () {
          yield* fill(head, ["a", "b", "c"]);
          yield* list_for_each_entry(head, { rcu: false }, (e) =>
            noAccess(() => {
              names.push(e.name);
              return e.name === "b";
            }),
          );
        })(),
      );
    });
    expect(broke.status).toBe("ok");
    expect(names).toEqual(["a", "b"]);

    const freed = runOnce(({ spawn }) => {
      bootMachine();
      const head = new ListHead<Entry>("roots");
      spawn(
        "t",
        (function* () {
          yield* fill(head, ["a", "b"]);
          yield* list_for_each_entry(head, { rcu: false }, function* (e, node) {
            yield* list_del(node);
            yield* kfree(e.obj);
            return undefined;
          });
        })(),
      );
    });
    expect(freed.violations[0].invariant).toBe("use-after-free");
    expect(freed.violations[0].message).toContain("list_for_each_entry on a.link");
  });
});
