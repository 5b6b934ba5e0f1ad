// Debian tools some tests drive (tshark, libiscsi-bin). On a machine with only Node and npm the
// tests that need one say so and do not run; under .ci/run (SGRING_REQUIRE_TOOLS=1), which
// installs them, a missing tool fails the file instead, so CI never passes by skipping.
import { spawnSync } from 'node:child_process';

export function haveTool(command: string, args: string[], pkg: string, what: string): boolean {
  if (spawnSync(command, args).status === 0) return true;
  if (process.env.SGRING_REQUIRE_TOOLS === '1') throw new Error(`${command} is missing (package ${pkg}) and SGRING_REQUIRE_TOOLS=1: ${what} must run here`);
  console.warn(`${command} is not installed (apt-get install ${pkg}): ${what} skipped here; CI installs it and requires it`);
  return false;
}
