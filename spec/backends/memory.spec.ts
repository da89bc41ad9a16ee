import { MemoryBackend } from 'hoard';
import { runBackendConformance } from 'hoard/testing';

runBackendConformance('MemoryBackend conformance', () => new MemoryBackend());
