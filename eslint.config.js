// ESLint: typescript-eslint's type-aware rules, and the layers of src/ (docs/architecture.md), so
// that an import pointing up the layers fails `npm run lint`, and so CI, not a review.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

/** An import of one of these folders (relative, from any depth) is forbidden in the files given. */
function layer(files, forbidden, why, ignores = []) {
  return {
    files,
    ignores,
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: `^(\\./|(\\.\\./)+)(${forbidden.join('|')})(/|\\.js$)`, message: why }] },
      ],
    },
  };
}

const ABOVE_BACKENDS = ['module', 'runtime', 'decorators', 'testing', 'index', 'cache-module'];

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'bench/', 'soak/', 'spec/', 'eslint.config.js'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.json', './examples/tsconfig.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A promise nobody handles is an unhandled rejection waiting to happen: mark the deliberate
      // ones (fail-open paths whose promise never rejects) with `void`.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Off on purpose. The decorator signatures, the `any[]` of method arguments and the
      // `Function` of a decorated class are what decorators are typed with; MaybePromise values
      // go through Promise.all; a method's own rejection is passed on unchanged, whatever it is.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-function-type': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/await-thenable': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
      // keys/encode.ts matches control characters on purpose (they are escaped in keys).
      'no-control-regex': 'off',
      // The rule of errors.ts: a bad argument is a CacheArgumentError (a TypeError with a code),
      // so that users can branch on `code` for every error hoard throws.
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='TypeError'], CallExpression[callee.name='TypeError']",
          message:
            'Throw a CacheArgumentError (errors.ts): a TypeError with the code HOARD_ARGUMENT, naming the call and the argument.',
        },
      ],
    },
  },

  // The layers, lowest first: errors, maybe-promise <- keys, serialization, channels <- backends, bus
  // <- module state (config, state, events, stats) <- runtime <- decorators, cached() <- CacheModule
  // <- index, testing.
  layer(
    ['src/errors.ts', 'src/maybe-promise.ts'],
    ['keys', 'serialization', 'channels', 'backends', 'bus', ...ABOVE_BACKENDS],
    'errors.ts and maybe-promise.ts are the lowest layer: they import nothing of hoard.',
  ),
  layer(
    ['src/keys/**', 'src/serialization/**', 'src/channels.ts'],
    ['backends', 'bus', ...ABOVE_BACKENDS],
    'keys/, serialization/ and channels.ts may import errors.ts and maybe-promise.ts only: see docs/architecture.md.',
  ),
  layer(
    ['src/backends/**', 'src/bus/**'],
    ABOVE_BACKENDS,
    'A backend never reads the module or the call path: what it needs is handed to it (BackendContext). See docs/architecture.md.',
  ),
  layer(
    ['src/module/**'],
    ['runtime', 'decorators', 'testing', 'index', 'cache-module'],
    "The module's state sits below the call path: see docs/architecture.md.",
  ),
  layer(
    ['src/runtime/**'],
    ['decorators', 'testing', 'index', 'cache-module'],
    'The call path does not know decorators or the CacheModule facade: see docs/architecture.md.',
  ),
  layer(
    ['src/decorators/**'],
    ['testing', 'index', 'cache-module'],
    'Decorators sit below the CacheModule facade: see docs/architecture.md.',
  ),
);
