/**
 * The package as users install it: `npm pack` output installed into a new project, then used
 * by a CommonJS TypeScript project under Jest 30 and Jest 29 (no Jest configuration), by a project
 * tested with Vitest, by plain `require` on Node 20.0 and 20.18 (which have no require(esm)), by an
 * ES module program that loads both builds at once, and by TypeScript under every module resolution
 * it offers.
 */
import { expect } from 'chai';
import { rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import ts from 'typescript';
import { installPacked, OLD_NODES, run, tool, type Installation } from './support.js';

const tsc = tool('typescript/bin/tsc');

/**
 * A compiler host that parses each file (@types/node above all) once for all the programs of
 * this suite, as TypeScript's language service does; programs with other options still bind
 * and check on their own.
 */
const parsed = new Map<string, ts.SourceFile | undefined>();
function sharingParsedFiles(options: ts.CompilerOptions): ts.CompilerHost {
  const host = ts.createCompilerHost(options);
  const parse = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => {
    const key = `${name}|${JSON.stringify(language)}`;
    if (!parsed.has(key)) parsed.set(key, parse(name, language, ...rest));
    return parsed.get(key);
  };
  return host;
}

describe('packaging: the packed tarball in a new project', function () {
  this.timeout(120_000);
  let installed: Installation;

  before(async () => {
    installed = await installPacked();
  });

  after(() => rmSync(installed.dir, { recursive: true, force: true }));

  it('gives every entry point an ES module and a CommonJS build, each with its types', () => {
    const { manifest, entryPoints } = installed;
    expect(entryPoints).to.include.members(['hoard', 'hoard/testing']);
    for (const entry of entryPoints) {
      const subpath = entry === 'hoard' ? '.' : `./${entry.slice('hoard/'.length)}`;
      const folder = entry === 'hoard' ? '' : `${entry.slice('hoard/'.length)}/`;
      expect(manifest.exports[subpath], `exports['${subpath}']`).to.deep.equal({
        import: { types: `./dist/${folder}index.d.ts`, default: `./dist/${folder}index.js` },
        require: { types: `./dist/cjs/${folder}index.d.ts`, default: `./dist/cjs/${folder}index.js` },
      });
      // TypeScript's node10 resolution does not read `exports`: it finds subpaths through typesVersions.
      if (entry !== 'hoard') {
        expect(manifest.typesVersions?.['*']?.[folder.slice(0, -1)], `typesVersions for ${entry}`).to.deep.equal([
          `./dist/cjs/${folder}index.d.ts`,
        ]);
      }
    }
  });

  for (const { version: node, path: binary } of [{ version: process.version, path: process.execPath }, ...OLD_NODES]) {
    it(`loads every entry point by require() and by import on Node ${node}, with the same exports`, async () => {
      const script = join(installed.dir, 'load-all.cjs');
      writeFileSync(
        script,
        `(async () => {
          for (const entry of ${JSON.stringify(installed.entryPoints)}) {
            const required = Object.keys(require(entry)).sort();
            const imported = Object.keys(await import(entry)).filter((name) => name !== 'default').sort();
            if (required.join() !== imported.join() || required.length === 0) throw new Error(entry + ': ' + required + ' / ' + imported);
            process.stdout.write(entry + ' ' + process.version + '\\n');
          }
        })().catch((error) => { console.error(error); process.exitCode = 1; });`,
      );
      const output = await run(binary, [script], installed.dir);
      expect(output).to.equal(installed.entryPoints.map((entry) => `${entry} ${node}\n`).join(''));
    });
  }

  describe('a CommonJS TypeScript project (module: commonjs, legacy decorators)', () => {
    let project: string;

    before(async () => {
      project = join(installed.dir, 'cjs-jest');
      await run(process.execPath, [tsc, '-p', project], project);
    });

    for (const [jest, binary] of [
      ['Jest 30', 'jest/bin/jest.js'],
      ['Jest 29', 'jest29/bin/jest.js'],
    ] as const) {
      it(`passes its tests under ${jest} with no Jest configuration`, async () => {
        const output = await run(process.execPath, [tool(binary), '--ci', 'build'], project);
        expect(output).to.match(/Tests:\s+4 passed, 4 total/);
      });
    }

    for (const { version, path } of OLD_NODES) {
      it(`passes its tests under Jest 30 on Node ${version}`, async () => {
        const output = await run(path, [tool('jest/bin/jest.js'), '--ci', 'build'], project);
        expect(output).to.match(/Tests:\s+4 passed, 4 total/);
      });

      it(`loads with plain require() on Node ${version}, which cannot require ES modules`, async () => {
        expect(await run(path, ['build/main.js'], project)).to.equal(`hoard loaded by require() on Node ${version}\n`);
      });
    }
  });

  describe('an ES module TypeScript project (module: nodenext, standard decorators)', () => {
    let project: string;

    before(async () => {
      project = join(installed.dir, 'esm');
      await run(process.execPath, [tsc, '-p', project], project);
    });

    it(`imports hoard and requires it too, as one registry, on Node ${process.version}`, async () => {
      expect(await run(process.execPath, ['build/main.js'], project)).to.equal(
        `hoard loaded by import and require() on Node ${process.version}\n`,
      );
    });

    for (const { version, path } of OLD_NODES) {
      it(`does the same on Node ${version}`, async () => {
        expect(await run(path, ['build/main.js'], project)).to.equal(`hoard loaded by import and require() on Node ${version}\n`);
      });
    }
  });

  describe('a project tested with Vitest (no configuration file)', () => {
    let project: string;

    before(() => {
      project = join(installed.dir, 'vitest');
    });

    it("type-checks its test files: Vitest's describe, it and afterEach fit the conformance suite", () => {
      const { config } = ts.readConfigFile(join(project, 'tsconfig.json'), ts.sys.readFile);
      const { options, fileNames } = ts.parseJsonConfigFileContent(config, ts.sys, project);
      const program = ts.createProgram(fileNames, options, sharingParsedFiles(options));
      const diagnostics = ts
        .getPreEmitDiagnostics(program)
        .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      expect(fileNames).to.have.length(3);
      expect(diagnostics).to.deep.equal([]);
    });

    it('runs the conformance suite, fake cache time and a decorated method under Vitest, with and without its globals', async () => {
      // --globals only serves globals.test.ts; conformance.test.ts passes Vitest's functions itself.
      const output = stripVTControlCharacters(
        await run(process.execPath, [tool('vitest/vitest.mjs'), 'run', '--globals'], project),
      );
      expect(output).to.match(/Test Files\s+3 passed \(3\)/);
      // Every test passed (none failed or skipped), and each file declared the whole suite (51 tests today).
      const [, passed, total] = /Tests\s+(\d+) passed \((\d+)\)/.exec(output) ?? [];
      expect(Number(passed)).to.equal(Number(total)).and.to.be.above(100);
    });
  });

  describe('TypeScript resolves the types of every entry point', () => {
    /** Each resolution a consumer may use; `build` is the folder whose declarations it must get. */
    const cases = [
      {
        name: 'node10',
        type: 'commonjs',
        options: { module: 'commonjs', moduleResolution: 'node10', ignoreDeprecations: '6.0' },
        build: 'cjs',
      },
      { name: 'node16 from CommonJS', type: 'commonjs', options: { module: 'node16' }, build: 'cjs' },
      { name: 'node16 from an ES module', type: 'module', options: { module: 'node16' }, build: 'esm' },
      { name: 'nodenext from CommonJS', type: 'commonjs', options: { module: 'nodenext' }, build: 'cjs' },
      { name: 'nodenext from an ES module', type: 'module', options: { module: 'nodenext' }, build: 'esm' },
      { name: 'bundler', type: 'module', options: { module: 'esnext', moduleResolution: 'bundler' }, build: 'esm' },
    ] as const;

    for (const { name, type, options, build } of cases) {
      it(`under ${name}`, () => {
        const dir = join(installed.dir, `types-${name.replaceAll(' ', '-')}`);
        mkdirSync(dir);
        writeFileSync(join(dir, 'package.json'), JSON.stringify({ type }));
        const file = join(dir, 'index.ts');
        writeFileSync(
          file,
          [
            ...installed.entryPoints.map((entry, i) => `import * as entry${i} from '${entry}';`),
            `export const loaded = [${installed.entryPoints.map((_, i) => `entry${i}`).join(', ')}];`,
            // Types, not `any`: a wrong call must not compile.
            '// @ts-expect-error register needs a backend',
            'entry0.CacheModule.register(42);',
          ].join('\n'),
        );
        const { options: compilerOptions, errors } = ts.convertCompilerOptionsFromJson(
          { ...options, target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
          dir,
        );
        expect(errors.map((error) => ts.flattenDiagnosticMessageText(error.messageText, '\n'))).to.deep.equal([]);
        const program = ts.createProgram([file], compilerOptions, sharingParsedFiles(compilerOptions));
        const diagnostics = ts
          .getPreEmitDiagnostics(program)
          .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
        expect(diagnostics, name).to.deep.equal([]);
        // The declarations of the build this resolution loads at run time, and none of the other's.
        const declarations = program
          .getSourceFiles()
          .map((source) => source.fileName)
          .filter((path) => path.includes('/node_modules/hoard/'));
        expect(declarations).to.have.length.above(installed.entryPoints.length);
        for (const path of declarations) {
          expect(path).to.match(build === 'cjs' ? /\/hoard\/dist\/cjs\/.*\.d\.ts$/ : /\/hoard\/dist\/(?!cjs\/).*\.d\.ts$/);
        }
      });
    }
  });
});
