import { STATUS, type StatusName } from '../generated/constants';

export type SgringErrorCode = StatusName;

/**
 * The one error type sgring throws. `code` names the failure (the same names the engines use
 * as negative status codes); `status` is that numeric code; `broken` says whether the ring or
 * channel it came from is now marked broken (checklist behaviour B) and must be reset.
 */
export class SgringError extends Error {
  readonly code: SgringErrorCode;
  readonly status: number;
  readonly broken: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: SgringErrorCode, message?: string, details?: Record<string, unknown>) {
    const entry = Object.entries(STATUS).find(([, s]) => s.name === code);
    const status = entry ? Number(entry[0]) : 0;
    super(message ?? (entry ? entry[1].message : code));
    this.name = 'SgringError';
    this.code = code;
    this.status = status;
    this.broken = entry ? entry[1].breaks : false;
    this.details = details;
  }

  /** Builds the error for a negative engine status. */
  static fromStatus(status: number, context?: string, details?: Record<string, unknown>): SgringError {
    const s = STATUS[status];
    if (!s) return new SgringError('InvalidArgument', `unknown engine status ${status}${context ? ` (${context})` : ''}`, details);
    return new SgringError(s.name as SgringErrorCode, context ? `${context}: ${s.message}` : s.message, details);
  }
}
