import type { FaultListener } from './backend.js';

/** The listeners of one backend's or bus's faults (see {@link CacheBackend.onFault}). */
export class Faults {
  private readonly listeners = new Set<FaultListener>();

  listen(listener: FaultListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  report(error: Error, operation: string): void {
    for (const listener of this.listeners) listener(error, operation);
  }
}
