/**
 * ErrorCode is a stable code: the server's (invalid, unauthorized,
 * forbidden, not_found, conflict, clock_skew, out_of_scope, device_revoked,
 * upgrade_required, too_large, internal) or the SDK's own: offline (the
 * server was not reached or its answer was lost) and signed_out.
 */
export type ErrorCode = string;

/** SyncError is what the SDK rejects with; code is stable, message is for people. */
export class SyncError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly status = 0) {
    super(message);
    this.name = "SyncError";
  }
}

