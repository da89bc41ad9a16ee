import { MemoryBackend } from 'hoard';
import { runBackendConformance } from '#src/testing/conformance.js';

runBackendConformance('MemoryBackend conformance', () => new MemoryBackend());
