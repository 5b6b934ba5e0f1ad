// The browser demo (examples/browser, `npm run demo:browser`) in Debian's Chromium: guest drivers
// on the page, device hosts in workers over one shared memory, a disk in OPFS; the workload runs
// checked, an injector refuses a write and is detached, the downloaded trace holds the devices
// and the fault; a screenshot is saved. Without COOP/COEP the page says what it needs.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { serveStatic } from '../../examples/browser/serve.mjs';
import { summarizeTrace } from '../../src/index';
import { skipUnlessCi } from '../util/linux-guest.mjs';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = skipUnlessCi('the browser demo test', existsSync(chromiumPath) ? null : `${chromiumPath} is missing (apt-get install chromium)`);
const dir = fileURLToPath(new URL('../../examples/browser/', import.meta.url));

it.skipIf(missing !== null)('in Chromium: the workload runs checked, the injector refuses a write and detaches, the trace downloads; without isolation the page says why', async () => {
  const { chromium } = await import('playwright');
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu'] });
  const server = await serveStatic({ dir, isolated: true });
  const plain = await serveStatic({ dir });
  const out = mkdtempSync(join(tmpdir(), 'sgring-demo-browser-'));
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 }, acceptDownloads: true });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(server.url);
    await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.state ?? ''), null, { timeout: 60_000 });
    expect(await page.evaluate(() => document.body.dataset.state), (await page.textContent('#log')) ?? '').toBe('done');
    const rows = await page.$$eval('#counters tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)));
    expect(rows).toEqual([['nvme', '200', String(200 * 16384), '0'], ['storvsc', '400', String(400 * 16384), '0'], ['netvsc', '200', '120000', '0']]);
    await page.click('#inject');
    await page.waitForFunction(() => document.body.dataset.refused !== undefined, null, { timeout: 20_000 });
    expect(await page.evaluate(() => document.body.dataset.refused)).toBe('ReadOnlyMedium');
    await page.click('#detach');
    await page.waitForFunction(() => document.body.dataset.detached === 'yes', null, { timeout: 20_000 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#trace')]);
    const file = join(out, 'trace.pcapng');
    await download.saveAs(file);
    await page.screenshot({ path: 'test/browser/__screenshots__/browser-demo.png' });
    const devices = summarizeTrace(new Uint8Array(readFileSync(file)));
    expect(devices.map((d) => `${d.name} ${d.protocol}`)).toEqual(['storvsp0 iSCSI', 'netvsp0 Ethernet', 'netvsp1 Ethernet', 'nvme0 NVMe/TCP']);
    expect(devices[3]!.commands.get('io Write')?.count).toBe(100);
    const storvsp = devices.find((d) => d.name === 'storvsp0')!;
    expect(storvsp.faults.get('storvsc:io:decode')).toBe(1);
    expect(storvsp.commands.get('WRITE(16)')?.failed).toBe(1);
    expect(errors).toEqual([]);

    const page2 = await browser.newPage();
    await page2.goto(plain.url);
    await page2.waitForFunction(() => document.body.dataset.state === 'not-isolated', null, { timeout: 20_000 });
    expect(await page2.textContent('#state')).toMatch(/Cross-Origin-Opener-Policy: same-origin/);
  } finally {
    await browser.close();
    await server.close();
    await plain.close();
    rmSync(out, { recursive: true, force: true });
  }
}, 120_000);
