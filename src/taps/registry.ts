// The tap registry: devices declare their pipeline stages ("module:component:stage", spec/nvme.md
// §7.2) once and get a StagePoint per stage; tests and tools attach taps to an exact name or a
// pattern with `*` per component. A stage with nothing attached costs the device one branch
// (`point.taps === null`). Taps on one stage run in attach order; attach and detach may happen
// while requests are in flight: a detached tap is never called again, not even for the rest of
// a request it already saw.

import { SgringError } from '../engine/errors';
import { EventContext, type TapContext, type TapEvent, type TapOutcome } from './context';
import type { TraceEncoder } from '../trace/encoder';

/** A tap: called once per event at every stage it is attached to. May return a promise (= ctx.delay(promise)). */
export type Tap = ((ctx: TapContext) => void | PromiseLike<unknown>) & { tapName?: string };

export interface StageSpec {
  /** "module:component:stage", e.g. 'nvme:io:decode'. */
  name: string;
  /** What the stage sees, for taps.stages(). */
  description?: string;
}

/** The device's handle on one of its stages. */
export interface StagePoint {
  readonly name: string;
  readonly device: string;
  /** The taps attached here in attach order, or null: the device's one branch. */
  taps: AttachedTap[] | null;
  /** How trace taps turn this device's events into frames. */
  readonly encoder: TraceEncoder | undefined;
}

/** @internal */
export interface AttachedTap {
  readonly tap: Tap;
  readonly name: string;
  readonly handle: TapHandle;
}

export interface TapHandle {
  readonly name: string;
  readonly pattern: string;
  /** Stages the tap is on now (it also joins matching stages declared later). */
  readonly stages: string[];
  readonly detached: boolean;
  detach(): void;
}

export interface StageInfo {
  device: string;
  name: string;
  description: string;
  /** Names of the taps attached, in order. */
  taps: string[];
}

export interface TapCounters {
  /** Events that reached at least one tap. */
  events: number;
  /** Taps that threw (each failed only its own request). */
  tapErrors: number;
  completed: number;
  dropped: number;
  delayed: number;
}

const STAGE = /^[a-z0-9_-]+:[a-z0-9_-]+:[a-z0-9_-]+$/;
const PATTERN = /^([a-z0-9_-]+|\*):([a-z0-9_-]+|\*):([a-z0-9_-]+|\*)$/;

function matches(pattern: string, stage: string): boolean {
  const p = pattern.split(':');
  const s = stage.split(':');
  return p.every((c, i) => c === '*' || c === s[i]);
}

interface Attachment {
  pattern: string;
  device: string | undefined;
  entry: AttachedTap;
  points: StagePoint[];
}

export class TapRegistry {
  private readonly points: StagePoint[] = [];
  private readonly descriptions = new Map<StagePoint, string>();
  private readonly attachments: Attachment[] = [];
  private anonymous = 0;
  readonly counters: TapCounters = { events: 0, tapErrors: 0, completed: 0, dropped: 0, delayed: 0 };

  /**
   * Declares a device instance's stages; returns one StagePoint per spec, in order. Taps whose
   * pattern matches join at once. A device name may be declared once.
   */
  declare(device: string, stages: readonly StageSpec[], opts: { encoder?: TraceEncoder } = {}): StagePoint[] {
    if (typeof device !== 'string' || device === '') throw new SgringError('InvalidArgument', 'declare: the device instance needs a name');
    if (this.points.some((p) => p.device === device)) throw new SgringError('InvalidArgument', `declare: device '${device}' has declared its stages already`);
    return stages.map((spec) => {
      if (!STAGE.test(spec?.name ?? '')) throw new SgringError('InvalidArgument', `stage '${String(spec?.name)}' is not "module:component:stage" (lower case, digits, - and _)`);
      const point: StagePoint = { name: spec.name, device, taps: null, encoder: opts.encoder };
      this.points.push(point);
      this.descriptions.set(point, spec.description ?? '');
      for (const a of this.attachments) if (this.fits(a, point)) this.join(a, point);
      return point;
    });
  }

  /** Forgets a device's stages (a device that is removed); its taps stay attached to other stages. */
  undeclare(device: string): void {
    for (let i = this.points.length - 1; i >= 0; i--) {
      const p = this.points[i]!;
      if (p.device !== device) continue;
      this.points.splice(i, 1);
      this.descriptions.delete(p);
      for (const a of this.attachments) a.points = a.points.filter((q) => q !== p);
    }
  }

  /**
   * Attaches `tap` at every stage `pattern` names, now and when devices declare them later:
   * an exact name ('nvme:io:decode') or `*` for any component ('nvme:*:writeback', '*:*:*').
   * `device` limits it to one device instance. Several taps on a stage run in attach order.
   */
  attach(pattern: string, tap: Tap, opts: { name?: string; device?: string } = {}): TapHandle {
    if (typeof pattern !== 'string' || !PATTERN.test(pattern)) {
      throw new SgringError('InvalidArgument', `tap pattern '${String(pattern)}' is not "module:component:stage" with * for any component`);
    }
    if (typeof tap !== 'function') throw new SgringError('InvalidArgument', 'attach: the tap must be a function of its context');
    const name = opts.name ?? tap.tapName ?? (tap.name || `tap${++this.anonymous}`);
    const a: Attachment = { pattern, device: opts.device, entry: undefined as unknown as AttachedTap, points: [] };
    let detached = false;
    const handle: TapHandle = {
      name,
      pattern,
      get stages() {
        return a.points.map((p) => `${p.device}/${p.name}`);
      },
      get detached() {
        return detached;
      },
      detach: () => {
        if (detached) return;
        detached = true;
        for (const p of a.points) {
          const rest = p.taps!.filter((t) => t !== a.entry);
          p.taps = rest.length > 0 ? rest : null; // a fresh array: a dispatch in progress keeps its own
        }
        a.points = [];
        this.attachments.splice(this.attachments.indexOf(a), 1);
      },
    };
    a.entry = { tap, name, handle };
    this.attachments.push(a);
    for (const p of this.points) if (this.fits(a, p)) this.join(a, p);
    return handle;
  }

  /** The stages devices offer, with the taps on each. */
  stages(): StageInfo[] {
    return this.points.map((p) => ({ device: p.device, name: p.name, description: this.descriptions.get(p) ?? '', taps: (p.taps ?? []).map((t) => t.name) }));
  }

  /**
   * Runs the taps of `point` on one event and returns what they decided. Call it only when
   * `point.taps !== null`. A tap that throws ends the taps of this event: the outcome carries a
   * TapFailed error naming it (the device fails this request with it), and the count goes up.
   */
  run(point: StagePoint, event: TapEvent): TapOutcome & { context: EventContext } {
    const ctx = new EventContext(point.name, event, point.encoder);
    const taps = point.taps;
    if (taps === null) return Object.assign(ctx.outcome, { context: ctx });
    this.counters.events++;
    for (const t of taps) {
      if (t.handle.detached) continue; // detached while an earlier tap of this event ran
      try {
        const r = t.tap(ctx);
        if (r !== undefined && r !== null && typeof (r as PromiseLike<unknown>).then === 'function') ctx.delay(r as PromiseLike<unknown>);
      } catch (e) {
        this.counters.tapErrors++;
        ctx.outcome.error = new SgringError('TapFailed', `tap '${t.name}' at ${point.device}/${point.name} threw: ${e instanceof Error ? e.message : String(e)}`,
          { tap: t.name, stage: point.name, device: point.device, cause: e });
        break;
      }
      if (ctx.outcome.action === 'drop') break;
    }
    ctx.runAfter();
    if (ctx.outcome.action === 'complete') this.counters.completed++;
    if (ctx.outcome.action === 'drop') this.counters.dropped++;
    if (ctx.outcome.wait !== null) this.counters.delayed++;
    return Object.assign(ctx.outcome, { context: ctx });
  }

  private fits(a: Attachment, p: StagePoint): boolean {
    return (a.device === undefined || a.device === p.device) && matches(a.pattern, p.name);
  }

  private join(a: Attachment, p: StagePoint): void {
    a.points.push(p);
    p.taps = [...(p.taps ?? []), a.entry];
  }
}
