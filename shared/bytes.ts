// Byte helpers shared by the hub and the agent. Web-standard only.

/** `parts` joined into one array of `size` bytes; a single part is returned as it is, uncopied. */
export function joinBytes(parts: readonly Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
