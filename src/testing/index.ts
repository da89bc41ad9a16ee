export {
  runBackendConformance,
  type BackendFactory,
  type ConformanceContext,
  type ConformanceOptions,
  type TestFunctions,
} from './conformance.js';
export { RecordingBackend, type RecordedCall } from './recording-backend.js';
export { fakeCacheTime, type CacheTime, type FakeClock, type FakeTimerConfig, type FakeTimerLibrary } from './fake-time.js';
