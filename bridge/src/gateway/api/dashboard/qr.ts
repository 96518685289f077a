import QRCode from 'qrcode';
import { onionHost } from './format.js';

/**
 * The QR code of `http://<onion>/` as an inline SVG (rendered here, so the page needs no script or
 * image to show it). The SVG holds only path data, never the text, so it needs no escaping.
 */
export async function onionQrSvg(onion: string): Promise<string> {
  const svg = await QRCode.toString(`http://${onionHost(onion)}/`, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return svg.replace('<svg ', '<svg class="qr" role="img" aria-label="QR code of the onion address" ');
}
