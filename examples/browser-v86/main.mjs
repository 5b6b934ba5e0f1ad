// The page's side: starts the worker that runs v86 with our NVMe controller, shows the guest's
// serial console and the device's counters, and marks the page done when the guest's script ends.
const consoleEl = document.getElementById('console');
const statusEl = document.getElementById('status');
const statsEl = document.getElementById('stats');
const worker = new Worker(new URL('./worker.mjs', import.meta.url), { type: 'module' });
let text = '';
worker.onmessage = ({ data }) => {
  if (data.serial) {
    text += data.serial;
    consoleEl.textContent = text;
    consoleEl.scrollTop = consoleEl.scrollHeight;
    const exit = /SGRING-EXIT (\d+)/.exec(text);
    if (exit) {
      statusEl.textContent = exit[1] === '0' ? 'the guest verified its files: done' : `the guest's script failed (exit ${exit[1]})`;
      statusEl.className = exit[1] === '0' ? 'done' : 'failed';
      document.body.dataset.exit = exit[1];
    }
  }
  if (data.status) statusEl.textContent = data.status;
  if (data.stats) statsEl.textContent = `NVMe BAR0 reads ${data.stats.mmioReads}, writes ${data.stats.mmioWrites}, interrupts ${data.stats.irqRaised}`;
  if (data.error) {
    statusEl.textContent = data.error;
    statusEl.className = 'failed';
    document.body.dataset.exit = 'error';
  }
};
worker.postMessage({ diskMiB: 64 });
