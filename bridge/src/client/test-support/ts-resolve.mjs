// Lets Node run the client's TypeScript directly (type stripping) for the CLI tests' child processes: maps a
// relative './x.js' imported from a .ts file to './x.ts' when only the latter exists, as jest's
// moduleNameMapper does. (A copy of payments/test-support/ts-resolve.mjs.)
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

registerHooks({
  resolve(specifier, context, nextResolve) {
    const parent = context.parentURL;
    if (parent?.startsWith('file:') && parent.endsWith('.ts') && /^\.\.?\//.test(specifier) && specifier.endsWith('.js')) {
      const asJs = new URL(specifier, parent);
      const asTs = new URL(`${specifier.slice(0, -3)}.ts`, parent);
      if (!existsSync(fileURLToPath(asJs)) && existsSync(fileURLToPath(asTs))) return nextResolve(asTs.href, context);
    }
    return nextResolve(specifier, context);
  },
});
