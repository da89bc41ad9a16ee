import { expect } from 'chai';
import sinon from 'sinon';
import { ReadBatch } from '#src/backends/read-batch.js';

describe('ReadBatch', () => {
  it('reads the keys asked for in one tick together, and the next tick apart', async () => {
    const readMany = sinon.spy(async (keys: string[]) => keys.map((key) => key.toUpperCase()));
    const batch = new ReadBatch(readMany);
    expect(await Promise.all([batch.read('a'), batch.read('b'), batch.read('a')])).to.deep.equal(['A', 'B', 'A']);
    expect(await batch.read('c')).to.equal('C');
    expect(readMany.args).to.deep.equal([[['a', 'b', 'a']], [['c']]]);
  });

  it('fails every read of a batch whose read fails, whether it throws or rejects', async () => {
    const failure = new Error('connection closed');
    for (const readMany of [() => Promise.reject(failure), () => { throw failure; }]) {
      const batch = new ReadBatch<string>(readMany);
      const outcomes = await Promise.allSettled([batch.read('a'), batch.read('b')]);
      expect(outcomes).to.deep.equal([
        { status: 'rejected', reason: failure },
        { status: 'rejected', reason: failure },
      ]);
    }
  });
});
