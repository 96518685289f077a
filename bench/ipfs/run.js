#!/usr/bin/env node
// bench/ipfs: `npm run bench:ipfs`. Prints two figures, each beside its reference:
//   1. publishing a site of about 200 MB (45 files of 4 MiB and 2,000 of 10 KiB; random bytes) to the
//      embedded node, the bridge's own Publisher on FS stores, against sha256 over the same files
//      (read + hash) in the same run. Goal: publish ≥ 0.4 × the hashing speed. Median of BENCH_RUNS.
//   2. the bytes per second that `fill` reaches over a private Tor network on loopback: bridge A
//      publishes BENCH_FILL_MB of files, bridge B fills them from A's onion (`torplus-bridge fill`).
// Nothing is asserted: the machines are noisy. No tor here can reach the public Tor network: only the
// private network's join config (TestingTorNetwork with loopback authorities) is used.
// Knobs: BENCH_PARTS=1,2  BENCH_RUNS=3  BENCH_SITE_MB=200  BENCH_FILL_MB=40  BENCH_KEEP=1
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => import(join(ROOT, 'bridge', 'dist', p));
const { Publisher } = await dist('ipfs/publisher.js');
const { openIpfsNode } = await dist('ipfs/ipfs-node.js');
const { openIpfsDb } = await dist('ipfs/ipfs-db.js');
const { StorageLock } = await dist('ipfs/storage-lock.js');
const { PinStore } = await dist('ipfs/pins.js');
const { heliaBlocks } = await dist('ipfs/blocks.js');
const { createLogger } = await dist('log/logger.js');
const { UnixfsWriter } = await dist('ipfs/import/unixfs-writer.js');
const { readSiteTree } = await dist('ipfs/import/site-tree.js');

const PARTS = (process.env.BENCH_PARTS ?? '1,2').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SITE_MB = Number(process.env.BENCH_SITE_MB ?? 200);
const work = mkdtempSync(join(tmpdir(), 'bench-ipfs-'));
const log = createLogger({ level: 'error' });
const results = {};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000);

/** A site of about `mb` MB: 90% in 4 MiB files, 10% in 10 KiB files, in a few folders. */
function makeSite(dir, mb) {
  const total = mb * 1e6;
  let bytes = 0;
  for (let i = 0; bytes < total * 0.9; i++) {
    const sub = join(dir, 'media', String(i % 5));
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.bin`), randomBytes(4 * 1024 * 1024));
    bytes += 4 * 1024 * 1024;
  }
  for (let i = 0; bytes < total; i++) {
    const sub = join(dir, 'pages', String(i % 20));
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `p${i}.html`), randomBytes(10 * 1024));
    bytes += 10 * 1024;
  }
  return bytes;
}

function files(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

async function partPublish() {
  const site = join(work, 'site');
  const bytes = makeSite(site, SITE_MB);
  const list = files(site);
  console.log(`part 1: publishing ${(bytes / 1e6).toFixed(0)} MB in ${list.length} files, ${RUNS} runs`);
  const hashMs = [];
  const pubMs = [];
  const cpuMs = [];
  const copyMs = [];
  for (let run = 0; run < RUNS; run++) {
    let t = performance.now();
    for (const f of list) createHash('sha256').update(readFileSync(f)).digest();
    hashMs.push(performance.now() - t);

    // A second reference: copying the same files (cp -r), i.e. what this disk takes to write them.
    const copy = join(work, `copy-${run}`);
    t = performance.now();
    execFileSync('cp', ['-r', site, copy]);
    copyMs.push(performance.now() - t);
    rmSync(copy, { recursive: true, force: true });

    // The same DAG built with blocks kept in memory: what the publisher costs without the file system.
    t = performance.now();
    const writer = new UnixfsWriter({ put: async () => {} });
    await writer.directory(await readSiteTree(site));
    cpuMs.push(performance.now() - t);

    const node = join(work, `node-${run}`);
    const { helia, store, stored } = await openIpfsNode(node);
    const db = openIpfsDb(node);
    const pub = new Publisher({ helia, store, pins: new PinStore(db, heliaBlocks(helia), stored), wwwDir: site, lock: new StorageLock(), db, keepVersions: 3, log });
    t = performance.now();
    const r = await pub.publish();
    pubMs.push(performance.now() - t);
    await pub.close();
    await helia.stop();
    db.close();
    rmSync(node, { recursive: true, force: true });
    console.log(`  run ${run + 1}: sha256 ${mbps(bytes, hashMs[run]).toFixed(0)} MB/s, cp -r ${mbps(bytes, copyMs[run]).toFixed(0)} MB/s, publish ${mbps(bytes, pubMs[run]).toFixed(0)} MB/s, DAG without disk writes ${mbps(bytes, cpuMs[run]).toFixed(0)} MB/s (${r.files} files, root ${r.root})`);
  }
  const ratio = median(hashMs) / median(pubMs);
  const cpuRatio = median(hashMs) / median(cpuMs);
  results.publish = { bytes, files: list.length, sha256MBps: mbps(bytes, median(hashMs)), publishMBps: mbps(bytes, median(pubMs)), ratio, withoutDiskMBps: mbps(bytes, median(cpuMs)), withoutDiskRatio: cpuRatio };
  console.log(`publish: ${results.publish.publishMBps.toFixed(0)} MB/s vs sha256 ${results.publish.sha256MBps.toFixed(0)} MB/s → ratio ${ratio.toFixed(2)} (goal ≥ 0.4)`);
  results.publish.copyMBps = mbps(bytes, median(copyMs));
  console.log(`  against cp -r of the same files (this disk's speed): ${(median(copyMs) / median(pubMs)).toFixed(2)}`);
  console.log(`  of which building the DAG (read, chunk, hash, encode; no block files written): ratio ${cpuRatio.toFixed(2)}; the rest is one file per block on disk`);
}

try {
  if (PARTS.includes(1)) await partPublish();
  if (PARTS.includes(2)) {
    const { partFill } = await import('./fill.js');
    results.fill = await partFill({ work, dist });
  }
  writeFileSync(join(dirname(fileURLToPath(import.meta.url)), 'results.json'), JSON.stringify({ at: new Date().toISOString(), ...results }, null, 2) + '\n');
} finally {
  if (!process.env.BENCH_KEEP) rmSync(work, { recursive: true, force: true });
}
