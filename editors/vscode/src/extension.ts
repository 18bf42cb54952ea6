/**
 * The VS Code side of reaper-lsp: starts the server over stdio, lets the language client provide
 * ghost text (`textDocument/inlineCompletion`) and menu completion, and adds the sign-in, sign-out,
 * status, restart and on/off commands, with a status bar item showing the server's status model
 * (read again whenever a `reaper/status` notification says something changed) and one for the
 * on/off toggle.
 */

import * as os from 'os';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  DynamicFeature,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ResponseError,
  State,
  StaticFeature,
} from 'vscode-languageclient/node';

import * as logic from './logic';
import { ignoredSettingsWarning, editorSettings, settingsPayload } from './settings';
import * as toggle from './toggle';

/**
 * The language client, minus its habit of registering every command the server advertises as a
 * VS Code command: the server's `reaper.signIn` and `reaper.signOut` share their names with this
 * extension's own commands, and a second `registerCommand` for a name throws and stops the client.
 * The extension sends `workspace/executeCommand` itself.
 */
class ReaperClient extends LanguageClient {
  override registerFeature(feature: StaticFeature | DynamicFeature<unknown>): void {
    if (
      DynamicFeature.is(feature) &&
      feature.registrationType.method === ExecuteCommandRequest.method
    ) {
      return;
    }
    super.registerFeature(feature);
  }

  /** A server that cannot start gets the extension's own message, which says what to install or
   * set, instead of a second one from the client ("couldn't create connection to server"). */
  override error(
    message: string,
    data?: unknown,
    showNotification: boolean | 'force' = true,
  ): void {
    const replaced = message.endsWith("couldn't create connection to server.");
    super.error(message, data, replaced ? false : showNotification);
  }
}

class Reaper implements vscode.Disposable {
  private client: ReaperClient | undefined;
  private readonly board = new logic.StatusBoard();
  private readonly item: vscode.StatusBarItem;
  private readonly toggleItem: vscode.StatusBarItem;
  /** Whether the running server has `reaper.toggle`, and what it last answered. */
  private toggleSupported = false;
  private lastToggle: toggle.ToggleResult | undefined;
  /** A `reaper.status` read in flight, and whether another was asked for meanwhile. */
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private readonly log: vscode.LogOutputChannel;
  private readonly report: vscode.OutputChannel;
  /** While our own sign-in prompt is up, the server's request to open the page is ours to do. */
  private signingIn = false;

  constructor() {
    this.item = vscode.window.createStatusBarItem(
      'reaper.status',
      vscode.StatusBarAlignment.Right,
      100,
    );
    this.item.name = 'reaper-lsp';
    this.item.command = 'reaper.showStatus';
    this.toggleItem = vscode.window.createStatusBarItem(
      'reaper.toggle',
      vscode.StatusBarAlignment.Right,
      99,
    );
    this.toggleItem.name = 'reaper-lsp completions on/off';
    this.toggleItem.command = 'reaper.toggle';
    this.log = vscode.window.createOutputChannel('reaper-lsp', { log: true });
    this.report = vscode.window.createOutputChannel('reaper-lsp status');
    this.render();
    this.item.show();
  }

  async start(): Promise<void> {
    const config = vscode.workspace.getConfiguration('reaper');
    const command = logic.expandHome(
      config.get<string>('serverPath') || 'reaper-lsp',
      os.homedir(),
    );
    const args = config.get<string[]>('serverArgs') ?? ['serve', '--stdio'];
    // No `transport`: with TransportKind.stdio the client would append its own `--stdio`.
    const client = new ReaperClient('reaper-lsp', 'reaper-lsp', { command, args }, this.options());
    this.watch(client);
    this.client = client;
    this.toggleSupported = false; // known once this server has answered `initialize`
    this.board.setServer('starting');
    this.render();
    try {
      await client.start();
    } catch (error) {
      if (this.client !== client) {
        return; // replaced while starting: its successor speaks for the server now
      }
      const message = logic.startFailureMessage(command, error);
      this.board.setServer('failed', message);
      this.render();
      void vscode.window.showErrorMessage(message, 'Open Settings').then((choice) => {
        if (choice === 'Open Settings') {
          void vscode.commands.executeCommand('workbench.action.openSettings', 'reaper.serverPath');
        }
      });
      return;
    }
    if (this.client !== client) {
      return;
    }
    this.board.setServer('running');
    this.toggleSupported = toggle.serverHasCommand(client.initializeResult, toggle.TOGGLE_COMMAND);
    this.lastToggle = undefined;
    this.render();
    // Fill the status bar now rather than at the first change the server reports.
    await this.refreshStatus();
  }

  /** Read the status model again (`reaper.status`) and show it; calls while one read is in
   * flight are folded into one more read after it. */
  refreshStatus(): Promise<void> {
    if (this.refreshing !== undefined) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    const read = async (): Promise<void> => {
      do {
        this.refreshAgain = false;
        try {
          const statuses = logic.statusesFromReport(await this.execute('reaper.status'));
          for (const status of statuses.filter(logic.isSignInStatus)) {
            this.board.update(status);
          }
          this.board.replaceHealth(statuses.filter((status) => !logic.isSignInStatus(status)));
          this.render();
        } catch (error) {
          this.log.warn(`reaper.status failed: ${logic.errorText(error)}`);
        }
      } while (this.refreshAgain);
    };
    this.refreshing = read().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /**
   * Inline completion needs nothing here: vscode-languageclient 10 registers VS Code's
   * InlineCompletionItemProvider when the server advertises `inlineCompletionProvider`. (9.x had
   * it as a proposed feature sending the pre-3.18 trigger kinds, 0 and 1, which the server
   * rejects or misreads.)
   */
  private options(): LanguageClientOptions {
    return {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      initializationOptions: this.settings().reaper,
      outputChannel: this.log,
      middleware: {
        provideCompletionItem: (document, position, context, token, next) =>
          vscode.workspace.getConfiguration('reaper').get<boolean>('menuCompletion')
            ? next(document, position, context, token)
            : undefined,
        window: {
          showDocument: async (params, token, next) => {
            if (this.signingIn && params.external) {
              return { success: true }; // the prompt opens it once the code is on the clipboard
            }
            const result = await next(params, token);
            return result instanceof ResponseError ? { success: false } : result;
          },
        },
      },
    };
  }

  /** Feeds the status bar from the server's notifications and the client's own state. */
  private watch(client: ReaperClient): void {
    client.onNotification('reaper/status', (params: unknown) => {
      const status = logic.parseStatus(params);
      if (status === undefined) {
        return;
      }
      if (logic.isSignInStatus(status)) {
        if (this.board.update(status)) {
          this.render();
        }
        return;
      }
      // A provider's state changed: show it in the server's own words (its status model), the
      // same as `reaper-lsp status` and "Show Status" say it.
      void this.refreshStatus();
    });
    // The client restarts a server that crashed by itself; the status bar follows it there too.
    client.onDidChangeState((event) => {
      if (this.client !== client) {
        return;
      }
      if (event.newState === State.Stopped) {
        this.board.setServer('stopped', 'the server stopped; see the "reaper-lsp" output');
        this.toggleSupported = false;
      } else {
        this.board.setServer(event.newState === State.Running ? 'running' : 'starting');
      }
      this.render();
    });
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) {
      return;
    }
    if (client.state === State.Starting) {
      // A restart while this client still starts (two settings changes in a row): the client
      // cannot be stopped mid-start, and left alone its server would run on, talked to by nobody.
      await client.start().catch(() => undefined);
    }
    if (client.isRunning()) {
      await client.stop();
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** `workspace/didChangeConfiguration` with the `reaper` section as the server reads it. */
  async sendSettings(): Promise<void> {
    const client = this.client;
    if (client === undefined || !client.isRunning()) {
      return;
    }
    const settings = this.settings();
    await client.sendNotification(DidChangeConfigurationNotification.type, { settings });
  }

  /** `reaper.settings` as sent to the server, saying in the log what is left out and why. */
  private settings(): { reaper: Record<string, unknown> } {
    const value = vscode.workspace.getConfiguration('reaper').get('settings');
    const warning = ignoredSettingsWarning(editorSettings(value).ignored);
    if (warning !== undefined) {
      this.log.warn(warning);
    }
    return settingsPayload(value);
  }

  /** Turn completions on or off: everywhere, for the active document's language, or in its
   * workspace (`scope` from a keybinding's argument, else asked). */
  async toggle(requested?: unknown): Promise<void> {
    if (!this.toggleSupported) {
      void vscode.window.showWarningMessage(toggle.TOGGLE_UNSUPPORTED);
      return;
    }
    const document = vscode.window.activeTextEditor?.document;
    let scope: toggle.ToggleScope | undefined = toggle.isToggleScope(requested)
      ? requested
      : undefined;
    if (scope === undefined) {
      const picked = await vscode.window.showQuickPick(toggle.toggleChoices(document?.languageId), {
        placeHolder: 'Turn reaper-lsp completions on or off where?',
      });
      scope = picked?.scope;
    }
    if (scope === undefined) {
      return;
    }
    try {
      const argument = toggle.toggleArgument(scope, document?.uri.toString());
      this.lastToggle = toggle.parseToggleResult(
        await this.execute(toggle.TOGGLE_COMMAND, argument),
      );
    } catch (error) {
      void vscode.window.showErrorMessage(`reaper-lsp: ${logic.errorText(error)}`);
      return;
    }
    this.render();
    this.show(toggle.toggleMessage(this.lastToggle));
  }

  async signIn(requested?: unknown): Promise<void> {
    const provider = await this.pickProvider(requested, 'Sign in to');
    if (provider === undefined) {
      return;
    }
    this.signingIn = true;
    let start: logic.SignInStart;
    try {
      start = logic.parseSignInStart(provider, await this.execute('reaper.signIn', { provider }));
    } catch (error) {
      this.signingIn = false;
      void vscode.window.showErrorMessage(`Sign-in could not start: ${logic.errorText(error)}`);
      return;
    }
    const prompt = logic.signInPrompt(start);
    try {
      const choice = await vscode.window.showInformationMessage(
        prompt.message,
        { modal: true, detail: prompt.detail },
        prompt.action,
      );
      if (choice !== prompt.action) {
        return; // cancelled: the server's pending sign-in simply expires
      }
      if (prompt.copy !== undefined) {
        await vscode.env.clipboard.writeText(prompt.copy);
      }
      await vscode.env.openExternal(vscode.Uri.parse(prompt.url));
    } finally {
      this.signingIn = false;
    }
    const outcome = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: prompt.waiting, cancellable: true },
      async (_progress, token) => {
        try {
          return { result: await this.execute('reaper.signInConfirm', { provider }, token) };
        } catch (error) {
          return { error };
        }
      },
    );
    this.show(logic.signInOutcome(provider, outcome));
  }

  async signOut(requested?: unknown): Promise<void> {
    const provider = await this.pickProvider(requested, 'Sign out of');
    if (provider === undefined) {
      return;
    }
    const wasSignedIn = this.board.signedIn(provider);
    let outcome: { result: unknown } | { error: unknown };
    try {
      outcome = { result: await this.execute('reaper.signOut', { provider }) };
    } catch (error) {
      outcome = { error };
    }
    this.show(logic.signOutOutcome(provider, wasSignedIn, outcome));
  }

  async showStatus(): Promise<void> {
    this.report.clear();
    try {
      this.report.append(logic.formatStatusReport(await this.execute('reaper.status')));
    } catch (error) {
      this.report.appendLine(`reaper-lsp: ${logic.errorText(error)}`);
      this.report.appendLine(this.board.view().tooltip);
    }
    this.report.show(true);
  }

  dispose(): void {
    this.item.dispose();
    this.toggleItem.dispose();
    this.log.dispose();
    this.report.dispose();
  }

  private async execute(
    command: string,
    argument?: object,
    token?: vscode.CancellationToken,
  ): Promise<unknown> {
    const client = this.client;
    if (client === undefined || !client.isRunning()) {
      throw new Error(
        'the server is not running (see the "reaper-lsp" output, then "Reaper: Restart Server")',
      );
    }
    const params = { command, arguments: argument === undefined ? [] : [argument] };
    return token === undefined
      ? client.sendRequest(ExecuteCommandRequest.type, params)
      : client.sendRequest(ExecuteCommandRequest.type, params, token);
  }

  private async pickProvider(requested: unknown, verb: string): Promise<string | undefined> {
    const known = logic.SIGN_IN_PROVIDERS.map((p) => p.provider as string);
    if (typeof requested === 'string' && known.includes(requested)) {
      return requested; // from a keybinding or another extension: `{"args": "google"}`
    }
    const picked = await vscode.window.showQuickPick(
      logic.SIGN_IN_PROVIDERS.map((p) => ({
        label: p.label,
        description: p.description,
        provider: p.provider,
      })),
      { placeHolder: `${verb} which account?` },
    );
    return picked?.provider;
  }

  private show(message: logic.UserMessage | undefined): void {
    if (message === undefined) {
      return;
    }
    const show =
      message.level === 'error'
        ? vscode.window.showErrorMessage
        : message.level === 'warning'
          ? vscode.window.showWarningMessage
          : vscode.window.showInformationMessage;
    void show(message.text);
  }

  private render(): void {
    const switchView = toggle.toggleView(this.toggleSupported, this.lastToggle);
    this.toggleItem.text = switchView.text;
    this.toggleItem.tooltip = switchView.tooltip;
    if (switchView.visible) {
      this.toggleItem.show();
    } else {
      this.toggleItem.hide();
    }
    const view = this.board.view();
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }
}

let reaper: Reaper | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const extension = new Reaper();
  reaper = extension;
  context.subscriptions.push(
    extension,
    vscode.commands.registerCommand('reaper.signIn', (provider?: unknown) =>
      extension.signIn(provider),
    ),
    vscode.commands.registerCommand('reaper.signOut', (provider?: unknown) =>
      extension.signOut(provider),
    ),
    vscode.commands.registerCommand('reaper.showStatus', () => extension.showStatus()),
    vscode.commands.registerCommand('reaper.restart', () => extension.restart()),
    vscode.commands.registerCommand('reaper.toggle', (scope?: unknown) => extension.toggle(scope)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (
        event.affectsConfiguration('reaper.serverPath') ||
        event.affectsConfiguration('reaper.serverArgs')
      ) {
        void extension.restart(); // a different executable needs a new process
      } else if (event.affectsConfiguration('reaper.settings')) {
        void extension.sendSettings();
      }
    }),
  );
  await extension.start();
}

export async function deactivate(): Promise<void> {
  await reaper?.stop();
  reaper = undefined;
}
