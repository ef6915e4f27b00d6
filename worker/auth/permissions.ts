// Permission strings are "resource:action". A granted "*" matches everything and "devices:*"
// matches every devices action. Roles hold lists of them; a principal's set is the union.

export function permits(granted: readonly string[], required: string): boolean {
  for (const g of granted) {
    if (g === '*' || g === required) return true;
    if (g.endsWith(':*') && required.startsWith(g.slice(0, -1))) return true;
  }
  return false;
}

/** Permissions an API key may narrow to: only those its owner holds. */
export function narrow(owner: readonly string[], wanted: readonly string[] | null): string[] {
  if (!wanted) return [...owner];
  return wanted.filter((p) => permits(owner, p) || (p.endsWith(':*') && owner.includes('*')));
}
