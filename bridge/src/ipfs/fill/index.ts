// The fill module's public surface.
export { Filler, FILLED_KIND, type FillerOptions } from './filler.js';
export { httpPeerClient, type HttpPeerClientOptions, type PeerClient, type TopEntry } from './peer-client.js';
export { pinStoreFillStorage, type FillStorage, type PinMetadata } from './storage.js';
export { createFillProgress, formatFillSummary, type FillProgress, type FillProgressOptions, type FillSummary, type PeerSummary } from './report.js';
export type { FilledRecord } from './filled-table.js';
export { PeerFault, DagSkip, type PeerFaultKind } from './errors.js';
