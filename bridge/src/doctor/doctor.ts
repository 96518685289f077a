import type { Config } from '../config/config.js';
import type { CheckResult } from './check.js';
import { checkCertificate, checkDisk, checkDnsLink, checkHorizon, checkPermissions, checkTor, checkTxtRecord, checkUpstream, type BridgeHealth } from './checks.js';

/** The running bridge's /healthz on its API port, or undefined when nothing answers. */
export async function bridgeHealth(config: Config, signal?: AbortSignal): Promise<BridgeHealth> {
  try {
    const res = await fetch(`http://127.0.0.1:${config.apiPort}/healthz`, { signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(3000)]) : AbortSignal.timeout(3000) });
    return (await res.json()) as BridgeHealth;
  } catch {
    return undefined;
  }
}

/**
 * `torplus-bridge doctor`: everything a publisher must get right, checked from the outside in the
 * same configuration as the bridge: tor and the onion, the TXT and DNSLink records, the certificate,
 * the upstream, Horizon and the account, permissions, disk space.
 */
export async function runDoctor(config: Config, signal?: AbortSignal): Promise<CheckResult[]> {
  const health = await bridgeHealth(config, signal);
  const tor = await checkTor(config, health);
  return [
    tor.result,
    await checkTxtRecord(config, tor.onion, signal),
    await checkDnsLink(config, health, signal),
    await checkCertificate(config),
    await checkUpstream(config),
    await checkHorizon(config, signal),
    await checkPermissions(config),
    await checkDisk(config),
  ];
}
