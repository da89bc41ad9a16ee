import { expect } from 'chai';
import { HashRing, POINTS_PER_SERVER, ringPosition } from '#src/backends/memcached/ring.js';

const servers = ['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211', '10.0.0.4:11211'];
const keys = Array.from({ length: 20_000 }, (_, i) => `user:${i}:profile`);
const ringOf = (nodes: readonly string[]) => new HashRing(nodes, (node) => node);
const placement = (ring: HashRing<string>) => keys.map((key) => ring.locate(ringPosition(key))!);

describe('HashRing (ketama)', () => {
  it('spreads keys over every server roughly evenly', () => {
    const counts = new Map<string, number>();
    for (const owner of placement(ringOf(servers))) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    expect([...counts.keys()].sort()).to.deep.equal(servers);
    // An even share is 25 %; 160 points per server keep every share well within 15–35 %.
    for (const [server, count] of counts) {
      expect(count / keys.length, server).to.be.within(0.15, 0.35);
    }
  });

  it('moves only the removed server’s keys, and spreads them over the others', () => {
    const before = placement(ringOf(servers));
    const removed = servers[1]!;
    const after = placement(ringOf(servers.filter((server) => server !== removed)));
    const receivers = new Set<string>();
    keys.forEach((key, i) => {
      if (before[i] === removed) receivers.add(after[i]!);
      else expect(after[i], key).to.equal(before[i]);
    });
    expect(after).not.to.include(removed);
    expect([...receivers].sort()).to.deep.equal(servers.filter((server) => server !== removed));
  });

  it('gives a returning server exactly its old keys back', () => {
    const before = placement(ringOf(servers));
    placement(ringOf(servers.slice(1)));
    expect(placement(ringOf(servers))).to.deep.equal(before);
  });

  it('places keys the same whatever order the servers are listed in', () => {
    expect(placement(ringOf([...servers].reverse()))).to.deep.equal(placement(ringOf(servers)));
  });

  it('places each server on its share of points, and an empty ring owns nothing', () => {
    expect(POINTS_PER_SERVER).to.equal(160);
    expect(ringOf([]).locate(ringPosition('anything'))).to.equal(undefined);
    expect(ringOf(['only:1']).locate(0)).to.equal('only:1');
    expect(ringOf(['only:1']).locate(2 ** 32 - 1)).to.equal('only:1');
  });
});
