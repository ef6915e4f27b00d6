// A variable row as the native API shows it. The one place a row becomes an answer, so a secret's
// value is masked on every route alike (the sealed text never leaves the relay either).
import type { Variable as VariableRow } from '../../shared/db/schema.ts';
import { SECRET_MASK, type Variable } from '../../shared/api/variables.ts';
import { iso } from '../../shared/db/index.ts';

export function presentVariable(row: VariableRow): Variable {
  return {
    name: row.name,
    value: row.secret ? SECRET_MASK : row.value ?? '',
    secret: row.secret,
    level: row.level,
    created_at: iso(row.createdAt)!,
    updated_at: iso(row.updatedAt)!,
  };
}
