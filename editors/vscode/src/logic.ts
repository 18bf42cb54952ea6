/**
 * The extension's decisions that need no editor: what the status bar says for the server's
 * `reaper/status` notifications, what the sign-in prompt says, which message a command's outcome
 * deserves, and the shapes sent to the server. Nothing here imports `vscode`, so node's own test
 * runner checks it without an editor.
 */

export type Severity = 'ok' | 'info' | 'warning' | 'error';

/** One `reaper/status` notification: `{provider, state, message?, user?}`; or one provider of
 * the server's status model (`reaper.status`: `state` and `summary`, the words every front end
 * shows). */
export interface ProviderStatus {
  provider: string;
  state: string;
  message?: string;
  user?: string;
  summary?: string;
}

export interface StatusBarView {
  text: string;
  tooltip: string;
  severity: Severity;
}

/** A message for the user; `undefined` where saying nothing is right. */
export interface UserMessage {
  level: 'info' | 'warning' | 'error';
  text: string;
}

export type ServerState = 'starting' | 'running' | 'stopped' | 'failed';

export const SIGN_IN_PROVIDERS = [
  {
    provider: 'copilot',
    label: 'GitHub Copilot',
    description: 'enter a code on github.com',
  },
  {
    provider: 'google',
    label: 'Google',
    description: 'for Claude on Vertex AI; sign in in the browser',
  },
] as const;

export type SignInProvider = (typeof SIGN_IN_PROVIDERS)[number]['provider'];

/** JSON-RPC's "request cancelled": the user stopped waiting, which needs no message. */
export const REQUEST_CANCELLED = -32800;

const PROVIDER_LABELS: Record<string, string> = {
  copilot: 'GitHub Copilot',
  github: 'GitHub Copilot',
  google: 'Google',
  openai: 'OpenAI',
  claude: 'Claude',
  ollama: 'Ollama',
  local: 'offline engine',
  offline: 'offline engine',
};

export function providerLabel(provider: string): string {
  return PROVIDER_LABELS[provider] ?? provider;
}

/** The server's provider states (providers/chain.py plus the sign-in states), in words. */
const STATES: Record<string, { label: string; severity: Severity }> = {
  healthy: { label: 'working', severity: 'ok' },
  signedIn: { label: 'signed in', severity: 'ok' },
  signedOut: { label: 'signed out', severity: 'info' },
  unknown: { label: 'not used yet', severity: 'info' },
  failing: { label: 'failing', severity: 'warning' },
  paused: { label: 'paused (rate limited)', severity: 'warning' },
  'half-open': { label: 'retrying after errors', severity: 'warning' },
  open: { label: 'skipped after repeated errors', severity: 'error' },
};

/** The server's status model (services/status.py): the state of each provider as `reaper-lsp
 * status`, `:Reaper status` and this extension all show it. */
const MODEL_SEVERITY: Record<string, Severity> = {
  ready: 'ok',
  unconfigured: 'info',
  paused: 'warning',
  failing: 'warning',
  down: 'error',
};

const SIGN_IN_STATES = new Set(['signedIn', 'signedOut']);

/** Whether a `reaper/status` notification is about an account (else about a provider's health,
 * which the extension reads again from the status model). */
export function isSignInStatus(status: ProviderStatus): boolean {
  return SIGN_IN_STATES.has(status.state);
}

const RANK: Record<Severity, number> = { ok: 0, info: 1, warning: 2, error: 3 };

export function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A notification's params, or `undefined` when they are not a status at all. */
export function parseStatus(params: unknown): ProviderStatus | undefined {
  if (!isObject(params)) {
    return undefined;
  }
  const provider = text(params.provider);
  const state = text(params.state);
  if (provider === undefined || state === undefined) {
    return undefined;
  }
  return { provider, state, message: text(params.message), user: text(params.user) };
}

/** One tooltip line and how worried it should make the user. */
export function describeStatus(status: ProviderStatus): { line: string; severity: Severity } {
  if (status.summary !== undefined) {
    const severity = MODEL_SEVERITY[status.state] ?? 'info';
    return { line: `${providerLabel(status.provider)}: ${status.summary}`, severity };
  }
  const known = STATES[status.state] ?? { label: status.state, severity: 'info' as Severity };
  let label = known.label;
  let severity = known.severity;
  if (status.state === 'signedIn' && status.user) {
    label = `signed in as ${status.user}`;
  }
  // A sign-out that carries a reason was not the user's doing (a failed or revoked sign-in).
  if (status.state === 'signedOut' && status.message) {
    severity = 'warning';
  }
  const reason = status.message && status.state !== 'signedIn' ? ` — ${status.message}` : '';
  return { line: `${providerLabel(status.provider)}: ${label}${reason}`, severity };
}

/** What the status bar item shows: the server's own state first, then the worst provider. */
export class StatusBoard {
  /** Keyed `provider/account` for sign-in states and `provider/health` for the rest: Copilot
   * has both, and a working Copilot must not hide whose account it is (nor the reverse). */
  private readonly entries = new Map<string, ProviderStatus>();
  private server: ServerState = 'starting';
  private serverProblem = '';

  /** Takes one notification; says whether anything the user sees changed. */
  update(status: ProviderStatus): boolean {
    const key = `${status.provider}/${SIGN_IN_STATES.has(status.state) ? 'account' : 'health'}`;
    const before = this.entries.get(key);
    this.entries.set(key, status);
    return JSON.stringify(before) !== JSON.stringify(status);
  }

  /** The providers' states from a `reaper.status` report: they replace every health entry
   * (a provider the report leaves out has nothing to say). Says whether anything changed. */
  replaceHealth(statuses: ProviderStatus[]): boolean {
    const before = this.view().tooltip;
    for (const key of [...this.entries.keys()]) {
      if (key.endsWith('/health')) {
        this.entries.delete(key);
      }
    }
    for (const status of statuses) {
      this.update(status);
    }
    return this.view().tooltip !== before;
  }

  setServer(state: ServerState, problem = ''): void {
    this.server = state;
    this.serverProblem = problem;
    if (state === 'starting') {
      // A new server process knows nothing of the old one's states.
      this.entries.clear();
    }
  }

  /** Whether the account is signed in, as last reported; undefined if nothing was. */
  signedIn(provider: string): boolean | undefined {
    const state = this.entries.get(`${provider}/account`)?.state;
    return state === undefined ? undefined : state === 'signedIn';
  }

  view(): StatusBarView {
    const footer = 'Click for details.';
    if (this.server === 'starting') {
      return {
        text: '$(loading~spin) Reaper',
        tooltip: 'reaper-lsp is starting…',
        severity: 'info',
      };
    }
    if (this.server !== 'running') {
      const why = this.serverProblem || 'the server is not running';
      return {
        text: '$(error) Reaper',
        tooltip: `reaper-lsp: ${why}\nRun "Reaper: Restart Server" after fixing it.`,
        severity: 'error',
      };
    }
    let worst: Severity = 'ok';
    const lines: string[] = [];
    const sorted = [...this.entries.entries()].sort(([a], [b]) => a.localeCompare(b));
    for (const [, status] of sorted) {
      const { line, severity } = describeStatus(status);
      lines.push(line);
      if (RANK[severity] > RANK[worst]) {
        worst = severity;
      }
    }
    const icon = worst === 'error' ? '$(error)' : worst === 'warning' ? '$(warning)' : '$(sparkle)';
    const body = lines.length > 0 ? lines.join('\n') : 'No provider has reported yet.';
    return { text: `${icon} Reaper`, tooltip: `reaper-lsp\n${body}\n${footer}`, severity: worst };
  }
}

export type SignInStart =
  | {
      kind: 'device';
      provider: string;
      userCode: string;
      verificationUri: string;
      expiresIn?: number;
    }
  | { kind: 'browser'; provider: string; authorizeUrl: string };

/** `reaper.signIn`'s result; throws with a readable reason when the server answered nonsense. */
export function parseSignInStart(provider: string, result: unknown): SignInStart {
  if (isObject(result)) {
    const userCode = text(result.userCode);
    const verificationUri = text(result.verificationUri);
    if (userCode !== undefined && verificationUri !== undefined) {
      const expiresIn = typeof result.expiresIn === 'number' ? result.expiresIn : undefined;
      return { kind: 'device', provider, userCode, verificationUri, expiresIn };
    }
    const authorizeUrl = text(result.authorizeUrl);
    if (authorizeUrl !== undefined) {
      return { kind: 'browser', provider, authorizeUrl };
    }
  }
  throw new Error(
    `the server's answer to sign-in had neither a user code nor a sign-in page: ${JSON.stringify(result)}`,
  );
}

export interface SignInPrompt {
  message: string;
  detail: string;
  action: string;
  /** Put on the clipboard before the page opens (the device code), if any. */
  copy?: string;
  url: string;
  /** The progress notification's title while the server waits for the browser. */
  waiting: string;
}

function minutes(seconds: number): string {
  const m = Math.max(1, Math.round(seconds / 60));
  return m === 1 ? '1 minute' : `${m} minutes`;
}

export function signInPrompt(start: SignInStart): SignInPrompt {
  const name = providerLabel(start.provider);
  if (start.kind === 'device') {
    const expiry =
      start.expiresIn !== undefined ? ` The code expires in ${minutes(start.expiresIn)}.` : '';
    return {
      message: `Sign in to ${name} with the code ${start.userCode}`,
      detail: `Copy the code, open ${start.verificationUri} and paste it there.${expiry}`,
      action: 'Copy code and open',
      copy: start.userCode,
      url: start.verificationUri,
      waiting: `Waiting for ${name} sign-in (code ${start.userCode})…`,
    };
  }
  return {
    message: `Sign in to ${name} in your browser`,
    detail: 'Choose your account and allow access; the page tells you when you can come back.',
    action: 'Open sign-in page',
    url: start.authorizeUrl,
    waiting: `Waiting for ${name} sign-in in the browser…`,
  };
}

/** The message of a JSON-RPC error (or any thrown thing), without a stack. */
export function errorText(error: unknown): string {
  if (isObject(error) || error instanceof Error) {
    const message = text((error as { message?: unknown }).message);
    if (message !== undefined) {
      return message;
    }
  }
  return text(error) ?? 'unknown error';
}

function errorCode(error: unknown): number | undefined {
  const code =
    isObject(error) || error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

/** What to tell the user once `reaper.signInConfirm` ended, with its result or its error. */
export function signInOutcome(
  provider: string,
  outcome: { result: unknown } | { error: unknown },
): UserMessage | undefined {
  const name = providerLabel(provider);
  if ('error' in outcome) {
    if (errorCode(outcome.error) === REQUEST_CANCELLED) {
      return undefined;
    }
    return { level: 'error', text: `${name}: ${errorText(outcome.error)}` };
  }
  const user = isObject(outcome.result) ? text(outcome.result.user) : undefined;
  return {
    level: 'info',
    text: user ? `Signed in to ${name} as ${user}.` : `Signed in to ${name}.`,
  };
}

/** What to tell the user after `reaper.signOut`. */
export function signOutOutcome(
  provider: string,
  wasSignedIn: boolean | undefined,
  outcome: { result: unknown } | { error: unknown },
): UserMessage {
  const name = providerLabel(provider);
  if ('error' in outcome) {
    return { level: 'error', text: `Signing out of ${name} failed: ${errorText(outcome.error)}` };
  }
  // "Signed out" after never signing in would suggest there had been something to undo.
  if (wasSignedIn === false) {
    return { level: 'info', text: `You were not signed in to ${name}.` };
  }
  return { level: 'info', text: `Signed out of ${name}.` };
}

/** Why the server did not start, with what to do about it. */
export function startFailureMessage(serverPath: string, error: unknown): string {
  const code =
    isObject(error) || error instanceof Error ? (error as { code?: unknown }).code : undefined;
  if (code === 'ENOENT' || /ENOENT/.test(errorText(error))) {
    return (
      `reaper-lsp could not start: "${serverPath}" was not found. Install reaper-lsp (see the ` +
      'project README) or set "reaper.serverPath" to the full path of the executable.'
    );
  }
  return `reaper-lsp could not start (${serverPath}): ${errorText(error)}`;
}

/** Statuses a `reaper.status` report implies, to fill the status bar before any notification. */
export function statusesFromReport(report: unknown): ProviderStatus[] {
  const out: ProviderStatus[] = [];
  if (!isObject(report)) {
    return out;
  }
  if (isObject(report.signIn)) {
    for (const [account, info] of Object.entries(report.signIn)) {
      if (isObject(info) && typeof info.signedIn === 'boolean') {
        const provider = account === 'github' ? 'copilot' : account;
        out.push({
          provider,
          state: info.signedIn ? 'signedIn' : 'signedOut',
          user: text(info.user),
        });
      }
    }
  }
  if (isObject(report.providers)) {
    for (const [provider, info] of Object.entries(report.providers)) {
      const status = isObject(info) ? providerStatus(provider, info) : undefined;
      if (status !== undefined) {
        out.push(status);
      }
    }
  }
  return out;
}

/** One provider of a report as the status bar shows it: the model's `state` and `summary`
 * (an older server without them: its health); undefined for one nobody asked for. */
function providerStatus(
  provider: string,
  info: Record<string, unknown>,
): ProviderStatus | undefined {
  const state = text(info.state);
  const summary = text(info.summary);
  if (state !== undefined && summary !== undefined) {
    // A provider in no chain, or one nobody set up, is a choice, not something to flag.
    return state === 'unused' || state === 'unconfigured'
      ? undefined
      : { provider, state, summary };
  }
  if (info.configured === false) {
    return undefined;
  }
  const health = isObject(info.health) ? info.health : {};
  const old = text(health.state);
  return old !== undefined && old !== 'unknown'
    ? { provider, state: old, message: text(health.lastError) }
    : undefined;
}

/** `reaper.status` for the output channel: a short summary, then the whole report. */
export function formatStatusReport(report: unknown): string {
  const lines: string[] = [];
  if (isObject(report)) {
    if (text(report.version)) {
      lines.push(`reaper-lsp ${report.version as string}`);
    }
    if (text(report.configFile)) {
      lines.push(`config file: ${report.configFile as string}`);
    }
    if (Array.isArray(report.completionChain)) {
      lines.push(`completion order: ${report.completionChain.join(' → ')}`);
    }
    if (isObject(report.signIn)) {
      for (const [account, info] of Object.entries(report.signIn)) {
        if (isObject(info)) {
          const where = text(info.source) ? ` (${info.source as string})` : '';
          const state = info.signedIn ? 'signed in' : 'signed out';
          lines.push(`${providerLabel(account)}: ${state}${where}`);
        }
      }
    }
    if (isObject(report.providers)) {
      for (const [provider, info] of Object.entries(report.providers)) {
        if (!isObject(info)) {
          continue;
        }
        const summary = text(info.summary);
        if (summary !== undefined) {
          lines.push(`${providerLabel(provider)}: ${summary}`); // as \`reaper-lsp status\` says it
          continue;
        }
        if (info.configured === false) {
          const why = text(info.reason) ? `: ${info.reason as string}` : '';
          lines.push(`${providerLabel(provider)}: not configured${why}`);
          continue;
        }
        const health = isObject(info.health) ? info.health : {};
        const described = describeStatus({
          provider,
          state: text(health.state) ?? 'unknown',
          message: text(health.lastError),
        });
        lines.push(described.line);
      }
    }
  }
  const summary = lines.length > 0 ? `${lines.join('\n')}\n\n` : '';
  return `${summary}${JSON.stringify(report, null, 2)}\n`;
}

/** `~/bin/reaper-lsp` as a path the OS can spawn (no shell expands it for us). */
export function expandHome(serverPath: string, home: string): string {
  if (serverPath === '~') {
    return home;
  }
  if (serverPath.startsWith('~/')) {
    return home.replace(/\/+$/, '') + serverPath.slice(1);
  }
  return serverPath;
}
