/**
 * Python's str()/repr() of a float, so run folders (`prune_rate=0.9`), results.csv and the
 * layer-wise JSON read exactly as the reference writes them: integral values keep `.0`,
 * exponent notation below 1e-4 and from 1e16 (`1e-05`, `8.56e-06`).
 */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(x);
  if (abs >= 1e-4 && abs < 1e16) {
    // shortest round-trip digits, like Python's repr; JS uses no exponent in this range
    const s = String(x);
    return s.includes('.') ? s : `${s}.0`;
  }
  // exponent form: JS gives "8.56e-6"/"1e+21", Python "8.56e-06"/"1e+21"
  const [mant, exp] = x.toExponential().split('e');
  const e = Number(exp);
  const sign = e < 0 ? '-' : '+';
  return `${mant}e${sign}${String(Math.abs(e)).padStart(2, '0')}`;
}

/** Python json.dump of a flat {str: float} object (", " and ": " separators, no newline). */
export function pyJsonFloats(obj: Record<string, number>): string {
  return '{' + Object.entries(obj).map(([k, v]) => `${JSON.stringify(k)}: ${pyFloat(v)}`).join(', ') + '}';
}
