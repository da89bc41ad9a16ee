import sinon from 'sinon';
import { CacheModule, MemoryBackend } from 'hoard';

/**
 * Inside a describe: before each test, a reset CacheModule with a new MemoryBackend as the
 * default (returned through the getter); after each, sinon restored.
 */
export function useFreshMemoryModule(): () => MemoryBackend {
  let memory: MemoryBackend;
  beforeEach(() => {
    CacheModule.reset();
    memory = new MemoryBackend();
    CacheModule.register(memory);
  });
  afterEach(() => sinon.restore());
  return () => memory;
}
