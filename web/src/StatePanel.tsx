import type { ComponentChildren } from "preact";
import { useMemo } from "preact/hooks";
import type { TraceDoc } from "../../src/trace/schema.js";
import type { TraceState } from "../../src/trace/state-schema.js";
import { heldAt, lockHolds } from "./lanes.js";
import { roleFields } from "./role.js";
import { StateDiff } from "./state-diff.js";

const yes = (b: boolean) => (b ? "yes" : "no");
const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** A table cell that lights up when its field changed at this step, with the old value on hover. */
function Cell(props: {
  diff: StateDiff;
  k: string | readonly string[];
  field?: string;
  children: ComponentChildren;
  class?: string;
}) {
  const keys = typeof props.k === "string" ? [props.k] : props.k;
  const changed = keys.some((k) => props.diff.changed(k));
  const was = changed && keys.length === 1 ? props.diff.was(keys[0]) : undefined;
  return (
    <td
      class={`${props.class ?? ""}${changed ? " chg" : ""}`}
      data-field={props.field}
      title={changed ? `changed at this step${was === undefined ? "" : `; was ${was}`}` : undefined}
    >
      {props.children}
    </td>
  );
}

function Section(props: { title: string; id: string; children: ComponentChildren; empty?: boolean }) {
  return (
    <section class="state-section" data-section={props.id}>
      <h3>{props.title}</h3>
      {props.empty ? <p class="muted">none</p> : props.children}
    </section>
  );
}

/**
 * The model state after the step under the cursor (TraceDoc.states), section by section; what the
 * step changed is highlighted against the state before it. A trace recorded without states shows
 * what the steps alone tell: the locks held.
 */
export function StatePanel(props: { doc: TraceDoc; cursor: number }) {
  const { doc, cursor } = props;
  const states = doc.states;
  const holds = useMemo(() => lockHolds(doc), [doc]);
  const taskName = (id: number) => doc.tasks[id]?.name ?? `T${id}`;
  if (!states || states.length === 0) {
    const held = heldAt(holds, cursor);
    return (
      <div class="state" data-testid="state-panel">
        <p class="notice" data-testid="no-state">
          No state recorded in this trace: it was written without state snapshots. <code>tdplab replay</code>{" "}
          of its replay string records one.
        </p>
        <Section title="Locks (from the acquire and release steps)" id="locks" empty={held.length === 0}>
          <table>
            <thead>
              <tr>
                <th>lock</th>
                <th>holder</th>
                <th>mode</th>
                <th>since step</th>
              </tr>
            </thead>
            <tbody>
              {held.map((h) => (
                <tr key={`${h.task}/${h.from}`}>
                  <td class="mono">{h.name}</td>
                  <td>{taskName(h.task)}</td>
                  <td>{h.mode}</td>
                  <td>{h.from}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      </div>
    );
  }
  const cur: TraceState = states[Math.min(cursor, states.length - 1)];
  const prev: TraceState | undefined = cursor > 0 ? states[cursor - 1] : doc.initialState;
  const diff = new StateDiff(prev, cur);
  const who = (l: readonly { task: number; mode: string }[]) =>
    l.length === 0 ? "—" : l.map((h) => `${taskName(h.task)} (${h.mode})`).join(", ");
  const names = (ids: readonly number[]) => (ids.length === 0 ? "—" : ids.map(taskName).join(", "));
  const list = (xs: readonly string[] | undefined) => (!xs || xs.length === 0 ? "—" : xs.join(", "));
  return (
    <div class="state" data-testid="state-panel">
      <p class="state-caption">
        State after step {cursor}
        {diff.size > 0 ? ` · ${diff.size} field${diff.size === 1 ? "" : "s"} changed` : " · nothing changed"}
      </p>
      <Section title="Roots" id="roots" empty={cur.roots.length === 0}>
        <table>
          <thead>
            <tr>
              <th>root</th>
              <th>level</th>
              <th>as</th>
              <th>role</th>
              <th>invalid</th>
              <th>refcount</th>
              <th>on list</th>
              <th>freed</th>
              <th>flags</th>
              <th>held by</th>
            </tr>
          </thead>
          <tbody>
            {cur.roots.map((r) => {
              const k = `root/${r.name}`;
              return (
                <tr
                  key={r.name}
                  data-root={r.name}
                  class={`${r.freed ? "freed" : ""}${diff.isNew(k) ? " new" : ""}`}
                >
                  <td class="mono">
                    {r.name}
                    {r.freed && <span class="badge bad">FREED</span>}
                  </td>
                  <Cell diff={diff} k={`${k}/level`} field="level">
                    {r.level}
                  </Cell>
                  <Cell diff={diff} k={`${k}/asId`} field="asId">
                    {r.asId}
                  </Cell>
                  <Cell diff={diff} k={`${k}/role`} field="role" class="mono role">
                    <span title={hex(r.role)}>{roleFields(r.role).join(" ")}</span>
                  </Cell>
                  <Cell diff={diff} k={`${k}/invalid`} field="invalid">
                    {yes(r.invalid)}
                  </Cell>
                  <Cell diff={diff} k={`${k}/refcount`} field="refcount" class="num">
                    {r.refcount}
                  </Cell>
                  <Cell diff={diff} k={`${k}/onList`} field="onList">
                    {yes(r.onList)}
                  </Cell>
                  <Cell diff={diff} k={`${k}/freed`} field="freed">
                    {yes(r.freed)}
                  </Cell>
                  <Cell diff={diff} k={`${k}/flags`} field="flags">
                    {list(r.flags)}
                  </Cell>
                  <Cell diff={diff} k={`${k}/heldBy`} field="heldBy">
                    {list(r.heldBy)}
                  </Cell>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Section>
      <Section title="Locks" id="locks" empty={cur.locks.length === 0}>
        <table>
          <thead>
            <tr>
              <th>lock</th>
              <th>kind</th>
              <th>holders (mode)</th>
              <th>waiters</th>
            </tr>
          </thead>
          <tbody>
            {cur.locks.map((l) => (
              <tr key={l.name} data-lock={l.name}>
                <td class="mono">{l.name}</td>
                <td>{l.kind}</td>
                <Cell diff={diff} k={`lock/${l.name}/holders`} field="holders">
                  {who(l.holders)}
                </Cell>
                <Cell diff={diff} k={`lock/${l.name}/waiters`} field="waiters">
                  {who(l.waiters)}
                </Cell>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="RCU" id="rcu">
        <table>
          <tbody>
            <tr>
              <th>readers</th>
              <Cell diff={diff} k="rcu/readers" field="readers">
                {names(cur.rcu.readers)}
              </Cell>
            </tr>
            <tr>
              <th>pending callbacks</th>
              <Cell diff={diff} k="rcu/pendingCallbacks" field="pendingCallbacks">
                {list(cur.rcu.pendingCallbacks)}
              </Cell>
            </tr>
            {cur.rcu.runningCallbacks !== undefined && (
              <tr>
                <th>running callbacks</th>
                <Cell diff={diff} k="rcu/runningCallbacks" field="runningCallbacks">
                  {list(cur.rcu.runningCallbacks)}
                </Cell>
              </tr>
            )}
            <tr>
              <th>waiting for a grace period</th>
              <Cell diff={diff} k="rcu/waiters" field="waiters">
                {names(cur.rcu.waiters)}
              </Cell>
            </tr>
          </tbody>
        </table>
      </Section>
      <Section title="Workqueues" id="workqueues" empty={cur.workqueues.length === 0}>
        <table>
          <thead>
            <tr>
              <th>workqueue</th>
              <th>state</th>
              <th>in flight</th>
              <th>items (pending bit, running)</th>
            </tr>
          </thead>
          <tbody>
            {cur.workqueues.map((w) => {
              const k = `wq/${w.name}`;
              const st = [
                w.destroyed ? "destroyed" : w.destroying ? "destroying" : "",
                w.draining ? "draining" : "",
              ]
                .filter(Boolean)
                .join(", ");
              return (
                <tr key={w.name} data-wq={w.name}>
                  <td class="mono">{w.name}</td>
                  <Cell diff={diff} k={[`${k}/destroyed`, `${k}/destroying`, `${k}/draining`]} field="state">
                    {st || "live"}
                  </Cell>
                  <Cell diff={diff} k={`${k}/inFlight`} field="inFlight">
                    {w.inFlight ?? "—"}
                  </Cell>
                  <Cell diff={diff} k={`${k}/items`} field="items">
                    {w.items.length === 0
                      ? "—"
                      : w.items.map((it) => (
                          <span
                            key={it.name}
                            class={`wq-item${diff.changed(`${k}/items/${it.name}`) ? " chg" : ""}`}
                          >
                            {it.name}
                            {it.pending ? " PENDING" : ""}
                            {it.running
                              ? ` running${it.worker !== undefined ? ` on ${taskName(it.worker)}` : ""}`
                              : ""}
                          </span>
                        ))}
                  </Cell>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Section>
      <Section title="Page tables" id="pages">
        <table>
          <thead>
            <tr>
              <th>root</th>
              <th>page tables under it</th>
              <th>present leaf SPTEs</th>
            </tr>
          </thead>
          <tbody>
            {cur.roots.map((r) => (
              <tr key={r.name}>
                <td class="mono">{r.name}</td>
                <Cell diff={diff} k={`root/${r.name}/pageTables`} class="num">
                  {r.pageTables}
                </Cell>
                <Cell diff={diff} k={`root/${r.name}/leaves`} class="num">
                  {r.leaves}
                </Cell>
              </tr>
            ))}
            <tr class="total">
              <td>VM pages</td>
              <Cell diff={diff} k="pages/live" class="num">
                {`${cur.pages.live} live`}
              </Cell>
              <Cell diff={diff} k="pages/freed" class="num">
                {`${cur.pages.freed} freed`}
              </Cell>
            </tr>
          </tbody>
        </table>
      </Section>
      <Section title="Tasks" id="tasks" empty={cur.tasks.length === 0}>
        <table>
          <thead>
            <tr>
              <th>task</th>
              <th>status</th>
              <th>in</th>
              <th>next access</th>
              <th>holds</th>
              <th>preempt count</th>
              <th>RCU depth</th>
            </tr>
          </thead>
          <tbody>
            {cur.tasks.map((t) => {
              const k = `task/${t.id}`;
              return (
                <tr key={t.id} data-task-row={t.id}>
                  <td>{taskName(t.id)}</td>
                  <Cell diff={diff} k={`${k}/status`}>
                    {t.status}
                  </Cell>
                  <Cell diff={diff} k={`${k}/fn`} class="mono">
                    {t.stack && t.stack.length > 0 ? t.stack.join(" › ") : t.fn || "—"}
                  </Cell>
                  <Cell diff={diff} k={`${k}/next`} class="mono">
                    {t.next ?? "—"}
                  </Cell>
                  <Cell diff={diff} k={`${k}/held`}>
                    {list(t.held)}
                  </Cell>
                  <Cell diff={diff} k={`${k}/preemptCount`} class="num">
                    {t.preemptCount}
                  </Cell>
                  <Cell diff={diff} k={`${k}/rcuDepth`} class="num">
                    {t.rcuDepth}
                  </Cell>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Section>
    </div>
  );
}
