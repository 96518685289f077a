import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NginxOptions {
  port: number;
  /** Serve this folder… */
  root?: string;
  /** …or proxy to this host:port with a keepalive pool, as Onionspray and EOTK front a site. */
  proxyTo?: string;
  workers?: number;
}

export interface Nginx {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * A private nginx (the Debian package) for tests, benchmarks and the demo: its own prefix and
 * config, in the foreground, on loopback only.
 */
export async function startNginx(opts: NginxOptions): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'torplus-nginx-'));
  mkdirSync(join(dir, 'logs'));
  const location = opts.proxyTo
    ? 'location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }'
    : `location / { root ${opts.root}; index index.html; }`;
  const upstreamBlock = opts.proxyTo ? `upstream backend { server ${opts.proxyTo}; keepalive 64; }` : '';
  const conf = `
worker_processes ${opts.workers ?? 1};
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${upstreamBlock}
  server {
    listen 127.0.0.1:${opts.port};
    server_tokens off;
    ${location}
  }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child: ChildProcess = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'logs', 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(opts.port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not start on port ${opts.port}: ${stderr.trim() || 'no output'}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port: opts.port,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
