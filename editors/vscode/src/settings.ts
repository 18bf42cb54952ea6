/**
 * What of `reaper.settings` the extension sends the server: the sections the server takes from
 * an editor (completion, chat, privacy), never an endpoint, a key or a sign-in setting — those
 * are read from the user's reaper.toml and environment only, where a cloned repository cannot
 * reach. Nothing here imports `vscode`.
 */

import { isObject } from './logic';

/** The sections of reaper.toml the server takes from an editor; endpoints, keys, key variable
 * names and sign-in come from the user's reaper.toml and environment only. */
export const EDITOR_SECTIONS = ['completion', 'chat', 'privacy'];

function isSecretKey(name: string): boolean {
  // `max_tokens` is a number of tokens, not one.
  return name === 'api_key' || name === 'client_secret' || /(^|_)token$/.test(name);
}

/** Dotted keys of everything in `value` under `prefix`, for saying what was left out. */
function leafKeys(prefix: string, value: unknown): string[] {
  if (!isObject(value)) {
    return [prefix];
  }
  return Object.entries(value).flatMap(([key, inner]) => leafKeys(`${prefix}.${key}`, inner));
}

/** `reaper.settings` as the server may take it from an editor — the completion, chat and privacy
 * sections, never a key — and the dotted keys left out. */
export function editorSettings(settings: unknown): {
  settings: Record<string, unknown>;
  ignored: string[];
} {
  const kept: Record<string, unknown> = {};
  const ignored: string[] = [];
  const strip = (prefix: string, value: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      if (isSecretKey(key)) {
        ignored.push(...leafKeys(`${prefix}.${key}`, inner));
      } else {
        out[key] = isObject(inner) ? strip(`${prefix}.${key}`, inner) : inner;
      }
    }
    return out;
  };
  for (const [section, value] of Object.entries(isObject(settings) ? settings : {})) {
    if (EDITOR_SECTIONS.includes(section) && isObject(value)) {
      kept[section] = strip(section, value);
    } else {
      ignored.push(...leafKeys(section, value));
    }
  }
  return { settings: kept, ignored };
}

/** What to log when `reaper.settings` holds what the server does not take from an editor. */
export function ignoredSettingsWarning(ignored: string[]): string | undefined {
  if (ignored.length === 0) {
    return undefined;
  }
  return (
    `reaper.settings: not sent to the server: ${ignored.join(', ')}. Only the ` +
    `${EDITOR_SECTIONS.join(', ')} sections are; endpoints, API keys, key variable names and ` +
    'sign-in settings go in your reaper.toml (~/.config/reaper-lsp/reaper.toml, or ' +
    '$REAPER_CONFIG) and keys in the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY), which ' +
    'a cloned repository cannot change.'
  );
}

/**
 * The `workspace/didChangeConfiguration` settings for the `reaper.settings` object, in the
 * nesting of reaper.toml under `reaper`: the sections an editor may set only (see
 * `editorSettings`), so neither the editor-only settings (serverPath, serverArgs) nor an
 * endpoint or key travels with it.
 */
export function settingsPayload(settings: unknown): { reaper: Record<string, unknown> } {
  return { reaper: editorSettings(settings).settings };
}
