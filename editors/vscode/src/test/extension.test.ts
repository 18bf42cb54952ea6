/**
 * The extension itself (out/extension.js with the real vscode-languageclient) activated in a
 * stand-in editor against the real `reaper-lsp` server: ghost text through the provider the
 * client registers, the status bar, settings changes, commands, restart and a missing server.
 * Skipped when no server executable is found (`REAPER_LSP`, else the repository's
 * `.venv/bin/reaper-lsp`).
 */

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
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

describe('the extension in an editor', { skip: SKIP }, () => {
  const editor = new Editor();
  let home: string;
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
    editor.settings.set('reaper.serverPath', SERVER);
    const copilot = GITHUB === undefined ? {} : { github_url: GITHUB, github_api_url: GITHUB };
    editor.settings.set('reaper.settings', {
      completion: { providers: ['copilot'] },
      providers: { copilot },
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
    for (const name of ['reaper.signIn', 'reaper.signOut', 'reaper.showStatus', 'reaper.restart']) {
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
