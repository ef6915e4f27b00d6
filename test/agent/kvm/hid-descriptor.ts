// A small HID report-descriptor parser, as a host's HID driver reads one (HID 1.11 §6.2.2): it
// walks the short items, keeps the global and local state, and lays out every Input and Output
// main item as a field at a bit offset, so a test can check our descriptors say what the encoder
// writes. Only what a report layout needs: no long items, no push/pop, no report IDs.

export interface Field {
  kind: 'input' | 'output' | 'feature';
  /** Bit offset of the field's first value in its report. */
  bit: number;
  size: number;
  count: number;
  constant: boolean;
  variable: boolean;
  relative: boolean;
  logicalMin: number;
  logicalMax: number;
  /** Variable fields: the usage of each value ((page << 16) | id). Array fields: the usage range. */
  usages: number[];
  usageMin: number | null;
  usageMax: number | null;
}

export interface Layout {
  fields: Field[];
  /** Report size in bits, per kind. */
  bits: Record<Field['kind'], number>;
  reportIds: number[];
}

function unsigned(data: Uint8Array): number {
  let v = 0;
  for (let i = data.length - 1; i >= 0; i--) v = v * 256 + data[i]!;
  return v;
}

/** Logical and physical extents are signed, in the width of their data. */
function signed(data: Uint8Array): number {
  const v = unsigned(data);
  const bits = data.length * 8;
  return data.length > 0 && v >= 2 ** (bits - 1) ? v - 2 ** bits : v;
}

export function parseDescriptor(d: Uint8Array): Layout {
  const fields: Field[] = [];
  const bits = { input: 0, output: 0, feature: 0 };
  const reportIds: number[] = [];
  let page = 0;
  let logicalMin = 0;
  let logicalMax = 0;
  let reportSize = 0;
  let reportCount = 0;
  let usages: number[] = [];
  let usageMin: number | null = null;
  let usageMax: number | null = null;
  let depth = 0;
  const full = (data: Uint8Array) => (data.length === 4 ? unsigned(data) : page * 0x10000 + unsigned(data));

  for (let i = 0; i < d.length; ) {
    const prefix = d[i]!;
    if (prefix === 0xfe) throw new Error(`long item at ${i}`);
    const size = [0, 1, 2, 4][prefix & 3]!;
    const type = (prefix >> 2) & 3;
    const tag = prefix >> 4;
    if (i + 1 + size > d.length) throw new Error(`item at ${i} runs past the end`);
    const data = d.subarray(i + 1, i + 1 + size);
    i += 1 + size;
    if (type === 0) {
      // Main
      if (tag === 0x8 || tag === 0x9 || tag === 0xb) {
        const kind = tag === 0x8 ? 'input' : tag === 0x9 ? 'output' : 'feature';
        const flags = unsigned(data);
        const variable = (flags & 2) !== 0;
        let fieldUsages = usages;
        if (variable && usageMin !== null && usageMax !== null) {
          fieldUsages = [];
          for (let u = usageMin; u <= usageMax; u++) fieldUsages.push(u);
        }
        fields.push({
          kind,
          bit: bits[kind],
          size: reportSize,
          count: reportCount,
          constant: (flags & 1) !== 0,
          variable,
          relative: (flags & 4) !== 0,
          logicalMin,
          logicalMax,
          usages: fieldUsages,
          usageMin,
          usageMax,
        });
        bits[kind] += reportSize * reportCount;
      } else if (tag === 0xa) depth++;
      else if (tag === 0xc) {
        if (--depth < 0) throw new Error('End Collection without a Collection');
      } else throw new Error(`unknown main item ${prefix.toString(16)}`);
      usages = [];
      usageMin = usageMax = null;
    } else if (type === 1) {
      // Global
      if (tag === 0x0) page = unsigned(data);
      else if (tag === 0x1) logicalMin = signed(data);
      else if (tag === 0x2) logicalMax = signed(data);
      else if (tag === 0x7) reportSize = unsigned(data);
      else if (tag === 0x8) reportIds.push(unsigned(data));
      else if (tag === 0x9) reportCount = unsigned(data);
      else if (tag !== 0x3 && tag !== 0x4 && tag !== 0x5 && tag !== 0x6) throw new Error(`unsupported global item ${prefix.toString(16)}`);
    } else if (type === 2) {
      // Local
      if (tag === 0x0) usages.push(full(data));
      else if (tag === 0x1) usageMin = full(data);
      else if (tag === 0x2) usageMax = full(data);
      else throw new Error(`unsupported local item ${prefix.toString(16)}`);
    } else throw new Error(`reserved item type at ${i}`);
  }
  if (depth !== 0) throw new Error('unclosed collection');
  return { fields, bits, reportIds };
}

/** The value at `index` of a field in a report, sign-extended when the field's range is signed. */
export function fieldValue(report: Uint8Array, field: Field, index: number): number {
  const start = field.bit + index * field.size;
  let v = 0;
  for (let b = 0; b < field.size; b++) {
    const at = start + b;
    if ((report[at >> 3]! >> (at & 7)) & 1) v += 2 ** b;
  }
  if (field.logicalMin < 0 && v >= 2 ** (field.size - 1)) v -= 2 ** field.size;
  return v;
}
