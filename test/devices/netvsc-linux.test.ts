// netvsc against the Linux kernel's own network stack: a network namespace with a TAP device
// (10.77.0.1/24, no packet-information prefix) that Debian's socat bridges to UDP, one frame
// per datagram; the switch's UdpUplink is the other end. The guest's ARP request and ICMP echo
// requests are answered by the kernel, and the answers come back through netvsp into the guest.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { haveTool } from '../util/tools';

/** Root with network namespaces and /dev/net/tun: what the test needs of the machine. */
function canNamespace(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  const r = spawnSync('ip', ['netns', 'add', 'sgring-probe']);
  if (r.status !== 0) return `ip netns add failed: ${String(r.stderr).trim() || r.error}`;
  spawnSync('ip', ['netns', 'del', 'sgring-probe']);
  return null;
}

const socat = haveTool('socat', ['-V'], 'socat', 'the Linux network stack test');
const why = canNamespace();
if (why) console.warn(`the Linux network stack test is skipped: ${why} (it needs root, network namespaces and /dev/net/tun)`);

it.skipIf(!socat || why !== null)('a guest ARPs for the TAP address and pings it: the Linux kernel answers through the switch uplink', async () => {
  const ns = `sgring${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  const inNs = (...cmd: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8' });
  // No IPv6 in the namespace: the kernel then sends nothing on its own (router solicitations)
  // before our end of the bridge exists, which would make socat's socket fail and socat quit.
  inNs('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
  inNs('ip', 'link', 'set', 'lo', 'up'); // before socat binds 127.0.0.1 there
  const bridge = spawn('ip', ['netns', 'exec', ns, 'socat', '-b', '65536', 'TUN:10.77.0.1/24,tun-type=tap,iff-no-pi,iff-up,tun-name=sgtap0', 'UDP-DATAGRAM:127.0.0.1:40770,bind=127.0.0.1:40771'], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100 && !/UP/.test(spawnSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'show', 'sgtap0'], { encoding: 'utf8' }).stdout ?? ''); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const tapMac = inNs('cat', '/sys/class/net/sgtap0/address').trim();
    const script = fileURLToPath(new URL('./workers/netns-ping.mjs', import.meta.url));
    const out = inNs(process.execPath, script, JSON.stringify({ uplinkPort: 40770, tapPort: 40771 }));
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(r.kernelMac).toBe(tapMac); // the kernel's ARP reply carried the TAP's own address
    expect(r.replies).toEqual([1, 2, 3].map((seq) => ({ seq, icmpOk: true, payloadOk: true })));
    expect(r.dev.badRndis + r.nic.rxBadRndis + r.nic.rxBadRanges).toBe(0);
  } finally {
    bridge.kill();
    spawnSync('ip', ['netns', 'del', ns]);
  }
}, 30_000);
