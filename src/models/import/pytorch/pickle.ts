/**
 * A minimal, safe unpickler for what torch.save writes (pickle protocols 2 to 5).
 *
 * It never runs anything from the stream. Module-level names (GLOBAL, STACK_GLOBAL) resolve through a caller-supplied
 * table of our own TypeScript implementations; any other name becomes an inert `PickleGlobal` that is recorded in
 * `unknownGlobals`, and objects "constructed" from it are `PickledObject` records (class, arguments, state), so that
 * the caller can describe what the file holds (e.g. a whole nn.Module) before refusing it. Python dicts become Maps,
 * lists and tuples arrays, sets Sets, bytes Uint8Arrays, ints numbers (bigints beyond 2^53).
 */

export class PickleError extends Error {
  constructor(
    message: string,
    /** True when the data ended before the pickle did. */
    readonly truncated = false,
  ) {
    super(message);
    this.name = 'PickleError';
  }
}

/** What a known global does when the stream calls it (REDUCE, NEWOBJ, OBJ); known globals without it are data. */
export interface GlobalImplementation {
  call?: (args: unknown[]) => unknown;
}

/** A module-level name met in the stream. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly implementation: GlobalImplementation | undefined,
  ) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An instance of a class this reader does not know, kept as data: nothing of the class ever runs. */
export class PickledObject {
  state: unknown = undefined;
  constructor(
    readonly cls: PickleGlobal,
    readonly args: readonly unknown[],
  ) {}
}

/** Objects made by known globals that take the BUILD opcode's state (e.g. a numpy dtype's byte order). */
export interface AcceptsState {
  setState(state: unknown): void;
}

export interface UnpickleHooks {
  /** Our implementation of `module.name`, or undefined for a name we do not know. */
  resolveGlobal(module: string, name: string): GlobalImplementation | undefined;
  /** Resolves a persistent id (torch uses them for storages and, in the legacy format, module classes). */
  persistentLoad(pid: unknown): unknown;
}

export interface UnpickleResult {
  value: unknown;
  /** Byte offset just after the STOP opcode. */
  end: number;
  /** Qualified names of the unknown globals met, in order, without repeats. */
  unknownGlobals: string[];
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const utf8 = new TextDecoder('utf-8');

/** A Python int as a number when it is exact, else as a bigint. */
export function pythonInt(value: bigint): number | bigint {
  return value <= MAX_SAFE && value >= -MAX_SAFE ? Number(value) : value;
}

/** Unpickles one object starting at `start`; torch's legacy format holds several pickles back to back. */
export function unpickle(bytes: Uint8Array, start: number, hooks: UnpickleHooks): UnpickleResult {
  return new Unpickler(bytes, start, hooks).run();
}

class Unpickler {
  private position: number;
  private opcodeStart = 0;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly unknownGlobals = new Set<string>();
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly hooks: UnpickleHooks,
  ) {
    this.position = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  run(): UnpickleResult {
    for (;;) {
      this.opcodeStart = this.position;
      const opcode = this.u8();
      if (opcode === 0x2e /* STOP */) {
        const value = this.pop();
        return { value, end: this.position, unknownGlobals: [...this.unknownGlobals] };
      }
      this.step(opcode);
    }
  }

  private step(opcode: number): void {
    const stack = this.stack;
    switch (opcode) {
      case 0x80: // PROTO
        if (this.u8() > 5) this.fail('uses a pickle protocol newer than 5');
        return;
      case 0x95: // FRAME: only a hint about buffering
        this.take(8);
        return;
      case 0x28: // MARK
        this.metastack.push(this.stack);
        this.stack = [];
        return;
      case 0x30: // POP
        this.pop();
        return;
      case 0x31: // POP_MARK
        this.popMark();
        return;
      case 0x32: // DUP
        stack.push(this.top());
        return;
      case 0x4e: // NONE
        stack.push(null);
        return;
      case 0x88: // NEWTRUE
        stack.push(true);
        return;
      case 0x89: // NEWFALSE
        stack.push(false);
        return;
      case 0x4b: // BININT1
        stack.push(this.u8());
        return;
      case 0x4d: // BININT2
        stack.push(this.view.getUint16(this.skip(2), true));
        return;
      case 0x4a: // BININT
        stack.push(this.view.getInt32(this.skip(4), true));
        return;
      case 0x8a: // LONG1
        stack.push(this.long(this.u8()));
        return;
      case 0x8b: // LONG4
        stack.push(this.long(this.u32()));
        return;
      case 0x47: // BINFLOAT (big endian)
        stack.push(this.view.getFloat64(this.skip(8), false));
        return;
      case 0x8c: // SHORT_BINUNICODE
      case 0x55: // SHORT_BINSTRING (a Python 2 str; torch.load decodes it as UTF-8 too)
        stack.push(utf8.decode(this.take(this.u8())));
        return;
      case 0x58: // BINUNICODE
      case 0x54: // BINSTRING
        stack.push(utf8.decode(this.take(this.u32())));
        return;
      case 0x8d: // BINUNICODE8
        stack.push(utf8.decode(this.take(this.u64())));
        return;
      case 0x43: // SHORT_BINBYTES
        stack.push(this.take(this.u8()).slice());
        return;
      case 0x42: // BINBYTES
        stack.push(this.take(this.u32()).slice());
        return;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(this.take(this.u64()).slice());
        return;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        return;
      case 0x6c: // LIST
      case 0x74: // TUPLE
        this.push(this.popMark());
        return;
      case 0x85: // TUPLE1
        stack.push(this.popN(1));
        return;
      case 0x86: // TUPLE2
        stack.push(this.popN(2));
        return;
      case 0x87: // TUPLE3
        stack.push(this.popN(3));
        return;
      case 0x61: // APPEND
        this.expectList(this.top(1)).push(this.pop());
        return;
      case 0x65: {
        // APPENDS
        const items = this.popMark();
        const list = this.expectList(this.top());
        for (const item of items) list.push(item); // no spread: lists can be longer than the call stack allows
        return;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        return;
      case 0x64: {
        // DICT
        const items = this.popMark();
        const dict = new Map<unknown, unknown>();
        for (let i = 0; i + 1 < items.length; i += 2) dict.set(items[i], items[i + 1]);
        this.push(dict);
        return;
      }
      case 0x73: {
        // SETITEM
        const value = this.pop();
        const key = this.pop();
        this.expectDict(this.top()).set(key, value);
        return;
      }
      case 0x75: {
        // SETITEMS
        const items = this.popMark();
        const dict = this.expectDict(this.top());
        for (let i = 0; i + 1 < items.length; i += 2) dict.set(items[i], items[i + 1]);
        return;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        return;
      case 0x90: {
        // ADDITEMS
        const items = this.popMark();
        const set = this.top();
        if (!(set instanceof Set)) this.fail('adds items to something that is not a set');
        for (const item of items) set.add(item);
        return;
      }
      case 0x91: // FROZENSET
        this.push(new Set(this.popMark()));
        return;
      case 0x68: // BINGET
        stack.push(this.memoGet(this.u8()));
        return;
      case 0x6a: // LONG_BINGET
        stack.push(this.memoGet(this.u32()));
        return;
      case 0x71: // BINPUT
        this.memo.set(this.u8(), this.top());
        return;
      case 0x72: // LONG_BINPUT
        this.memo.set(this.u32(), this.top());
        return;
      case 0x94: // MEMOIZE
        this.memo.set(this.memo.size, this.top());
        return;
      case 0x63: {
        // GLOBAL
        const module = this.line();
        stack.push(this.global(module, this.line()));
        return;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== 'string' || typeof name !== 'string') this.fail('names a global with non-string parts');
        stack.push(this.global(module, name));
        return;
      }
      case 0x52: {
        // REDUCE
        const args = this.expectList(this.pop());
        stack.push(this.call(this.pop(), args));
        return;
      }
      case 0x81: {
        // NEWOBJ
        const args = this.expectList(this.pop());
        stack.push(this.call(this.pop(), args));
        return;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = this.pop();
        const args = this.expectList(this.pop());
        const cls = this.pop();
        const known = cls instanceof PickleGlobal && cls.implementation;
        if (known && kwargs instanceof Map && kwargs.size > 0) this.fail('passes keyword arguments to a constructor');
        stack.push(this.call(cls, args));
        return;
      }
      case 0x6f: {
        // OBJ
        const [cls, ...args] = this.popMark();
        this.push(this.call(cls, args));
        return;
      }
      case 0x51: // BINPERSID
        stack.push(this.hooks.persistentLoad(this.pop()));
        return;
      case 0x62: // BUILD
        this.build(this.top(1), this.pop());
        return;
      default:
        this.fail(`has opcode 0x${opcode.toString(16).padStart(2, '0')}, which torch.save does not write`);
    }
  }

  private global(module: string, name: string): PickleGlobal {
    const implementation = this.hooks.resolveGlobal(module, name);
    const global = new PickleGlobal(module, name, implementation);
    if (!implementation) this.unknownGlobals.add(global.qualifiedName);
    return global;
  }

  private call(callable: unknown, args: unknown[]): unknown {
    if (!(callable instanceof PickleGlobal)) this.fail(`calls ${typeof callable}, which is not a class or function`);
    if (!callable.implementation) return new PickledObject(callable, args);
    if (!callable.implementation.call) this.fail(`calls ${callable.qualifiedName}, which is not callable`);
    try {
      return callable.implementation.call(args);
    } catch (error) {
      this.fail(`calls ${callable.qualifiedName} with unexpected arguments: ${(error as Error).message}`);
    }
  }

  private build(target: unknown, state: unknown): void {
    if (target instanceof PickledObject) target.state = state;
    else if (isAcceptsState(target)) target.setState(state);
    // Attributes of a dict, such as the `_metadata` (module versions) of a state dict, carry no weights.
    else if (!(target instanceof Map)) this.fail(`sets the state of ${typeof target}, which has none`);
  }

  private long(length: number): number | bigint {
    const bytes = this.take(length);
    let value = 0n;
    for (let i = length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
    if (length > 0 && bytes[length - 1] & 0x80) value -= 1n << BigInt(8 * length);
    return pythonInt(value);
  }

  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.position);
    if (end < 0) this.truncated(1);
    const text = utf8.decode(this.bytes.subarray(this.position, end));
    this.position = end + 1;
    return text;
  }

  private memoGet(index: number): unknown {
    if (!this.memo.has(index)) this.fail(`reads memo entry ${index}, which was never stored`);
    return this.memo.get(index);
  }

  private u8(): number {
    return this.bytes[this.skip(1)];
  }

  private u32(): number {
    return this.view.getUint32(this.skip(4), true);
  }

  private u64(): number {
    const value = this.view.getBigUint64(this.skip(8), true);
    if (value > MAX_SAFE) this.truncated(Number.MAX_SAFE_INTEGER);
    return Number(value);
  }

  /** Advances past `length` bytes and returns where they start. */
  private skip(length: number): number {
    if (length > this.bytes.length - this.position) this.truncated(length);
    const at = this.position;
    this.position += length;
    return at;
  }

  private take(length: number): Uint8Array {
    const at = this.skip(length);
    return this.bytes.subarray(at, at + length);
  }

  private push(value: unknown): void {
    this.stack.push(value);
  }

  private pop(): unknown {
    if (this.stack.length === 0) this.fail('pops from an empty stack');
    return this.stack.pop();
  }

  private top(depth = 0): unknown {
    if (this.stack.length <= depth) this.fail('reads past the bottom of the stack');
    return this.stack[this.stack.length - 1 - depth];
  }

  private popN(count: number): unknown[] {
    if (this.stack.length < count) this.fail('pops from an empty stack');
    return this.stack.splice(this.stack.length - count, count);
  }

  private popMark(): unknown[] {
    const items = this.stack;
    const outer = this.metastack.pop();
    if (!outer) this.fail('closes a MARK that was never opened');
    this.stack = outer;
    return items;
  }

  private expectList(value: unknown): unknown[] {
    if (!Array.isArray(value)) this.fail('expects a list or tuple');
    return value;
  }

  private expectDict(value: unknown): Map<unknown, unknown> {
    if (!(value instanceof Map)) this.fail('sets an item on something that is not a dict');
    return value;
  }

  private truncated(needed: number): never {
    throw new PickleError(
      `the data ends inside a pickle: byte ${this.opcodeStart} needs ${needed} more byte(s) but only ${this.bytes.length - this.position} remain`,
      true,
    );
  }

  private fail(what: string): never {
    throw new PickleError(`malformed pickle: the opcode at byte ${this.opcodeStart} ${what}`);
  }
}

function isAcceptsState(value: unknown): value is AcceptsState {
  return typeof value === 'object' && value !== null && typeof (value as AcceptsState).setState === 'function';
}
