/**
 * The extension's logic, free of any `vscode` import so Node's test runner can exercise it:
 * finding the Java/C functions of a file, the function under the cursor, clone search over the
 * workspace's functions with an index on disk, and the vulnerability check.
 */

import type { CloneIndex, CloneModel, Match, SourceFunction, TinyClassifier, UpdateStats }
  from "lit-compressor-runtime" with { "resolution-mode": "import" };

export type Language = "java" | "c";

/** A function found in a file: offsets into the text, 1-based lines, its source. */
export interface FoundFunction {
  name: string;
  start: number;
  end: number;
  startLine: number;
  endLine: number;
  code: string;
}

const EXTENSIONS: Record<string, Language> = { ".java": "java", ".c": "c", ".h": "c" };
/** Words right before a `(` that make it a statement, not a function; words anywhere that make it a type or expression. */
const CONTROL = new Set(["if", "for", "while", "switch", "catch", "synchronized", "return", "sizeof", "try", "else"]);
const NOT_DECLARATIONS = new Set(["new", "class", "interface", "enum", "record", "struct", "union", "typedef", "do"]);

/** The language of a file name, or undefined for files the models do not read. */
export function languageOf(fileName: string): Language | undefined {
  const dot = fileName.lastIndexOf(".");
  return dot < 0 ? undefined : EXTENSIONS[fileName.slice(dot).toLowerCase()];
}

/** Offsets of code characters: comments, string and character literals (and C preprocessor lines) blanked. */
function codeMask(text: string, language: Language): string {
  const out = text.split("");
  let i = 0;
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  let lineStart = true;
  while (i < text.length) {
    const c = text[i];
    if (language === "c" && lineStart && c === "#") {
      let j = i;
      while (j < text.length && (text[j] !== "\n" || text[j - 1] === "\\")) j++;
      blank(i, j);
      i = j;
      continue;
    }
    if (c === "\n") lineStart = true;
    else if (c !== " " && c !== "\t") lineStart = false;
    if (c === "/" && text[i + 1] === "/") {
      const j = text.indexOf("\n", i);
      const end = j < 0 ? text.length : j;
      blank(i, end);
      i = end;
    } else if (c === "/" && text[i + 1] === "*") {
      const j = text.indexOf("*/", i + 2);
      const end = j < 0 ? text.length : j + 2;
      blank(i, end);
      i = end;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      if (language === "java" && c === '"' && text.startsWith('""', i + 1)) { // text block
        const close = text.indexOf('"""', i + 3);
        j = close < 0 ? text.length : close + 3;
      } else {
        while (j < text.length && text[j] !== c && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
        j = Math.min(j + 1, text.length);
      }
      blank(i + 1, j - 1);
      i = j;
    } else {
      i++;
    }
  }
  return out.join("");
}

/** Whether the code before a `{` (back to the previous `;`, `{` or `}`) declares a function; its name if so. */
function functionHeader(header: string, language: Language): string | undefined {
  let text = header.replace(/@[\w.]+(\s*\([^()]*\))?/g, " ").trim(); // Java annotations
  if (language === "java") text = text.replace(/\bthrows\s+[\w.<>,\s]+$/, "").trim();
  if (!text.endsWith(")")) return undefined;
  let depth = 0;
  let open = -1;
  for (let k = 0; k < text.length; k++) {
    if (text[k] === "(") {
      if (depth === 0 && open < 0) open = k;
      depth++;
    } else if (text[k] === ")") {
      depth--;
      if (depth < 0) return undefined;
    }
  }
  if (depth !== 0 || open < 0) return undefined;
  const words = text.slice(0, open).match(/[\w$]+|[^\s\w$]+/g) ?? [];
  if (words.some((w) => NOT_DECLARATIONS.has(w) || w.includes("=") || w.includes("->"))) return undefined;
  const pointer = language === "c" ? /^\(\s*\*\s*([A-Za-z_]\w*)\s*\(/.exec(text.slice(open)) : null;
  if (pointer) return pointer[1]; // a function returning a function pointer: int (*pick(void))(int)
  const name = words.at(-1);
  return name && !CONTROL.has(name) && /^[A-Za-z_$][\w$]*$/.test(name) ? name : undefined;
}

/**
 * The functions (methods, constructors; C function definitions) of a file, in source order, nested
 * ones (methods of anonymous classes) included. A brace scanner, not a parser: it needs no grammar
 * and tolerates broken code, which an editor sees all the time.
 */
export function findFunctions(text: string, language: Language): FoundFunction[] {
  const code = codeMask(text, language);
  const found: FoundFunction[] = [];
  const stack: { open: number; name?: string; start: number }[] = [];
  let boundary = 0;
  const lineOf = (offset: number) => {
    let line = 1;
    for (let k = 0; k < offset; k++) if (text.charCodeAt(k) === 10) line++;
    return line;
  };
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (c === "{") {
      const header = code.slice(boundary, i);
      const name = functionHeader(header, language);
      const start = boundary + (header.length - header.trimStart().length);
      stack.push({ open: i, name, start });
      boundary = i + 1;
    } else if (c === "}") {
      const block = stack.pop();
      if (block?.name) {
        found.push({ name: block.name, start: block.start, end: i + 1, startLine: lineOf(block.start), endLine: lineOf(i),
          code: text.slice(block.start, i + 1) });
      }
      boundary = i + 1;
    } else if (c === ";") {
      boundary = i + 1;
    }
  }
  return found.sort((a, b) => a.start - b.start);
}

/** The innermost function that contains `offset`. */
export function functionAt(functions: FoundFunction[], offset: number): FoundFunction | undefined {
  return functions.filter((f) => f.start <= offset && offset <= f.end).sort((a, b) => b.start - a.start)[0];
}

/** A found function as the runtime's index record. */
export function toSource(path: string, language: Language, f: FoundFunction): SourceFunction {
  return { path, name: f.name, language, start_line: f.startLine, end_line: f.endLine, code: f.code };
}

export interface ProjectFile {
  path: string;
  text: string;
}

/** The workspace's functions in a clone index (kept on disk, updated by content hash). */
export class ProjectClones {
  constructor(readonly model: CloneModel, public index: CloneIndex, readonly indexFolder?: string) {}

  /** Load a pair student and the index saved in `indexFolder` (a new one when absent or stale). */
  static async open(modelFolder: string, indexFolder?: string): Promise<ProjectClones> {
    const runtime = await import("lit-compressor-runtime");
    const model = await runtime.CloneModel.fromPretrained(modelFolder);
    let index = new runtime.CloneIndex(model);
    if (indexFolder) {
      try {
        index = await runtime.CloneIndex.load(indexFolder, model);
      } catch {
        // no index yet, or one built with another model: start afresh
      }
    }
    return new ProjectClones(model, index, indexFolder);
  }

  /** Extract the files' functions and bring the index up to date (saved when it has a folder). */
  async indexFiles(files: ProjectFile[], onProgress?: (done: number, total: number) => void): Promise<UpdateStats> {
    const functions = files.flatMap((file) => {
      const language = languageOf(file.path);
      return language ? findFunctions(file.text, language).map((f) => toSource(file.path, language, f)) : [];
    });
    const stats = await this.index.update(functions, onProgress);
    if (this.indexFolder) await this.index.save(this.indexFolder);
    return stats;
  }

  /** The indexed functions most likely to be clones of `f` (found in `path`), itself left out. */
  async clonesOf(f: FoundFunction, path: string, topK = 20, threshold = 0.5): Promise<Match[]> {
    const matches = await this.index.search(f.code, topK + 1, threshold);
    return matches.filter((m) => !(m.function.path === path && m.function.start_line === f.startLine)).slice(0, topK);
  }
}

export interface Finding {
  function: FoundFunction;
  probability: number;
}

/** Functions a single-function (Devign-style) student thinks are vulnerable. */
export class VulnerabilityCheck {
  constructor(readonly model: TinyClassifier, readonly threshold = 0.5) {}

  static async open(modelFolder: string, threshold = 0.5): Promise<VulnerabilityCheck> {
    const runtime = await import("lit-compressor-runtime");
    const model = await runtime.TinyClassifier.fromPretrained(modelFolder);
    if (model.numInputs !== 1) throw new Error(`${modelFolder}: a pair model; the vulnerability check needs a single-function model`);
    return new VulnerabilityCheck(model, threshold);
  }

  async check(functions: FoundFunction[]): Promise<Finding[]> {
    const findings: Finding[] = [];
    for (const f of functions) {
      const prediction = await this.model.predict(f.code);
      const probability = prediction.probabilities[this.model.positiveLabel];
      if (probability >= this.threshold) findings.push({ function: f, probability });
    }
    return findings;
  }
}

/** The quick-pick line of a match. */
export function describeMatch(match: Match): { label: string; description: string } {
  const f = match.function;
  return { label: `${(match.score * 100).toFixed(1)}%  ${f.name}`, description: `${f.path}:${f.start_line}` };
}
