/**
 * The C litmus format of the kernel's tools/memory-model (what herd7 reads with linux-kernel.cat):
 * a `C NAME` header, an initial state in braces, `P0(int *x, ...) { ... }` bodies, and an
 * `exists`, `~exists` or `forall` clause. This parser takes the subset of that language that
 * straight-line litmus tests use: local int registers, the marked accesses, barriers and atomics
 * listed in LITMUS_PRIMITIVES, and conditions over registers and final memory with /\, \/ and ~.
 * Anything else is an error naming its line and column, never a silent approximation.
 */

export class LitmusError extends Error {
  constructor(
    readonly line: number,
    readonly col: number,
    message: string,
  ) {
    super(message);
  }
}

/** One statement of a thread body. */
export type LitmusStmt =
  | { readonly op: "store"; readonly kind: StoreKind; readonly loc: string; readonly value: Operand }
  | { readonly op: "load"; readonly kind: LoadKind; readonly reg: string; readonly loc: string }
  | { readonly op: "fence"; readonly kind: FenceKind }
  | {
      readonly op: "rmw";
      readonly kind: RmwKind;
      readonly loc: string;
      readonly value: Operand;
      /** For cmpxchg: the expected old value. */
      readonly expected?: Operand;
      /** Register that receives the old (xchg, cmpxchg, fetch_*) or new (*_return) value, if any. */
      readonly reg?: string;
      /**
       * The ordering its name asks for: "mb" (no suffix: fully ordered when it returns a value and,
       * for cmpxchg, succeeds), or the _relaxed, _acquire, _release forms. Non-value-returning
       * atomics (atomic_inc(), ...) are "relaxed": they order nothing.
       */
      readonly order: RmwOrder;
    }
  | { readonly op: "set"; readonly reg: string; readonly value: Operand }
  | { readonly op: "lock" | "unlock"; readonly loc: string }
  | {
      readonly op: "if";
      readonly cond: LitmusCond;
      readonly thenArm: readonly LitmusStmt[];
      readonly elseArm: readonly LitmusStmt[];
    };

/** The condition of an `if`: `r`, `!r`, `a == b` or `a != b` over registers and constants. */
export interface LitmusCond {
  readonly left: Operand;
  readonly op: "==" | "!=";
  readonly right: Operand;
}

export type StoreKind = "WRITE_ONCE" | "smp_store_release" | "atomic_set";
export type LoadKind = "READ_ONCE" | "smp_load_acquire" | "atomic_read";
export type FenceKind =
  | "smp_mb"
  | "smp_rmb"
  | "smp_wmb"
  | "smp_mb__before_atomic"
  | "smp_mb__after_atomic"
  | "smp_mb__after_spinlock"
  | "smp_mb__after_unlock_lock"
  | "barrier"
  | RcuKind;
/** RCU's read-side markers and grace period: fences in linux-kernel.def. */
export type RcuKind = "rcu_read_lock" | "rcu_read_unlock" | "synchronize_rcu";
export const RCU_KINDS: readonly RcuKind[] = ["rcu_read_lock", "rcu_read_unlock", "synchronize_rcu"];
export type RmwKind =
  | "xchg"
  | "cmpxchg"
  | "atomic_add"
  | "atomic_sub"
  | "atomic_inc"
  | "atomic_dec"
  | "atomic_add_return"
  | "atomic_sub_return"
  | "atomic_inc_return"
  | "atomic_dec_return"
  | "atomic_fetch_add"
  | "atomic_fetch_sub"
  | "atomic_fetch_inc"
  | "atomic_fetch_dec";

export type RmwOrder = "mb" | "relaxed" | "acquire" | "release";

/** A constant or the value of a register of the same thread. */
export type Operand = { readonly const: number } | { readonly reg: string };

export interface LitmusThread {
  readonly index: number;
  readonly stmts: readonly LitmusStmt[];
  /** Its registers, in declaration order. */
  readonly regs: readonly string[];
}

/** A condition over final states: `N:reg=value` and `loc=value` atoms under /\, \/ and ~. */
export type LitmusExpr =
  | { readonly op: "and" | "or"; readonly left: LitmusExpr; readonly right: LitmusExpr }
  | { readonly op: "not"; readonly arg: LitmusExpr }
  | { readonly op: "reg"; readonly thread: number; readonly reg: string; readonly value: number }
  | { readonly op: "loc"; readonly loc: string; readonly value: number }
  | { readonly op: "true" };

export interface LitmusTest {
  readonly name: string;
  /** Every shared location, with its initial value (0 unless the initial state says otherwise). */
  readonly init: ReadonlyMap<string, number>;
  readonly threads: readonly LitmusThread[];
  readonly quantifier: "exists" | "~exists" | "forall";
  readonly condition: LitmusExpr;
  /** The condition as written, for output. */
  readonly conditionText: string;
  /** herd7's `locations [...]` clause: more registers ("N:reg") and locations to show in states. */
  readonly locations?: readonly string[];
}

const STORES: readonly StoreKind[] = ["WRITE_ONCE", "smp_store_release", "atomic_set"];
const LOADS: readonly LoadKind[] = ["READ_ONCE", "smp_load_acquire", "atomic_read"];
const FENCES: readonly FenceKind[] = [
  "smp_mb",
  "smp_rmb",
  "smp_wmb",
  "smp_mb__before_atomic",
  "smp_mb__after_atomic",
  "smp_mb__after_spinlock",
  "smp_mb__after_unlock_lock",
  "barrier",
  ...RCU_KINDS,
];
/** Value-returning RMWs that return the old value. */
const OLD_VALUE: readonly string[] = [
  "xchg",
  "cmpxchg",
  "atomic_fetch_add",
  "atomic_fetch_sub",
  "atomic_fetch_inc",
  "atomic_fetch_dec",
];
const RMWS: readonly RmwKind[] = [
  "xchg",
  "cmpxchg",
  "atomic_add",
  "atomic_sub",
  "atomic_inc",
  "atomic_dec",
  "atomic_add_return",
  "atomic_sub_return",
  "atomic_inc_return",
  "atomic_dec_return",
  "atomic_fetch_add",
  "atomic_fetch_sub",
  "atomic_fetch_inc",
  "atomic_fetch_dec",
];
/** Ordering suffixes of value-returning atomics: the model treats them by what TSO/SC give. */
const ORDER_SUFFIXES = ["_relaxed", "_acquire", "_release"] as const;

const LOCKS = ["spin_lock", "spin_unlock"];

/** Every primitive a litmus body may call. */
export const LITMUS_PRIMITIVES: readonly string[] = [...STORES, ...LOADS, ...FENCES, ...RMWS, ...LOCKS];

/** Whether an RMW returns a value at all (atomic_inc() and friends do not). */
export function returnsValue(kind: RmwKind): boolean {
  return /return|fetch|xchg/.test(kind);
}

/** Whether a value-returning RMW returns the old value (else the new one). */
export function returnsOld(kind: RmwKind): boolean {
  return OLD_VALUE.includes(kind);
}

interface Tok {
  readonly t: string;
  readonly line: number;
  readonly col: number;
}

/** Split `src` into tokens, dropping comments (C block and line comments; (* *) in the header). */
function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let headerDone = false;
  let i = 0;
  let line = 1;
  let col = 1;
  const adv = (n: number) => {
    for (let k = 0; k < n; k++) {
      if (src[i] === "\n") {
        line++;
        col = 1;
      } else col++;
      i++;
    }
  };
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      adv(1);
      continue;
    }
    if (src.startsWith("//", i)) {
      while (i < src.length && src[i] !== "\n") adv(1);
      continue;
    }
    // OCaml-style (* *) comments are the doc comment of the header, before the initial state, or
    // start with "(* " (a space) anywhere: in a body, "(*x" is a call taking a dereference,
    // WRITE_ONCE(*x, 1).
    const ocaml = src.startsWith("(*", i) && (!headerDone || /\s/.test(src[i + 2] ?? ""));
    const close = src.startsWith("/*", i) ? "*/" : ocaml ? "*)" : null;
    if (close !== null) {
      const end = src.indexOf(close, i + 2);
      if (end < 0) throw new LitmusError(line, col, "unterminated comment");
      adv(end + 2 - i);
      continue;
    }
    const start = { line, col };
    const two = src.slice(i, i + 2);
    if (two === "/\\" || two === "\\/" || two === "==" || two === "!=") {
      out.push({ t: two, ...start });
      adv(2);
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_.]*|^-?[0-9]+/.exec(src.slice(i));
    if (word !== null) {
      out.push({ t: word[0], ...start });
      adv(word[0].length);
      continue;
    }
    if ('{}()[];,=*:~&+-"!'.includes(c)) {
      if (c === "{") headerDone = true;
      out.push({ t: c, ...start });
      adv(1);
      continue;
    }
    throw new LitmusError(line, col, `unexpected character '${c}'`);
  }
  return out;
}

class Parser {
  private pos = 0;
  constructor(
    private readonly toks: readonly Tok[],
    private readonly endLine: number,
  ) {}

  peek(k = 0): Tok | undefined {
    return this.toks[this.pos + k];
  }

  at(t: string): boolean {
    return this.peek()?.t === t;
  }

  fail(msg: string, tok = this.peek()): never {
    throw new LitmusError(tok?.line ?? this.endLine, tok?.col ?? 1, msg);
  }

  next(what: string): Tok {
    const tok = this.peek();
    if (tok === undefined) this.fail(`expected ${what}, found the end of the file`);
    this.pos++;
    return tok;
  }

  expect(t: string): Tok {
    const tok = this.peek();
    if (tok?.t !== t)
      this.fail(`expected '${t}'${tok ? `, found '${tok.t}'` : ", found the end of the file"}`);
    this.pos++;
    return tok;
  }

  ident(what: string): Tok {
    const tok = this.next(what);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(tok.t)) this.fail(`expected ${what}, found '${tok.t}'`, tok);
    return tok;
  }

  int(what: string): number {
    const tok = this.next(what);
    if (!/^-?[0-9]+$/.test(tok.t)) this.fail(`expected ${what} (an integer), found '${tok.t}'`, tok);
    return Number(tok.t);
  }

  done(): boolean {
    return this.pos >= this.toks.length;
  }
}

/** Parse a C litmus test; a LitmusError names the line and column of what is wrong. */
export function parseLitmus(src: string): LitmusTest {
  // The name is the rest of the header's word, whatever it contains (SB+mbs, 2+2W, CoRR-...):
  // read it from the text and blank it out before tokenizing, so positions stay right.
  const head = /^(\s*C[ \t]+)(\S+)/.exec(src);
  if (head === null) {
    const first = src.split("\n").findIndex((l) => l.trim() !== "");
    throw new LitmusError(
      Math.max(first, 0) + 1,
      1,
      "a C litmus test starts with 'C NAME'; only the C format is read",
    );
  }
  const name = head[2];
  const body = head[1] + " ".repeat(name.length) + src.slice(head[0].length);
  const p = new Parser(tokenize(body), src.split("\n").length);
  p.expect("C");
  // An optional quoted doc string may follow the name.
  if (p.at('"')) {
    p.next('"');
    while (!p.done() && !p.at('"')) p.next("the end of the doc string");
    p.expect('"');
  }
  const init = new Map<string, number>();
  p.expect("{");
  while (!p.at("}")) {
    // `x=1;`, `int x=1;`, `spinlock_t s;`, `int *p=&x;` (pointers are not supported)
    if (p.at("int") || p.at("atomic_t") || p.at("spinlock_t")) p.next("a type");
    if (p.at("*")) p.fail("pointer-valued locations are not supported");
    const loc = p.ident("a location name");
    let value = 0;
    if (p.at("=")) {
      p.next("=");
      if (p.at("&")) p.fail("pointer-valued locations are not supported");
      value = p.int("an initial value");
    }
    init.set(loc.t, value);
    p.expect(";");
  }
  p.expect("}");
  const threads: LitmusThread[] = [];
  while (p.peek() !== undefined && /^P[0-9]+$/.test(p.peek()!.t)) {
    const head = p.next("P0");
    const index = Number(head.t.slice(1));
    if (index !== threads.length)
      p.fail(`threads must be P0, P1, ... in order; expected P${threads.length}`, head);
    p.expect("(");
    while (!p.at(")")) {
      const ty = p.next("a parameter type");
      if (ty.t !== "int" && ty.t !== "atomic_t" && ty.t !== "spinlock_t")
        p.fail(`expected a parameter 'int *x', found '${ty.t}'`, ty);
      p.expect("*");
      const loc = p.ident("a parameter name").t;
      if (!init.has(loc)) init.set(loc, 0);
      if (p.at(",")) p.next(",");
    }
    p.expect(")");
    threads.push({ index, ...parseBody(p, init) });
  }
  if (threads.length === 0) p.fail("expected at least one thread P0(...) { ... }");
  const locations = p.at("locations") ? parseLocations(p, init, threads) : undefined;
  if (p.done()) p.fail("expected the final condition: exists, ~exists or forall");
  const condStart = p.peek()!;
  let quantifier: LitmusTest["quantifier"];
  if (p.at("~")) {
    p.next("~");
    const e = p.next("exists");
    if (e.t !== "exists") p.fail(`expected 'exists' after '~', found '${e.t}'`, e);
    quantifier = "~exists";
  } else {
    const q = p.next("exists or forall");
    if (q.t !== "exists" && q.t !== "forall") p.fail(`expected exists, ~exists or forall, found '${q.t}'`, q);
    quantifier = q.t === "exists" ? "exists" : "forall";
  }
  const condition = parseExpr(p, init, threads.length);
  if (!p.done()) p.fail(`unexpected '${p.peek()!.t}' after the condition`);
  for (const a of conditionAtoms(condition)) {
    if (a.op !== "reg") continue;
    const [t, r] = [a.thread, a.reg];
    if (!threads[t].regs.includes(r))
      throw new LitmusError(
        condStart.line,
        condStart.col,
        `the condition names ${t}:${r}, but P${t} declares no register ${r}`,
      );
  }
  const lines = src.split("\n");
  const conditionText = lines
    .slice(condStart.line - 1)
    .join(" ")
    .slice(condStart.col - 1)
    .replace(/\s+/g, " ")
    .trim();
  return { name, init, threads, quantifier, condition, conditionText, ...(locations ? { locations } : {}) };
}

/** `locations [0:r1; 1:r3; x; y]`: what herd7 shows besides the condition's atoms. */
function parseLocations(p: Parser, init: Map<string, number>, threads: readonly LitmusThread[]): string[] {
  p.next("locations");
  p.expect("[");
  const out: string[] = [];
  while (!p.at("]")) {
    const first = p.next("a location or N:register");
    if (/^[0-9]+$/.test(first.t) && p.at(":")) {
      p.next(":");
      const reg = p.ident("a register");
      const t = threads[Number(first.t)];
      if (t === undefined || !t.regs.includes(reg.t))
        p.fail(`P${first.t} declares no register ${reg.t}`, reg);
      out.push(`${first.t}:${reg.t}`);
    } else if (init.has(first.t)) out.push(first.t);
    else p.fail(`'${first.t}' is neither N:register nor a location of this test`, first);
    if (p.at(";")) p.next(";");
  }
  p.expect("]");
  return out;
}

function parseBody(p: Parser, init: Map<string, number>): { stmts: LitmusStmt[]; regs: string[] } {
  const regs = new Set<string>();
  p.expect("{");
  const stmts = parseStmts(p, regs, init);
  p.expect("}");
  return { stmts, regs: [...regs] };
}

/** Statements up to the closing brace of the current block (not consumed). */
function parseStmts(p: Parser, regs: Set<string>, init: Map<string, number>): LitmusStmt[] {
  const stmts: LitmusStmt[] = [];
  while (!p.at("}")) {
    if (p.done()) p.fail("expected '}'");
    parseStmt(p, regs, init, stmts);
  }
  return stmts;
}

/** One statement (a declaration, an assignment, a call or an if), appended to `stmts`. */
function parseStmt(p: Parser, regs: Set<string>, init: Map<string, number>, stmts: LitmusStmt[]): void {
  const tok = p.peek()!;
  if (tok.t === "int") {
    p.next("int");
    for (;;) {
      const r = p.ident("a register name").t;
      regs.add(r);
      if (p.at("=")) {
        p.next("=");
        stmts.push({ op: "set", reg: r, value: { const: p.int("an initial register value") } });
      }
      if (!p.at(",")) break;
      p.next(",");
    }
    p.expect(";");
    return;
  }
  if (tok.t === "if") {
    p.next("if");
    p.expect("(");
    const cond = parseCond(p, regs);
    p.expect(")");
    const then = parseArm(p, regs, init);
    let otherwise: LitmusStmt[] = [];
    if (p.at("else")) {
      p.next("else");
      otherwise = parseArm(p, regs, init);
    }
    stmts.push({ op: "if", cond, thenArm: then, elseArm: otherwise });
    return;
  }
  if (tok.t === "*") p.fail(PLAIN);
  if (tok.t === "while" || tok.t === "for" || tok.t === "goto" || tok.t === "return") {
    p.fail(`'${tok.t}' is not supported: litmus bodies are straight-line code with if/else`);
  }
  // `r = PRIM(...)`, `r = operand` or `PRIM(...)`
  let reg: string | undefined;
  if (p.peek(1)?.t === "=") {
    const r = p.ident("a register");
    if (!regs.has(r.t)) p.fail(`register '${r.t}' is not declared in this thread ('int ${r.t};')`, r);
    reg = r.t;
    p.expect("=");
    if (!p.at("(") && p.peek(1)?.t !== "(") {
      stmts.push({ op: "set", reg, value: operand(p, regs) });
      p.expect(";");
      return;
    }
  }
  stmts.push(parseCall(p, regs, init, reg));
  p.expect(";");
}

/** An arm of an if: a braced block or one statement. */
function parseArm(p: Parser, regs: Set<string>, init: Map<string, number>): LitmusStmt[] {
  if (!p.at("{")) {
    const one: LitmusStmt[] = [];
    parseStmt(p, regs, init, one);
    return one;
  }
  p.next("{");
  const stmts = parseStmts(p, regs, init);
  p.expect("}");
  return stmts;
}

/** `r`, `!r`, `a == b`, `a != b`. */
function parseCond(p: Parser, regs: Set<string>): LitmusCond {
  if (p.at("!")) {
    p.next("!");
    return { left: operand(p, regs), op: "==", right: { const: 0 } };
  }
  const left = operand(p, regs);
  if (p.at("==") || p.at("!=")) {
    const op = p.next("== or !=").t as "==" | "!=";
    return { left, op, right: operand(p, regs) };
  }
  return { left, op: "!=", right: { const: 0 } };
}

/** The primitive's base name, without an ordering suffix (xchg_relaxed -> xchg). */
function baseName(name: string): string {
  for (const s of ORDER_SUFFIXES) if (name.endsWith(s)) return name.slice(0, -s.length);
  return name;
}

function parseCall(
  p: Parser,
  regs: Set<string>,
  init: Map<string, number>,
  reg: string | undefined,
): LitmusStmt {
  const nameTok = p.ident("a primitive");
  const name = nameTok.t;
  const base = baseName(name);
  p.expect("(");
  const loc = (): string => {
    if (p.at("*")) p.next("*");
    if (p.at("&")) p.next("&");
    const l = p.ident("a location");
    if (!init.has(l.t)) p.fail(`'${l.t}' is not a location of this test`, l);
    return l.t;
  };
  const comma = () => p.expect(",");
  let stmt: LitmusStmt;
  if (LOCKS.includes(name)) {
    if (reg !== undefined) p.fail(`${name}() returns no value`, nameTok);
    stmt = { op: name === "spin_lock" ? "lock" : "unlock", loc: loc() };
  } else if ((FENCES as readonly string[]).includes(name)) {
    stmt = { op: "fence", kind: name as FenceKind };
  } else if ((STORES as readonly string[]).includes(name)) {
    const l = loc();
    comma();
    stmt = { op: "store", kind: name as StoreKind, loc: l, value: operand(p, regs) };
  } else if ((LOADS as readonly string[]).includes(name)) {
    if (reg === undefined) p.fail(`${name}() reads a value: assign it to a register`, nameTok);
    stmt = { op: "load", kind: name as LoadKind, reg, loc: loc() };
  } else if ((RMWS as readonly string[]).includes(base)) {
    const kind = base as RmwKind;
    const suffix = name.slice(base.length);
    if (suffix !== "" && !returnsValue(kind))
      p.fail(`${name}(): only value-returning atomics have ${suffix} forms`, nameTok);
    const order: RmwOrder = !returnsValue(kind)
      ? "relaxed"
      : suffix === ""
        ? "mb"
        : (suffix.slice(1) as RmwOrder);
    // atomic_add(i, v) and friends take the value first; xchg/cmpxchg take the location first.
    if (kind.startsWith("atomic_") && /(add|sub)/.test(kind)) {
      const value = operand(p, regs);
      comma();
      stmt = { op: "rmw", kind, loc: loc(), value, reg, order };
    } else if (kind === "cmpxchg") {
      const l = loc();
      comma();
      const expected = operand(p, regs);
      comma();
      stmt = { op: "rmw", kind, loc: l, expected, value: operand(p, regs), reg, order };
    } else if (kind === "xchg") {
      const l = loc();
      comma();
      stmt = { op: "rmw", kind, loc: l, value: operand(p, regs), reg, order };
    } else {
      stmt = { op: "rmw", kind, loc: loc(), value: { const: 1 }, reg, order };
    }
    if (reg !== undefined && !returnsValue(kind))
      p.fail(`${name}() returns no value in the kernel's API`, nameTok);
  } else {
    p.fail(
      `'${name}' is not supported; the primitives are ${LITMUS_PRIMITIVES.join(", ")} (with _relaxed/_acquire/_release forms of the value-returning atomics)`,
      nameTok,
    );
  }
  p.expect(")");
  return stmt;
}

const PLAIN =
  "plain C accesses are not supported: every shared access is marked (READ_ONCE(), WRITE_ONCE(), ...)";

function operand(p: Parser, regs: Set<string>): Operand {
  if (p.at("*")) p.fail(PLAIN);
  const tok = p.next("a value or register");
  if (/^-?[0-9]+$/.test(tok.t)) return { const: Number(tok.t) };
  if (regs.has(tok.t)) return { reg: tok.t };
  return p.fail(`expected an integer or a declared register, found '${tok.t}'`, tok);
}

function parseExpr(p: Parser, init: Map<string, number>, nThreads: number): LitmusExpr {
  let left = parseAnd(p, init, nThreads);
  while (p.at("\\/")) {
    p.next("\\/");
    left = { op: "or", left, right: parseAnd(p, init, nThreads) };
  }
  return left;
}

function parseAnd(p: Parser, init: Map<string, number>, nThreads: number): LitmusExpr {
  let left = parseUnary(p, init, nThreads);
  while (p.at("/\\")) {
    p.next("/\\");
    left = { op: "and", left, right: parseUnary(p, init, nThreads) };
  }
  return left;
}

function parseUnary(p: Parser, init: Map<string, number>, nThreads: number): LitmusExpr {
  if (p.at("~")) {
    p.next("~");
    return { op: "not", arg: parseUnary(p, init, nThreads) };
  }
  if (p.at("(")) {
    p.next("(");
    if (p.at(")")) {
      p.next(")");
      return { op: "true" };
    }
    const e = parseExpr(p, init, nThreads);
    p.expect(")");
    return e;
  }
  if (p.at("true")) {
    p.next("true");
    return { op: "true" };
  }
  const first = p.next("a condition atom");
  if (/^[0-9]+$/.test(first.t) && p.at(":")) {
    const thread = Number(first.t);
    if (thread >= nThreads) p.fail(`there is no thread P${thread}`, first);
    p.expect(":");
    const reg = p.ident("a register").t;
    p.expect("=");
    return { op: "reg", thread, reg, value: p.int("a value") };
  }
  if (!init.has(first.t)) p.fail(`'${first.t}' is neither N:register nor a location of this test`, first);
  p.expect("=");
  return { op: "loc", loc: first.t, value: p.int("a value") };
}

/** The atoms of a condition (N:reg=v and loc=v), left to right. */
export function conditionAtoms(e: LitmusExpr): Extract<LitmusExpr, { op: "reg" | "loc" }>[] {
  switch (e.op) {
    case "and":
    case "or":
      return [...conditionAtoms(e.left), ...conditionAtoms(e.right)];
    case "not":
      return conditionAtoms(e.arg);
    case "reg":
    case "loc":
      return [e];
    case "true":
      return [];
  }
}
