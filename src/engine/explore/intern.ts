/**
 * Interns canonical names (of tasks and objects) as small integers. The names
 * are stable across executions; the integers only within one exploration, so
 * checkpoints and worker messages carry the names.
 */
export class Interner {
  private readonly ids = new Map<string, number>();
  readonly names: string[] = [];

  id(name: string): number {
    let v = this.ids.get(name);
    if (v === undefined) {
      v = this.names.length;
      this.names.push(name);
      this.ids.set(name, v);
    }
    return v;
  }

  name(id: number): string {
    const n = this.names[id];
    if (n === undefined) throw new RangeError(`no interned name ${id}`);
    return n;
  }
}
