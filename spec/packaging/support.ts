import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../../', import.meta.url));
const rootModules = join(root, 'node_modules');

/**
 * Older Node 20 releases, which cannot require() an ES module: the first one, and the last
 * before require(esm). `npm run setup:node20` installs them (pretest does).
 */
export const OLD_NODES = (['20.0', '20.18'] as const).map((release) => ({
  version: release === '20.0' ? 'v20.0.0' : 'v20.18.3',
  path: join(root, `build/old-node/node_modules/node-${release}/bin/node`),
}));

/** A tool of the repository's own node_modules, run by path (jest and jest29 both name their binary `jest`). */
export const tool = (path: string): string => join(rootModules, path);

/** Runs a program to its end; rejects with its output when it exits non-zero. */
export function run(command: string, args: string[], cwd: string, timeout = 90_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error)
        reject(
          new Error(
            `${command} ${args.join(' ')} (in ${cwd}) failed: ${error.message}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`,
          ),
        );
      else resolve(`${stdout}${stderr}`);
    });
  });
}

/** The packed package installed in a temporary folder, as a user's project gets it from the registry. */
export interface Installation {
  /** The temporary project: node_modules/hoard comes from the tarball, the fixtures are copied beside it. */
  dir: string;
  /** The package.json of the installed package. */
  manifest: { exports: Record<string, unknown>; typesVersions?: Record<string, Record<string, string[]>> };
  /** Every subpath of `exports` that is code (`hoard`, `hoard/testing`, ...). */
  entryPoints: string[];
}

/**
 * `npm pack`, then `npm install` of that tarball alone into a new project (its only dependency,
 * ioredis, comes from npm's cache). The consumers' tools (typescript, jest, @types/node,
 * reflect-metadata) are linked from this repository's node_modules rather than installed again.
 */
export async function installPacked(): Promise<Installation> {
  const dir = mkdtempSync(join(tmpdir(), 'hoard-packaging-'));
  const packed = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', dir], root)) as { filename: string }[];
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'hoard-consumers', private: true }));
  await run(
    'npm',
    [
      'install',
      '--no-save',
      '--no-package-lock',
      '--prefer-offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      `./${packed[0]!.filename}`,
    ],
    dir,
  );
  linkMissing(rootModules, join(dir, 'node_modules'));
  cpSync(join(root, 'spec/packaging/fixtures'), dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'node_modules/hoard/package.json'), 'utf8')) as Installation['manifest'];
  const entryPoints = Object.keys(manifest.exports)
    .filter((subpath) => !subpath.endsWith('.json'))
    .map((subpath) => (subpath === '.' ? 'hoard' : `hoard/${subpath.slice(2)}`));
  return { dir, manifest, entryPoints };
}

/** Links each package of `from` that `to` lacks (scoped ones one by one, as a scope may be in both). */
function linkMissing(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    if (name.startsWith('.') || name === 'hoard') continue;
    if (name.startsWith('@')) linkMissing(join(from, name), join(to, name));
    else if (!existsSync(join(to, name))) symlinkSync(join(from, name), join(to, name), 'dir');
  }
}
