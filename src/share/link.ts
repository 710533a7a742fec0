import { UserError } from '../errors.js';
import { fromBase64 } from './crypto.js';
import { SHARE_ID } from './manifest.js';

/** `<gateway>/s/<id>#<link key>` taken apart. */
export interface ShareLink {
  gateway: string;
  id: string;
  linkKey: Uint8Array;
}

export function parseLink(link: string): ShareLink {
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    throw new UserError('that is not a share link (<gateway>/s/<id>#<key>)');
  }
  const m = /^(.*)\/s\/([0-9a-f]{32})$/.exec(url.pathname);
  if (!m || !SHARE_ID.test(m[2]) || url.hash.length < 2) throw new UserError('that is not a share link (<gateway>/s/<id>#<key>): the id or the key after "#" is missing');
  let linkKey: Uint8Array;
  try {
    linkKey = fromBase64(url.hash.slice(1));
  } catch {
    throw new UserError('the key in the link is damaged (copy the whole link, including the part after "#")');
  }
  if (linkKey.length !== 32) throw new UserError('the key in the link is damaged (copy the whole link, including the part after "#")');
  return { gateway: `${url.origin}${m[1]}`, id: m[2], linkKey };
}
