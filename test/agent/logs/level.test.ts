// Levels and bounded messages: journald's PRIORITY mapped one to one, a file line's level guessed
// only from a level word near its start, a syslog <N> prefix or a JSON level field (else info), and
// a message over MAX_LOG_MESSAGE bytes cut at a character boundary with the truncation marker.
import { describe, expect, it } from 'bun:test';
import { boundMessage, levelFromPriority, levelFromText } from '../../../agent/logs/level.ts';
import { LOG_TRUNCATED_MARKER, MAX_LOG_MESSAGE } from '../../../shared/protocol/logs.ts';

describe('levels', () => {
  it('maps PRIORITY 0–7 to the syslog names, anything else to info', () => {
    expect(['0', '1', '2', '3', '4', '5', '6', '7'].map(levelFromPriority)).toEqual(['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug']);
    expect([undefined, '8', '-1', '3x', '', 'error'].map(levelFromPriority)).toEqual(['info', 'info', 'info', 'info', 'info', 'info']);
  });

  it('reads a file line by its level word, syslog prefix or JSON level, and is conservative otherwise', () => {
    const cases: [string, string][] = [
      ['2026-12-01T10:00:00Z ERROR db: connection lost', 'error'],
      ['2026-12-01 10:00:00 [warn] disk at 91%', 'warning'],
      ['Dec  1 10:00:00 pi app[12]: WARNING: low voltage', 'warning'],
      ['FATAL could not bind :80', 'critical'],
      ['CRIT thermal shutdown', 'critical'],
      ['level=debug msg="tick"', 'debug'],
      ['time=… level=error msg="boom"', 'error'],
      ['<3>kernel: oops', 'error'],
      ['<14>hello', 'info'],
      ['<12>hello', 'warning'],
      ['{"level":"warn","msg":"slow"}', 'warning'],
      ['{"level":50,"msg":"pino error"}', 'error'],
      ['{"severity":"NOTICE","message":"x"}', 'notice'],
      ['error: file not found', 'error'],
      ['NOTICE: config reloaded', 'notice'],
      ['DEBUG x=1', 'debug'],
      // Not a level: a word inside prose, lower case and unmarked, or far from the start.
      ['no errors found today', 'info'],
      ['user typed the word error in a form', 'info'],
      ['terrorist', 'info'],
      ['ERRORS=0', 'info'],
      [`${'x'.repeat(200)} ERROR late`, 'info'],
      ['{"msg":"no level here"}', 'info'],
      ['{not json ERROR', 'error'],
      ['', 'info'],
    ];
    for (const [text, level] of cases) expect([text, levelFromText(text)]).toEqual([text, level]);
  });
});

describe('bounded messages', () => {
  it('keeps a message that fits, up to exactly MAX_LOG_MESSAGE bytes', () => {
    expect(boundMessage('hello')).toBe('hello');
    const exact = 'é'.repeat(MAX_LOG_MESSAGE / 2);
    expect(boundMessage(exact)).toBe(exact);
  });

  it('cuts a longer one at a character boundary and says how many bytes went', () => {
    // 3-byte characters: MAX_LOG_MESSAGE is not a multiple of 3, so the cut falls inside one.
    const text = '€'.repeat(3000);
    const cut = boundMessage(text);
    const kept = Math.floor(MAX_LOG_MESSAGE / 3);
    expect(cut).toBe(`${'€'.repeat(kept)}${LOG_TRUNCATED_MARKER}${9000 - kept * 3} bytes]`);
    expect(Buffer.byteLength(cut.slice(0, cut.indexOf(LOG_TRUNCATED_MARKER)))).toBeLessThanOrEqual(MAX_LOG_MESSAGE);
    expect(cut).not.toContain('\uFFFD');
  });

  it('counts bytes the caller already left out', () => {
    expect(boundMessage('short', 100)).toBe(`short${LOG_TRUNCATED_MARKER}100 bytes]`);
    const big = boundMessage('a'.repeat(MAX_LOG_MESSAGE + 4), 1000);
    expect(big.endsWith(`${LOG_TRUNCATED_MARKER}1004 bytes]`)).toBe(true);
  });
});
