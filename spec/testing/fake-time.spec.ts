import { expect } from 'chai';
import sinon from 'sinon';
import { Cached, CacheModule, MemoryBackend } from 'hoard';
import { fakeCacheTime, type CacheTime } from 'hoard/testing';

describe('fakeCacheTime', () => {
  let time: CacheTime | undefined;

  beforeEach(() => {
    CacheModule.reset();
    CacheModule.register(new MemoryBackend());
  });

  afterEach(() => time?.restore());

  it('moves TTLs by seconds while real timers keep running', async () => {
    let runs = 0;
    class Rates {
      @Cached({ ttl: 300 })
      async rate(): Promise<number> {
        runs++;
        return runs;
      }
    }
    const rates = new Rates();
    time = fakeCacheTime(sinon, { now: 1_000_000 });
    expect(await rates.rate()).to.equal(1);
    time.advance(299.999);
    expect(await rates.rate()).to.equal(1);
    time.advance(0.001);
    expect(await rates.rate()).to.equal(2);
    // setTimeout was left real: a real 5 ms wait still ends.
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(Date.now()).to.equal(1_300_000);
  });

  it('gives the real clock back on restore', () => {
    time = fakeCacheTime(sinon, { now: 0 });
    expect(Date.now()).to.equal(0);
    time.restore();
    time = undefined;
    expect(Date.now()).to.be.greaterThan(1_600_000_000_000);
  });
});
