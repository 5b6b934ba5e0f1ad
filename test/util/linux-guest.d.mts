// Types of linux-guest.mjs.
export interface LinuxKernel {
    vmlinuz: string;
    /** The extracted package root (lib/modules/VERSION inside). */
    root: string;
    version: string;
}
/** Why a Linux guest cannot run here (qemu, busybox-static, cpio, apt missing), or null. */
export declare function linuxGuestMissing(): string | null;
/** linuxGuestMissing(), failing under SGRING_REQUIRE_TOOLS=1 and warning (the test skipped) elsewhere. */
export declare function linuxGuestSkip(what: string): string | null;
/** The rule for a test whose tool is `missing` (a reason, or null): fail under SGRING_REQUIRE_TOOLS=1, else skip saying why. */
export declare function skipUnlessCi(what: string, missing: string | null): string | null;
/** Debian's kernel (the package `meta` depends on: linux-image-amd64 by default), fetched and unpacked once into `cache`. */
export declare function prepareKernel(cache?: string, meta?: string): LinuxKernel;
/** Debian packages fetched and unpacked once into `cache`/`name` (for guest binaries the host does not have installed). */
export declare function preparePackages(name: string, pkgs: string[], cache?: string): string;
/** A guest binary: a host path, or a path inside an unpacked package tree (preparePackages). */
export type GuestBinary = string | {
    root: string;
    path: string;
};
/**
 * An initramfs: busybox, the modules (loaded in order by /init), host `binaries` (such as
 * /sbin/mke2fs) with their libraries at the same paths, and /script.sh, whose exit code /init
 * prints after "SGRING-EXIT".
 */
export declare function initramfs(k: LinuxKernel, modules: string[], script: string, binaries?: GuestBinary[], o?: {
    /** The busybox to use (default the host's /bin/busybox). */
    busybox?: string;
    /** More files: [guest path, host file]. */
    files?: [string, string][];
}): {
    path: string;
    remove: () => void;
};
/**
 * Boots `k` with `initrd` under QEMU (TCG, 256 MiB, serial console on stdout) plus `args`, while
 * `tick` runs between event-loop turns (the Node side of the devices). Resolves with the console
 * output and the script's exit code (null when the marker never came: a crash or the timeout).
 */
export declare function bootLinux(k: LinuxKernel, initrd: string, args: string[], o: {
    timeoutMs: number;
    tick?: () => void;
}): Promise<{
    output: string;
    code: number | null;
}>;
/** Boots the kernel with `lines` as the script (after a watchdog that prints the kernel log, before `exit 0`). */
export declare function runGuest(o: {
    modules: string[];
    lines: string[];
    args?: string[];
    binaries?: GuestBinary[];
    timeoutMs?: number;
    tick?: () => void;
}): Promise<{
    output: string;
    code: number | null;
}>;
