/**
 * The admission gate on its own: room is promised once per admitted request until it is released, waiting
 * requests are admitted in arrival order as room appears, a wait that runs out refuses after that wait (not
 * before), and requests beyond the waiting limit are refused at once. The server tests (concurrency.test) run it
 * under real uploads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdmissionGate } from '../../src/serve/admission.js';

describe('AdmissionGate', () => {
  it('promises each place once: with room for 2, a third request waits until one admitted request releases', async () => {
    let room = 2;
    const gate = new AdmissionGate(() => room, { waitMs: 10_000, maxWaiting: 4 });
    const first = await gate.enter();
    const second = await gate.enter();
    assert.ok(first && second);
    const third = gate.enter();
    assert.equal(gate.stats.waiting, 1);
    // Submitted to the pool: the pool's own room shrinks as the promise is released, so nothing new is free.
    room = 1;
    first.release();
    first.release();
    assert.equal(gate.stats.waiting, 1, 'a place taken by the submitted analysis is not free; a second release changes nothing');
    // The analysis finishes: room reappears and the waiting request is admitted.
    room = 2;
    gate.roomChanged();
    assert.ok(await third);
    assert.deepEqual(gate.stats, { waiting: 0, admittedAfterWaiting: 1, refusedAfterWaiting: 0, refusedAtOnce: 0 });
  });

  it('admits waiting requests in arrival order, one per place that appears', async () => {
    let room = 0;
    const gate = new AdmissionGate(() => room, { waitMs: 10_000, maxWaiting: 8 });
    const order: number[] = [];
    const waiting = [0, 1, 2].map((i) => gate.enter().then((a) => (a ? order.push(i) : undefined)));
    room = 1;
    gate.roomChanged();
    room = 2;
    gate.roomChanged();
    await Promise.resolve();
    assert.deepEqual(order, [0, 1]);
    assert.equal(gate.stats.waiting, 1);
    room = 3;
    gate.roomChanged();
    await Promise.all(waiting);
    assert.deepEqual(order, [0, 1, 2]);
  });

  it('refuses after the wait when no room appears, and at once beyond the waiting limit or with no wait', async () => {
    const gate = new AdmissionGate(() => 0, { waitMs: 200, maxWaiting: 2 });
    const started = performance.now();
    const waits = [gate.enter(), gate.enter()];
    assert.equal(await gate.enter(), null, 'a third is refused at once');
    assert.ok(performance.now() - started < 100);
    assert.deepEqual(await Promise.all(waits), [null, null]);
    assert.ok(performance.now() - started >= 195, `refused after ${Math.round(performance.now() - started)} ms`);
    assert.deepEqual(gate.stats, { waiting: 0, admittedAfterWaiting: 0, refusedAfterWaiting: 2, refusedAtOnce: 1 });

    const noWait = new AdmissionGate(() => 0, { waitMs: 0, maxWaiting: 2 });
    assert.equal(await noWait.enter(), null);
    assert.equal(noWait.stats.refusedAtOnce, 1);
  });

  it('a newcomer does not overtake a waiting request: with one waiting, a new one waits behind it', async () => {
    let room = 0;
    const gate = new AdmissionGate(() => room, { waitMs: 10_000, maxWaiting: 4 });
    const early = gate.enter();
    room = 1;
    const late = gate.enter();
    assert.equal(gate.stats.waiting, 2, 'room that appeared without roomChanged() is not taken by the newcomer');
    gate.roomChanged();
    assert.ok(await early);
    room = 2;
    gate.roomChanged();
    assert.ok(await late);
  });
});
