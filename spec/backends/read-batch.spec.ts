import { expect } from 'chai';
import sinon from 'sinon';
import { ReadBatch } from '#src/backends/read-batch.js';

describe('ReadBatch', () => {
  it('reads the keys asked for in one tick together, and the next tick apart', async () => {
    const readMany = sinon.spy(async (keys: string[]) => keys.map((key) => key.toUpperCase()));
    const batch = new ReadBatch(readMany);
    expect(await Promise.all([batch.read('a'), batch.read('b'), batch.read('a')])).to.deep.equal(['A', 'B', 'A']);
    expect(await batch.read('c')).to.equal('C');
    expect(readMany.args).to.deep.equal([[['a', 'b']], [['c']]], 'a key asked for twice in a tick is sent once');
  });

  it('sends keys that are not strings once per read, and fails every read of a key when the batch fails', async () => {
    const one = Buffer.from('k');
    const readMany = sinon.spy(async (keys: Buffer[]) => keys.map((key) => key.length));
    const batch = new ReadBatch<number, Buffer>(readMany);
    expect(await Promise.all([batch.read(one), batch.read(one)])).to.deep.equal([1, 1]);
    expect(readMany.firstCall.args[0]).to.have.length(2);
    const failing = new ReadBatch<string>(() => Promise.reject(new Error('down')));
    const outcomes = await Promise.allSettled([failing.read('a'), failing.read('a')]);
    expect(outcomes.map((outcome) => outcome.status)).to.deep.equal(['rejected', 'rejected']);
  });

  it('fails every read of a batch whose read fails, whether it throws or rejects', async () => {
    const failure = new Error('connection closed');
    for (const readMany of [
      () => Promise.reject(failure),
      () => {
        throw failure;
      },
    ]) {
      const batch = new ReadBatch<string>(readMany);
      const outcomes = await Promise.allSettled([batch.read('a'), batch.read('b')]);
      expect(outcomes).to.deep.equal([
        { status: 'rejected', reason: failure },
        { status: 'rejected', reason: failure },
      ]);
    }
  });
});
