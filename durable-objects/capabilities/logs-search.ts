// What `q` means, once, for both sides of the logs API: the stored lines (SQLite FTS5 in the hub)
// and the live ones (GET /api/v1/logs/stream, matched in the Worker). A user's q is never handed
// to FTS5 as its query language: it is read as terms — "quoted phrases", bare words, and a bare
// word ending in `*` as a prefix — each term cut into words the way FTS5's unicode61 tokenizer
// cuts text (runs of letters and digits, case and diacritics folded), and the FTS5 expression is
// rebuilt from those words alone, each inside a double-quoted string. Operators (AND, OR, NOT,
// NEAR), parentheses, column filters and stray quotes are thus plain text, so no q can make an
// FTS5 syntax error. Terms are ANDed. A q with no word in it is refused (400 naming q) rather
// than matching everything or nothing.

/** One term: its words in order (a phrase when more than one), the last one a prefix when `prefix`. */
export interface SearchTerm {
  words: string[];
  prefix: boolean;
}

/** Terms at most (q is at most 256 characters, so this is a bound on work, not on users). */
const MAX_TERMS = 64;

/** FTS5 unicode61's folding, near enough: lower case, diacritics removed. */
function fold(text: string): string {
  return text.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase();
}

/** The words of a text as unicode61 sees them (letters and digits; everything else separates). */
export function wordsOf(text: string): string[] {
  return fold(text).match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** q's terms, or null when it holds no word to search for. */
export function parseSearch(q: string): SearchTerm[] | null {
  const terms: SearchTerm[] = [];
  // A quoted phrase (up to the next quote or the end), or a run without spaces or quotes.
  for (const m of q.matchAll(/"([^"]*)"?|([^\s"]+)/g)) {
    const phrase = m[1] !== undefined;
    const text = phrase ? m[1]! : m[2]!;
    const words = wordsOf(text);
    if (!words.length) continue;
    terms.push({ words, prefix: !phrase && /[\p{L}\p{N}]\*$/u.test(text) });
    if (terms.length === MAX_TERMS) break;
  }
  return terms.length ? terms : null;
}

/** The FTS5 MATCH expression for the terms: each a string of its words (quotes doubled, though words hold none), ANDed. */
export function ftsExpression(terms: readonly SearchTerm[]): string {
  return terms.map((t) => `"${t.words.join(' ').replaceAll('"', '""')}"${t.prefix ? '*' : ''}`).join(' AND ');
}

/** Whether a message holds every term (a phrase's words next to each other, a prefix as a word's start): the live side of q. */
export function matchesSearch(terms: readonly SearchTerm[], message: string): boolean {
  const words = wordsOf(message);
  return terms.every((t) => {
    const n = t.words.length;
    for (let i = 0; i + n <= words.length; i++) {
      let ok = true;
      for (let j = 0; j < n && ok; j++) {
        const w = words[i + j]!;
        ok = t.prefix && j === n - 1 ? w.startsWith(t.words[j]!) : w === t.words[j];
      }
      if (ok) return true;
    }
    return false;
  });
}
