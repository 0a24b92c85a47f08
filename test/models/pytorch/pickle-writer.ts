/** Writes small pickles opcode by opcode, to build inputs PyTorch would not produce (damaged or hostile ones). */
import { zipSync } from 'fflate';

export class PickleWriter {
  private readonly out: number[] = [];

  op(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }

  proto(version = 2): this {
    return this.op(0x80, version);
  }

  /** GLOBAL: module and name as text lines. */
  global(module: string, name: string): this {
    return this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }

  /** BINUNICODE */
  str(text: string): this {
    const bytes = new TextEncoder().encode(text);
    return this.op(0x58, ...u32(bytes.length), ...bytes);
  }

  /** BININT */
  int(value: number): this {
    return this.op(0x4a, ...u32(value >>> 0));
  }

  mark(): this {
    return this.op(0x28);
  }

  tuple(): this {
    return this.op(0x74);
  }

  emptyDict(): this {
    return this.op(0x7d);
  }

  setitems(): this {
    return this.op(0x75);
  }

  reduce(): this {
    return this.op(0x52);
  }

  stop(): this {
    return this.op(0x2e);
  }

  /** A storage reference as the zip format writes it: ('storage', torch.<type>, key, 'cpu', numel) BINPERSID. */
  storage(type: string, key: string, numel: number): this {
    return this.mark().str('storage').global('torch', type).str(key).str('cpu').int(numel).tuple().op(0x51);
  }

  /** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()). */
  tensor(type: string, key: string, numel: number, offset: number, size: number[], stride: number[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark().storage(type, key, numel).int(offset);
    this.mark();
    size.forEach((dim) => this.int(dim));
    this.tuple().mark();
    stride.forEach((step) => this.int(step));
    return this.tuple().op(0x89).global('collections', 'OrderedDict').op(0x29).reduce().tuple().reduce();
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

function u32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}

/** A torch.save-shaped zip (stored entries) from a data.pkl and storage entries. */
export function zipCheckpoint(dataPkl: Uint8Array, storages: Record<string, Uint8Array>, extra: Record<string, Uint8Array> = {}) {
  const entries: Record<string, Uint8Array> = { 'archive/data.pkl': dataPkl, ...extra };
  for (const [key, bytes] of Object.entries(storages)) entries[`archive/data/${key}`] = bytes;
  return zipSync(entries, { level: 0 });
}

/** {name: tensor} with one float32 tensor on storage '0'. */
export function oneTensorPickle(type: string, numel: number, size: number[], stride: number[], offset = 0): Uint8Array {
  return new PickleWriter()
    .proto()
    .emptyDict()
    .mark()
    .str('w')
    .tensor(type, '0', numel, offset, size, stride)
    .setitems()
    .stop()
    .bytes();
}
