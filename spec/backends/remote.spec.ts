import { expect } from 'chai';
import { withDeadline } from '#src/backends/remote.js';

describe('withDeadline', () => {
  const timedOut = () => new Error('too slow');

  it('settles like the work when it answers in time', async () => {
    expect(await withDeadline(Promise.resolve(42), 50, timedOut)).to.equal(42);
    const failure = new Error('refused');
    const caught = await withDeadline(Promise.reject(failure), 50, timedOut).catch((error: unknown) => error);
    expect(caught).to.equal(failure);
  });

  it('rejects with the given error when the work does not answer in time', async () => {
    const caught = await withDeadline(new Promise(() => undefined), 20, timedOut).catch((error: Error) => error);
    expect(caught).to.be.instanceOf(Error).with.property('message', 'too slow');
  });

  it('leaves no unhandled rejection when the work fails after the deadline', async () => {
    const unhandled: unknown[] = [];
    const spy = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', spy);
    try {
      const late = new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 30));
      await withDeadline(late, 5, timedOut).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(unhandled).to.deep.equal([]);
    } finally {
      process.off('unhandledRejection', spy);
    }
  });
});
