import { expect } from 'chai';
import fc from 'fast-check';
import { Inflight } from '#src/module/inflight.js';

type Operation = { op: 'set'; key: string; value: number } | { op: 'delete'; key: string };

/** Few keys, so that sequences set, replace and delete the same ones and fill the slot and the Map at once. */
const key = fc.constantFrom('a', 'b', 'c', 'Reports.load:1', 'Reports.load:2');
const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), key, value: fc.integer() }),
  fc.record({ op: fc.constant('delete' as const), key }),
);

describe('Inflight (calls under way, by key)', () => {
  it('answers every key as a Map would, after any sequence of sets and deletes', () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 40 }), (operations) => {
        const inflight = new Inflight<number>();
        const model = new Map<string, number>();
        for (const step of operations) {
          if (step.op === 'set') {
            inflight.set(step.key, step.value);
            model.set(step.key, step.value);
          } else {
            inflight.delete(step.key);
            model.delete(step.key);
          }
          for (const probe of ['a', 'b', 'c', 'Reports.load:1', 'Reports.load:2']) {
            expect(inflight.get(probe), `${probe} after ${JSON.stringify(step)}`).to.equal(model.get(probe));
          }
        }
      }),
    );
  });

  it('keeps the second call under way when the first, in the slot, is deleted', () => {
    const inflight = new Inflight<string>();
    const id = 41 + Number('1');
    inflight.set(`Reports.load:${id}`, 'first');
    inflight.set(`Reports.load:${id + 1}`, 'second');
    expect(inflight.get(['Reports.load:', '42'].join(''))).to.equal('first');
    expect(inflight.get(['Reports.load:', '43'].join(''))).to.equal('second');
    inflight.delete(['Reports.load:', '42'].join(''));
    expect(inflight.get('Reports.load:42')).to.equal(undefined);
    expect(inflight.get('Reports.load:43')).to.equal('second');
  });
});
