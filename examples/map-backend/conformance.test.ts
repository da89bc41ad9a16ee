/**
 * hoard's conformance suite over MapBackend, under Node's own test runner:
 * `node --test build/examples/map-backend/conformance.test.js`.
 */
import { afterEach, describe, it } from 'node:test';
import { runBackendConformance } from 'hoard/testing';
import { MapBackend } from './map-backend.js';

runBackendConformance('MapBackend', () => new MapBackend(), { test: { describe, it, afterEach } });
