// An HTTP service whose slow endpoint is cached through hoard. The service registers no
// backend itself: server.ts registers Redis at startup, latency.ts swaps backends to compare.
import { createServer, type Server, type ServerResponse } from 'node:http';
import { Cached, CacheEvict, CacheModule } from 'hoard';

export interface Report {
  region: string;
  year: number;
  revenue: number;
  computedAt: string;
}

/** How long the pretend database query takes, in milliseconds. */
export const QUERY_MS = 300;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The cache key of one report: what the reader caches under and the writer evicts. */
const reportKey = (region: string, year: number) => `report:${region}:${year}`;

export class Reports {
  /** Runs of the slow query, to show what the cache saves. */
  queries = 0;
  /** The pretend database: sales booked per `region:year`, on top of a base revenue. */
  private readonly booked = new Map<string, number>();

  // Cached in the default backend for five minutes. Every process on the same Redis shares
  // the entry, so a report is computed once for the whole fleet, not once per process.
  @Cached({ ttl: 300, key: reportKey })
  async revenue(region: string, year: number): Promise<Report> {
    this.queries++;
    await sleep(QUERY_MS); // stands in for a slow aggregate query
    const revenue = region.length * year * 1000 + (this.booked.get(`${region}:${year}`) ?? 0);
    return { region, year, revenue, computedAt: new Date().toISOString() };
  }

  // A write makes the cached report stale: evict it once the write succeeded, and the next
  // read recomputes it.
  @CacheEvict({ key: reportKey })
  async bookSale(region: string, year: number, amount: number): Promise<void> {
    const at = `${region}:${year}`;
    this.booked.set(at, (this.booked.get(at) ?? 0) + amount);
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/**
 * GET  /reports/:region/:year        the slow endpoint, cached
 * POST /reports/:region/:year/sales?amount=n  a write that evicts the cached report
 * GET  /stats                        hoard's hit and miss counts
 */
export function createService(reports = new Reports()): Server {
  return createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const match = /^\/reports\/([a-z]+)\/(\d{4})(\/sales)?$/.exec(url.pathname);
    if (request.method === 'GET' && url.pathname === '/stats') {
      return send(response, 200, { ...CacheModule.stats(), queries: reports.queries });
    }
    if (!match) return send(response, 404, { error: 'not found' });
    const [, region, year, sales] = match as unknown as [string, string, string, string | undefined];
    const work =
      request.method === 'GET' && !sales
        ? reports.revenue(region, Number(year))
        : request.method === 'POST' && sales
          ? reports.bookSale(region, Number(year), Number(url.searchParams.get('amount') ?? 1)).then(() => ({ booked: true }))
          : undefined;
    if (!work) return send(response, 405, { error: 'method not allowed' });
    work.then(
      (body) => send(response, 200, body),
      (error: unknown) => send(response, 500, { error: String(error) }),
    );
  });
}
