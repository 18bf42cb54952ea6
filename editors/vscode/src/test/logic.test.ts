/** The extension's editor-free logic: status bar, sign-in prompts, messages, payloads. */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import * as logic from '../logic';
import { editorSettings, ignoredSettingsWarning, settingsPayload } from '../settings';
import * as toggle from '../toggle';

describe('parseStatus', () => {
  test('takes the documented fields and drops empty ones', () => {
    assert.deepEqual(
      logic.parseStatus({ provider: 'openai', state: 'failing', message: '', extra: 1 }),
      { provider: 'openai', state: 'failing', message: undefined, user: undefined },
    );
    assert.deepEqual(
      logic.parseStatus({ provider: 'copilot', state: 'signedIn', user: 'octocat' }),
      {
        provider: 'copilot',
        state: 'signedIn',
        message: undefined,
        user: 'octocat',
      },
    );
  });

  test('rejects what is not a status', () => {
    assert.equal(logic.parseStatus(null), undefined);
    assert.equal(logic.parseStatus([]), undefined);
    assert.equal(logic.parseStatus({ provider: 'openai' }), undefined);
    assert.equal(logic.parseStatus({ provider: 3, state: 'healthy' }), undefined);
  });
});

describe('StatusBoard', () => {
  test('spins while the server starts', () => {
    const board = new logic.StatusBoard();
    assert.equal(board.view().text, '$(loading~spin) Reaper');
  });

  test('a healthy server with a signed-in account reads calm and names the user', () => {
    const board = new logic.StatusBoard();
    board.setServer('running');
    board.update({ provider: 'copilot', state: 'signedIn', user: 'octocat' });
    board.update({ provider: 'openai', state: 'healthy' });
    const view = board.view();
    assert.equal(view.text, '$(sparkle) Reaper');
    assert.equal(view.severity, 'ok');
    assert.match(view.tooltip, /GitHub Copilot: signed in as octocat/);
    assert.match(view.tooltip, /OpenAI: working/);
    // Sorted by provider, so the tooltip does not reorder itself as notifications arrive.
    assert.ok(view.tooltip.indexOf('GitHub Copilot') < view.tooltip.indexOf('OpenAI'));
  });

  test('the worst provider decides the icon and colour, and the reason is shown', () => {
    const board = new logic.StatusBoard();
    board.setServer('running');
    board.update({
      provider: 'openai',
      state: 'failing',
      message: 'OpenAI rejected the API key (401)',
    });
    assert.equal(board.view().severity, 'warning');
    assert.equal(board.view().text, '$(warning) Reaper');
    assert.match(board.view().tooltip, /OpenAI: failing — OpenAI rejected the API key \(401\)/);
    board.update({ provider: 'claude', state: 'open' });
    assert.equal(board.view().severity, 'error');
    assert.equal(board.view().text, '$(error) Reaper');
  });

  test('a later notification replaces the provider state', () => {
    const board = new logic.StatusBoard();
    board.setServer('running');
    board.update({ provider: 'openai', state: 'failing', message: 'timeout' });
    assert.equal(board.update({ provider: 'openai', state: 'healthy' }), true);
    assert.equal(board.view().severity, 'ok');
    assert.doesNotMatch(board.view().tooltip, /timeout/);
    assert.equal(board.update({ provider: 'openai', state: 'healthy' }), false);
  });

  test('signing out by choice is information, a sign-out with a reason is a warning', () => {
    const board = new logic.StatusBoard();
    board.setServer('running');
    board.update({ provider: 'copilot', state: 'signedOut' });
    assert.equal(board.view().severity, 'info');
    board.update({ provider: 'copilot', state: 'signedOut', message: 'the code expired' });
    assert.equal(board.view().severity, 'warning');
    assert.match(board.view().tooltip, /signed out — the code expired/);
  });

  test('an unknown state is shown as sent, not dropped', () => {
    const board = new logic.StatusBoard();
    board.setServer('running');
    board.update({ provider: 'ollama', state: 'warming' });
    assert.match(board.view().tooltip, /Ollama: warming/);
    assert.equal(board.view().severity, 'info');
  });

  test('a server that failed to start says why and how to recover', () => {
    const board = new logic.StatusBoard();
    board.setServer('failed', 'reaper-lsp was not found');
    const view = board.view();
    assert.equal(view.severity, 'error');
    assert.match(view.tooltip, /reaper-lsp was not found/);
    assert.match(view.tooltip, /Restart Server/);
  });

  test('an account and the same provider working are both kept', () => {
    const board = new logic.StatusBoard();
    board.setServer('running');
    assert.equal(board.signedIn('copilot'), undefined);
    board.update({ provider: 'copilot', state: 'signedIn', user: 'octocat' });
    board.update({ provider: 'copilot', state: 'healthy' });
    assert.equal(board.signedIn('copilot'), true);
    assert.match(
      board.view().tooltip,
      /GitHub Copilot: signed in as octocat\nGitHub Copilot: working/,
    );
    board.update({ provider: 'copilot', state: 'signedOut' });
    assert.equal(board.signedIn('copilot'), false);
  });

  test('a restart forgets the old process states', () => {
    const board = new logic.StatusBoard();
    board.setServer('running');
    board.update({ provider: 'openai', state: 'open' });
    board.setServer('starting');
    board.setServer('running');
    assert.equal(board.view().severity, 'ok');
    assert.doesNotMatch(board.view().tooltip, /OpenAI/);
  });
});

describe('sign-in', () => {
  test('a device flow result becomes a prompt that copies the code and opens the page', () => {
    const start = logic.parseSignInStart('copilot', {
      provider: 'copilot',
      userCode: 'ABCD-1234',
      verificationUri: 'https://github.com/login/device',
      expiresIn: 899,
      interval: 5,
    });
    assert.equal(start.kind, 'device');
    const prompt = logic.signInPrompt(start);
    assert.equal(prompt.copy, 'ABCD-1234');
    assert.equal(prompt.url, 'https://github.com/login/device');
    assert.equal(prompt.action, 'Copy code and open');
    assert.match(prompt.message, /GitHub Copilot.*ABCD-1234/);
    assert.match(prompt.detail, /https:\/\/github\.com\/login\/device/);
    assert.match(prompt.detail, /expires in 15 minutes/);
    assert.match(prompt.waiting, /ABCD-1234/);
  });

  test('a browser flow result opens the authorize URL and copies nothing', () => {
    const url = 'https://accounts.google.com/o/oauth2/v2/auth?state=x';
    const prompt = logic.signInPrompt(logic.parseSignInStart('google', { authorizeUrl: url }));
    assert.equal(prompt.url, url);
    assert.equal(prompt.copy, undefined);
    assert.match(prompt.message, /Google/);
  });

  test('an answer with neither shape is an error naming what came back', () => {
    assert.throws(
      () => logic.parseSignInStart('copilot', { status: 'OK' }),
      /neither a user code.*"status"/,
    );
    assert.throws(() => logic.parseSignInStart('copilot', null), /neither/);
  });

  test('confirm: success names the user, failure shows the server message, cancel says nothing', () => {
    assert.deepEqual(
      logic.signInOutcome('copilot', { result: { status: 'OK', user: 'octocat' } }),
      {
        level: 'info',
        text: 'Signed in to GitHub Copilot as octocat.',
      },
    );
    assert.deepEqual(
      logic.signInOutcome('copilot', {
        error: { code: -32603, message: 'sign-in to copilot failed: the code expired' },
      }),
      { level: 'error', text: 'GitHub Copilot: sign-in to copilot failed: the code expired' },
    );
    assert.equal(
      logic.signInOutcome('google', {
        error: { code: logic.REQUEST_CANCELLED, message: 'cancelled' },
      }),
      undefined,
    );
    const thrown = Object.assign(new Error('access denied'), { code: 1 });
    assert.equal(logic.signInOutcome('google', { error: thrown })?.text, 'Google: access denied');
  });

  test('sign-out does not claim to undo a sign-in that never happened', () => {
    assert.equal(
      logic.signOutOutcome('copilot', true, { result: {} }).text,
      'Signed out of GitHub Copilot.',
    );
    assert.equal(
      logic.signOutOutcome('copilot', undefined, { result: {} }).text,
      'Signed out of GitHub Copilot.',
    );
    assert.equal(
      logic.signOutOutcome('copilot', false, { result: {} }).text,
      'You were not signed in to GitHub Copilot.',
    );
    const failed = logic.signOutOutcome('google', true, { error: new Error('keyring locked') });
    assert.equal(failed.level, 'error');
    assert.match(failed.text, /keyring locked/);
  });
});

describe('server start and settings', () => {
  test('a missing executable is explained with the setting to change', () => {
    const missing = Object.assign(new Error('spawn reaper-lsp ENOENT'), { code: 'ENOENT' });
    const text = logic.startFailureMessage('reaper-lsp', missing);
    assert.match(text, /"reaper-lsp" was not found/);
    assert.match(text, /reaper\.serverPath/);
    assert.match(
      logic.startFailureMessage('/x', new Error('EACCES')),
      /could not start \(\/x\): EACCES/,
    );
  });

  test('settings travel under `reaper`, without the editor-only keys', () => {
    const settings = { completion: { providers: ['openai', 'local'] }, chat: { max_tokens: 9 } };
    assert.deepEqual(settingsPayload(settings), { reaper: settings });
    assert.deepEqual(settingsPayload(undefined), { reaper: {} });
    assert.deepEqual(settingsPayload(['x']), { reaper: {} });
  });

  test('endpoints, keys and sign-in settings never leave the editor, and the log says where they go', () => {
    const settings = {
      completion: { providers: ['openai'], api_key: 'sk-in-the-wrong-place' },
      providers: { openai: { base_url: 'https://evil.example/v1', api_key: 'sk-secret' } },
      auth: { google: { client_secret: 'shh' } },
      http: { tls: { verify_certificates: false } },
      privacy: { exclude_extra: ['*.secret'] },
    };
    assert.deepEqual(settingsPayload(settings), {
      reaper: { completion: { providers: ['openai'] }, privacy: { exclude_extra: ['*.secret'] } },
    });
    const { ignored } = editorSettings(settings);
    assert.deepEqual(ignored, [
      'completion.api_key',
      'providers.openai.base_url',
      'providers.openai.api_key',
      'auth.google.client_secret',
      'http.tls.verify_certificates',
    ]);
    const warning = ignoredSettingsWarning(ignored) ?? '';
    assert.match(warning, /providers\.openai\.base_url/);
    assert.match(warning, /reaper\.toml/);
    assert.match(warning, /OPENAI_API_KEY/);
    assert.doesNotMatch(warning, /sk-|evil|shh/);
    assert.equal(ignoredSettingsWarning([]), undefined);
  });

  test('~ in the server path is expanded, other paths are left alone', () => {
    assert.equal(
      logic.expandHome('~/.venv/bin/reaper-lsp', '/home/ann/'),
      '/home/ann/.venv/bin/reaper-lsp',
    );
    assert.equal(logic.expandHome('reaper-lsp', '/home/ann'), 'reaper-lsp');
    assert.equal(logic.expandHome('/opt/~x', '/home/ann'), '/opt/~x');
  });
});

describe('status report', () => {
  const report = {
    version: '0.3.0',
    signIn: {
      github: { signedIn: true, source: 'auth.json' },
      google: { signedIn: false, source: '' },
    },
    configFile: '/home/ann/.config/reaper-lsp/reaper.toml',
    completionChain: ['copilot', 'openai', 'local'],
    providers: {
      copilot: { configured: true, reason: '', health: { state: 'healthy', lastError: '' } },
      openai: { configured: true, reason: '', health: { state: 'failing', lastError: 'HTTP 401' } },
      claude: { configured: false, reason: 'ANTHROPIC_API_KEY is not set', health: {} },
    },
  };

  test('seeds the status bar with sign-ins and configured providers only', () => {
    const statuses = logic.statusesFromReport(report);
    assert.deepEqual(statuses, [
      { provider: 'copilot', state: 'signedIn', user: undefined },
      { provider: 'google', state: 'signedOut', user: undefined },
      { provider: 'copilot', state: 'healthy', message: undefined },
      { provider: 'openai', state: 'failing', message: 'HTTP 401' },
    ]);
    assert.deepEqual(logic.statusesFromReport('nonsense'), []);
  });

  test('the output channel text starts with a readable summary and keeps the full report', () => {
    const text = logic.formatStatusReport(report);
    const [summary, json] = text.split('\n\n');
    assert.match(summary, /^reaper-lsp 0\.3\.0$/m);
    assert.match(summary, /completion order: copilot → openai → local/);
    assert.match(summary, /GitHub Copilot: signed in \(auth\.json\)/);
    assert.match(summary, /OpenAI: failing — HTTP 401/);
    assert.match(summary, /Claude: not configured: ANTHROPIC_API_KEY is not set/);
    assert.deepEqual(JSON.parse(json), report);
  });

  // The server's status model: each provider's `state` and `summary`, as `reaper-lsp status`
  // and `:Reaper status` show them.
  const model = {
    signIn: { github: { signedIn: false, source: '' } },
    providers: {
      ollama: {
        configured: true,
        used: true,
        state: 'paused',
        summary: 'paused for 9 s: Ollama is not running at http://localhost:11434',
        health: { state: 'paused', lastError: 'Ollama is not running at http://localhost:11434' },
      },
      openai: { configured: true, used: true, state: 'ready', summary: 'ready', health: {} },
      claude: {
        configured: false,
        used: true,
        state: 'unconfigured',
        summary: 'not configured: no API key',
        health: {},
      },
      llamacpp: { configured: true, used: false, state: 'unused', summary: 'not used', health: {} },
      copilot: {
        configured: true,
        used: true,
        state: 'down',
        summary: 'skipped for 30 s',
        health: {},
      },
    },
  };

  test("the status bar shows each provider in the server's words, and its state decides the icon", () => {
    const statuses = logic.statusesFromReport(model);
    assert.deepEqual(
      statuses.filter((s) => !logic.isSignInStatus(s)).map((s) => [s.provider, s.state]),
      [
        ['ollama', 'paused'],
        ['openai', 'ready'],
        ['copilot', 'down'],
      ],
    );
    const board = new logic.StatusBoard();
    board.setServer('running');
    board.replaceHealth(statuses.filter((s) => !logic.isSignInStatus(s)));
    const view = board.view();
    assert.equal(view.severity, 'error');
    assert.match(
      view.tooltip,
      /^Ollama: paused for 9 s: Ollama is not running at http:\/\/localhost:11434$/m,
    );
    assert.match(view.tooltip, /^OpenAI: ready$/m);
    assert.doesNotMatch(view.tooltip, /working|on\b/);
    // The next reading replaces the last one whole: a recovered provider reads ready again.
    board.replaceHealth([{ provider: 'ollama', state: 'ready', summary: 'ready' }]);
    assert.equal(board.view().severity, 'ok');
    assert.doesNotMatch(board.view().tooltip, /paused|Copilot: skipped/);
  });

  test("Show Status says each provider's summary, as reaper-lsp status does", () => {
    const [summary] = logic.formatStatusReport(model).split('\n\n');
    assert.match(
      summary,
      /^Ollama: paused for 9 s: Ollama is not running at http:\/\/localhost:11434$/m,
    );
    assert.match(summary, /^Claude: not configured: no API key$/m);
    assert.match(summary, /^llamacpp: not used$/m);
    assert.doesNotMatch(summary, /Ollama: (on|working|paused \(rate limited\))/);
  });

  test('an unexpected report is still shown whole', () => {
    assert.equal(logic.formatStatusReport([1, 2]), '[\n  1,\n  2\n]\n');
  });
});

describe('the completions toggle', () => {
  test('offers the language and workspace only with a document to take them from', () => {
    assert.deepEqual(
      toggle.toggleChoices().map((c) => c.scope),
      ['global'],
    );
    assert.deepEqual(
      toggle.toggleChoices('python').map((c) => [c.scope, c.label]),
      [
        ['global', 'Everywhere'],
        ['language', 'For python files'],
        ['workspace', 'In this workspace'],
      ],
    );
  });

  test('asks the server with the scope and the document', () => {
    assert.deepEqual(toggle.toggleArgument('global'), { scope: 'global' });
    assert.deepEqual(toggle.toggleArgument('language', 'file:///p/a.py'), {
      scope: 'language',
      textDocument: { uri: 'file:///p/a.py' },
    });
    assert.equal(toggle.isToggleScope('workspace'), true);
    assert.equal(toggle.isToggleScope('everything'), false);
  });

  test('shows what the server answered, and where', () => {
    const off = toggle.parseToggleResult({ scope: 'language', enabled: false, language: 'python' });
    assert.deepEqual(toggle.toggleMessage(off), {
      level: 'info',
      text: 'reaper-lsp completions are off for python files.',
    });
    const view = toggle.toggleView(true, off);
    assert.deepEqual([view.visible, view.text], [true, '$(circle-slash) AI']);
    assert.match(view.tooltip, /off for python files/);
    const on = toggle.parseToggleResult({ scope: 'global', enabled: true });
    assert.equal(toggle.toggleMessage(on).text, 'reaper-lsp completions are on.');
    assert.equal(toggle.toggleView(true, on).text, '$(check) AI');
    assert.throws(() => toggle.parseToggleResult({ scope: 'global' }), /no "enabled"/);
  });

  test('is hidden, and explains itself, with a server that lacks reaper.toggle', () => {
    const without = { capabilities: { executeCommandProvider: { commands: ['reaper.status'] } } };
    const with_ = { capabilities: { executeCommandProvider: { commands: ['reaper.toggle'] } } };
    assert.equal(toggle.serverHasCommand(without, 'reaper.toggle'), false);
    assert.equal(toggle.serverHasCommand(with_, 'reaper.toggle'), true);
    assert.equal(toggle.serverHasCommand(undefined, 'reaper.toggle'), false);
    assert.equal(toggle.toggleView(false).visible, false);
    assert.match(toggle.TOGGLE_UNSUPPORTED, /update the server/);
  });
});
