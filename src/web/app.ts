/**
 * The page a share link opens. It reads the key from the fragment, fetches
 * the share record, opens the manifest (asking for the password if there
 * is one) and shows the file or the folder. File bytes are decrypted by
 * the service worker (sw.ts), which the previews and downloads go through.
 */
import { fromBase64, openManifest, ShareKeyError, shareKey } from '../share/crypto.js';
import { humanBytes } from '../util/human.js';
import { parseManifest, parseRecord, type Manifest, type SharedDir, type SharedFile, type SharedNode, type ShareRecord } from '../share/manifest.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function show(id: string, visible = true): void {
  $(id).hidden = !visible;
}

function status(text: string): void {
  $('status').textContent = text;
  show('status', !!text);
}

function fail(text: string): void {
  status('');
  for (const id of ['password-form', 'crumbs', 'listing', 'viewer']) show(id, false);
  $('error').textContent = text;
  show('error');
  document.title = 'veilfs share: unavailable';
}

const shareId = location.pathname.split('/').pop() ?? '';
let manifest: Manifest;
const fileNumbers = new Map<SharedFile, number>();
const registered = new Set<number>();

async function fetchRecord(): Promise<ShareRecord | undefined> {
  const response = await fetch(`/api/s/${shareId}`, { cache: 'no-store' });
  if (response.status === 404) return fail('This link does not exist. Check that you copied all of it, or ask its owner for a new one.'), undefined;
  if (response.status === 410) {
    const { error } = (await response.json()) as { error?: string };
    return fail(error === 'expired' ? 'This link has expired. Ask its owner for a new one.' : 'This link was revoked by its owner.'), undefined;
  }
  if (!response.ok) return fail(`The server could not open this link right now (${response.status}). Try again later.`), undefined;
  return parseRecord(await response.json(), shareId);
}

async function workerReady(): Promise<void> {
  if (!('serviceWorker' in navigator)) throw new Error('this browser cannot decrypt files in a page (no service workers; a private window in some browsers)');
  await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  await navigator.serviceWorker.ready;
  if (navigator.serviceWorker.controller) return;
  // The first visit: the worker claims the page once it is active.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the page\'s decryption worker did not start: reload the page')), 10_000);
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

async function main(): Promise<void> {
  const keyText = location.hash.slice(1);
  if (!/^[0-9a-f]{32}$/.test(shareId) || !keyText) return fail('This link is incomplete: the key after “#” is missing. Copy the whole link.');
  let linkKey: Uint8Array;
  try {
    linkKey = fromBase64(keyText);
  } catch {
    return fail('The key in this link is damaged. Copy the whole link.');
  }
  if (linkKey.length !== 32) return fail('The key in this link is damaged. Copy the whole link.');
  const record = await fetchRecord();
  if (!record) return;
  await workerReady();
  const sealed = fromBase64(record.manifest!);
  if (!record.password) {
    try {
      manifest = parseManifest(openManifest(await shareKey(linkKey), shareId, record.seq, sealed), record);
    } catch (err) {
      return fail(err instanceof ShareKeyError ? 'This link is damaged or was altered: its key does not open the share.' : `This share cannot be read: ${(err as Error).message}`);
    }
    return opened();
  }
  status('');
  show('password-form');
  $('password-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('password');
    show('password-error', false);
    status('Checking the password…');
    void (async () => {
      try {
        const key = await shareKey(linkKey, { password: input.value, params: record.password! });
        manifest = parseManifest(openManifest(key, shareId, record.seq, sealed), record);
      } catch (err) {
        status('');
        $('password-error').textContent = err instanceof ShareKeyError ? 'Wrong password.' : `This share cannot be read: ${(err as Error).message}`;
        show('password-error');
        return;
      }
      show('password-form', false);
      opened();
    })();
  });
}

function opened(): void {
  status('');
  $('title').textContent = manifest.root.name;
  document.title = `${manifest.root.name} – veilfs share`;
  let n = 0;
  const number = (node: SharedNode) => {
    if (node.type === 'file') fileNumbers.set(node, n++);
    else node.entries.forEach(number);
  };
  number(manifest.root);
  navigator.serviceWorker.addEventListener('message', (e) => onWorkerMessage(e.data));
  if (manifest.root.type === 'file') void openFile(manifest.root);
  else {
    for (const th of document.querySelectorAll<HTMLElement>('th.sortable')) th.addEventListener('click', () => sortBy(th.dataset.sort as SortKey));
    showFolder([manifest.root]);
  }
}

// ---- folder listing ----

type SortKey = 'name' | 'size' | 'mtime';
let sort: { key: SortKey; ascending: boolean } = { key: 'name', ascending: true };
let trail: SharedDir[] = [];

function sortBy(key: SortKey): void {
  sort = { key, ascending: sort.key === key ? !sort.ascending : true };
  showFolder(trail);
}

function sizeOf(node: SharedNode): number {
  return node.type === 'file' ? node.size : -1;
}

function showFolder(path: SharedDir[]): void {
  trail = path;
  const dir = path[path.length - 1];
  const crumbs = $('crumbs');
  crumbs.replaceChildren();
  path.forEach((d, i) => {
    if (i) crumbs.append(' / ');
    const a = document.createElement('a');
    a.textContent = d.name;
    a.addEventListener('click', () => showFolder(path.slice(0, i + 1)));
    crumbs.append(a);
  });
  show('crumbs');
  const entries = [...dir.entries].sort((a, b) => {
    if ((a.type === 'dir') !== (b.type === 'dir')) return a.type === 'dir' ? -1 : 1;
    const order = sort.key === 'name' ? a.name.localeCompare(b.name) : sort.key === 'size' ? sizeOf(a) - sizeOf(b) : a.mtime - b.mtime;
    return sort.ascending ? order : -order;
  });
  for (const th of document.querySelectorAll<HTMLElement>('th.sortable')) {
    th.classList.toggle('sorted-asc', th.dataset.sort === sort.key && sort.ascending);
    th.classList.toggle('sorted-desc', th.dataset.sort === sort.key && !sort.ascending);
  }
  const body = $('listing').querySelector('tbody')!;
  body.replaceChildren(...entries.map((node) => {
    const row = document.createElement('tr');
    const name = document.createElement('a');
    name.textContent = node.name;
    name.className = node.type === 'dir' ? 'folder' : 'file';
    name.addEventListener('click', () => (node.type === 'dir' ? showFolder([...path, node]) : void openFile(node)));
    const cells = [name, node.type === 'file' ? humanBytes(node.size) : '', new Date(node.mtime).toLocaleString()];
    for (const [i, content] of cells.entries()) {
      const td = document.createElement('td');
      if (i === 1) td.className = 'num';
      td.append(content);
      row.append(td);
    }
    const action = document.createElement('td');
    if (node.type === 'file') {
      const dl = document.createElement('a');
      dl.textContent = 'Download';
      dl.addEventListener('click', () => void download(node));
      action.append(dl);
    }
    row.append(action);
    return row;
  }));
  show('listing');
}

// ---- one file ----

function mimeOf(name: string): string {
  const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  const types: Record<string, string> = {
    jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', svg: 'image/svg+xml', avif: 'image/avif',
    mp4: 'video/mp4', m4v: 'video/mp4', webm: 'video/webm', mov: 'video/quicktime', mkv: 'video/x-matroska', ogv: 'video/ogg',
    mp3: 'audio/mpeg', m4a: 'audio/mp4', ogg: 'audio/ogg', oga: 'audio/ogg', wav: 'audio/wav', flac: 'audio/flac', opus: 'audio/ogg',
    pdf: 'application/pdf',
    txt: 'text/plain', md: 'text/plain', log: 'text/plain', csv: 'text/plain', json: 'text/plain', js: 'text/plain', ts: 'text/plain',
    py: 'text/plain', sh: 'text/plain', c: 'text/plain', h: 'text/plain', html: 'text/plain', css: 'text/plain', xml: 'text/plain', yaml: 'text/plain', yml: 'text/plain',
  };
  return types[ext] ?? 'application/octet-stream';
}

async function register(file: SharedFile): Promise<string> {
  const n = fileNumbers.get(file)!;
  if (!registered.has(n)) {
    const worker = navigator.serviceWorker.controller;
    if (!worker) throw new Error('the page\'s decryption worker stopped: reload the page');
    const channel = new MessageChannel();
    const acked = new Promise((resolve) => (channel.port1.onmessage = resolve));
    worker.postMessage({ type: 'register', registration: { share: shareId, n, file, mime: mimeOf(file.name) } }, [channel.port2]);
    await acked;
    registered.add(n);
  }
  return `/v/${shareId}/${n}/${encodeURIComponent(file.name)}`;
}

let current: SharedFile | undefined;

function fileError(text: string): void {
  $('file-error').textContent = text;
  show('file-error');
}

function onWorkerMessage(message: { type: string; n: number; done?: number; total?: number; message?: string }): void {
  const file = current;
  if (!file || fileNumbers.get(file) !== message.n) return;
  if (message.type === 'progress') {
    const bar = $('progress').querySelector('progress')!;
    bar.value = message.total ? message.done! / message.total : 1;
    $('progress-text').textContent = message.done === message.total ? `Downloaded ${humanBytes(message.total!)}` : `${humanBytes(message.done!)} of ${humanBytes(message.total!)}`;
    show('progress');
  } else if (message.type === 'error') {
    show('progress', false);
    fileError(`This file failed verification and was not shown or saved: ${message.message}. It was altered in storage or on the way.`);
  }
}

async function openFile(file: SharedFile): Promise<void> {
  current = file;
  show('file-error', false);
  show('progress', false);
  $('viewer-name').textContent = file.name;
  $('viewer-size').textContent = humanBytes(file.size);
  const preview = $('preview');
  preview.replaceChildren();
  $('download').onclick = () => void download(file);
  $('close-viewer').hidden = manifest.root.type === 'file';
  $('close-viewer').onclick = () => show('viewer', false);
  show('viewer');
  const url = await register(file);
  const mime = mimeOf(file.name);
  if (mime.startsWith('image/')) {
    const img = document.createElement('img');
    img.alt = file.name;
    img.src = url;
    img.addEventListener('error', () => fileError('This image could not be shown: it failed verification or is not an image this browser reads.'));
    preview.append(img);
  } else if (mime.startsWith('video/') || mime.startsWith('audio/')) {
    const media = document.createElement(mime.startsWith('video/') ? 'video' : 'audio');
    media.controls = true;
    media.preload = 'metadata';
    media.src = url;
    preview.append(media);
  } else if (mime === 'application/pdf') {
    const frame = document.createElement('iframe');
    frame.title = file.name;
    frame.src = url;
    preview.append(frame);
  } else if (mime === 'text/plain') {
    const response = await fetch(url, { headers: { range: `bytes=0-${Math.min(file.size, 256 * 1024) - 1}` } }).catch(() => undefined);
    if (file.size === 0) preview.append(Object.assign(document.createElement('pre'), { textContent: '' }));
    else if (!response?.ok) return;
    else {
      try {
        const text = await response.text();
        preview.append(Object.assign(document.createElement('pre'), { textContent: text + (file.size > 256 * 1024 ? '\n…' : '') }));
      } catch {
        // The worker reported why.
      }
    }
  } else {
    preview.append(Object.assign(document.createElement('p'), { textContent: 'No preview for this kind of file.' }));
  }
}

async function download(file: SharedFile): Promise<void> {
  if (current !== file) await openFile(file);
  const url = await register(file);
  // A navigation (unlike <a download>) reaches the service worker, which streams the file to disk.
  const frame = document.createElement('iframe');
  frame.hidden = true;
  frame.src = `${url}?download=1`;
  document.body.append(frame);
  setTimeout(() => frame.remove(), 60_000);
  $('progress').querySelector('progress')!.value = 0;
  $('progress-text').textContent = 'Starting…';
  show('progress');
}

main().catch((err) => fail(`This share cannot be opened: ${(err as Error).message}`));
