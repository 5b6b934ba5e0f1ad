// The VSTOR wire format byte by byte: every field at the offset of the Linux and FreeBSD structs
// (vstor_packet 64 bytes, 48 before Win8; vmscsi_request 52 bytes at offset 12, 36 before Win8;
// channel properties 24 bytes), and the guest's clamps on what a host replies (hardening §3.5).
import { describe, expect, it } from 'vitest';
import {
  decodeCompleteIo, decodeExecuteSrb, decodeProperties, decodeProtocolVersion, decodeSubChannelCount, decodeVstorHeader,
  encodeCompleteIo, encodeCreateSubChannels, encodeExecuteSrb, encodeProperties, encodeQueryProtocolVersion, encodeVstor,
  SRB_DIRECTION, SRB_STATUS, VSTOR_OP, VSTOR_VERSION, vstorPacketBytes, type SrbRequest,
} from '../../src/index';
import { expectCode } from '../util/errors';

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const read10 = Uint8Array.of(0x28, 0, 0x00, 0x01, 0x02, 0x03, 0, 0x00, 0x08, 0);
const req: SrbRequest = { port: 1, path: 0, target: 2, lun: 3, cdb: read10, direction: SRB_DIRECTION.read, dataTransferLength: 4096 };

describe('VSTOR wire format', () => {
  it('operation numbers and versions are the protocol\'s', () => {
    expect(VSTOR_OP).toMatchObject({ completeIo: 1, executeSrb: 3, beginInitialization: 7, endInitialization: 8, queryProtocolVersion: 9, queryProperties: 10, createSubChannels: 13 });
    expect(Object.values(VSTOR_VERSION)).toEqual([0x0200, 0x0402, 0x0501, 0x0600, 0x0602]);
    expect([VSTOR_VERSION.win6, VSTOR_VERSION.win7, VSTOR_VERSION.win8, VSTOR_VERSION.win10].map(vstorPacketBytes)).toEqual([48, 48, 64, 64]);
  });

  it('EXECUTE_SRB (Win8+): 64 bytes, the SRB at 12, CDB at 28, the Win8 extension at 48..63', () => {
    const b = encodeExecuteSrb(req);
    expect(b.length).toBe(64);
    expect(hex(b)).toBe(
      '03000000' + '01000000' + '00000000' // operation EXECUTE_SRB, flags REQUEST_COMPLETION, status
      + '3400' + '00' + '00' // SRB length 52, srb_status, scsi_status
      + '01' + '00' + '02' + '03' // port, path, target, lun
      + '0a' + '14' + '01' + '00' // cdb_length 10, sense_info_length 20, data_in read, reserved
      + '00100000' // data_transfer_length 4096
      + hex(read10) + '000000000000' + '00000000' // CDB padded to 16, then the rest of the 20-byte union
      + '0000' + 'ff' + '20' // reserve, queue_tag untagged, queue_action simple
      + '4a000000' // srb_flags: queue action enable | disable sync transfer | data in
      + '3c000000' // time_out_value 60
      + '00000000', // queue_sort_key
    );
    expect(decodeExecuteSrb(b)).toEqual({ ...req, senseInfoLength: 20, queueTag: 0xff, queueAction: 0x20, srbFlags: 0x4a, timeoutSeconds: 60 });
  });

  it('EXECUTE_SRB before Win8: 48 bytes, SRB length 36, 18 bytes of sense, no extension', () => {
    const b = encodeExecuteSrb({ ...req, direction: SRB_DIRECTION.write }, VSTOR_VERSION.win7);
    expect(b.length).toBe(48);
    expect([b[12], b[13], b[21], b[22]]).toEqual([36, 0, 18, 0]);
    expect(decodeExecuteSrb(b, VSTOR_VERSION.win7)).toEqual({ ...req, direction: 0, senseInfoLength: 18 });
  });

  it('COMPLETE_IO: statuses at 14/15, bytes moved at 24, sense at 28 with autosense-valid; the guest reads it back', () => {
    const sense = new Uint8Array(18);
    sense[0] = 0x70; sense[2] = 0x05; sense[7] = 10; sense[12] = 0x21;
    const b = encodeCompleteIo(req, { srbStatus: SRB_STATUS.error, scsiStatus: 0x02, dataTransferLength: 0, sense });
    expect(b.length).toBe(64);
    expect(hex(b.subarray(0, 28))).toBe('01000000' + '00000000' + '00000000' + '3400' + '84' + '02' + '01000203' + '0012' + '0100' + '00000000');
    expect(hex(b.subarray(28, 46))).toBe(hex(sense));
    const r = decodeCompleteIo(b, 4096);
    expect([r.operation, r.srbStatus & 0x3f, r.scsiStatus, r.dataTransferLength, hex(r.sense)]).toEqual([1, SRB_STATUS.error, 2, 0, hex(sense)]);
  });

  it('QUERY_PROTOCOL_VERSION, QUERY_PROPERTIES and CREATE_SUB_CHANNELS members at offset 12', () => {
    const v = encodeQueryProtocolVersion(VSTOR_VERSION.win10);
    expect(hex(v.subarray(0, 16))).toBe('09000000' + '01000000' + '00000000' + '0206' + '0000');
    expect(decodeProtocolVersion(v)).toBe(0x0602);
    expect(encodeQueryProtocolVersion(VSTOR_VERSION.win7).length).toBe(48);
    const p = encodeProperties({ maxChannels: 4, multiChannel: true, maxTransferBytes: 0x200000 });
    expect(hex(p.subarray(12, 36))).toBe('00000000' + '0400' + '0000' + '01000000' + '00002000' + '0000000000000000');
    expect(decodeProperties(p)).toEqual({ maxChannels: 4, multiChannel: true, maxTransferBytes: 0x200000 });
    const s = encodeCreateSubChannels(3);
    expect([decodeVstorHeader(s).operation, s[12], s[13], decodeSubChannelCount(s)]).toEqual([13, 3, 0, 3]);
    expect(hex(encodeVstor({ operation: VSTOR_OP.beginInitialization }).bytes.subarray(0, 12))).toBe('07000000' + '01000000' + '00000000');
  });

  it('[H34] a reply sense_info_length above 20 is clamped to 20', () => {
    const b = encodeCompleteIo(req, { srbStatus: SRB_STATUS.error, scsiStatus: 0x02, dataTransferLength: 0, sense: new Uint8Array(20).fill(0x70) });
    b[21] = 200;
    expect(decodeCompleteIo(b, 4096).sense.length).toBe(20);
  });

  it('[H35] sense is taken only with CHECK CONDITION and autosense-valid', () => {
    const b = encodeCompleteIo(req, { srbStatus: SRB_STATUS.error, scsiStatus: 0x02, dataTransferLength: 0, sense: new Uint8Array(18).fill(0x70) });
    b[14] = SRB_STATUS.error; // autosense-valid cleared
    expect(decodeCompleteIo(b, 4096).sense.length).toBe(0);
    b[14] = SRB_STATUS.error | SRB_STATUS.autosenseValid;
    b[15] = 0x08; // BUSY, not CHECK CONDITION
    expect(decodeCompleteIo(b, 4096).sense.length).toBe(0);
  });

  it('[H36] a reply data_transfer_length above the request is clamped to the request', () => {
    const b = encodeCompleteIo(req, { srbStatus: SRB_STATUS.success, scsiStatus: 0, dataTransferLength: 0xffffffff, sense: new Uint8Array(0) });
    expect(decodeCompleteIo(b, 4096).dataTransferLength).toBe(4096);
  });

  it('[H37] an SRB failure other than DATA OVERRUN moves nothing; DATA OVERRUN keeps its count', () => {
    const fail = encodeCompleteIo(req, { srbStatus: SRB_STATUS.error, scsiStatus: 0, dataTransferLength: 2048, sense: new Uint8Array(0) });
    expect(decodeCompleteIo(fail, 4096).dataTransferLength).toBe(0);
    const over = encodeCompleteIo(req, { srbStatus: SRB_STATUS.dataOverrun, scsiStatus: 0, dataTransferLength: 2048, sense: new Uint8Array(0) });
    expect(decodeCompleteIo(over, 4096).dataTransferLength).toBe(2048);
  });

  it('[H41] the host\'s max_transfer_bytes is rounded down to a 4 KiB multiple', () => {
    expect(decodeProperties(encodeProperties({ maxChannels: 1, multiChannel: false, maxTransferBytes: 0x80001234 })).maxTransferBytes).toBe(0x80001000);
  });

  it('the host refuses SRBs it cannot read; short packets are typed errors', () => {
    const b = encodeExecuteSrb(req);
    expect(decodeExecuteSrb(b.subarray(0, 60))).toMatchObject({ invalid: expect.stringContaining('60 bytes') });
    const c = b.slice(); c[20] = 17; // cdb_length above 16
    expect(decodeExecuteSrb(c)).toMatchObject({ invalid: 'CDB length 17' });
    const d = b.slice(); d[22] = 3; // data_in neither write, read nor none
    expect(decodeExecuteSrb(d)).toMatchObject({ invalid: 'data_in 3' });
    const e = b.slice(); e[12] = 40; // SRB length neither 52 nor 36
    expect(decodeExecuteSrb(e)).toMatchObject({ invalid: 'SRB length 40' });
    expectCode(() => decodeCompleteIo(b.subarray(0, 40), 4096), 'MessageTooShort');
    expectCode(() => decodeVstorHeader(b.subarray(0, 8)), 'MessageTooShort');
    expectCode(() => encodeExecuteSrb({ ...req, cdb: new Uint8Array(17) }), 'InvalidArgument');
  });
});
