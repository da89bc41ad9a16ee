/**
 * The API reference (`npm run docs`) is generated from doc comments, so the comments are where
 * an option's unit and default must be written. This reads the built declarations the way a
 * user's editor does and checks every property of every exported `…Options` type, and runs
 * TypeDoc, whose configuration (typedoc.json) turns an undocumented export or a broken link
 * into an error.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const entryPoints = ['dist/index.d.ts', 'dist/testing/index.d.ts', 'dist/nestjs/index.d.ts'].map((file) => join(root, file));

/** Words that name what a number counts. */
const UNIT = /\b(seconds?|milliseconds|ms|bytes?|MiB|fraction|entries|connections|failures|beta)\b/i;
const DEFAULT = /\bdefault\b/i;

interface OptionDoc {
  name: string;
  optional: boolean;
  numeric: boolean;
  comment: string;
}

/** Every property of every exported `…Options` type, inherited ones included, declared in hoard. */
function exportedOptions(): Map<string, OptionDoc[]> {
  const program = ts.createProgram(entryPoints, {
    strict: true,
    skipLibCheck: true,
    types: ['node'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  });
  const checker = program.getTypeChecker();
  const found = new Map<string, OptionDoc[]>();
  for (const entry of entryPoints) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
    for (const exported of checker.getExportsOfModule(module)) {
      if (!exported.name.endsWith('Options')) continue;
      const type = checker.getDeclaredTypeOfSymbol(
        exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported,
      );
      const properties = checker.getPropertiesOfType(type).filter((property) =>
        // Options passed through to ioredis are documented by ioredis.
        property.declarations?.some((declaration) => declaration.getSourceFile().fileName.startsWith(join(root, 'dist'))),
      );
      found.set(
        exported.name,
        properties.map((property) => {
          const propertyType = checker.getNonNullableType(checker.getTypeOfSymbol(property));
          const parts = propertyType.isUnion() ? propertyType.types : [propertyType];
          return {
            name: property.name,
            optional: (property.flags & ts.SymbolFlags.Optional) !== 0,
            numeric:
              parts.some((part) => part.flags & ts.TypeFlags.NumberLike) &&
              !parts.some((part) => part.flags & ts.TypeFlags.StringLike),
            comment: ts.displayPartsToString(property.getDocumentationComment(checker)),
          };
        }),
      );
    }
  }
  return found;
}

describe('docs: the API reference', function () {
  // TypeDoc type-checks every entry point, hoard/nestjs with Nest's types: near a minute on a loaded machine.
  this.timeout(180_000);

  it('builds with TypeDoc: every export documented, every link resolved', async () => {
    const typedoc = join(root, 'node_modules/typedoc/bin/typedoc');
    const output = await new Promise<string>((resolve) => {
      execFile(process.execPath, [typedoc, '--emit', 'none'], { cwd: root }, (error, stdout, stderr) =>
        resolve(error ? `${stdout}${stderr}` : ''),
      );
    });
    expect(output).to.equal('');
  });
});

describe('docs: doc comments of the public options', function () {
  this.timeout(30_000);
  let options: Map<string, OptionDoc[]>;

  before(() => {
    options = exportedOptions();
  });

  it('finds the option types of the package root, hoard/testing and hoard/nestjs', () => {
    expect([...options.keys()]).to.include.members([
      'CachedOptions',
      'CachedFunctionOptions',
      'CacheEvictOptions',
      'CachePutOptions',
      'CacheModuleOptions',
      'MemoryBackendOptions',
      'RedisBackendOptions',
      'MemcachedBackendOptions',
      'ConformanceOptions',
      'HoardModuleOptions',
      'HoardModuleAsyncOptions',
    ]);
    expect(options.get('CachedOptions')!.map((option) => option.name)).to.include.members(['ttl', 'key', 'staleTtl', 'lock']);
  });

  it('documents every option', () => {
    const missing = [...options].flatMap(([type, list]) =>
      list.filter((option) => option.comment.trim() === '').map((option) => `${type}.${option.name}`),
    );
    expect(missing).to.deep.equal([]);
  });

  it('gives every optional option its default', () => {
    const missing = [...options].flatMap(([type, list]) =>
      list.filter((option) => option.optional && !DEFAULT.test(option.comment)).map((option) => `${type}.${option.name}`),
    );
    expect(missing).to.deep.equal([]);
  });

  it('gives every numeric option its unit', () => {
    const missing = [...options].flatMap(([type, list]) =>
      list.filter((option) => option.numeric && !UNIT.test(option.comment)).map((option) => `${type}.${option.name}`),
    );
    expect(missing).to.deep.equal([]);
  });
});
