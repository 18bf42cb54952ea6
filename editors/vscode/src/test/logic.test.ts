/** The extension's editor-free logic: status bar, sign-in prompts, messages, payloads. */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import * as logic from '../logic';

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
    const settings = { completion: { providers: ['openai', 'offline'] } };
    assert.deepEqual(logic.settingsPayload(settings), { reaper: settings });
    assert.deepEqual(logic.settingsPayload(undefined), { reaper: {} });
    assert.deepEqual(logic.settingsPayload(['x']), { reaper: {} });
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

  test('an unexpected report is still shown whole', () => {
    assert.equal(logic.formatStatusReport([1, 2]), '[\n  1,\n  2\n]\n');
  });
});
