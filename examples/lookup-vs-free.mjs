// A protocol that has nothing to do with KVM, checked with tdplab: an object
// published in an RCU list, looked up by a reader that takes a reference with
// refcount_inc_not_zero(), and released by its owner, which unlinks it and
// frees it once the count reaches 0. Run:
//   tdplab check examples/lookup-vs-free.mjs
// With FREE_WITH_RCU set to false the owner frees without waiting for a grace
// period, and tdplab finds the reader touching freed memory.
import {
  Atomic,
  bootMachine,
  call_rcu,
  defineScenario,
  kfree,
  kzalloc,
  ListHead,
  list_add_rcu,
  list_del_rcu,
  list_next_entry,
  RcuHead,
  READ_ONCE,
  Refcount,
  rcu_read_lock,
  rcu_read_unlock,
  refcount_dec_and_test,
  refcount_inc_not_zero,
  Spinlock,
  spin_lock,
  spin_unlock,
} from "tdplab";

const FREE_WITH_RCU = process.env.FREE_WITH_RCU !== "false";

export default defineScenario({
  name: "lookup-vs-free",
  description: "an RCU list lookup taking a reference races with the owner dropping the last one",
  build:
    () =>
    ({ spawn }) => {
      bootMachine();
      const lock = new Spinlock("list_lock");
      const head = new ListHead("objects");
      // One object, already on the list, holding the owner's reference.
      const mem = kzalloc("obj", "obj#1");
      const obj = {
        count: new Refcount("count", 1, mem),
        value: new Atomic("value", 42, mem),
        rcu: new RcuHead(mem),
      };
      const node = new ListHead("link", obj, mem);
      obj.node = node;

      function* release(o) {
        if (!(yield* refcount_dec_and_test(o.count))) return;
        yield* spin_lock(lock);
        yield* list_del_rcu(o.node);
        yield* spin_unlock(lock);
        if (FREE_WITH_RCU) yield* call_rcu(o.rcu, () => kfree(mem));
        else yield* kfree(mem);
      }

      spawn(
        "setup",
        (function* () {
          yield* spin_lock(lock);
          yield* list_add_rcu(node, head);
          yield* spin_unlock(lock);
          yield { kind: "spawn", name: "owner", body: release(obj) };
          yield {
            kind: "spawn",
            name: "reader",
            body: (function* () {
              yield* rcu_read_lock();
              const n = yield* list_next_entry(head, head, { rcu: true });
              const found = n !== null && (yield* refcount_inc_not_zero(n.container.count));
              yield* rcu_read_unlock();
              if (found) {
                yield* READ_ONCE(n.container.value);
                yield* release(n.container);
              }
            })(),
          };
        })(),
      );
    },
});
