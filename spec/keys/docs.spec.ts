import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const page = readFileSync(join(root, 'docs/keys.md'), 'utf8');

/** Every fenced block of the page: its language tag and its code. */
const blocks = [...page.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map(([, language, code]) => ({ language: language!, code: code! }));

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

/** Type-checks the snippets as files of a project beside this package, so 'hoard' resolves to it. */
function typeErrors(snippets: readonly string[]): string[] {
  const files = new Map(snippets.map((code, i) => [join(root, 'docs', `keys-snippet-${i + 1}.ts`), code]));
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getCurrentDirectory = () => root;
  host.fileExists = (name) => files.has(name) || fileExists.call(host, name);
  host.readFile = (name) => files.get(name) ?? readFile.call(host, name);
  host.getSourceFile = (name, language, ...rest) => {
    const code = files.get(name);
    return code === undefined ? getSourceFile.call(host, name, language, ...rest) : ts.createSourceFile(name, code, language);
  };
  const program = ts.createProgram([...files.keys()], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const where = diagnostic.file ? `${diagnostic.file.fileName.slice(root.length)}:${diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line + 1}` : '';
    return `${where} ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
  });
}

describe('docs/keys.md', () => {
  it('has only TypeScript code blocks', () => {
    expect(blocks.length).to.be.greaterThan(5);
    expect(blocks.map((block) => block.language)).to.deep.equal(blocks.map(() => 'ts'));
  });

  it('type-checks every snippet against the built package', function () {
    this.timeout(30_000);
    expect(typeErrors(blocks.map((block) => block.code))).to.deep.equal([]);
  });

  it('runs every snippet to the end, its assertions included', function () {
    this.timeout(30_000);
    for (const [i, { code }] of blocks.entries()) {
      const { outputText } = ts.transpileModule(code, { compilerOptions: { ...options, module: ts.ModuleKind.ESNext } });
      try {
        execFileSync(process.execPath, ['--input-type=module', '-e', outputText], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
      } catch (error) {
        expect.fail(`snippet ${i + 1} failed:\n${(error as { stderr?: string }).stderr ?? String(error)}`);
      }
    }
  });
});
