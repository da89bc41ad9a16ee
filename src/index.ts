export { Cached, CacheEvict, CachePut } from './decorators/cached.js';
export type { HoardMethodDecorator } from './decorators/adapter.js';
export { cached } from './decorators/cached-function.js';
export type { CachedOptions, CachedFunctionOptions, CacheEvictOptions, CachePutOptions, KeyOption } from './runtime/options.js';
export { CacheModule } from './cache-module.js';
export type { CacheModuleOptions } from './module/config.js';
export type { CacheEvent, CacheEventName, CacheListener } from './module/events.js';
export type { CacheStats, Counts } from './module/stats.js';
export {
  DEFAULT_TTL,
  MAX_TTL,
  MISS,
  type BackendContext,
  type Miss,
  type CacheBackend,
  type CacheEntries,
  type EntryWithTtl,
  type FaultListener,
  type LookupWithTtl,
  type MaybePromise,
} from './backends/backend.js';
export { MemoryBackend, type MemoryBackendOptions } from './backends/memory.js';
export { NullBackend } from './backends/null.js';
export { RedisBackend, type RedisBackendOptions } from './backends/redis.js';
export type { RedisClient, RedisConnectionOptions } from './backends/redis-connection.js';
export { MemcachedBackend, type MemcachedBackendOptions } from './backends/memcached/memcached-backend.js';
export { TieredBackend, type TieredBackendOptions } from './backends/tiered/tiered-backend.js';
export { RedisBus, type RedisBusOptions } from './bus/redis-bus.js';
export type { CacheBus, BusListener, Invalidation } from './bus/bus.js';
export type { RemoteBackend, RemoteBackendOptions } from './backends/remote.js';
export { defaultSerializer } from './serialization/default-serializer.js';
export type { Serializer } from './serialization/serializer.js';
export type { CompressionAlgorithm, CompressionOptions } from './serialization/compression.js';
export type { CacheKeysOptions, CacheSecret } from './serialization/key-ring.js';
export {
  CacheErrorCode,
  CacheArgumentError,
  CacheError,
  CacheConfigError,
  CacheKeyError,
  CacheBackendError,
  CacheValueTooLargeError,
  CacheSerializationError,
  CacheIntegrityError,
  type CacheIntegrityReason,
} from './errors.js';
