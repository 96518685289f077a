// The image's entrypoint (scripts/docker-entrypoint.sh) run as a plain process (no Docker engine runs
// here), in a temporary folder laid out like the image: app/ holds what Dockerfile.bridge's runtime
// stage COPYs (links to the repo's built files), opt/www the site, root/tor the tor folder, and the
// environment is the image's ENV with those folders. Three claims, each from outside the processes
// (/proc), each able to fail:
//  1. Started as root (Docker's default) with a host-owned tor folder, on the private Tor network:
//     every process runs as uid 10001, with CAP_NET_BIND_SERVICE only; the tor folder becomes
//     10001's; the site comes over the onion; SIGTERM stops everything with exit 0; a restart with
//     the same tor folder publishes the same onion. Ephemeral ports: port 80 of this machine may be
//     taken and must not be disturbed.
//  2. `-p 80:80`: started as root in a network namespace of its own (port 80 there is private, and
//     below ip_unprivileged_port_start there, checked), with the image's ports, the socket listening on
//     80 belongs to a uid-10001 process and serves the site. tor runs with DisableNetwork 1: the
//     namespace cannot reach the private Tor network on the host's loopback, which claim 1 covers.
//  3. Started as uid 10001 (`docker run --user`): it changes no owner, and the bridge serves.
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startBridgeProcess, type BridgeProcess } from '../src/devnet/bridge-process.js';
import { waitForOnion } from '../src/devnet/tornet.js';
import { freePorts } from '../src/util/free-port.js';
import { dockerfile, envOf, runtimeStage } from './support/dockerfile.js';
import { CAP_NET_BIND_SERVICE, isAlive, listeningInodes, processTree, procStatus, socketHolders } from './support/procfs.js';
import { sharedTorNetwork } from './support/tornet.js';
import { until } from './support/wait.js';

jest.setTimeout(300_000);

const ROOT = resolve('.');
const USER = 10001;
/** A host user's uid: the owner of the folders `-v $(pwd)/…` mounts. */
const HOST_UID = 4242;
const INDEX = readFileSync(join(ROOT, 'www/index.html'));
const READY = /waiting for tor to publish it/;
const run = promisify(execFile);

const base = mkdtempSync(join(tmpdir(), 'torplus-entrypoint-'));
// mkdtemp makes 0700; uid 10001 must be able to reach the image's folders through it.
chmodSync(base, 0o755);
afterAll(() => rmSync(base, { recursive: true, force: true }));

interface Image {
  root: string;
  entrypoint: string;
  /** The image's ENV, its folders under `root`. */
  env: Record<string, string>;
  /** A file readable by everyone (the bridge's user must read TOR_EXTRA_CONFIG). */
  file(name: string, text: string): string;
}

/** A fresh image layout. `tor/` is created as a host folder owned by HOST_UID, mode 0755. */
function image(name: string): Image {
  const root = join(base, name);
  const lines = runtimeStage(dockerfile(ROOT, 'Dockerfile.bridge'));
  const workdir = lines.find(([i]) => i === 'WORKDIR')![1];
  for (const [i, rest] of lines) {
    if (i !== 'COPY') continue;
    // `COPY --from=build /app/x ./x` is the build stage's output, built at the same place here.
    const args = rest.split(/\s+/);
    const src = args[0]!.startsWith('--from=') ? args[1]!.replace(/^\/app\//, '') : args[0]!;
    const dest = args.at(-1)!.endsWith('/') ? join(args.at(-1)!, basename(src)) : args.at(-1)!;
    const at = join(root, workdir, dest);
    mkdirSync(dirname(at), { recursive: true });
    symlinkSync(join(ROOT, src), at);
  }
  const env: Record<string, string> = {};
  for (const [k, v] of envOf(lines)) env[k] = v.startsWith('/') ? join(root, v) : v;
  // As the Dockerfile's RUN makes them: /root 0711, the bridge's own folders 10001's and 0700.
  mkdirSync(join(root, 'root'), { mode: 0o711 });
  chmodSync(join(root, 'root'), 0o711);
  for (const k of ['DATA_DIR', 'SSL_DIR']) {
    // Parents 0755 (a recursive mkdir would give them the 0700 too).
    mkdirSync(dirname(env[k]!), { recursive: true });
    mkdirSync(env[k]!, { mode: 0o700 });
    chownSync(env[k]!, USER, USER);
  }
  // What `-v $(pwd)/www:/opt/www -v $(pwd)/tor:/root/tor` mounts: a host user's folders.
  cpSync(join(ROOT, 'www'), env.WWW_DIR!, { recursive: true });
  mkdirSync(env.TOR_DIR!, { mode: 0o755 });
  for (const p of [env.WWW_DIR!, join(env.WWW_DIR!, 'index.html'), env.TOR_DIR!]) chownSync(p, HOST_UID, HOST_UID);
  return {
    root,
    entrypoint: join(root, workdir, 'scripts/docker-entrypoint.sh'),
    env,
    file(n, text) {
      const p = join(root, n);
      writeFileSync(p, text, { mode: 0o644 });
      return p;
    },
  };
}

interface Watched extends BridgeProcess {
  /** Resolves with the first line (past or future) that matches; rejects if the process exits first. */
  line(re: RegExp, timeoutMs: number): Promise<string>;
}

function start(img: Image, env: Record<string, string>, command: string[]): Watched {
  const waiters: Array<() => void> = [];
  const bridge = startBridgeProcess({ env: { ...img.env, ...env }, cwd: join(img.root, 'app'), command, onLine: () => waiters.forEach((w) => w()) });
  const line = (re: RegExp, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      let done = false;
      const finish = (settle: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        settle();
      };
      const last = () => bridge.lines.slice(-15).join('\n');
      const check = () => {
        const found = bridge.lines.find((l) => re.test(l));
        if (found !== undefined) finish(() => resolve(found));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no line ${re} within ${timeoutMs} ms:\n${last()}`))), timeoutMs);
      void bridge.exited.then((code) => finish(() => reject(new Error(`exited (${code}) before a line ${re}:\n${last()}`))));
      waiters.push(check);
      check();
    });
  return Object.assign(bridge, { line });
}

/** Every process of the tree runs as USER, in USER's group only. Returns their statuses. */
function expectAllUser(pid: number) {
  const tree = processTree(pid).map(procStatus);
  for (const s of tree) expect({ name: s.name, uids: s.uids, gids: s.gids, groups: s.groups }).toEqual({ name: s.name, uids: [USER, USER, USER, USER], gids: [USER, USER, USER, USER], groups: [] });
  return tree;
}

/**
 * SIGTERM, then the exit code and whatever of the process tree still runs 15 s after the exit. It
 * does not throw, so that in a `finally` it never hides the test's own failure; assert on it after.
 */
async function stop(bridge: BridgeProcess): Promise<{ code: number | string; left: number[] }> {
  const tree = processTree(bridge.pid);
  const code = await bridge.stop(30_000);
  const left = await until('every process of the bridge to end', () => tree.every((p) => !isAlive(p)), { timeoutMs: 15_000 }).then(
    () => [],
    () => tree.filter(isAlive),
  );
  return { code, left };
}
const CLEAN = { code: 0, left: [] };

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('these tests start the entrypoint as root, as Docker does: run them as root');
});

describe("the image's entrypoint, as a plain process with the image's layout", () => {
  it('started as root: the bridge runs as uid 10001 with CAP_NET_BIND_SERVICE only, serves the site over the onion, keeps the address across a restart, and stops on SIGTERM', async () => {
    const net = sharedTorNetwork();
    const img = image('root');
    const [http, https, api] = await freePorts(3);
    const env = { HTTP_PORT: String(http), HTTPS_PORT: String(https), API_PORT: String(api), LISTEN_HOST: '127.0.0.1', TOR_EXTRA_CONFIG: img.file('tor-extra.conf', net.joinConfig) };

    const first = start(img, env, [img.entrypoint, 'start']);
    let onion: string;
    let stopped;
    try {
      onion = await first.published(150_000);
      const tree = expectAllUser(first.pid);
      expect(tree.map((s) => s.name)).toEqual(expect.arrayContaining(['node', 'tor']));
      const node = procStatus(first.pid);
      expect({ eff: node.capEff, amb: node.capAmb, nnp: node.noNewPrivs }).toEqual({ eff: 1n << CAP_NET_BIND_SERVICE, amb: 1n << CAP_NET_BIND_SERVICE, nnp: true });
      // The host's tor folder is now the bridge's, 0700; the site is left as it was.
      const tor = statSync(img.env.TOR_DIR!);
      expect({ uid: tor.uid, mode: tor.mode & 0o777 }).toEqual({ uid: USER, mode: 0o700 });
      expect(first.lines).toContainEqual(expect.stringMatching(/^entrypoint: gave .*\/root\/tor to uid 10001/));
      expect(statSync(join(img.env.WWW_DIR!, 'index.html')).uid).toBe(HOST_UID);
      const r = await waitForOnion(`http://${onion}/`, net.socksPort, { timeoutMs: 90_000 });
      expect(r.status).toBe(200);
      expect(r.body.equals(INDEX)).toBe(true);
    } finally {
      stopped = await stop(first);
    }
    expect(stopped).toEqual(CLEAN);

    // The same tor folder: the same address, and nothing left for the entrypoint to change.
    const second = start(img, env, [img.entrypoint, 'start']);
    try {
      expect(await second.published(150_000)).toBe(onion);
      expect(second.lines.filter((l) => l.startsWith('entrypoint:'))).toEqual([]);
      expectAllUser(second.pid);
    } finally {
      stopped = await stop(second);
    }
    expect(stopped).toEqual(CLEAN);
  });

  it('-p 80:80: in a network namespace of its own, the image’s port 80 is bound by the uid-10001 bridge, which serves the site there', async () => {
    const img = image('port80');
    expect(img.env.HTTP_PORT).toBe('80');
    const env = { TOR_EXTRA_CONFIG: img.file('tor-extra.conf', 'DisableNetwork 1\n') };
    // unshare execs (no fork), as do sh, the entrypoint, setpriv and start.sh: the pid is the bridge's.
    const command = ['unshare', '--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'netns', img.entrypoint, 'start'];
    const bridge = start(img, env, command);
    let stopped;
    try {
      await bridge.line(READY, 120_000);
      const ns = `--net=/proc/${bridge.pid}/ns/net`;
      expect(readlinkSync(`/proc/${bridge.pid}/ns/net`)).not.toBe(readlinkSync('/proc/self/ns/net'));
      // Port 80 is a privileged port in that namespace, so binding it needed the capability.
      const { stdout: unprivilegedFrom } = await run('nsenter', [ns, 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start']);
      expect(Number(unprivilegedFrom)).toBeGreaterThan(80);
      const tree = expectAllUser(bridge.pid);
      const inodes = listeningInodes(bridge.pid, 80);
      expect(inodes.length).toBeGreaterThan(0);
      for (const inode of inodes) {
        const holders = socketHolders(inode, tree.map((s) => s.pid));
        expect(holders.length).toBeGreaterThan(0);
        for (const pid of holders) expect(procStatus(pid).uids).toEqual([USER, USER, USER, USER]);
      }
      const { stdout } = await run('nsenter', [ns, 'curl', '-sS', '--max-time', '30', 'http://127.0.0.1:80/'], { encoding: 'buffer' });
      expect(stdout.equals(INDEX)).toBe(true);
    } finally {
      stopped = await stop(bridge);
    }
    expect(stopped).toEqual(CLEAN);
  });

  it('started as uid 10001 (docker run --user): it changes no owner and the bridge serves', async () => {
    const img = image('user');
    // What a publisher who runs with --user does once: give the tor folder to that user.
    chownSync(img.env.TOR_DIR!, USER, USER);
    const foreign = join(img.env.DATA_DIR!, 'left-alone');
    writeFileSync(foreign, 'x', { mode: 0o644 });
    chownSync(foreign, HOST_UID, HOST_UID);
    const [http, https, api] = await freePorts(3);
    const env = { HTTP_PORT: String(http), HTTPS_PORT: String(https), API_PORT: String(api), LISTEN_HOST: '127.0.0.1', TOR_EXTRA_CONFIG: img.file('tor-extra.conf', 'DisableNetwork 1\n') };
    const bridge = start(img, env, ['setpriv', `--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', '--', img.entrypoint, 'start']);
    let stopped;
    try {
      await bridge.line(READY, 120_000);
      expectAllUser(bridge.pid);
      expect(procStatus(bridge.pid).capEff).toBe(0n);
      expect(statSync(foreign).uid).toBe(HOST_UID);
      expect(bridge.lines.filter((l) => l.startsWith('entrypoint:'))).toEqual([]);
      const res = await fetch(`http://127.0.0.1:${http}/`);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(INDEX)).toBe(true);
    } finally {
      stopped = await stop(bridge);
    }
    expect(stopped).toEqual(CLEAN);
  });
});
