// bench/ipfs part 2: fill over a private Tor network on loopback. Bridge A publishes BENCH_FILL_MB of
// files; its root is requested once so that it tops A's list; bridge B (PEERS = A's onion) runs
// `torplus-bridge fill` over libp2p (/onion3 transport, bitswap), and bridge C does the same over A's HTTP
// gateway (IPFS_LIBP2P=false); the summaries' bytes per second are the figures. Reference, same run and
// network: the same CAR downloaded whole through the client tor's SOCKS port from A's onion. A has no
// seed: nobody pays, nobody is throttled.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';

export async function partFill({ work, dist }) {
  const { startTorNetwork, waitForOnion } = await dist('devnet/tornet.js');
  const { startBridgeProcess, runBridgeCommand } = await dist('devnet/bridge-process.js');
  const { socksRequest } = await dist('devnet/socks-http.js');
  const { freePorts } = await dist('util/free-port.js');
  const mb = Number(process.env.BENCH_FILL_MB ?? 40);
  const www = join(work, 'fill-site');
  mkdirSync(www, { recursive: true });
  for (let i = 0; i * 4 < mb; i++) writeFileSync(join(www, `f${i}.bin`), randomBytes(4 * 1024 * 1024));
  writeFileSync(join(www, 'index.html'), '<h1>fill bench</h1>\n');

  console.log(`part 2: fill of ${mb} MB over a private Tor network`);
  const net = await startTorNetwork({});
  const bridges = [];
  try {
    const [aHttp, aApi, bHttp, bApi] = await freePorts(4);
    const common = { TOR_EXTRA_CONFIG: net.joinConfigFile, LISTEN_HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
    const a = startBridgeProcess({ env: { ...common, WWW_DIR: www, TOR_DIR: join(work, 'tor-a'), DATA_DIR: join(work, 'data-a'), HTTP_PORT: String(aHttp), API_PORT: String(aApi) } });
    bridges.push(a);
    const aOnion = await a.published(90_000);
    const root = await new Promise((resolve, reject) => {
      const t = setInterval(() => {
        const line = a.lines.find((l) => l.startsWith('ipfs=/ipfs/'));
        if (line) resolve((clearInterval(t), line.slice('ipfs=/ipfs/'.length)));
      }, 100);
      setTimeout(() => reject((clearInterval(t), new Error('A printed no ipfs= line'))), 120_000).unref();
    });
    // One request of the root puts it at the top of A's list.
    await new Promise((resolve, reject) => request({ host: '127.0.0.1', port: aHttp, path: `/ipfs/${root}/index.html` }, (r) => r.resume().on('end', resolve)).on('error', reject).end());
    await waitForOnion(`http://${aOnion}/ipfs/${root}/index.html`, net.socksPort, { timeoutMs: 60_000 });

    const t0 = performance.now();
    const { res } = await socksRequest(`http://${aOnion}/ipfs/${root}?format=car`, { socksPort: net.socksPort, timeoutMs: 60_000 });
    let carBytes = 0;
    for await (const chunk of res) carBytes += chunk.length;
    const directBps = carBytes / ((performance.now() - t0) / 1000);
    console.log(`  reference: the CAR (${(carBytes / 1e6).toFixed(1)} MB) over SOCKS: ${(directBps / 1e6).toFixed(2)} MB/s`);

    /** A bridge of its own site (else it publishes A's root and has nothing to fill) that fills from A. */
    const fillFrom = async (name, ports, extra) => {
      const www = join(work, `fill-site-${name}`);
      mkdirSync(www, { recursive: true });
      writeFileSync(join(www, 'index.html'), `<h1>${name}</h1>\n`);
      const env = { ...common, WWW_DIR: www, TOR_DIR: join(work, `tor-${name}`), DATA_DIR: join(work, `data-${name}`), HTTP_PORT: String(ports[0]), API_PORT: String(ports[1]), PEERS: aOnion, FILL_RESERVE_BYTES: `${mb * 2}M`, ...extra };
      const bridge = startBridgeProcess({ env });
      bridges.push(bridge);
      await bridge.published(90_000);
      const r = await runBridgeCommand(['fill'], env, 600_000);
      const m = /^fill: .*?, ([\d.]+) s, ([\d.]+) (B|KiB|MiB|GiB)\/s/m.exec(r.stdout);
      if (r.code !== 0 || !m) throw new Error(`fill failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
      console.log(r.stdout.trim().split('\n').map((l) => '  ' + l).join('\n'));
      return Number(m[2]) * { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[m[3]];
    };
    const [cHttp, cApi] = await freePorts(2);
    const p2pBps = await fillFrom('b', [bHttp, bApi], {});
    const httpBps = await fillFrom('c', [cHttp, cApi], { IPFS_LIBP2P: 'false' });
    const mbs = (x) => (x / 1e6).toFixed(2);
    console.log(`fill over libp2p (/onion3, bitswap): ${mbs(p2pBps)} MB/s → ${(p2pBps / directBps).toFixed(2)} of the plain CAR download (${mbs(directBps)} MB/s)`);
    console.log(`fill over the HTTP gateway:          ${mbs(httpBps)} MB/s → ${(httpBps / directBps).toFixed(2)}`);
    return { bytes: carBytes, carBytesPerSec: directBps, libp2pBytesPerSec: p2pBps, httpBytesPerSec: httpBps, libp2pRatio: p2pBps / directBps, httpRatio: httpBps / directBps };
  } finally {
    await Promise.all(bridges.map((b) => b.stop(5000)));
    await net.stop();
  }
}
