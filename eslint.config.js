// ESLint flat config: typescript-eslint's recommended-type-checked and stylistic(-type-checked) rules over every
// TypeScript file (library, CLI, tests, benchmarks, examples and the web playground). Formatting is Prettier's job
// (npm run format), so no formatting rules here. A rule is turned off only with a one-line reason.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  // assembly/ is AssemblyScript (its own compiler and types), not TypeScript for tsc.
  {
    ignores: [
      "dist/",
      "web/dist/",
      "docs/api/",
      "node_modules/",
      "runs/",
      "**/*.js",
      "**/*.mjs",
      "**/*.cjs",
      "assembly/",
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // tsconfig.json covers src, test, bench and examples; tsconfig.web.json the playground (DOM types).
        project: ["./tsconfig.json", "./tsconfig.web.json"],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // `_`-prefixed names mark deliberately unused parameters and destructured leftovers.
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      // Shapes and index lists read well in messages as `${[2, 3]}` → "2,3"; nullish values print as themselves.
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowArray: true },
      ],
      // An empty string means "absent" for environment variables and protobuf fields, so `||` and `x ? x : y` stay.
      "@typescript-eslint/prefer-nullish-coalescing": [
        "error",
        { ignorePrimitives: { string: true }, ignoreTernaryTests: true },
      ],
      // Numeric loops over typed arrays stay indexed: the kernel style, and the index is often needed beside the value.
      "@typescript-eslint/prefer-for-of": "off",
      // Its rewrites of guards such as `!x || x.length !== n` into `x?.length !== n` read worse than the originals.
      "@typescript-eslint/prefer-optional-chain": "off",
      // Deliberate no-op callbacks (a disabled progress bar, an optional listener) are clearer than stubs with comments.
      "@typescript-eslint/no-empty-function": "off",
      // node:test's test()/describe() return promises the runner itself awaits.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "describe", "it", "suite", "before", "after"] },
          ],
        },
      ],
    },
  },
  {
    files: ["test/**/*.ts"],
    rules: {
      // Tests poke at JSON parsed from CLI output and files; a type for every such object would add nothing.
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-call": "off",
    },
  },
);
