// GUIDs in Windows binary form (spec/vmbus.md §3.4).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { classGuid, DEVICE_CLASSES, deviceClassOf, guidToBytes, instanceGuid, normalizeGuid, readGuid } from '../../src/index';
import { check } from '../util/fc';
import { expectCode, hex } from './helpers';

describe('GUIDs (spec §3.4)', () => {
  it('the SCSI class GUID has the bytes of the spec example', () => {
    expect(hex(guidToBytes(DEVICE_CLASSES.storage))).toBe('d96361baa104294db60572e2ffb1dc7f');
    expect(readGuid(Uint8Array.from([0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f])))
      .toBe('ba6163d9-04a1-4d29-b605-72e2ffb1dc7f');
  });

  it('every class of the spec table maps to its name and back', () => {
    const want = {
      storage: 'ba6163d9-04a1-4d29-b605-72e2ffb1dc7f', network: 'f8615163-df3e-46c5-913f-f2d2f965ed0e',
      heartbeat: '57164f39-9115-4e78-ab55-382f3bd5422d', shutdown: '0e0b6031-5213-4934-818b-38d90ced39db',
      timesync: '9527e630-d0ae-497b-adce-e80ab0175caf', kvp: 'a9a0f4e7-5a45-4d96-b827-8a841e8c03e6',
    } as const;
    for (const [name, g] of Object.entries(want)) {
      expect(classGuid(name as keyof typeof want)).toBe(g);
      expect(deviceClassOf(g)).toBe(name);
    }
    expect(deviceClassOf('00000000-0000-0000-0000-000000000001')).toBe('unknown');
    expect(new Set(Object.values(DEVICE_CLASSES)).size).toBe(Object.keys(DEVICE_CLASSES).length);
  });

  it('parses braces and upper case, refuses anything else', () => {
    expect(normalizeGuid('{BA6163D9-04A1-4D29-B605-72E2FFB1DC7F}')).toBe(DEVICE_CLASSES.storage);
    for (const bad of ['', 'ba6163d904a14d29b60572e2ffb1dc7f', 'ba6163d9-04a1-4d29-b605-72e2ffb1dc7', 'xa6163d9-04a1-4d29-b605-72e2ffb1dc7f']) {
      expectCode(() => normalizeGuid(bad), 'InvalidArgument');
    }
    expectCode(() => readGuid(new Uint8Array(20), 5), 'InvalidArgument');
  });

  it('property: any 16 bytes read as a GUID write back to the same bytes', () => {
    check(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
      expect(guidToBytes(readGuid(b))).toEqual(b);
    }));
  });

  it('instance GUIDs from seeds are stable, distinct and version 4', () => {
    const gs = Array.from({ length: 1000 }, (_, i) => instanceGuid(i));
    expect(new Set(gs).size).toBe(1000);
    expect(instanceGuid(7)).toBe(instanceGuid(7));
    for (const g of gs) expect(g).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
