// A small reader of the project's Dockerfiles, for the appliance tests (no Docker engine runs here).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type Instruction = [instruction: string, rest: string];

/** The instructions of a Dockerfile, continuation lines joined: [instruction, rest]. */
export function dockerfile(root: string, name: string): Instruction[] {
  const text = readFileSync(join(root, name), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)\s+(.*)$/.exec(l)!;
      return [m[1]!.toUpperCase(), m[2]!];
    });
}

/** The last stage's instructions (what the image runs), from its FROM on. */
export function runtimeStage(lines: Instruction[]): Instruction[] {
  const from = lines.map(([i]) => i).lastIndexOf('FROM');
  return lines.slice(from);
}

/** ENV lines as a map (the `KEY=value KEY=value` form). */
export function envOf(lines: Instruction[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const [i, rest] of lines) if (i === 'ENV') for (const m of rest.matchAll(/(\w+)=(\S+)/g)) env.set(m[1]!, m[2]!);
  return env;
}
