// Numeric settings from [vars]: a missing or nonsensical value falls back to the default rather
// than turning a deadline into NaN. Shared: the Worker and the DeviceHub read the same [vars].
export function numberVar(value: string | undefined, fallback: number, min = 0): number {
  const n = Number(value);
  return value !== undefined && value !== '' && Number.isFinite(n) && n >= min ? n : fallback;
}
