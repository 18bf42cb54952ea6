/**
 * The extension itself (out/extension.js with the real vscode-languageclient) activated in a
 * stand-in editor against the real `reaper-lsp` server: ghost text through the provider the
 * client registers, the status bar, settings changes, commands, restart and a missing server.
 * Skipped when no server executable is found (`REAPER_LSP`, else the repository's
 * `.venv/bin/reaper-lsp`).
 */

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CancellationTokenSource, Editor, Position, Range, SnippetString, waitFor } from './editor';

function findServer(): string | undefined {
  const candidates = [
    process.env.REAPER_LSP,
    path.resolve(__dirname, '..', '..', '..', '..', '.venv', 'bin', 'reaper-lsp'),
  ];
  return candidates.find((candidate) => candidate !== undefined && fs.existsSync(candidate));
}

const SERVER = findServer();
const SKIP = SERVER === undefined ? 'no reaper-lsp executable (set REAPER_LSP to its path)' : false;
/** A fake GitHub (tests/fakes/github.py) with instant device-flow polls, started by the e2e test. */
const GITHUB = process.env.REAPER_FAKE_GITHUB;

/** A TCP port nothing listens on (where the test's Ollama "runs"). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What the extension wrote to the servers it started (their stdin), for telling what reached
 * a server. The language client spawns through `child_process.spawn`, looked up at each call. */
const sentToServer: string[] = [];

function recordServerInput(): void {
  const cp = require('node:child_process') as { spawn: (...args: unknown[]) => ChildProcess };
  const spawn = cp.spawn;
  cp.spawn = (...args: unknown[]) => {
    const child = spawn(...args);
    const stdin = child.stdin;
    if (stdin !== null) {
      const write = stdin.write.bind(stdin) as (...rest: unknown[]) => boolean;
      stdin.write = ((chunk: unknown, ...rest: unknown[]) => {
        sentToServer.push(String(chunk));
        return write(chunk, ...rest);
      }) as typeof stdin.write;
    }
    return child;
  };
}

/**
 * The real server, in process, with its `reaper.toggle` taken away (`mode` "none") or replaced
 * by one that records each call in toggles.jsonl and flips the state of that scope ("record"):
 * the extension's side of the toggle is tested whether or not this server has the command.
 */
function toggleServer(home: string, mode: 'none' | 'record'): string {
  const python = fs.readFileSync(SERVER as string, 'utf8').split('\n')[0];
  const script = path.join(home, `reaper-lsp-toggle-${mode}`);
  const record = path.join(home, 'toggles.jsonl');
  fs.writeFileSync(
    script,
    `${python}
import json, sys
import reaper_lsp.lsp.features as features
real = features.create_server
state = {}
def create_server(host=None):
    ls = real(host)
    ls.protocol.fm._commands.pop("reaper.toggle", None)
    if ${JSON.stringify(mode)} == "record":
        @ls.command("reaper.toggle")
        def toggle(ls, args=None, *rest):
            args = args or {}
            with open(${JSON.stringify(record)}, "a") as out:
                out.write(json.dumps(args) + "\\n")
            scope = args.get("scope", "global")
            state[scope] = not state.get(scope, True)
            uri = (args.get("textDocument") or {}).get("uri", "")
            language = "python" if uri.endswith(".py") else None
            return {"scope": scope, "enabled": state[scope], "language": language}
    return ls
features.create_server = create_server
from reaper_lsp.cli import main
sys.exit(main(["--no-daemon", *sys.argv[1:]]))
`,
    { mode: 0o755 },
  );
  return script;
}

describe('the extension in an editor', { skip: SKIP }, () => {
  const editor = new Editor();
  let home: string;
  let ollama: string;
  let extension: { activate(context: unknown): Promise<void>; deactivate(): Promise<void> };
  const context = { subscriptions: [] as { dispose(): unknown }[] };

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'reaper-vscode-ext-'));
    // The server inherits this environment: no keys, no sign-in, every user directory in `home`.
    for (const name of [
      'OPENAI_API_KEY',
      'ANTHROPIC_API_KEY',
      'REAPER_CONFIG',
      'GH_TOKEN',
      'GITHUB_TOKEN',
    ]) {
      delete process.env[name];
    }
    Object.assign(process.env, {
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, 'config'),
      XDG_DATA_HOME: path.join(home, 'data'),
      XDG_STATE_HOME: path.join(home, 'state'),
      XDG_CACHE_HOME: path.join(home, 'cache'),
    });
    // Endpoints come from the user's reaper.toml, the one place the server takes them from.
    ollama = `http://127.0.0.1:${await closedPort()}`;
    const copilot =
      GITHUB === undefined ? '' : `github_url = "${GITHUB}"\ngithub_api_url = "${GITHUB}"\n`;
    fs.mkdirSync(path.join(home, 'config', 'reaper-lsp'), { recursive: true });
    fs.writeFileSync(
      path.join(home, 'config', 'reaper-lsp', 'reaper.toml'),
      `[providers.copilot]\n${copilot}\n[providers.ollama]\nbase_url = "${ollama}"\n`,
    );
    recordServerInput();
    editor.settings.set('reaper.serverPath', SERVER);
    // An endpoint and a key where they do not belong: the extension must keep them to itself.
    editor.settings.set('reaper.settings', {
      completion: { providers: ['copilot'] },
      providers: { copilot: { github_url: 'https://evil.example', api_key: 'sk-never-sent-1234' } },
    });
    editor.install();
    extension = require('../extension');
    await extension.activate(context);
  });

  after(async () => {
    await extension?.deactivate();
    for (const disposable of context.subscriptions) {
      disposable.dispose();
    }
    fs.rmSync(home, { recursive: true, force: true });
  });

  const status = () => editor.statusItems[0];

  test('contributes its commands without colliding with the server-advertised ones', () => {
    for (const name of [
      'reaper.signIn',
      'reaper.signOut',
      'reaper.showStatus',
      'reaper.restart',
      'reaper.toggle',
    ]) {
      assert.ok(editor.commands.has(name), `${name} is not registered`);
    }
    assert.deepEqual(editor.shown, [], 'activation showed a message');
  });

  test('the status bar shows the running server and the sign-in it found', () => {
    assert.equal(status().visible, true);
    assert.equal(status().text, '$(sparkle) Reaper');
    assert.equal(status().command, 'reaper.showStatus');
    assert.match(status().tooltip ?? '', /GitHub Copilot: signed out/);
  });

  test('ghost text comes from the inline provider the language client registered', async () => {
    assert.equal(editor.inlineProviders.length, 1);
    const document = editor.open(
      path.join(home, 'totals.py'),
      'total = compute_total(items)\nprint(total)\ntotal = comp\n',
    );
    const { provider } = editor.inlineProviders[0];
    const token = new CancellationTokenSource().token;
    // VS Code's own enum: 0 is an explicit request; the client must translate it for LSP 3.18.
    const result = await provider.provideInlineCompletionItems(
      document,
      new Position(2, 12),
      { triggerKind: 0, selectedCompletionInfo: undefined },
      token,
    );
    const items = Array.isArray(result) ? result : result.items;
    assert.deepEqual(
      items.map((item: { insertText: string }) => item.insertText),
      ['ute_total(items)'],
    );
  });

  test('the suggest widget gets the suggestion only when reaper.menuCompletion is on', async () => {
    const document = editor.open(
      path.join(home, 'menu.py'),
      'total = compute_total(items)\nprint(total)\ntotal = comp\n',
    );
    assert.equal(editor.completionProviders.length, 1);
    const { provider } = editor.completionProviders[0];
    const ask = () =>
      provider.provideCompletionItems(
        document,
        new Position(2, 12),
        new CancellationTokenSource().token,
        { triggerKind: 0, triggerCharacter: undefined },
      );
    assert.equal(await ask(), undefined);
    editor.settings.set('reaper.menuCompletion', true);
    try {
      const result = await ask();
      assert.equal(result.isIncomplete, true);
      const [item] = result.items;
      // The word being typed is replaced with the whole suggestion, as a snippet.
      assert.ok(item.insertText instanceof SnippetString);
      assert.equal(item.insertText.value, 'compute_total(items)');
      assert.deepEqual(item.range, new Range(2, 8, 2, 12));
      assert.equal(item.filterText, 'compute_total(items)');
    } finally {
      editor.settings.delete('reaper.menuCompletion');
    }
  });

  test('Show Status writes the summary and the report to its own output', async () => {
    await editor.commands.get('reaper.showStatus')!();
    const text = editor.channel('reaper-lsp status').text;
    assert.match(text, /GitHub Copilot: signed out/);
    assert.match(text, /"signIn"/);
  });

  test('signing out when never signed in says so', async () => {
    await editor.commands.get('reaper.signOut')!('copilot');
    const shown = await editor.shownMatching(/GitHub Copilot/);
    assert.deepEqual(
      [shown.level, shown.message],
      ['info', 'You were not signed in to GitHub Copilot.'],
    );
  });

  test(
    'sign-in shows the code, copies it, opens the page once, waits, and names the user',
    {
      skip:
        GITHUB === undefined
          ? 'no fake GitHub (REAPER_FAKE_GITHUB; the e2e test starts one)'
          : false,
    },
    async () => {
      // The user picks GitHub Copilot, then "Copy code and open" in the modal.
      editor.answer = (_prompt, items) =>
        items.find((i) => i === 'GitHub Copilot' || i === 'Copy code and open');
      await editor.commands.get('reaper.signIn')!();
      const prompt = editor.shown.find((s) =>
        /^Sign in to GitHub Copilot with the code/.test(s.message),
      );
      assert.ok(prompt, 'no sign-in prompt');
      const code = /ABCD-\d{4}/.exec(prompt.message)?.[0];
      assert.ok(code, prompt.message);
      const options = prompt.options as { modal: boolean; detail: string };
      assert.equal(options.modal, true);
      assert.ok(options.detail.includes(`${GITHUB}/login/device`), options.detail);
      assert.equal(editor.clipboard, code);
      // The server also asks to open the page (window/showDocument); it must open once, after the copy.
      assert.deepEqual(editor.opened, [`${GITHUB}/login/device`]);
      const done = await editor.shownMatching(/^Signed in to GitHub Copilot/);
      assert.deepEqual(
        [done.level, done.message],
        ['info', 'Signed in to GitHub Copilot as octocat.'],
      );
      await waitFor(
        () => /signed in as octocat/.test(status().tooltip ?? ''),
        5000,
        'the status bar',
      );

      await editor.commands.get('reaper.signOut')!('copilot');
      const out = await editor.shownMatching(/^Signed out of GitHub Copilot/);
      assert.equal(out.message, 'Signed out of GitHub Copilot.');
      await waitFor(
        () => /GitHub Copilot: signed out/.test(status().tooltip ?? ''),
        5000,
        'the status bar',
      );
    },
  );

  test('a change of reaper.settings reaches the server', async () => {
    editor.configure({ 'reaper.settings': { completion: { providers: ['openai'] } } });
    await editor.commands.get('reaper.showStatus')!();
    const text = editor.channel('reaper-lsp status').text;
    assert.match(text, /completion order: openai\b/);
    assert.doesNotMatch(text, /completion order: copilot/);
  });

  test('endpoints and keys in reaper.settings never reach the server; the log says where they go', async () => {
    const sent = sentToServer.join('');
    assert.match(sent, /"initializationOptions":\{"completion":\{"providers":\["copilot"\]\}\}/);
    assert.match(sent, /"settings":\{"reaper":\{"completion":\{"providers":\["openai"\]\}\}\}/);
    assert.doesNotMatch(sent, /evil\.example|sk-never-sent|github_url|"providers":\{/);
    const log = editor.channel('reaper-lsp').text;
    assert.match(
      log,
      /not sent to the server: providers\.copilot\.github_url, providers\.copilot\.api_key/,
    );
    assert.match(log, /reaper\.toml/);
    assert.doesNotMatch(log, /sk-never-sent/);
  });

  test('the toggle is hidden with a server that lacks reaper.toggle, and says why', async () => {
    editor.configure({ 'reaper.serverPath': toggleServer(home, 'none') });
    await waitFor(() => status().text === '$(loading~spin) Reaper', 5000, 'the restart');
    await waitFor(() => status().text !== '$(loading~spin) Reaper', 10000, 'the server');
    const item = editor.statusItems.find((i) => i.id === 'reaper.toggle');
    assert.equal(item?.visible, false);
    await editor.commands.get('reaper.toggle')!('global');
    const shown = await editor.shownMatching(/has no reaper\.toggle/);
    assert.equal(shown.level, 'warning');
  });

  test("a failing provider shows in the server's own words, in the status bar and the report", async () => {
    // In the in-process server the previous test started: its rests end with it.
    editor.configure({ 'reaper.settings': { completion: { providers: ['ollama'] } } });
    const report = () => editor.channel('reaper-lsp status').text;
    for (let tries = 0; !/completion order: ollama/.test(report()) && tries < 50; tries++) {
      await editor.commands.get('reaper.showStatus')!();
    }
    assert.match(report(), /completion order: ollama/);
    const document = editor.open(path.join(home, 'paused.py'), 'total = 1\ntotal = \n');
    const { provider } = editor.inlineProviders[0];
    await provider.provideInlineCompletionItems(
      document,
      new Position(1, 8),
      { triggerKind: 0, selectedCompletionInfo: undefined },
      new CancellationTokenSource().token,
    );
    const line = new RegExp(
      `^Ollama: paused for \\d+ s: Ollama is not running at ${ollama.replace(/\./g, '\\.')}`,
      'm',
    );
    await waitFor(() => line.test(status().tooltip ?? ''), 10000, 'the status bar to say paused');
    assert.equal(status().text, '$(warning) Reaper');
    await editor.commands.get('reaper.showStatus')!();
    assert.match(editor.channel('reaper-lsp status').text, line);
    editor.configure({ 'reaper.settings': { completion: { providers: ['openai'] } } });
  });

  test('the status bar toggle turns completions off for a language, and on again', async () => {
    editor.configure({ 'reaper.serverPath': toggleServer(home, 'record') });
    const item = () => editor.statusItems.find((i) => i.id === 'reaper.toggle');
    await waitFor(() => item()?.visible, 10000, 'the toggle to show');
    assert.equal(item()?.text, '$(check) AI');
    assert.equal(item()?.command, 'reaper.toggle');
    const document = editor.open(path.join(home, 'quiet.py'), 'x = 1\n');
    editor.activeEditor = { document };
    editor.answer = (_prompt, items) => items.find((i) => i === 'For python files');
    try {
      await editor.commands.get('reaper.toggle')!();
    } finally {
      editor.answer = () => undefined;
      editor.activeEditor = undefined;
    }
    const off = await editor.shownMatching(/completions are off/);
    assert.equal(off.message, 'reaper-lsp completions are off for python files.');
    assert.equal(item()?.text, '$(circle-slash) AI');
    await editor.commands.get('reaper.toggle')!('global'); // a keybinding's argument: no prompt
    const calls = fs
      .readFileSync(path.join(home, 'toggles.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.deepEqual(calls, [
      { scope: 'language', textDocument: { uri: document.uri.toString() } },
      { scope: 'global' },
    ]);
    editor.configure({ 'reaper.serverPath': SERVER });
    await waitFor(() => item()?.visible === false, 10000, 'the toggle to hide again');
    await waitFor(() => status().text === '$(sparkle) Reaper', 10000, 'the server back');
  });

  test('a missing server is explained, in the status bar too, and a restart recovers', async () => {
    const before = editor.shown.length;
    editor.configure({ 'reaper.serverPath': path.join(home, 'no-such-reaper-lsp') });
    const shown = await editor.shownMatching(/could not start/);
    assert.equal(shown.level, 'error');
    assert.match(shown.message, /was not found.*reaper\.serverPath/);
    assert.deepEqual(shown.items, ['Open Settings']);
    assert.equal(editor.shown.length, before + 1, 'more than one message for one problem');
    await waitFor(() => status().text === '$(error) Reaper', 5000, 'the error icon');
    assert.equal(editor.inlineProviders.length, 0, 'a stopped client left its provider behind');

    editor.configure({ 'reaper.serverPath': SERVER });
    await waitFor(() => status().text === '$(sparkle) Reaper', 10000, 'the server back');
    assert.equal(editor.inlineProviders.length, 1);
  });
});
