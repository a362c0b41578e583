// ESLint 9 flat config: typed rules for the TypeScript (src/, test/), plain rules for the JavaScript
// around it (bench/, scripts/, test/fixtures/, bin/). Layout is Prettier's job, not ESLint's.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const unusedVars = ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }];

export default tseslint.config(
  {
    // Generated from schemas/ by scripts/generate-types.mjs: fixed by regenerating, not by hand.
    ignores: ['dist/', 'node_modules/', 'scratch/', 'src/*/generated/'],
  },
  {
    files: ['**/*.ts'],
    // recommendedTypeChecked rather than strictTypeChecked: strict adds no-non-null-assertion
    // (188 findings, the `!` that noUncheckedIndexedAccess asks for after a length check),
    // restrict-template-expressions for numbers (154, in messages) and no-confusing-void-expression
    // (86): noise for this code. What strict has that catches bugs here is added by name below.
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        // tsconfig.test.json extends tsconfig.json and holds src/ and test/ both: one program to
        // build instead of two (`npm run lint` still runs tsc on each config).
        project: './tsconfig.test.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // What the linter is here for: a promise nobody awaits loses its rejection (and the undo
      // after it); a promise handed where a callback is expected runs unawaited. (Both are in
      // recommendedTypeChecked; named so that nobody turns them off unawares.)
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // `x as T` from a wider type is a claim the compiler cannot check: narrow with a guard
      // (`instanceof`, a parser, a schema) instead. The no-unsafe-* rules do the same for `any`.
      '@typescript-eslint/no-unsafe-type-assertion': 'error',
      // Errors are unknown until narrowed (src/base: describeError, messageOf).
      '@typescript-eslint/use-unknown-in-catch-callback-variable': 'error',
      // `return promise` inside try/catch or under `await using` leaves before the promise
      // settles: the catch never sees its rejection and the disposal runs too early.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // A plan is a discriminated union applied by one switch: a new kind must not fall
      // through unseen.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unused-vars': unusedVars,
    },
  },
  {
    // Not in a tsconfig: linted without type information.
    files: ['vitest.config.ts', 'vitest.*.config.ts'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { parserOptions: { project: null } },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
    rules: { 'no-unused-vars': unusedVars },
  },
);
