// IC version negotiation (spec/vmbus.md §3.4; §6.4 items 23-25). The host offers a list of
// framework versions and a list of message versions; the guest answers with exactly one of each
// (counts 1/1) or with counts 0/0 when it supports none.
//
// How the guest chooses (Linux vmbus_prep_negotiate_resp, restated): the guest walks its own
// list from the highest version down and takes the first one the host also offered with the
// same major AND minor; it does this once for the framework list and once for the message list.
// So the answer is the highest version both sides list, never a version only one side knows.

import {
  IC_NEGOTIATE_COUNTS_SIZE, IC_NEGOTIATE_MAX_COUNT, IC_NEGOTIATE_OFF_FW_COUNT, IC_NEGOTIATE_OFF_MSG_COUNT,
  IC_NEGOTIATE_OFF_VERSIONS, IC_NEGOTIATE_RESPONSE_SIZE, IC_VERSION_SIZE,
} from '../../generated/constants';
import { SgringError } from '../../engine/errors';
import { checkVersion, compareVersions, formatVersion, requireBody, sameVersion, viewOf, type IcVersion } from './framing';

export interface IcNegotiateBody {
  frameworkVersions: IcVersion[];
  messageVersions: IcVersion[];
}

/** The pair a negotiation settled on. */
export interface IcVersions {
  framework: IcVersion;
  message: IcVersion;
}

const v = (major: number, minor = 0): IcVersion => ({ major, minor });

/** The services this module implements, with their defaults. */
export type IcServiceName = 'heartbeat' | 'shutdown' | 'timesync' | 'kvp';

/**
 * What the host offers (OpenVMM hyperv_ic: framework [1.0, 3.0]; shutdown [1.0, 3.0, 3.1, 3.2];
 * KVP [3.0, 4.0, 5.0]; timesync and heartbeat list every version Linux knows).
 */
export const HOST_FRAMEWORK_VERSIONS: readonly IcVersion[] = [v(1), v(3)];
export const HOST_MESSAGE_VERSIONS: Readonly<Record<IcServiceName, readonly IcVersion[]>> = {
  heartbeat: [v(1), v(3)],
  shutdown: [v(1), v(3), v(3, 1), v(3, 2)],
  timesync: [v(1), v(3), v(4)],
  kvp: [v(3), v(4), v(5)],
};

/** What the Linux guest supports (hv_util.c, hv_kvp.c; UTIL_FW_VERSION 3.0, UTIL_WS2K8_FW_VERSION 1.0). */
export const GUEST_FRAMEWORK_VERSIONS: readonly IcVersion[] = [v(3), v(1)];
export const GUEST_MESSAGE_VERSIONS: Readonly<Record<IcServiceName, readonly IcVersion[]>> = {
  heartbeat: [v(3), v(1)],
  shutdown: [v(3, 2), v(3, 1), v(3), v(1)],
  timesync: [v(4), v(3), v(1)],
  kvp: [v(4), v(3), v(1)],
};

export function encodeNegotiateBody(b: IcNegotiateBody): Uint8Array {
  const nf = b.frameworkVersions.length;
  const nm = b.messageVersions.length;
  if (nf > 0xffff || nm > 0xffff) throw new SgringError('InvalidArgument', 'a negotiate list holds at most 65535 versions');
  const out = new Uint8Array(IC_NEGOTIATE_OFF_VERSIONS + (nf + nm) * IC_VERSION_SIZE);
  const d = viewOf(out);
  d.setUint16(IC_NEGOTIATE_OFF_FW_COUNT, nf, true);
  d.setUint16(IC_NEGOTIATE_OFF_MSG_COUNT, nm, true);
  [...b.frameworkVersions, ...b.messageVersions].forEach((ver, i) => {
    checkVersion(ver);
    d.setUint16(IC_NEGOTIATE_OFF_VERSIONS + i * IC_VERSION_SIZE, ver.major, true);
    d.setUint16(IC_NEGOTIATE_OFF_VERSIONS + i * IC_VERSION_SIZE + 2, ver.minor, true);
  });
  return out;
}

/**
 * Decodes a negotiate body with the hardened-Linux checks: the two counts must be present
 * (IcTruncated, §6.4 item 23), each at most 100 (IcBadVersionList, item 24), and the version
 * pairs they imply must all be inside the body (IcBadVersionList, item 25). The loop is bounded
 * by those checked counts (hardening P4). Counts of 0 are legal here (a failure answer).
 */
export function decodeNegotiateBody(body: Uint8Array): IcNegotiateBody {
  requireBody(body, IC_NEGOTIATE_COUNTS_SIZE, 'negotiate');
  const d = viewOf(body);
  const nf = d.getUint16(IC_NEGOTIATE_OFF_FW_COUNT, true);
  const nm = d.getUint16(IC_NEGOTIATE_OFF_MSG_COUNT, true);
  if (nf > IC_NEGOTIATE_MAX_COUNT || nm > IC_NEGOTIATE_MAX_COUNT) {
    throw new SgringError('IcBadVersionList', `negotiate counts ${nf}/${nm} exceed ${IC_NEGOTIATE_MAX_COUNT}`, { frameworkCount: nf, messageCount: nm });
  }
  const need = IC_NEGOTIATE_OFF_VERSIONS + (nf + nm) * IC_VERSION_SIZE;
  if (need > body.length) {
    throw new SgringError('IcBadVersionList', `negotiate counts ${nf}/${nm} need ${need} bytes, the body has ${body.length}`, { frameworkCount: nf, messageCount: nm, length: body.length });
  }
  const read = (i: number): IcVersion => ({
    major: d.getUint16(IC_NEGOTIATE_OFF_VERSIONS + i * IC_VERSION_SIZE, true),
    minor: d.getUint16(IC_NEGOTIATE_OFF_VERSIONS + i * IC_VERSION_SIZE + 2, true),
  });
  const versions = Array.from({ length: nf + nm }, (_, i) => read(i));
  return { frameworkVersions: versions.slice(0, nf), messageVersions: versions.slice(nf) };
}

/**
 * The highest version in `ours` that `offered` also lists (exact major and minor), or null.
 * `ours` may be in any order; it is sorted highest first, as Linux requires of its lists.
 */
export function pickVersion(offered: readonly IcVersion[], ours: readonly IcVersion[]): IcVersion | null {
  const sorted = [...ours].sort((a, b) => compareVersions(b, a));
  for (const mine of sorted) if (offered.some((o) => sameVersion(o, mine))) return { ...mine };
  return null;
}

/** The guest's choice for an offer, or null when either list has no common version. */
export function chooseVersions(offer: IcNegotiateBody, framework: readonly IcVersion[], message: readonly IcVersion[]): IcVersions | null {
  const fw = pickVersion(offer.frameworkVersions, framework);
  const msg = fw && pickVersion(offer.messageVersions, message);
  return fw && msg ? { framework: fw, message: msg } : null;
}

/** The guest's answer body: counts 1/1 and the pair, or counts 0/0 (and zero versions) on failure. */
export function encodeNegotiateResponse(chosen: IcVersions | null): Uint8Array {
  const out = encodeNegotiateBody(chosen ? { frameworkVersions: [chosen.framework], messageVersions: [chosen.message] } : { frameworkVersions: [], messageVersions: [] });
  if (out.length >= IC_NEGOTIATE_RESPONSE_SIZE) return out;
  const padded = new Uint8Array(IC_NEGOTIATE_RESPONSE_SIZE);
  padded.set(out);
  return padded;
}

/**
 * The host's check of the guest's answer (OpenVMM hyperv_ic common.rs, plus membership):
 * exactly one framework and one message version, each one the host offered. Throws
 * IcNegotiationFailed (with the reason) otherwise; decode errors propagate as they are.
 */
export function checkNegotiateResponse(body: Uint8Array, offered: IcNegotiateBody): IcVersions {
  const r = decodeNegotiateBody(body);
  if (r.frameworkVersions.length !== 1 || r.messageVersions.length !== 1) {
    throw new SgringError('IcNegotiationFailed', `the guest answered with ${r.frameworkVersions.length} framework and ${r.messageVersions.length} message versions (no common version)`, {
      frameworkCount: r.frameworkVersions.length, messageCount: r.messageVersions.length,
    });
  }
  const fw = r.frameworkVersions[0]!;
  const msg = r.messageVersions[0]!;
  if (!offered.frameworkVersions.some((o) => sameVersion(o, fw))) {
    throw new SgringError('IcNegotiationFailed', `the guest chose framework ${formatVersion(fw)}, which was not offered`, { framework: fw });
  }
  if (!offered.messageVersions.some((o) => sameVersion(o, msg))) {
    throw new SgringError('IcNegotiationFailed', `the guest chose message version ${formatVersion(msg)}, which was not offered`, { message: msg });
  }
  return { framework: fw, message: msg };
}
