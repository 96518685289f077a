// Reads a QR code out of a PNG screenshot with an independent decoder (jsQR), so the pay page's code is
// checked the way a phone's camera would, not against the encoder that drew it.
import jsqrModule from 'jsqr';
import { PNG } from 'pngjs';

// jsqr is CommonJS whose types declare an ES default export: at run time the import is the function.
type Decode = (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
const jsQR = ((jsqrModule as unknown as { default?: Decode }).default ?? jsqrModule) as unknown as Decode;

export function decodeQrPng(png: Uint8Array): string | undefined {
  const image = PNG.sync.read(Buffer.from(png));
  const found = jsQR(new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.length), image.width, image.height);
  return found?.data;
}
