// Typed asynchronous events (control-spec §4.1). Only the events the bridge uses get their own
// shape; any other event arrives as `{type: 'other'}` with its raw lines.
import { type Reply, splitTokens, tokenize } from './reply.js';

interface EventBase {
  /** The event keyword exactly as tor sent it, e.g. "STATUS_CLIENT". */
  keyword: string;
  /** The reply lines' text, for logging and for events we do not parse. */
  raw: string[];
}

/** STATUS_CLIENT / STATUS_GENERAL / STATUS_SERVER: `Severity Action KEY=VALUE…`. */
export interface StatusEvent extends EventBase {
  type: 'STATUS_CLIENT' | 'STATUS_GENERAL' | 'STATUS_SERVER';
  severity: string;
  action: string;
  args: Record<string, string>;
}

export type HsDescAction = 'REQUESTED' | 'UPLOAD' | 'RECEIVED' | 'UPLOADED' | 'IGNORE' | 'FAILED' | 'CREATED' | string;

/** HS_DESC: `Action HSAddress AuthType HsDir [DescriptorID] [REASON=] [REPLICA=] [HSDIR_INDEX=]`. */
export interface HsDescEvent extends EventBase {
  type: 'HS_DESC';
  action: HsDescAction;
  /** The onion address without ".onion" (or "UNKNOWN"). */
  address: string;
  authType: string;
  hsDir: string;
  descriptorId?: string;
  reason?: string;
  replica?: string;
  hsDirIndex?: string;
}

/** CONF_CHANGED: each changed option, `null` when it was reset to its default. */
export interface ConfChangedEvent extends EventBase {
  type: 'CONF_CHANGED';
  changes: Array<{ key: string; value: string | null }>;
}

export interface SignalEvent extends EventBase {
  type: 'SIGNAL';
  signal: string;
}

export interface OtherEvent extends EventBase {
  type: 'other';
}

export type TorEvent = StatusEvent | HsDescEvent | ConfChangedEvent | SignalEvent | OtherEvent;

/** Bootstrap state as reported by STATUS_CLIENT BOOTSTRAP and GETINFO status/bootstrap-phase. */
export interface BootstrapPhase {
  severity: string;
  progress: number;
  tag: string;
  summary: string;
  /** Set on WARN phases: why bootstrapping is stuck. */
  warning?: string;
}

/** Turns a 650 reply into a typed event. */
export function parseEvent(reply: Reply): TorEvent {
  const raw = reply.lines.map((l) => l.text);
  const first = raw[0] ?? '';
  const sp = first.indexOf(' ');
  const keyword = sp < 0 ? first : first.slice(0, sp);
  const rest = sp < 0 ? '' : first.slice(sp + 1);
  switch (keyword) {
    case 'STATUS_CLIENT':
    case 'STATUS_GENERAL':
    case 'STATUS_SERVER': {
      const { positional, kv } = splitTokens(tokenize(rest));
      return { type: keyword, keyword, raw, severity: positional[0] ?? '', action: positional[1] ?? '', args: kv };
    }
    case 'HS_DESC': {
      const { positional: p, kv } = splitTokens(tokenize(rest));
      const ev: HsDescEvent = {
        type: 'HS_DESC',
        keyword,
        raw,
        action: p[0] ?? '',
        address: p[1] ?? '',
        authType: p[2] ?? '',
        hsDir: p[3] ?? '',
      };
      if (p[4] !== undefined) ev.descriptorId = p[4];
      if (kv.REASON !== undefined) ev.reason = kv.REASON;
      if (kv.REPLICA !== undefined) ev.replica = kv.REPLICA;
      if (kv.HSDIR_INDEX !== undefined) ev.hsDirIndex = kv.HSDIR_INDEX;
      return ev;
    }
    case 'CONF_CHANGED': {
      // Lines between the keyword line and the final "OK"; values are not quoted here.
      const body = reply.lines.slice(1).filter((l) => !(l.sep === ' ' && l.text === 'OK'));
      const changes = body.map((l) => {
        const eq = l.text.indexOf('=');
        return eq < 0 ? { key: l.text, value: null } : { key: l.text.slice(0, eq), value: l.text.slice(eq + 1) };
      });
      return { type: 'CONF_CHANGED', keyword, raw, changes };
    }
    case 'SIGNAL':
      return { type: 'SIGNAL', keyword, raw, signal: rest.trim() };
    default:
      return { type: 'other', keyword, raw };
  }
}

/** Reads a BOOTSTRAP status, from either an event's args or a GETINFO status/bootstrap-phase value. */
export function parseBootstrap(source: string | StatusEvent): BootstrapPhase | undefined {
  let severity: string;
  let kv: Record<string, string>;
  if (typeof source === 'string') {
    const t = splitTokens(tokenize(source));
    if (t.positional[1] !== 'BOOTSTRAP') return undefined;
    severity = t.positional[0] ?? '';
    kv = t.kv;
  } else {
    if (source.action !== 'BOOTSTRAP') return undefined;
    severity = source.severity;
    kv = source.args;
  }
  const progress = Number(kv.PROGRESS);
  if (!Number.isFinite(progress)) return undefined;
  const phase: BootstrapPhase = { severity, progress, tag: kv.TAG ?? '', summary: kv.SUMMARY ?? '' };
  if (kv.WARNING !== undefined) phase.warning = kv.WARNING;
  return phase;
}
