// Types of serve.mjs.
export declare function servePage(o: {
    guest: { bzimage: string; initrd: string; bios?: string; vgaBios?: string; cmdline?: string };
    port?: number;
}): Promise<{ url: string; close: () => Promise<void> }>;
