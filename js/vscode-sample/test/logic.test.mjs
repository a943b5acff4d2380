// The sample extension's logic outside VS Code (build first: `npm run build`). The model tests run
// on the students tests/test_node_runtime.py exports (LIT_COMPRESSOR_PARITY); without it they skip.
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { CloneModel, TinyClassifier } from "lit-compressor-runtime";

import { describeMatch, findFunctions, functionAt, languageOf, ProjectClones, VulnerabilityCheck } from "../out/logic.js";

const JAVA = `package p;
/** A class { with a brace in its comment. */
public class A {
    /** Javadoc is not part of the method. */
    @Override
    public int f(int a) { return a + 1; }
    A() { this(1); }
    abstract void g();
    void h() {
        Runnable r = new Runnable() { public void run() { h(); } };
    }
    @SuppressWarnings("unchecked") public <T> List<T> m(Map<String, T> x) throws IOException, Error {
        String s = "} not a brace {"; char c = '{';
        list.forEach(v -> { System.out.println(v); });
        if (x == null) { return null; } else if (s.isEmpty()) { s = """
            text { block
            """; }
        for (int i = 0; i < 3; i++) { synchronized (this) { i++; } }
        try { h(); } catch (Exception e) { } finally { }
        return null;
    }
    static { init(); }
}
`;

const C = `#include <stdio.h>
#define BLOCK { 1, 2 }
static char **names(int n) { return 0; }
int (*pick(void))(int) { return 0; }
struct point { int x; };
int table[] = { 1, 2 };
int main(void) {
    /* { */ if (names(1) == 0) { puts("}"); }
    return 0;
}
`;

test("language of a file name", () => {
  assert.equal(languageOf("src/A.java"), "java");
  assert.equal(languageOf("x.h"), "c");
  assert.equal(languageOf("notes.txt"), undefined);
});

test("Java methods, constructors and nested methods; no lambdas, blocks or initialisers", () => {
  const found = findFunctions(JAVA, "java");
  assert.deepEqual(found.map((f) => [f.name, f.startLine, f.endLine]),
    [["f", 5, 6], ["A", 7, 7], ["h", 9, 11], ["run", 10, 10], ["m", 12, 21]]);
  assert.ok(found[0].code.startsWith("@Override") && found[0].code.endsWith("}"));
  assert.equal(found[4].code, JAVA.slice(JAVA.indexOf("@SuppressWarnings"), JAVA.indexOf("    static {") - 1));
});

test("C function definitions; no structs, initialisers or macros", () => {
  assert.deepEqual(findFunctions(C, "c").map((f) => [f.name, f.startLine, f.endLine]),
    [["names", 3, 3], ["pick", 4, 4], ["main", 7, 10]]);
});

test("the function under the cursor is the innermost one", () => {
  const found = findFunctions(JAVA, "java");
  assert.equal(functionAt(found, JAVA.indexOf("h(); }"))?.name, "run");
  assert.equal(functionAt(found, JAVA.indexOf("Runnable r"))?.name, "h");
  assert.equal(functionAt(found, JAVA.indexOf("package")), undefined);
});

const REFERENCE = process.env.LIT_COMPRESSOR_PARITY;
const skip = REFERENCE ? false : "no reference: tests/test_node_runtime.py sets LIT_COMPRESSOR_PARITY";
const sample = REFERENCE ? JSON.parse(readFileSync(REFERENCE, "utf8")).sample : null;

test("the scanner finds the functions tree-sitter finds in real Java and C", { skip }, () => {
  // tree-sitter drops functions with syntax errors (C macros it cannot expand); the scanner keeps them
  const parsed = sample.files.filter((/** @type {{parses: boolean}} */ f) => f.parses);
  const agree = parsed.filter((/** @type {{path: string, text: string, functions: unknown}} */ file) => {
    const ours = findFunctions(file.text, languageOf(file.path)).map((f) => [f.name, f.startLine, f.endLine]);
    return JSON.stringify(ours) === JSON.stringify(file.functions);
  }).length;
  writeFileSync(path.join(process.env.LIT_COMPRESSOR_PARITY_OUT ?? ".", "summary-sample.json"),
    JSON.stringify({ files: sample.files.length, parsed: parsed.length, agree }));
  assert.ok(agree >= 0.98 * parsed.length, `the scanner agrees with tree-sitter on ${agree}/${parsed.length} files`);
});

test("clones of the function under the cursor, scored by the pair model, index kept on disk", { skip }, async () => {
  rmSync(sample.index, { recursive: true, force: true });
  const project = await ProjectClones.open(sample.clone_model, sample.index);
  const files = sample.files.filter((f) => f.path.endsWith(".java")).slice(0, 40).map(({ path: p, text }) => ({ path: p, text }));
  const copy = { path: "src/Copy.java", text: files[3].text.replace("public class F3", "class Copy") };
  const stats = await project.indexFiles([...files, copy]);
  // the copy's function is encoded once: one entry more than vectors
  assert.equal(stats.embedded, new Set(project.index.entries.map((e) => e.hash)).size);
  assert.ok(stats.embedded < stats.functions);
  const target = findFunctions(files[3].text, "java")[0];
  const matches = await project.clonesOf(target, files[3].path, 1000, 0);
  assert.equal(matches.length, project.index.size - 1); // every indexed function but itself
  assert.ok(matches.every((m, i) => i === 0 || matches[i - 1].score >= m.score));
  const model = await CloneModel.fromPretrained(sample.clone_model);
  for (const match of matches.slice(0, 10).concat(matches.filter((m) => m.function.path === copy.path))) {
    const other = files.concat([copy]).find((f) => f.path === match.function.path);
    const code = findFunctions(/** @type {{text: string}} */ (other).text, "java").find((f) => f.startLine === match.function.start_line)?.code;
    assert.ok(Math.abs(match.score - (await model.pairProbability(target.code, /** @type {string} */ (code)))) <= 1e-5);
  }
  const copied = matches.find((m) => m.function.path === copy.path);
  assert.ok(copied && Math.abs(copied.score - (await model.pairProbability(target.code, target.code))) <= 1e-5);
  assert.match(describeMatch(copied).description, /^src\/Copy\.java:2$/);
  const reopened = await ProjectClones.open(sample.clone_model, sample.index);
  assert.equal((await reopened.indexFiles([...files, copy])).embedded, 0);
});

test("possibly vulnerable functions: the single-function model's probability over the threshold", { skip }, async () => {
  const files = sample.files.filter((f) => f.path.endsWith(".c")).slice(0, 20);
  const model = await TinyClassifier.fromPretrained(sample.vulnerability_model);
  const functions = files.flatMap((f) => findFunctions(f.text, "c"));
  const expected = await Promise.all(functions.map(async (f) => (await model.predict(f.code)).probabilities[1]));
  const threshold = [...expected].sort((a, b) => a - b)[Math.floor(expected.length / 2)];
  const check = await VulnerabilityCheck.open(sample.vulnerability_model, threshold);
  const findings = await check.check(functions);
  assert.deepEqual(findings.map((f) => f.probability), expected.filter((p) => p >= threshold));
  assert.ok(findings.length > 0 && findings.length < functions.length);
  await assert.rejects(VulnerabilityCheck.open(sample.clone_model), /pair model/);
});
