/**
 * A stand-in for the part of VS Code's extension API that this extension and
 * vscode-languageclient call, so the real extension and the real client run in node against the
 * real server (VS Code itself cannot run here). It records what a user would see (messages,
 * status bar, output, clipboard, opened pages) and answers prompts from a script. Any member it
 * does not implement is an inert stand-in that swallows calls, so an unexpected use shows up as a
 * missing effect in a test, never as a fake answer.
 */

import Module from 'node:module';

type Listener<T> = (value: T) => unknown;

export class Disposable {
  constructor(private readonly onDispose?: () => void) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((item) => item?.dispose?.()));
  }
  dispose(): void {
    this.onDispose?.();
  }
}

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  readonly event = (listener: Listener<T>, thisArg?: unknown, disposables?: Disposable[]) => {
    const bound: Listener<T> = (value) => listener.call(thisArg, value);
    this.listeners.push(bound);
    const disposable = new Disposable(() => {
      this.listeners = this.listeners.filter((l) => l !== bound);
    });
    disposables?.push(disposable);
    return disposable;
  };
  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      listener(value);
    }
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query: string,
    readonly fragment: string,
    private readonly text: string,
  ) {}
  static parse(value: string): Uri {
    const url = new URL(value);
    const path = decodeURIComponent(url.pathname);
    return new Uri(
      url.protocol.replace(/:$/, ''),
      url.host,
      path,
      url.search.slice(1),
      url.hash.slice(1),
      value,
    );
  }
  static file(path: string): Uri {
    return Uri.parse(`file://${encodeURI(path)}`);
  }
  get fsPath(): string {
    return this.path;
  }
  toString(): string {
    return this.text;
  }
  toJSON(): string {
    return this.text;
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
    if (typeof a === 'number') {
      this.start = new Position(a, b as number);
      this.end = new Position(c as number, d as number);
    } else {
      this.start = a;
      this.end = b as Position;
    }
  }
}

export class InlineCompletionItem {
  constructor(
    public insertText: string | { value: string },
    public range?: Range,
    public command?: unknown,
  ) {}
}

export class InlineCompletionList {
  constructor(public items: InlineCompletionItem[]) {}
}

export class CompletionItem {
  constructor(
    public label: string,
    public kind?: number,
  ) {}
}

export class CompletionList {
  constructor(
    public items: CompletionItem[] = [],
    public isIncomplete = false,
  ) {}
}

export class SnippetString {
  constructor(public value = '') {}
}

export class MarkdownString {
  constructor(public value = '') {}
}

export class TextEdit {
  constructor(
    public range: Range,
    public newText: string,
  ) {}
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class CancellationError extends Error {}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  readonly token = {
    isCancellationRequested: false,
    onCancellationRequested: this.emitter.event,
  };
  cancel(): void {
    if (!this.token.isCancellationRequested) {
      this.token.isCancellationRequested = true;
      this.emitter.fire();
    }
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

export class TextDocument {
  version = 1;
  readonly isClosed = false;
  readonly isDirty = false;
  readonly eol = 1;
  constructor(
    readonly uri: Uri,
    readonly languageId: string,
    private text: string,
  ) {}
  get fileName(): string {
    return this.uri.fsPath;
  }
  get isUntitled(): boolean {
    return this.uri.scheme === 'untitled';
  }
  get lineCount(): number {
    return this.text.split('\n').length;
  }
  getText(): string {
    return this.text;
  }
}

export interface Shown {
  level: 'info' | 'warning' | 'error';
  message: string;
  options?: unknown;
  items: string[];
}

export interface StatusBarItem {
  id: string;
  text: string;
  tooltip?: string;
  command?: string;
  name?: string;
  backgroundColor?: ThemeColor;
  visible: boolean;
}

export interface Channel {
  name: string;
  text: string;
}

/** Everything the test scripts or inspects. */
export class Editor {
  readonly settings = new Map<string, unknown>();
  readonly shown: Shown[] = [];
  readonly statusItems: StatusBarItem[] = [];
  readonly channels: Channel[] = [];
  readonly opened: string[] = [];
  readonly commands = new Map<string, (...args: unknown[]) => unknown>();
  readonly inlineProviders: { selector: unknown; provider: any }[] = [];
  readonly completionProviders: { selector: unknown; provider: any }[] = [];
  readonly documents: TextDocument[] = [];
  clipboard = '';
  /** The editor with focus (`window.activeTextEditor`), if any. */
  activeEditor: { document: TextDocument } | undefined;
  /** Answers a message or quick pick: the item to choose, or undefined to dismiss it. */
  answer: (prompt: string, items: string[]) => string | undefined = () => undefined;
  /** Settles once a message matching the pattern has been shown. */
  shownMatching(pattern: RegExp, timeoutMs = 10000): Promise<Shown> {
    return waitFor(
      () => this.shown.find((s) => pattern.test(s.message)),
      timeoutMs,
      `a message matching ${pattern}`,
    );
  }

  readonly onDidOpen = new EventEmitter<TextDocument>();
  readonly onDidChangeConfiguration = new EventEmitter<{
    affectsConfiguration(section: string): boolean;
  }>();

  open(path: string, text: string, languageId = 'python'): TextDocument {
    const document = new TextDocument(Uri.file(path), languageId, text);
    this.documents.push(document);
    this.onDidOpen.fire(document);
    return document;
  }

  /** Changes settings the way the Settings editor does: new values, then the event. */
  configure(values: Record<string, unknown>): void {
    for (const [key, value] of Object.entries(values)) {
      this.settings.set(key, value);
    }
    const keys = Object.keys(values);
    this.onDidChangeConfiguration.fire({
      affectsConfiguration: (section) =>
        keys.some((k) => k === section || k.startsWith(`${section}.`)),
    });
  }

  /** The `vscode` module as the extension sees it. */
  api(): unknown {
    const show =
      (level: Shown['level']) =>
      async (message: string, ...rest: unknown[]) => {
        const options = typeof rest[0] === 'object' && rest[0] !== null ? rest.shift() : undefined;
        const items = rest.map((item) =>
          typeof item === 'string' ? item : String((item as { title?: string }).title),
        );
        this.shown.push({ level, message, options, items });
        return this.answer(message, items);
      };
    const editor = this;
    const api: Record<string, unknown> = {
      __esModule: true,
      version: '1.91.0',
      Disposable,
      EventEmitter,
      Uri,
      Position,
      Range,
      InlineCompletionItem,
      InlineCompletionList,
      CompletionItem,
      CompletionList,
      SnippetString,
      MarkdownString,
      TextEdit,
      ThemeColor,
      CancellationError,
      CancellationTokenSource,
      LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
      InlineCompletionTriggerKind: { Invoke: 0, Automatic: 1 },
      CompletionTriggerKind: { Invoke: 0, TriggerCharacter: 1, TriggerForIncompleteCompletions: 2 },
      StatusBarAlignment: { Left: 1, Right: 2 },
      ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
      env: {
        appName: 'Visual Studio Code',
        language: 'en',
        machineId: 'test',
        sessionId: 'test',
        uriScheme: 'vscode',
        clipboard: {
          writeText: async (value: string) => {
            editor.clipboard = value;
          },
          readText: async () => editor.clipboard,
        },
        openExternal: async (uri: Uri) => {
          editor.opened.push(uri.toString());
          return true;
        },
      },
      commands: {
        registerCommand: (id: string, handler: (...args: unknown[]) => unknown) => {
          // As in VS Code: a second registration of a name is an error.
          if (editor.commands.has(id)) {
            throw new Error(`command '${id}' already exists`);
          }
          editor.commands.set(id, handler);
          return new Disposable(() => editor.commands.delete(id));
        },
        executeCommand: async (id: string, ...args: unknown[]) =>
          editor.commands.get(id)?.(...args),
      },
      languages: new Proxy(
        {
          match: (selector: unknown, document: TextDocument) => {
            const filters = (Array.isArray(selector) ? selector : [selector]) as Record<
              string,
              string
            >[];
            const hit = filters.some(
              (f) =>
                (f.scheme === undefined || f.scheme === document.uri.scheme) &&
                (f.language === undefined || f.language === document.languageId),
            );
            return hit ? 10 : 0;
          },
          registerCompletionItemProvider: (selector: unknown, provider: unknown) => {
            const entry = { selector, provider };
            editor.completionProviders.push(entry);
            return new Disposable(() =>
              editor.completionProviders.splice(editor.completionProviders.indexOf(entry), 1),
            );
          },
          registerInlineCompletionItemProvider: (selector: unknown, provider: unknown) => {
            const entry = { selector, provider };
            editor.inlineProviders.push(entry);
            return new Disposable(() =>
              editor.inlineProviders.splice(editor.inlineProviders.indexOf(entry), 1),
            );
          },
        },
        { get: known },
      ),
      workspace: new Proxy(
        {
          workspaceFolders: undefined,
          textDocuments: editor.documents,
          notebookDocuments: [],
          onDidOpenTextDocument: editor.onDidOpen.event,
          onDidChangeConfiguration: editor.onDidChangeConfiguration.event,
          getConfiguration: (section?: string) => ({
            get: <T>(key: string, fallback?: T) => {
              const full = section ? `${section}.${key}` : key;
              return editor.settings.has(full) ? (editor.settings.get(full) as T) : fallback;
            },
            has: (key: string) => editor.settings.has(section ? `${section}.${key}` : key),
          }),
        },
        { get: known },
      ),
      window: new Proxy(
        {
          get activeTextEditor() {
            return editor.activeEditor;
          },
          visibleTextEditors: [],
          tabGroups: { all: [], onDidChangeTabs: inert() },
          showInformationMessage: show('info'),
          showWarningMessage: show('warning'),
          showErrorMessage: show('error'),
          showQuickPick: async (items: { label: string }[], options?: { placeHolder?: string }) => {
            const label = editor.answer(
              options?.placeHolder ?? '',
              items.map((i) => i.label),
            );
            return items.find((i) => i.label === label);
          },
          withProgress: async (
            _options: unknown,
            task: (progress: unknown, token: unknown) => Promise<unknown>,
          ) => task({ report: () => undefined }, new CancellationTokenSource().token),
          createStatusBarItem: (id: string) => {
            const item: StatusBarItem & Record<string, unknown> = {
              id,
              text: '',
              visible: false,
              show: () => {
                item.visible = true;
              },
              hide: () => {
                item.visible = false;
              },
              dispose: () => undefined,
            };
            editor.statusItems.push(item);
            return item;
          },
          createOutputChannel: (name: string) => {
            const channel: Channel & Record<string, unknown> = { name, text: '' };
            const append = (value: string) => {
              channel.text += value;
            };
            const line = (value: string) => append(`${value}\n`);
            Object.assign(channel, {
              append,
              appendLine: line,
              clear: () => {
                channel.text = '';
              },
              replace: (value: string) => {
                channel.text = value;
              },
              show: () => undefined,
              hide: () => undefined,
              dispose: () => undefined,
              logLevel: 3,
              onDidChangeLogLevel: inert(),
              trace: line,
              debug: line,
              info: line,
              warn: line,
              error: (value: unknown) => line(String(value)),
            });
            editor.channels.push(channel);
            return channel;
          },
        },
        { get: known },
      ),
    };
    return new Proxy(api, { get: known });
  }

  /** Makes `require('vscode')` return this editor's API from now on. */
  install(): void {
    const api = this.api();
    const resolver = Module as unknown as {
      _resolveFilename(request: string, ...rest: unknown[]): string;
    };
    const resolve = resolver._resolveFilename;
    resolver._resolveFilename = function (request: string, ...rest: unknown[]) {
      return request === 'vscode' ? 'vscode' : resolve.call(this, request, ...rest);
    };
    require.cache.vscode = {
      id: 'vscode',
      filename: 'vscode',
      loaded: true,
      exports: api,
    } as NodeJS.Module;
  }

  channel(name: string): Channel {
    const found = this.channels.find((c) => c.name === name);
    if (found === undefined) {
      throw new Error(`no output channel ${name}`);
    }
    return found;
  }
}

/** A Proxy getter: the member if the object has it (even when undefined), else an inert one. */
function known(target: object, name: string | symbol): unknown {
  return name in target ? (target as Record<string | symbol, unknown>)[name] : inert();
}

/** Anything not implemented: callable, constructible, every member another one; returns itself. */
function inert(): any {
  const target = function () {};
  const proxy: any = new Proxy(target, {
    get: (_t, name) => (name === 'prototype' ? {} : name === 'then' ? undefined : proxy),
    apply: () => proxy,
    construct: () => ({}),
  });
  return proxy;
}

export async function waitFor<T>(
  probe: () => T | undefined,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
