/** package.json, the part of the extension VS Code reads before running any of its code. */

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const settings = manifest.contributes.configuration.properties;

test('VS Code loads the compiled entry point after start-up, not on demand of a language', () => {
  assert.equal(manifest.main, './out/extension.js');
  assert.ok(fs.existsSync(path.join(ROOT, manifest.main)), 'out/extension.js was not built');
  assert.deepEqual(manifest.activationEvents, ['onStartupFinished']);
});

test('the palette lists exactly the commands the extension registers', () => {
  const ids = manifest.contributes.commands.map((c: { command: string }) => c.command);
  assert.deepEqual(ids, [
    'reaper.signIn',
    'reaper.signOut',
    'reaper.showStatus',
    'reaper.restart',
    'reaper.toggle',
  ]);
  const source = fs.readFileSync(path.join(ROOT, 'out', 'extension.js'), 'utf8');
  for (const id of ids) {
    assert.ok(source.includes(`registerCommand('${id}'`), `${id} is never registered`);
  }
});

test('a workspace cannot choose what runs or where credentials go', () => {
  // .vscode/settings.json travels with a cloned repository; these settings are user-only.
  for (const name of ['reaper.serverPath', 'reaper.serverArgs', 'reaper.settings']) {
    assert.equal(settings[name].scope, 'machine', name);
    assert.ok(manifest.capabilities.untrustedWorkspaces.restrictedConfigurations.includes(name));
  }
});

test('the defaults start the server the way editors are told to', () => {
  assert.equal(settings['reaper.serverPath'].default, 'reaper-lsp');
  assert.deepEqual(settings['reaper.serverArgs'].default, ['serve', '--stdio']);
  assert.deepEqual(settings['reaper.settings'].default, {});
});

test('a fresh clone packages: vsce builds the entry point itself', () => {
  // `npm ci && npm run package` with no out/ yet: vsce runs vscode:prepublish first.
  assert.equal(manifest.scripts['vscode:prepublish'], 'npm run build');
});
