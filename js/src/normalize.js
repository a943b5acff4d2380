/**
 * Whitespace normalisation exactly as Python's `" ".join(code.split())`
 * (lit_compressor/data/readers.py::normalize_whitespace).
 *
 * Python's `str.split()` splits on the 29 code points for which `str.isspace()` is true. That set
 * differs from JavaScript's `\s`: Python includes U+001C-U+001F and U+0085 (NEL), JavaScript includes
 * U+FEFF (BOM) instead. The class below is Python's set, listed explicitly.
 */

/** Python's whitespace (`str.isspace()`), as a character class body. */
export const PYTHON_WHITESPACE = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

const RUNS = new RegExp(`[${PYTHON_WHITESPACE}]+`, "u");

/**
 * Collapse every run of whitespace to one space and trim both ends, as Python does before tokenising.
 * @param {string} code
 * @returns {string}
 */
export function normalizeWhitespace(code) {
  return code.split(RUNS).filter((part) => part.length > 0).join(" ");
}
