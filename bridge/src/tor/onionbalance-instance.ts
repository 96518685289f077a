// An onion service as an Onionbalance instance (a "backend"): tor accepts introductions for the frontend's
// (master) address when the service has `HiddenServiceOnionbalanceInstance 1` and its HiddenServiceDir holds
// an `ob_config` file naming the master. Without that file tor refuses to start. The line must follow the
// service's HiddenServiceDir (it is a per-service option), like HiddenServicePort.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const ONIONBALANCE_INSTANCE_LINE = 'HiddenServiceOnionbalanceInstance 1';

const ONION = /^[a-z2-7]{56}$/;

/** `<56 chars>.onion` from an address with or without the suffix; throws on anything else. */
export function normalizeOnion(address: string): string {
  const bare = address.trim().toLowerCase().replace(/\.onion$/, '');
  if (!ONION.test(bare)) throw new Error(`not a v3 onion address: ${JSON.stringify(address)}`);
  return `${bare}.onion`;
}

/** The text of `ob_config` for a master onion address. */
export function obConfigText(masterOnion: string): string {
  return `MasterOnionAddress ${normalizeOnion(masterOnion)}\n`;
}

/** Write `<hsDir>/ob_config`; tor reads it when it (re)loads its configuration. */
export async function writeObConfig(hsDir: string, masterOnion: string): Promise<void> {
  await writeFile(join(hsDir, 'ob_config'), obConfigText(masterOnion), { mode: 0o600 });
}
