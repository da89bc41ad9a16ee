import { expect } from 'chai';
import sinon from 'sinon';
import { Deadlines } from '#src/backends/deadlines.js';
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

describe('Deadlines (one timer for a backend’s operations)', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => clock.restore());

  const deadlines = () => new Deadlines(100, (operation, key) => new Error(`${operation} ${key} timed out`));

  it('rejects each unreleased operation once its own timeout has passed, oldest first, and never a released one', () => {
    const bounds = deadlines();
    const rejected: string[] = [];
    const watch = (name: string) => bounds.track((error) => rejected.push(`${name}: ${error.message}`), 'get', name);
    watch('a');
    clock.tick(30);
    const b = watch('b');
    clock.tick(30);
    watch('c');
    bounds.release(b);
    clock.tick(40);
    expect(rejected).to.deep.equal(['a: get a timed out']);
    clock.tick(59);
    expect(rejected).to.have.length(1);
    clock.tick(2);
    expect(rejected).to.deep.equal(['a: get a timed out', 'c: get c timed out']);
    expect(clock.countTimers(), 'no timer left once nothing is watched').to.equal(0);
  });

  it('keeps its list whole when an operation settles after it expired', () => {
    const bounds = deadlines();
    const rejected: string[] = [];
    const late = bounds.track(() => rejected.push('late'), 'get', 'late');
    clock.tick(101);
    const next = bounds.track(() => rejected.push('next'), 'get', 'next');
    bounds.release(late);
    clock.tick(101);
    expect(rejected).to.deep.equal(['late', 'next']);
    bounds.release(next);
  });
});
