/**
 * Every ```ts block of README.md and docs/*.md is a complete program: it is type-checked against
 * the built package (strict, standard decorators, as a new TypeScript ≥ 5 project gets them) and
 * run in Node to the end, its assertions included. A block fenced ```ts no-run is type-checked
 * only (it needs something the suite cannot start, e.g. a Redis Cluster on other hosts). A block
 * fenced ```ts legacy is compiled with `experimentalDecorators` and `emitDecoratorMetadata`, as
 * a NestJS project is (Nest supports no other decorators), and run.
 *
 * Snippets name the servers a reader has (`redis://127.0.0.1:6379`, `127.0.0.1:11211` and
 * `127.0.0.1:11212`); before running, those addresses are rewritten to servers this spec starts
 * on free ports, so the suite never touches the machine's own Redis or memcached.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ask, startMemcached, startRedis, type ManagedServer, type RedisServer } from '../support/servers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const outDir = join(root, 'build/docs-snippets');
/** A snippet that has not exited by then left something open (a connection, a timer). */
const RUN_TIMEOUT_MS = 30_000;

/** The addresses docs use, and a pattern that finds any standard port left after rewriting. */
const REDIS_URL = 'redis://127.0.0.1:6379';
const MEMCACHED = ['127.0.0.1:11211', '127.0.0.1:11212'] as const;
const STANDARD_PORT = /\b(6379|11211|11212)\b/;

interface Block {
  page: string;
  /** 1-based line of the block's first code line in the page. */
  line: number;
  info: string;
  code: string;
  run: boolean;
  legacy: boolean;
}

const pages = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];

function blocksOf(page: string): Block[] {
  const text = readFileSync(join(root, page), 'utf8');
  return [...text.matchAll(/^```([^\n`]*)\n([\s\S]*?)^```$/gm)].map((match) => {
    const info = match[1]!.trim();
    return {
      page,
      line: text.slice(0, match.index).split('\n').length + 1,
      info,
      code: match[2]!,
      run: info === 'ts' || info === 'ts legacy',
      legacy: info === 'ts legacy',
    };
  });
}

const blocks = pages.flatMap(blocksOf);
const typescriptBlocks = blocks.filter((block) => ['ts', 'ts no-run', 'ts legacy'].includes(block.info));
const where = (block: Block) => `${block.page}:${block.line}`;

/** Standard (TC39) decorators, as a project on TypeScript ≥ 5 gets without flags. */
const options: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2022.d.ts'],
  types: ['node'],
  strict: true,
  noEmit: true,
  skipLibCheck: true,
};

/** Legacy decorators with their metadata, as a NestJS project compiles. */
const legacyOptions: ts.CompilerOptions = { ...options, experimentalDecorators: true, emitDecoratorMetadata: true };

/** A virtual file beside the page, so that 'hoard' resolves to this package by self-reference. */
const fileOf = (block: Block) => join(root, `${block.page.replace(/\.md$/, '')}.snippet-${block.line}.ts`);

/**
 * Type errors of every block, by block, each located in its page (`docs/x.md:12`). One program
 * per decorator flavour: a single pass over the package's declarations for each.
 */
function typeErrors(): Map<Block, string[]> {
  return new Map([
    ...typeErrorsOf(
      typescriptBlocks.filter((block) => !block.legacy),
      options,
    ),
    ...typeErrorsOf(
      typescriptBlocks.filter((block) => block.legacy),
      legacyOptions,
    ),
  ]);
}

function typeErrorsOf(checked: Block[], compilerOptions: ts.CompilerOptions): Map<Block, string[]> {
  const files = new Map(checked.map((block) => [fileOf(block), block]));
  const host = ts.createCompilerHost(compilerOptions);
  const { getSourceFile, fileExists, readFile } = host;
  host.getCurrentDirectory = () => root;
  host.fileExists = (name) => files.has(name) || fileExists.call(host, name);
  host.readFile = (name) => files.get(name)?.code ?? readFile.call(host, name);
  host.getSourceFile = (name, language, ...rest) => {
    const block = files.get(name);
    return block === undefined
      ? getSourceFile.call(host, name, language, ...rest)
      : ts.createSourceFile(name, block.code, language);
  };
  const program = ts.createProgram([...files.keys()], compilerOptions, host);
  const errors = new Map(checked.map((block) => [block, [] as string[]]));
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const block = diagnostic.file && files.get(diagnostic.file.fileName);
    if (!block) throw new Error(`type error outside the snippets: ${diagnostic.file?.fileName ?? ''} ${message}`);
    const { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    errors.get(block)!.push(`${block.page}:${block.line + line} ${message}`);
  }
  return errors;
}

interface Servers {
  redis: RedisServer;
  memcached: ManagedServer[];
}

/** Points the documented addresses at the suite's servers. */
function rewrite(code: string, servers: Servers): string {
  let result = code.replaceAll(REDIS_URL, servers.redis.url);
  MEMCACHED.forEach((address, i) => (result = result.replaceAll(address, servers.memcached[i]!.address)));
  return result;
}

/** Each snippet starts from empty servers, as a reader's would be. */
async function emptyServers(servers: Servers): Promise<void> {
  await ask(servers.redis.port, 'FLUSHALL\r\n', (reply) => reply.endsWith('\r\n'));
  await Promise.all(servers.memcached.map((server) => ask(server.port, 'flush_all\r\n', (reply) => reply.endsWith('\r\n'))));
}

/**
 * Runs the compiled snippet with Node; resolves with its failure output, or undefined when it
 * exited 0. Snippets that read `REDIS_URL` get the suite's Redis too, whatever the machine's
 * environment says; `CACHE` (read by a recipe) is left unset.
 */
function run(file: string, servers: Servers): Promise<string | undefined> {
  const { CACHE: _ignored, ...env } = process.env;
  return new Promise((resolve) => {
    const options = {
      cwd: root,
      env: { ...env, REDIS_URL: servers.redis.url },
      timeout: RUN_TIMEOUT_MS,
      killSignal: 'SIGKILL' as const,
    };
    execFile(process.execPath, [file], options, (error, stdout, stderr) => {
      if (!error) return resolve(undefined);
      const reason = error.killed
        ? `did not exit within ${RUN_TIMEOUT_MS} ms (something left open?)`
        : `exit code ${String(error.code)}`;
      resolve(`${reason}\n--- stderr\n${stderr}\n--- stdout\n${stdout}`);
    });
  });
}

describe('docs: every TypeScript block of README.md and docs/', function () {
  this.timeout(RUN_TIMEOUT_MS + 10_000);
  let errors: Map<Block, string[]>;
  let servers: Servers;

  before(async function () {
    this.timeout(60_000);
    errors = typeErrors();
    const [redis, ...memcached] = await Promise.all([startRedis(), startMemcached(), startMemcached()]);
    servers = { redis: redis as RedisServer, memcached: memcached as ManagedServer[] };
    mkdirSync(outDir, { recursive: true });
  });

  after(async () => {
    await Promise.all([servers?.redis, ...(servers?.memcached ?? [])].map((server) => server?.stop()));
  });

  it('finds the blocks, fenced only as ts, ts no-run, ts legacy or non-TypeScript languages', () => {
    expect(typescriptBlocks.length).to.be.greaterThan(20);
    const misfenced = blocks
      .filter((block) => /^(ts|typescript|js|javascript|tsx|mts)\b/.test(block.info) && !typescriptBlocks.includes(block))
      .map(where);
    expect(misfenced, 'use ```ts (or ```ts no-run, ```ts legacy) so that the block is checked').to.deep.equal([]);
    const unlabelled = blocks.filter((block) => block.info === '').map(where);
    expect(unlabelled, 'label every block with its language').to.deep.equal([]);
  });

  it('finds no code fence indented inside a list (this runner would not see it)', () => {
    const indented = pages.filter((page) => /^[ \t]+```/m.test(readFileSync(join(root, page), 'utf8')));
    expect(indented).to.deep.equal([]);
  });

  it('keeps ts no-run rare', () => {
    expect(typescriptBlocks.filter((block) => !block.run).length).to.be.at.most(3);
  });

  for (const block of typescriptBlocks) {
    it(`${where(block)} ${block.run ? 'type-checks and runs' : 'type-checks'}`, async () => {
      expect(errors.get(block)).to.deep.equal([]);
      if (!block.run) return;
      const code = rewrite(block.code, servers);
      expect(code, 'a snippet may only use the documented addresses, which the runner rewrites').not.to.match(STANDARD_PORT);
      const { outputText } = ts.transpileModule(code, {
        compilerOptions: { ...(block.legacy ? legacyOptions : options), module: ts.ModuleKind.ESNext },
      });
      const file = join(outDir, relative(root, fileOf(block)).replaceAll('/', '-').replace(/\.ts$/, '.js'));
      writeFileSync(file, outputText);
      await emptyServers(servers);
      const failure = await run(file, servers);
      if (failure !== undefined) expect.fail(`${where(block)} failed: ${failure}`);
    });
  }
});

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchorsOf(page: string): Set<string> {
  const text = readFileSync(join(root, page), 'utf8').replace(/^```[\s\S]*?^```$/gm, '');
  const anchors = new Set<string>();
  for (const [, heading] of text.matchAll(/^#{1,6} +(.+)$/gm)) {
    const base = heading!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\- _]/gu, '')
      .replace(/ /g, '-');
    let anchor = base;
    for (let n = 1; anchors.has(anchor); n++) anchor = `${base}-${n}`;
    anchors.add(anchor);
  }
  return anchors;
}

describe('docs: links', () => {
  it('every relative link of README.md and docs/ reaches a file, and a heading when it names one', () => {
    const broken: string[] = [];
    for (const page of pages) {
      const text = readFileSync(join(root, page), 'utf8').replace(/^```[\s\S]*?^```$/gm, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue;
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const file = path === '' ? page : relative(root, join(root, dirname(page), path));
        if (!existsSync(join(root, file))) broken.push(`${page}: ${target} (no such file)`);
        else if (anchor !== undefined && file.endsWith('.md') && !anchorsOf(file).has(anchor))
          broken.push(`${page}: ${target} (no such heading)`);
      }
    }
    expect(broken).to.deep.equal([]);
  });
});
