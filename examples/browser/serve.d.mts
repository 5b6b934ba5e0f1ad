// Types of serve.mjs.
export declare function serveStatic(o: {
    dir: string;
    files?: Record<string, string | (() => string)>;
    isolated?: boolean;
    port?: number;
}): Promise<{ url: string; close: () => Promise<void> }>;
