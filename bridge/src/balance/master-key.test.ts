// The master key: the frontend's own key if it has one, else a single bridge's (tor's format, in place, so
// the site keeps its address), else a new PEM key; always 0600 in a 0700 folder.
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureOnionKey } from '../tor/onion-key.js';
import { readMasterKey } from '../tor/onionbalance-key.js';
import { chooseMasterKey, masterKeyPaths } from './master-key.js';

let torDir: string;
beforeEach(async () => {
  torDir = join(await mkdtemp(join(tmpdir(), 'torplus-masterkey-')), 'tor');
});
afterEach(async () => rm(join(torDir, '..'), { recursive: true, force: true }));

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

test('an empty TOR_DIR gets a new PEM key at onionbalance/master.key, private, and keeps it', async () => {
  const first = await chooseMasterKey(torDir);
  expect(first).toMatchObject({ file: masterKeyPaths(torDir).frontend, format: 'pem', source: 'new', notes: [] });
  expect(first.onion).toMatch(/^[a-z2-7]{56}\.onion$/);
  expect((await readFile(first.file, 'utf8')).startsWith('-----BEGIN PRIVATE KEY-----')).toBe(true);
  expect(await mode(first.file)).toBe(0o600);
  expect(await mode(join(torDir, 'onionbalance'))).toBe(0o700);
  expect(await mode(torDir)).toBe(0o700);
  // The next start publishes the same address.
  expect(await chooseMasterKey(torDir)).toMatchObject({ file: first.file, onion: first.onion, source: 'frontend' });
});

test("a single bridge's key (tor's format) is reused in place: the site keeps its address", async () => {
  const address = await ensureOnionKey(join(torDir, 'hidden_service'));
  const choice = await chooseMasterKey(torDir);
  expect(choice).toMatchObject({ file: masterKeyPaths(torDir).bridge, onion: address, format: 'tor', source: 'bridge' });
  expect((await readMasterKey(choice.file)).onion).toBe(address);
  // No second copy of the secret is made.
  await expect(stat(masterKeyPaths(torDir).frontend)).rejects.toThrow(/ENOENT/);
});

test('loosened permissions are tightened, and said', async () => {
  await ensureOnionKey(join(torDir, 'hidden_service'));
  await chmod(masterKeyPaths(torDir).bridge, 0o644);
  await chmod(join(torDir, 'hidden_service'), 0o755);
  const choice = await chooseMasterKey(torDir);
  expect(await mode(choice.file)).toBe(0o600);
  expect(await mode(join(torDir, 'hidden_service'))).toBe(0o700);
  expect(choice.notes.join('\n')).toMatch(/fixed the permissions of .*hidden_service \(755 -> 700\)[\s\S]*hs_ed25519_secret_key \(644 -> 600\)/);
});

test("the frontend's own key wins over a bridge key added later, with a note saying how to switch", async () => {
  const own = await chooseMasterKey(torDir);
  const bridge = await ensureOnionKey(join(torDir, 'hidden_service'));
  const again = await chooseMasterKey(torDir);
  expect(again).toMatchObject({ onion: own.onion, source: 'frontend' });
  expect(again.notes.join('\n')).toContain(`${bridge}) is not used`);
});

test('a bridge key without its public half is refused with the reason', async () => {
  await ensureOnionKey(join(torDir, 'hidden_service'));
  await rm(join(torDir, 'hidden_service', 'hs_ed25519_public_key'));
  await expect(chooseMasterKey(torDir)).rejects.toThrow(/hs_ed25519_public_key.*missing/);
});
