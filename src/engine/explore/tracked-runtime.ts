import { Runtime } from "../runtime.js";

/**
 * The runtime plus one hook: who created each shared object. DPOR names
 * objects by (creating task, creation index) so that the same object has the
 * same identity in every interleaving, whatever order objects were created in.
 */
export class TrackedRuntime extends Runtime {
  onNewObject: ((id: number, creatorTask: number) => void) | null = null;

  override newObject(name: string): number {
    const id = super.newObject(name);
    this.onNewObject?.(id, this.current.id);
    return id;
  }
}
