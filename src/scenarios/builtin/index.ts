import type { Scenario } from "../define.js";
import { boundedHold } from "./bounded-hold.js";
import { churn } from "./churn.js";
import { spteDirtyRace, tlbRootReuse } from "./hardware.js";
import { maxGfn } from "./max-gfn.js";
import { litmusMp, litmusSb, vcpuRequestHandshake } from "./memory-order.js";
import { nxRecovery } from "./nx.js";
import { protocolV64, protocolV66, protocolV518 } from "./protocol.js";
import { seed000ReadLockInvalidate, seed000Teardown } from "./seed-000.js";
import { seed001RootWalk, seed001RootWalkFastZap } from "./seed-001.js";
import { seed002ZapWorker } from "./seed-002.js";
import { seed003PutRoot } from "./seed-003.js";
import { rmapAging, seed004AddToSingle, seed004EmptyRace, seed004ZapAll } from "./seed-004.js";

/** Every built-in scenario, by name. */
export const BUILTIN_SCENARIOS: readonly Scenario[] = [
  seed000Teardown,
  seed000ReadLockInvalidate,
  seed001RootWalk,
  seed001RootWalkFastZap,
  seed002ZapWorker,
  seed003PutRoot,
  seed004EmptyRace,
  seed004AddToSingle,
  seed004ZapAll,
  churn,
  protocolV518,
  protocolV64,
  protocolV66,
  rmapAging,
  tlbRootReuse,
  spteDirtyRace,
  litmusSb,
  litmusMp,
  vcpuRequestHandshake,
  nxRecovery,
  boundedHold,
  maxGfn,
];
