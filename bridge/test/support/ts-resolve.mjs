// Lets Node run this repository's TypeScript directly (type stripping) where jest's moduleNameMapper does not
// apply: maps a relative './x.js' imported from a .ts file to './x.ts' when only the latter exists.
// Registered on import (once per process), so that it serves as
//   node --import bridge/test/support/ts-resolve.mjs child.ts   (the tests' child processes)
//   await import('…/ts-resolve.mjs')                            (bench scripts, bridge/test/global-setup.ts)
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

if (!globalThis.__torplusJsToTsHook) {
  globalThis.__torplusJsToTsHook = true;
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
}
