// The browser page of examples/browser-v86 in Debian's Chromium (Playwright): a Web Worker runs
// v86 with Debian's i386 kernel, our NVMe controller is its disk with namespace 1 in OPFS, and the
// guest's ext4 round trip (mkfs, files, remount, md5, e2fsck) finishes; a screenshot is saved.
import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { servePage } from '../../examples/browser-v86/serve.mjs';
import { ext4RoundTrip, SIZES } from '../linux/ext4';
import { skipUnlessCi } from '../util/linux-guest.mjs';
import { V86_CMDLINE, V86_NVME_MODULES, v86GuestFiles, v86GuestSkip } from '../util/v86-guest.mjs';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = v86GuestSkip('Linux in v86 in the browser') ??
  skipUnlessCi('Linux in v86 in the browser', existsSync(chromiumPath) ? null : `${chromiumPath} is missing (apt-get install chromium)`);

it.skipIf(missing !== null)('in Chromium, Linux inside v86 in a worker makes ext4 on our NVMe controller (namespace in OPFS), remounts and verifies it; screenshot saved', async () => {
  const { chromium } = await import('playwright');
  const files = v86GuestFiles({
    modules: V86_NVME_MODULES,
    lines: ['for i in $(seq 1 40); do [ -b /dev/nvme0n1 ] && break; sleep 0.25; done', 'echo "DISK $(cat /sys/block/nvme0n1/size) sectors"', ...ext4RoundTrip('/dev/nvme0n1'), 'echo "VERIFIED"'],
    timeoutMs: 150_000,
  });
  const server = await servePage({ guest: { ...files, cmdline: V86_CMDLINE } });
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(server.url);
    await page.waitForFunction(() => document.body.dataset.exit !== undefined, null, { timeout: 150_000, polling: 500 });
    const text = (await page.textContent('#console')) ?? '';
    const status = (await page.textContent('#status')) ?? '';
    await page.screenshot({ path: 'test/browser/__screenshots__/v86-nvme.png' });
    expect(errors).toEqual([]);
    expect(await page.evaluate(() => document.body.dataset.exit), `${status}\n${text.slice(-4000)}`).toBe('0');
    expect(text).toMatch(/DISK 131072 sectors/);
    for (const n of SIZES) expect(text).toMatch(new RegExp(`SUM [0-9a-f]{32}  f${n}\\b`));
    expect(text).toMatch(/VERIFIED/);
    expect(await page.textContent('#stats')).toMatch(/interrupts [1-9]\d*/);
  } finally {
    await browser.close();
    await server.close();
    files.remove();
  }
}, 180_000);
