/**
 * lit-compressor's Node.js runtime: a shipped student's predictions with exactly Python's tokens,
 * and clone search over cached function vectors.
 */
export { normalizeWhitespace } from "./normalize.js";
export { CodeTokenizer } from "./tokenizer.js";
export { TinyClassifier, readModelConfig, softmax } from "./classifier.js";
export { CloneIndex, CloneModel, calibratedProbability, cloneClasses, codeHash, readCalibration } from "./clones.js";
