import type { Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'puppeteer-core';
import { allowDownloads, launchBrowser, screenshot } from './browser.js';
import { veilfs } from './cli.js';
import type { SharedVault } from './share-suite.js';

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function waitForDownload(dir: string, name: string, timeoutMs = 120_000): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const names = readdirSync(dir);
    if (names.includes(name) && !names.some((n) => n.endsWith('.crdownload'))) return readFileSync(path.join(dir, name));
    if (Date.now() > deadline) throw new Error(`no download of ${name} (saw ${names.join(', ')})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function visibleText(page: Page, selector: string, timeout = 60_000): Promise<string> {
  await page.waitForFunction((s) => {
    const el = document.querySelector(s) as HTMLElement | null;
    return !!el && !el.hidden && !!el.textContent?.trim();
  }, { timeout }, selector);
  return page.$eval(selector, (el) => el.textContent ?? '');
}

async function rowNames(page: Page): Promise<string[]> {
  return page.$$eval('#listing tbody tr td:first-child', (cells) => cells.map((c) => (c.textContent ?? '')));
}

async function clickRow(page: Page, name: string, column = 0): Promise<void> {
  await page.evaluate((n, col) => {
    for (const row of document.querySelectorAll('#listing tbody tr')) {
      if ((row.children[0].textContent ?? '') === n) (row.children[col].querySelector('a') as HTMLElement).click();
    }
  }, name, column);
}

const prefix = (vault: SharedVault) => (vault.cli.store.startsWith('s3://') ? 's3' : 'local');

/** What a recipient sees in Chromium: listing, sorting, previews, seeking, a verified download, passwords, revoked and unknown links. */
export async function browserChecks(t: Test, vault: SharedVault, links: { folderLink: string; fileLink: string; passwordLink: string }): Promise<void> {
  const browser = await launchBrowser(t);
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 800 });
  const downloads = path.join(vault.dir, `browser-downloads`);
  mkdirSync(downloads, { recursive: true });
  await allowDownloads(page, downloads);
  const album = path.join(vault.mount.mountpoint, 'Holiday Album');
  const shots = prefix(vault);

  await page.goto(links.folderLink);
  await page.waitForSelector('#listing:not([hidden]) tbody tr', { timeout: 30_000 });
  const names = await rowNames(page);
  t.same(names.slice(0, 1), ['many'], 'folders first');
  for (const name of ['photo.png', 'notes.txt', 'song.wav', 'medium.bin', 'added later.txt']) t.ok(names.includes(name), `${name} listed`);
  t.notOk(names.includes('private-sibling.txt'), 'nothing outside the folder');
  await screenshot(page, `${shots}-folder-listing`);

  await page.click('th[data-sort="size"]');
  const bySize = (await rowNames(page)).slice(1);
  await page.click('th[data-sort="size"]');
  const bySizeDown = (await rowNames(page)).slice(1);
  t.same(bySizeDown, [...bySize].reverse(), 'sorting by size, then the other way');
  t.equal(bySize[bySize.length - 1], 'medium.bin', 'the biggest last when ascending');

  await clickRow(page, 'many');
  await page.waitForFunction(() => document.querySelectorAll('#listing tbody tr').length === 1000, { timeout: 30_000 });
  t.pass('a sub-folder of 1,000 files opens');
  await page.evaluate(() => (document.querySelector('#crumbs a') as HTMLElement).click());
  await page.waitForFunction(() => document.querySelectorAll('#listing tbody tr').length < 1000);

  await clickRow(page, 'photo.png');
  await page.waitForFunction(() => {
    const img = document.querySelector('#preview img') as HTMLImageElement | null;
    return !!img && img.complete && img.naturalWidth > 0;
  }, { timeout: 30_000 });
  t.equal(await page.$eval('#preview img', (img) => (img as HTMLImageElement).naturalWidth), 200, 'the image decodes in the preview');
  await screenshot(page, `${shots}-image-preview`);

  await clickRow(page, 'notes.txt');
  t.equal(await visibleText(page, '#preview pre'), readFileSync(path.join(album, 'notes.txt'), 'utf8'), 'the text preview');

  await clickRow(page, 'song.wav');
  await page.waitForFunction(() => {
    const audio = document.querySelector('#preview audio') as HTMLAudioElement | null;
    return !!audio && audio.readyState >= 1;
  }, { timeout: 30_000 });
  const seek = await page.evaluate(async () => {
    const audio = document.querySelector('#preview audio') as HTMLAudioElement;
    const seeked = new Promise((resolve) => audio.addEventListener('seeked', resolve, { once: true }));
    audio.currentTime = 25;
    await seeked;
    return { duration: audio.duration, at: audio.currentTime, ready: audio.readyState };
  });
  t.ok(Math.abs(seek.duration - 30) < 0.5, `the audio's duration (${seek.duration} s)`);
  t.ok(Math.abs(seek.at - 25) < 0.5 && seek.ready >= 2, 'seeking to 25 s plays from there');
  await screenshot(page, `${shots}-audio-seek`);
  // Any byte range of a file, decrypted alone: what a seeking player asks for.
  const song = readFileSync(path.join(album, 'song.wav'));
  const slice = await page.evaluate(async () => {
    const src = (document.querySelector('#preview audio') as HTMLAudioElement).src;
    const response = await fetch(src, { headers: { range: 'bytes=1000000-1070000' } });
    return { status: response.status, range: response.headers.get('content-range'), bytes: Array.from(new Uint8Array(await response.arrayBuffer())) };
  });
  t.equal(slice.status, 206);
  t.equal(slice.range, `bytes 1000000-1070000/${song.length}`);
  t.ok(Buffer.from(slice.bytes).equals(song.subarray(1_000_000, 1_070_001)), 'a range across two segments is exact');

  await clickRow(page, 'medium.bin', 3);
  const medium = await waitForDownload(downloads, 'medium.bin');
  t.equal(sha(medium), sha(readFileSync(path.join(album, 'medium.bin'))), 'the downloaded file has the same SHA-256');
  await page.waitForFunction(() => /Downloaded/.test(document.getElementById('progress-text')?.textContent ?? ''), { timeout: 30_000 });
  await screenshot(page, `${shots}-download-done`);

  await page.goto(links.passwordLink);
  await page.waitForSelector('#password-form:not([hidden])', { timeout: 30_000 });
  await page.type('#password', 'not it');
  await page.click('#password-form button');
  t.equal(await visibleText(page, '#password-error'), 'Wrong password.', 'a wrong password is refused');
  await screenshot(page, `${shots}-password-wrong`);
  await page.$eval('#password', (el) => ((el as HTMLInputElement).value = ''));
  await page.type('#password', 'open sesame');
  await page.click('#password-form button');
  t.match(await visibleText(page, '#preview pre'), /meet at/i, 'the right password opens it');

  const revokedLink = (await veilfs(['share', path.join(album, 'notes.txt')], vault.cli.env)).stdout.trim();
  t.equal((await veilfs(['unshare', /\/s\/([0-9a-f]{32})/.exec(revokedLink)![1], '--mountpoint', vault.mount.mountpoint], vault.cli.env)).code, 0);
  await page.goto(revokedLink);
  t.match(await visibleText(page, '#error'), /revoked by its owner/, 'a revoked link says so');
  await screenshot(page, `${shots}-revoked`);

  await page.goto(links.folderLink.replace(/\/s\/[0-9a-f]{32}/, `/s/${randomBytes(16).toString('hex')}`));
  t.match(await visibleText(page, '#error'), /does not exist/, 'an unknown link says so');
  await page.goto(links.folderLink.slice(0, links.folderLink.indexOf('#')));
  t.match(await visibleText(page, '#error'), /incomplete/, 'a link without its key says so');
  await page.goto('about:blank'); // else only the fragment changes, and the page stays
  await page.goto(`${links.folderLink.slice(0, links.folderLink.indexOf('#'))}#${randomBytes(32).toString('base64url')}`);
  t.match(await visibleText(page, '#error'), /damaged or was altered/, 'a link with another key says so');
}

/** A tampered object: the page shows an error and saves nothing. */
export async function browserTampered(t: Test, vault: SharedVault, fileLink: string): Promise<void> {
  const browser = await launchBrowser(t);
  const page = await browser.newPage();
  const downloads = path.join(vault.dir, 'browser-tampered');
  mkdirSync(downloads, { recursive: true });
  await allowDownloads(page, downloads);
  await page.goto(fileLink);
  await page.waitForSelector('#viewer:not([hidden])', { timeout: 30_000 });
  await page.click('#download');
  t.match(await visibleText(page, '#file-error'), /failed verification/, 'the page reports the tampered data');
  await screenshot(page, `${prefix(vault)}-tampered`);
  await new Promise((r) => setTimeout(r, 1000));
  t.notOk(existsSync(path.join(downloads, 'big.bin')), 'no file saved');
}
