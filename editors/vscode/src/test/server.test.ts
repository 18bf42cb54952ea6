/**
 * The real `reaper-lsp` server driven over stdio by the protocol library VS Code's client is built
 * on: it advertises what the extension relies on, answers inline completion from the offline
 * engine, and answers the commands the extension sends. Skipped when no server executable is found
 * (`REAPER_LSP`, else the repository's `.venv/bin/reaper-lsp`).
 */

import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import {
  createProtocolConnection,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  InitializedNotification,
  InitializeRequest,
  InitializeResult,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  ProtocolConnection,
  ResponseError,
  ShutdownRequest,
  ExitNotification,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-languageserver-protocol/node';

import * as logic from '../logic';
import { settingsPayload } from '../settings';

function findServer(): string | undefined {
  const candidates = [
    process.env.REAPER_LSP,
    path.resolve(__dirname, '..', '..', '..', '..', '.venv', 'bin', 'reaper-lsp'),
  ];
  return candidates.find((candidate) => candidate !== undefined && fs.existsSync(candidate));
}

const SERVER = findServer();
const SKIP = SERVER === undefined ? 'no reaper-lsp executable (set REAPER_LSP to its path)' : false;

describe('the real server, as the extension talks to it', { skip: SKIP }, () => {
  let home: string;
  let server: ChildProcess;
  let connection: ProtocolConnection;
  let initialized: InitializeResult;
  const statuses: unknown[] = [];
  const uri = (name: string): string => pathToFileURL(path.join(home, 'project', name)).href;

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'reaper-vscode-'));
    fs.mkdirSync(path.join(home, 'project'));
    // No keys and no sign-in: every user directory is inside the temporary home.
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, 'config'),
      XDG_DATA_HOME: path.join(home, 'data'),
      XDG_STATE_HOME: path.join(home, 'state'),
      XDG_CACHE_HOME: path.join(home, 'cache'),
      LANG: 'C.UTF-8',
      // Where the daemon the forwarder starts listens: the e2e test's own folder, whose
      // daemons it stops when it ends.
      ...(process.env.XDG_RUNTIME_DIR ? { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR } : {}),
    };
    server = spawn(SERVER as string, ['serve', '--stdio'], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    server.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    // A server that dies must fail the tests with its own words, not leave them waiting.
    const died = new Promise<never>((_resolve, reject) => {
      server.once('exit', (code, signal) => {
        reject(new Error(`reaper-lsp exited (${code ?? signal}) during the test:\n${stderr}`));
      });
    });
    died.catch(() => undefined);
    connection = createProtocolConnection(
      new StreamMessageReader(server.stdout!),
      new StreamMessageWriter(server.stdin!),
    );
    connection.onNotification('reaper/status', (params: unknown) => {
      statuses.push(params);
    });
    connection.listen();
    const initializing = connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      clientInfo: { name: 'Visual Studio Code', version: '1.90.0' },
      rootUri: pathToFileURL(path.join(home, 'project')).href,
      workspaceFolders: [{ uri: pathToFileURL(path.join(home, 'project')).href, name: 'project' }],
      capabilities: { textDocument: { inlineCompletion: { dynamicRegistration: true } } },
      initializationOptions: settingsPayload({ completion: { providers: ['copilot'] } }).reaper,
    });
    initialized = await Promise.race([initializing, died]);
    await connection.sendNotification(InitializedNotification.type, {});
  });

  after(async () => {
    if (connection !== undefined) {
      await connection.sendRequest(ShutdownRequest.type).catch(() => undefined);
      await connection.sendNotification(ExitNotification.type).catch(() => undefined);
      connection.dispose();
    }
    if (server !== undefined && server.exitCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.kill('SIGKILL');
          resolve();
        }, 5000);
        server.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('advertises inline completion and every command the extension sends', () => {
    assert.ok(initialized.capabilities.inlineCompletionProvider, 'no inlineCompletionProvider');
    const commands = initialized.capabilities.executeCommandProvider?.commands ?? [];
    for (const name of [
      'reaper.signIn',
      'reaper.signInConfirm',
      'reaper.signOut',
      'reaper.status',
    ]) {
      assert.ok(commands.includes(name), `${name} not advertised: ${commands.join(', ')}`);
    }
  });

  test('inline completion answers from the open document', async () => {
    const text = 'total = compute_total(items)\nprint(total)\ntotal = comp\n';
    await connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri: uri('totals.py'), languageId: 'python', version: 1, text },
    });
    const result = await connection.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri: uri('totals.py') },
      position: { line: 2, character: 12 },
      context: { triggerKind: InlineCompletionTriggerKind.Invoked },
    });
    const items = Array.isArray(result) ? result : (result?.items ?? []);
    const texts = items.map((item) =>
      typeof item.insertText === 'string' ? item.insertText : item.insertText.value,
    );
    assert.deepEqual(texts, ['ute_total(items)']);
  });

  test('reaper.status is a report the status bar and output channel can read', async () => {
    const report = await connection.sendRequest(ExecuteCommandRequest.type, {
      command: 'reaper.status',
      arguments: [],
    });
    const seeded = logic.statusesFromReport(report);
    assert.deepEqual(
      seeded.find((status) => status.provider === 'copilot' && status.state.startsWith('signed')),
      { provider: 'copilot', state: 'signedOut', user: undefined },
    );
    assert.match(logic.formatStatusReport(report), /GitHub Copilot: signed out/);
    // Every provider in the server's own words (its status model), as `reaper-lsp status`.
    const providers = (report as { providers: Record<string, { summary: string }> }).providers;
    for (const [name, info] of Object.entries(providers)) {
      const line = `${logic.providerLabel(name)}: ${info.summary}`;
      assert.ok(logic.formatStatusReport(report).split('\n').includes(line), line);
    }
  });

  test('sign-out is answered and reported as a status; an unknown account is refused', async () => {
    const out = await connection.sendRequest(ExecuteCommandRequest.type, {
      command: 'reaper.signOut',
      arguments: [{ provider: 'copilot' }],
    });
    assert.equal(logic.signOutOutcome('copilot', false, { result: out }).level, 'info');
    // The status bar hears about it through the notification, sent before the answer.
    assert.deepEqual(logic.parseStatus(statuses.at(-1)), {
      provider: 'copilot',
      state: 'signedOut',
      message: undefined,
      user: undefined,
    });
    await assert.rejects(
      connection.sendRequest(ExecuteCommandRequest.type, {
        command: 'reaper.signIn',
        arguments: [{ provider: 'myspace' }],
      }),
      (error: unknown) => {
        assert.ok(error instanceof ResponseError);
        assert.match(logic.errorText(error), /unknown provider/);
        return true;
      },
    );
  });
});
