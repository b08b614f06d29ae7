import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import { TaskAbort } from "../engine/violation.js";
import { machine } from "./machine.js";

type Details = Readonly<Record<string, unknown>>;

/** WARN_ON(): records a violation when `cond` holds; returns `cond` like the kernel macro. */
export function WARN_ON(cond: boolean, what: string, details?: Details): boolean {
  if (cond) host().report({ invariant: "WARN", message: `WARN_ON(${what}) in ${currentFn()}`, details });
  return cond;
}

/** First time this call site fires in this run (the kernel's per-site __warned flag). */
function firstAtSite(what: string): boolean {
  const site = `${currentFn()}:${what}`;
  const m = machine();
  if (m.warnedOnce.has(site)) return false;
  m.warnedOnce.add(site);
  return true;
}

/** WARN_ON_ONCE(): as WARN_ON, reported once per call site and run; returns `cond` every time. */
export function WARN_ON_ONCE(cond: boolean, what: string, details?: Details): boolean {
  if (cond && firstAtSite(what))
    host().report({ invariant: "WARN", message: `WARN_ON_ONCE(${what}) in ${currentFn()}`, details });
  return cond;
}

/** WARN(): a WARN with a formatted message. */
export function WARN(cond: boolean, message: string, details?: Details): boolean {
  if (cond) host().report({ invariant: "WARN", message: `WARN in ${currentFn()}: ${message}`, details });
  return cond;
}

/** Anything with a KVM_BUG_ON-able "bugged" flag (struct kvm). */
export interface Buggable {
  vm_bugged: boolean;
}

/**
 * KVM_BUG_ON() (include/linux/kvm_host.h): WARN_ON_ONCE(cond && !vm_bugged), then
 * mark the VM bugged so it can no longer run; returns `cond`. A VM already
 * bugged does not warn again.
 */
export function KVM_BUG_ON(cond: boolean, kvm: Buggable, what: string, details?: Details): boolean {
  if (cond && !kvm.vm_bugged && firstAtSite(`KVM_BUG_ON:${what}`)) {
    host().report({ invariant: "KVM_BUG_ON", message: `KVM_BUG_ON(${what}) in ${currentFn()}`, details });
  }
  if (cond) kvm.vm_bugged = true;
  return cond;
}

/**
 * KVM_MMU_WARN_ON() (arch/x86/kvm/mmu/mmu_internal.h): WARN_ON_ONCE with
 * CONFIG_KVM_PROVE_MMU; without it the condition is never evaluated (false).
 */
export function KVM_MMU_WARN_ON(cond: boolean, what: string, details?: Details): boolean {
  if (!machine().config.proveMmu) return false;
  if (cond && firstAtSite(`KVM_MMU_WARN_ON:${what}`))
    host().report({ invariant: "WARN", message: `KVM_MMU_WARN_ON(${what}) in ${currentFn()}`, details });
  return cond;
}

/** BUG(): the task dies here. */
export function BUG(what: string): never {
  throw new TaskAbort(`BUG: ${what} in ${currentFn()}`);
}

export function BUG_ON(cond: boolean, what: string): void {
  if (cond) BUG(`BUG_ON(${what})`);
}
