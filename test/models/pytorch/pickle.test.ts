import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PickleError, PickledObject, type UnpickleHooks, unpickle } from '../../../src/models/import/pytorch/pickle.js';
import { PickleWriter } from './pickle-writer.js';

const refusing: UnpickleHooks = {
  resolveGlobal: () => undefined,
  persistentLoad: () => {
    throw new Error('no persistent ids here');
  },
};

const known: UnpickleHooks = {
  resolveGlobal: (module, name) =>
    module === 'collections' && name === 'OrderedDict' ? { call: () => new Map() } : undefined,
  persistentLoad: (pid) => ({ loaded: pid }),
};

function load(bytes: Uint8Array, hooks: UnpickleHooks = refusing) {
  return unpickle(bytes, 0, hooks);
}

describe('unpickle', () => {
  it('reads protocol 2 scalars, strings, containers and memo references', () => {
    const w = new PickleWriter().proto().op(0x5d, 0x71, 0x00); // EMPTY_LIST, BINPUT 0
    w.mark().op(0x4e, 0x88, 0x89); // None True False
    w.op(0x4b, 200).op(0x4d, 0x34, 0x12).int(-5); // 200, 0x1234, -5
    w.op(0x8a, 0x02, 0xff, 0x7f).op(0x8a, 0x01, 0xff); // LONG1 32767, LONG1 -1
    w.op(0x8a, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x01); // LONG1 2^64
    w.op(0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0); // BINFLOAT 1.5 (big endian)
    w.str('é').op(0x55, 0x02, 0x68, 0x69).op(0x43, 0x02, 0x00, 0xff); // 'é', py2 str 'hi', b'\x00\xff'
    w.op(0x4b, 1).op(0x85).op(0x4b, 1).op(0x4b, 2).op(0x86); // (1,), (1, 2)
    w.emptyDict().op(0x4b, 7).op(0x68, 0x00).op(0x73); // {7: <the list itself>}
    w.op(0x65).stop(); // APPENDS
    const { value, end } = load(w.bytes());
    assert.ok(Array.isArray(value));
    const [none, yes, no, small, medium, negative, long, minusOne, huge, float, text, py2, bytes, one, two, dict] = value;
    assert.deepEqual([none, yes, no, small, medium, negative, long, minusOne, huge, float], [
      null, true, false, 200, 0x1234, -5, 32767, -1, 2n ** 64n, 1.5,
    ]);
    assert.deepEqual([text, py2, bytes, one, two], ['é', 'hi', Uint8Array.of(0, 255), [1], [1, 2]]);
    assert.ok(dict instanceof Map);
    assert.equal(dict.get(7), value, 'BINGET returns the same object, not a copy');
    assert.equal(end, w.bytes().length);
  });

  it('reads protocol 4 framing, short strings, MEMOIZE, STACK_GLOBAL and sets', () => {
    const w = new PickleWriter().proto(4).op(0x95, 20, 0, 0, 0, 0, 0, 0, 0); // FRAME
    w.op(0x8c, 11, ...new TextEncoder().encode('collections')).op(0x94); // SHORT_BINUNICODE + MEMOIZE
    w.op(0x8c, 11, ...new TextEncoder().encode('OrderedDict')).op(0x93); // STACK_GLOBAL
    w.op(0x29).reduce().op(0x94); // OrderedDict()
    w.mark().op(0x68, 0x00).op(0x8f).mark().op(0x4b, 3).op(0x4b, 3).op(0x90).setitems(); // {"collections": {3}}
    w.stop();
    const { value, unknownGlobals } = load(w.bytes(), known);
    assert.deepEqual(unknownGlobals, []);
    assert.ok(value instanceof Map);
    assert.deepEqual([...value], [['collections', new Set([3])]]);
  });

  it('keeps unknown globals inert: a REDUCE on os.system only records it', () => {
    const w = new PickleWriter().proto().global('os', 'system').mark().str('touch /tmp/pwned').tuple().reduce().stop();
    const { value, unknownGlobals } = load(w.bytes());
    assert.deepEqual(unknownGlobals, ['os.system']);
    assert.ok(value instanceof PickledObject);
    assert.equal(value.cls.qualifiedName, 'os.system');
    assert.deepEqual(value.args, ['touch /tmp/pwned']);
  });

  it('records the state that BUILD gives an unknown object', () => {
    const w = new PickleWriter().proto().global('mymodels', 'Net').op(0x29).op(0x81); // NEWOBJ
    w.emptyDict().mark().str('_modules').emptyDict().setitems().op(0x62).stop(); // BUILD
    const { value } = load(w.bytes());
    assert.ok(value instanceof PickledObject);
    assert.ok(value.state instanceof Map && value.state.has('_modules'));
  });

  it('hands persistent ids to the hook', () => {
    const w = new PickleWriter().proto().mark().str('storage').str('0').tuple().op(0x51).stop();
    assert.deepEqual(load(w.bytes(), known).value, { loaded: ['storage', '0'] });
  });

  it('reads pickles written back to back, starting where asked', () => {
    const first = new PickleWriter().proto().op(0x4b, 1).stop().bytes();
    const both = Uint8Array.from([...first, ...new PickleWriter().proto().str('two').stop().bytes()]);
    const one = load(both);
    assert.deepEqual([one.value, unpickle(both, one.end, refusing).value], [1, 'two']);
  });

  it('reports truncation with the byte where the data ran out', () => {
    const bytes = new PickleWriter().proto().str('a longer string').stop().bytes();
    assert.throws(
      () => load(bytes.subarray(0, 8)),
      (error: unknown) =>
        error instanceof PickleError && error.truncated && /byte 2 needs 15 more byte\(s\) but only 1 remain/.test(error.message),
    );
    assert.throws(() => load(bytes.subarray(0, 2)), (error: unknown) => error instanceof PickleError && error.truncated);
  });

  it('refuses opcodes torch.save does not write and malformed stacks, naming the byte', () => {
    assert.throws(() => load(new PickleWriter().proto().op(0x49).bytes()), /opcode at byte 2 has opcode 0x49/);
    assert.throws(() => load(new PickleWriter().proto().stop().bytes()), /byte 2 pops from an empty stack/);
    assert.throws(() => load(new PickleWriter().proto().op(0x68, 9).bytes()), /reads memo entry 9, which was never stored/);
    assert.throws(() => load(new PickleWriter().proto().op(0x4b, 1).op(0x29).reduce().bytes()), /calls number/);
    assert.throws(() => load(new PickleWriter().proto().op(0x75).bytes()), /closes a MARK that was never opened/);
  });
});
