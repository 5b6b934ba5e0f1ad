// Types of v86-guest.mjs.
/** The NVMe stack and ext4 with the crypto modules their checksums load on demand. */
export declare const V86_NVME_MODULES: string[];
/** Why Linux cannot run in v86 here (the v86 package, SeaBIOS, cpio, i386 packages from apt), or null. */
export declare function v86GuestMissing(): string | null;
/** v86GuestMissing(), failing under SGRING_REQUIRE_TOOLS=1 and warning (the test skipped) elsewhere. */
export declare function v86GuestSkip(what: string): string | null;
/**
 * Boots Debian's i386 kernel in v86 with an initramfs of `modules` whose script is `lines`;
 * `attach(emulator)` runs after 'emulator-loaded' and before the emulator runs.
 */
export declare function runV86Guest(o: {
    modules: string[];
    lines: string[];
    attach?: (emulator: object) => void;
    timeoutMs?: number;
    memoryMiB?: number;
    /** v86's own emulated IDE disk (hda) with these bytes. */
    ide?: ArrayBuffer;
    onOutput?: (ch: string) => void;
}): Promise<{
    output: string;
    code: number | null;
    ms: number;
}>;
/** The kernel, initramfs (script `lines`) and BIOS files a boot needs; remove() deletes the initramfs. */
export declare function v86GuestFiles(o: { modules: string[]; lines: string[]; timeoutMs?: number }): {
    bzimage: string;
    initrd: string;
    bios: string;
    vgaBios: string;
    remove: () => void;
};
/** The kernel command line the guests boot with. */
export declare const V86_CMDLINE: string;
