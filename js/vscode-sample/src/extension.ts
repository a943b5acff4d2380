/**
 * VS Code glue: the "Find clones of this function" command and the "possibly vulnerable function"
 * diagnostic, on lit-compressor's Node.js runtime (all logic is in ./logic).
 */

import * as path from "node:path";
import * as vscode from "vscode";

import { describeMatch, findFunctions, functionAt, languageOf, ProjectClones, VulnerabilityCheck } from "./logic";

let clones: Promise<ProjectClones> | undefined;
let vulnerability: Promise<VulnerabilityCheck | undefined> | undefined;

function settings() {
  const config = vscode.workspace.getConfiguration("litCompressor");
  return {
    cloneModel: config.get<string>("cloneModel", ""),
    vulnerabilityModel: config.get<string>("vulnerabilityModel", ""),
    cloneThreshold: config.get<number>("cloneThreshold", 0.5),
    vulnerabilityThreshold: config.get<number>("vulnerabilityThreshold", 0.5),
  };
}

async function workspaceFiles(): Promise<{ path: string; text: string }[]> {
  const uris = await vscode.workspace.findFiles("**/*.{java,c,h}", "**/{node_modules,.git,build,target}/**");
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const files = [];
  for (const uri of uris) {
    try {
      files.push({ path: vscode.workspace.asRelativePath(uri), text: decoder.decode(await vscode.workspace.fs.readFile(uri)) });
    } catch {
      // unreadable or not UTF-8: left out, like `lit-compressor clones` does
    }
  }
  return files;
}

async function findClones(context: vscode.ExtensionContext): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const language = editor && languageOf(editor.document.fileName);
  if (!editor || !language) {
    void vscode.window.showInformationMessage("Open a Java or C file and put the cursor in a function.");
    return;
  }
  const { cloneModel, cloneThreshold } = settings();
  if (!cloneModel) {
    void vscode.window.showErrorMessage("Set litCompressor.cloneModel to an exported clone detection student folder.");
    return;
  }
  const document = editor.document;
  const target = functionAt(findFunctions(document.getText(), language), document.offsetAt(editor.selection.active));
  if (!target) {
    void vscode.window.showInformationMessage("The cursor is not inside a function.");
    return;
  }
  const storage = context.storageUri ? path.join(context.storageUri.fsPath, "clone-index") : undefined;
  clones ??= ProjectClones.open(cloneModel, storage);
  const project = await clones;
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "lit-compressor: indexing functions" },
    async (progress) => {
      let last = 0;
      await project.indexFiles(await workspaceFiles(), (done, total) => {
        progress.report({ increment: ((done - last) / total) * 100, message: `${done}/${total}` });
        last = done;
      });
    },
  );
  const matches = await project.clonesOf(target, vscode.workspace.asRelativePath(document.uri), 20, cloneThreshold);
  if (matches.length === 0) {
    void vscode.window.showInformationMessage(`No clones of ${target.name} above ${cloneThreshold}.`);
    return;
  }
  const picked = await vscode.window.showQuickPick(matches.map((m) => ({ ...describeMatch(m), match: m })),
    { title: `Clones of ${target.name}` });
  if (picked && vscode.workspace.workspaceFolders?.length) {
    const uri = vscode.Uri.joinPath(vscode.workspace.workspaceFolders[0].uri, picked.match.function.path);
    const line = picked.match.function.start_line - 1;
    await vscode.window.showTextDocument(uri, { selection: new vscode.Range(line, 0, line, 0) });
  }
}

async function diagnose(document: vscode.TextDocument, collection: vscode.DiagnosticCollection): Promise<void> {
  const language = languageOf(document.fileName);
  const { vulnerabilityModel, vulnerabilityThreshold } = settings();
  if (!language || !vulnerabilityModel) return;
  vulnerability ??= VulnerabilityCheck.open(vulnerabilityModel, vulnerabilityThreshold).catch((error: Error) => {
    void vscode.window.showErrorMessage(`lit-compressor: ${error.message}`);
    return undefined;
  });
  const check = await vulnerability;
  if (!check) return;
  const findings = await check.check(findFunctions(document.getText(), language));
  collection.set(document.uri, findings.map(({ function: f, probability }) => {
    const start = document.positionAt(f.start);
    const diagnostic = new vscode.Diagnostic(new vscode.Range(start, document.lineAt(start.line).range.end),
      `possibly vulnerable function (${(probability * 100).toFixed(0)}%)`, vscode.DiagnosticSeverity.Warning);
    diagnostic.source = "lit-compressor";
    return diagnostic;
  }));
}

export function activate(context: vscode.ExtensionContext): void {
  const collection = vscode.languages.createDiagnosticCollection("lit-compressor");
  const run = (document: vscode.TextDocument) => void diagnose(document, collection);
  context.subscriptions.push(
    collection,
    vscode.commands.registerCommand("litCompressor.findClones", () => findClones(context)),
    vscode.workspace.onDidOpenTextDocument(run),
    vscode.workspace.onDidSaveTextDocument(run),
    vscode.workspace.onDidCloseTextDocument((document) => collection.delete(document.uri)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("litCompressor")) {
        clones = undefined;
        vulnerability = undefined;
      }
    }),
  );
  vscode.workspace.textDocuments.forEach(run);
}

export function deactivate(): void {}
