/**
 * The completions on/off toggle: the scopes offered, the server command's argument and answer
 * (`reaper.toggle {scope, textDocument?}` → `{scope, enabled, ...}`), and what its status bar
 * item shows — hidden when the server does not have the command. Nothing here imports `vscode`.
 */

import { isObject, text, UserMessage } from './logic';

export type ToggleScope = 'global' | 'language' | 'workspace';

export const TOGGLE_COMMAND = 'reaper.toggle';

/** The choices of the toggle, for a document of `language` (undefined: no document open, so
 * only the global switch applies). */
export function toggleChoices(language?: string): { scope: ToggleScope; label: string }[] {
  const choices: { scope: ToggleScope; label: string }[] = [
    { scope: 'global', label: 'Everywhere' },
  ];
  if (language !== undefined) {
    choices.push({ scope: 'language', label: `For ${language} files` });
    choices.push({ scope: 'workspace', label: 'In this workspace' });
  }
  return choices;
}

export function isToggleScope(value: unknown): value is ToggleScope {
  return value === 'global' || value === 'language' || value === 'workspace';
}

/** `reaper.toggle`'s argument: the scope, and the document it is about (its language, its
 * workspace folder). */
export function toggleArgument(
  scope: ToggleScope,
  uri?: string,
): { scope: ToggleScope; textDocument?: { uri: string } } {
  return uri === undefined ? { scope } : { scope, textDocument: { uri } };
}

export interface ToggleResult {
  scope: string;
  enabled: boolean;
  language?: string;
}

/** `reaper.toggle`'s answer `{scope, enabled, ...}`; throws naming what came back otherwise. */
export function parseToggleResult(result: unknown): ToggleResult {
  if (isObject(result) && typeof result.enabled === 'boolean') {
    return {
      scope: text(result.scope) ?? 'global',
      enabled: result.enabled,
      language: text(result.language),
    };
  }
  throw new Error(
    `the server's answer to reaper.toggle had no "enabled": ${JSON.stringify(result)}`,
  );
}

function where(result: ToggleResult): string {
  if (result.scope === 'language') {
    return result.language ? ` for ${result.language} files` : ' for this language';
  }
  return result.scope === 'workspace' ? ' in this workspace' : '';
}

/** The message after a toggle: what is now on or off, and where. */
export function toggleMessage(result: ToggleResult): UserMessage {
  return {
    level: 'info',
    text: `reaper-lsp completions are ${result.enabled ? 'on' : 'off'}${where(result)}.`,
  };
}

/** The toggle's status bar item: on or off (as the last toggle answered), or hidden when the
 * server has no `reaper.toggle`. */
export function toggleView(
  supported: boolean,
  last?: ToggleResult,
): { visible: boolean; text: string; tooltip: string } {
  if (!supported) {
    return { visible: false, text: '', tooltip: '' };
  }
  const on = last === undefined || last.enabled;
  const state = last === undefined ? 'on' : `${on ? 'on' : 'off'}${where(last)}`;
  return {
    visible: true,
    text: on ? '$(check) AI' : '$(circle-slash) AI',
    tooltip: `reaper-lsp completions: ${state}. Click to turn them on or off: everywhere, for this language, or in this workspace.`,
  };
}

/** Whether the server advertised `command` in its `initialize` answer. */
export function serverHasCommand(initializeResult: unknown, command: string): boolean {
  if (!isObject(initializeResult) || !isObject(initializeResult.capabilities)) {
    return false;
  }
  const provider = initializeResult.capabilities.executeCommandProvider;
  return (
    isObject(provider) && Array.isArray(provider.commands) && provider.commands.includes(command)
  );
}

/** What to say when the toggle is asked of a server that lacks it. */
export const TOGGLE_UNSUPPORTED =
  'This reaper-lsp has no reaper.toggle command: update the server to turn completions on and off from VS Code (or set "enabled" under [completion] in reaper.toml).';
