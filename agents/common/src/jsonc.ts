// The agents' config files are JSONC (comments and trailing commas allowed). One reader, so a
// syntax error is reported alike by every agent: `line L column C: <jsonc-parser's code>`.
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';

/** Parses JSONC text: the value, or one message per syntax error with its line and column. */
export function readJsonc(text: string): { value: unknown; errors: string[] } {
  const errors: ParseError[] = [];
  const value = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  return {
    value,
    errors: errors.map((e) => {
      const before = text.slice(0, e.offset);
      return `line ${before.split('\n').length} column ${e.offset - before.lastIndexOf('\n')}: ${printParseErrorCode(e.error)}`;
    }),
  };
}
