-- reaper-lsp for Neovim: starts the server, turns on ghost text and the completion menu, maps
-- the ghost-text keys, and keeps the statusline state: the server's status model (`reaper.status`,
-- read again when a `reaper/status` notification says a provider changed) and the sign-ins.
-- Ghost text is Neovim's own on 0.12+ (vim.lsp.inline_completion), reaper.ghost's before.
-- The `:Reaper` commands live in reaper.commands; Neovim < 0.11 starts the server through
-- reaper.legacy.
local M = {}

local defaults = {
  cmd = { 'reaper-lsp' },
  root_markers = { '.reaper.toml', '.git' },
  -- nil: every buffer. Otherwise a list of filetypes to attach to.
  filetypes = nil,
  -- The [completion], [chat] and [privacy] keys of reaper.toml; these override the user file
  -- (endpoints and keys: reaper.toml and the environment only).
  init_options = {},
  -- Suggestions as ghost text: true (Neovim's own on 0.12+, the plugin's before), 'plugin' (the
  -- plugin's everywhere) or false.
  ghost_text = true,
  -- The suggestion as the first item of the completion menu (<C-x><C-o>, <C-Space> via
  -- vim.lsp.completion.get()); `autotrigger` only fires on the server's trigger characters.
  menu = { enabled = true, autotrigger = false },
  -- Insert-mode keys for ghost text; `false` leaves a key unmapped. `accept` falls back to the
  -- key itself when no suggestion is shown.
  keymaps = {
    accept = '<Tab>',
    accept_word = '<M-Right>',
    accept_line = '<M-C-Right>',
    next = '<M-]>',
    prev = '<M-[>',
  },
}

M.config = vim.deepcopy(defaults)

-- provider name -> { state, summary, answered }: the server's status model (services/status.py),
-- `state` one of 'ready', 'unused', 'unconfigured', 'paused', 'down', 'failing' — the words
-- `reaper-lsp status` and `:Reaper status` use.
M.providers = {}
-- account's provider name -> { state = 'signedIn'|'signedOut', message?, user? }
M.accounts = {}

local NAME = 'reaper'

--- True on Neovim 0.11+, where vim.lsp.config and vim.lsp.enable start the server.
function M.modern()
  return vim.fn.has('nvim-0.11') == 1
end

--- The reaper-lsp client for `bufnr` (default: current buffer), else any running one.
function M.client(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ name = NAME, bufnr = bufnr })[1]
      or vim.lsp.get_clients({ name = NAME })[1]
  end
  local running -- before 0.10 get_active_clients() has no filter (0.7) or no name filter
  for _, client in pairs(vim.lsp.get_active_clients()) do
    if client.name == NAME then
      if vim.lsp.buf_is_attached(bufnr, client.id) then
        return client
      end
      running = running or client
    end
  end
  return running
end

local function changed()
  vim.schedule(function()
    vim.cmd('redrawstatus')
    vim.api.nvim_exec_autocmds('User', { pattern = 'ReaperStatus', modeline = false })
  end)
end

--- Take the providers of a `reaper.status` result as the statusline's state.
function M.read_status(status)
  local providers = type(status) == 'table' and status.providers
  if type(providers) ~= 'table' then
    return
  end
  M.providers = {}
  for name, info in pairs(providers) do
    if type(info) == 'table' and type(info.state) == 'string' then
      local health = type(info.health) == 'table' and info.health or {}
      M.providers[name] = {
        state = info.state,
        summary = info.summary,
        answered = (tonumber(health.successes) or 0) > 0,
      }
    end
  end
  changed()
end

local refreshing, again = false, false

--- Ask the server for its status model again (one request at a time; a call meanwhile asks
--- once more after it).
function M.refresh(client)
  if refreshing then
    again = true
    return
  end
  refreshing = true
  local params = { command = 'reaper.status', arguments = {} }
  local function done(err, result)
    refreshing = false
    if not err then
      M.read_status(result)
    end
    if again then
      again = false
      M.refresh(client)
    end
  end
  if vim.fn.has('nvim-0.11') == 1 then
    client:request('workspace/executeCommand', params, done)
  else
    client.request('workspace/executeCommand', params, done)
  end
end

local function on_status(err, params, ctx)
  if type(params) ~= 'table' or type(params.provider) ~= 'string' then
    return
  end
  if params.state == 'signedIn' or params.state == 'signedOut' then
    M.accounts[params.provider] = {
      state = params.state,
      message = params.message ~= '' and params.message or nil,
      user = params.user,
    }
    changed()
    return
  end
  -- A provider's health changed: read it in the server's own words (its status model), the
  -- same `:Reaper status` and `reaper-lsp status` show.
  local client = ctx and ctx.client_id and vim.lsp.get_client_by_id(ctx.client_id) or M.client()
  if client then
    M.refresh(client)
  end
end

--- Notification handlers given to the client (both Neovim generations).
function M.handlers()
  return {
    ['reaper/status'] = on_status,
    ['reaper/chatDelta'] = function(_, params)
      require('reaper.commands').on_chat_delta(params)
    end,
  }
end

-- The states of the status model that need the user's attention.
local TROUBLE = { paused = true, down = true, failing = true }

local function sorted(t)
  local names = vim.tbl_keys(t)
  table.sort(names)
  return names
end

--- A short statusline string: '' when no reaper-lsp client runs; otherwise the first provider
--- (by name) the server reads as paused, down or failing, in its word for it; else a signed-out
--- account; else one that answered; else just 'reaper'.
function M.statusline()
  if not M.client() then
    return ''
  end
  for _, name in ipairs(sorted(M.providers)) do
    if TROUBLE[M.providers[name].state] then
      return ('reaper: %s %s'):format(name, M.providers[name].state)
    end
  end
  local working
  for _, name in ipairs(sorted(M.accounts)) do
    if M.accounts[name].state == 'signedOut' then
      return ('reaper: %s signed out'):format(name)
    end
    working = working or name
  end
  for _, name in ipairs(sorted(M.providers)) do
    local p = M.providers[name]
    if p.state == 'ready' and p.answered then
      working = working or name
    end
  end
  return working and ('reaper: ' .. working) or 'reaper'
end

-- Ghost text ---------------------------------------------------------------------------------

local function inline()
  return vim.lsp.inline_completion
end

--- Who draws ghost text here: 'native' (vim.lsp.inline_completion, 0.12+), 'plugin'
--- (reaper.ghost) or nil (turned off).
function M.ghost_kind()
  local want = M.config.ghost_text
  if not want then
    return nil
  end
  return (want ~= 'plugin' and inline()) and 'native' or 'plugin'
end

--- Accept the whole ghost-text suggestion; false when none is shown.
function M.accept()
  if M.ghost_kind() == 'plugin' then
    return require('reaper.ghost').accept('all')
  end
  return inline() ~= nil and inline().get() or false
end

-- The part of `text` to take: through the next word, or through the end of the next line.
local PIECE = {
  word = function(text)
    return text:match('^[^%w_]*[%w_]*')
  end,
  line = function(text)
    return text:match('^\n*[^\n]*')
  end,
}

-- Text of the suggestion not yet in the buffer: an item with a range may repeat what was typed.
local function remaining(item)
  local text = item.insert_text
  if type(text) ~= 'string' then
    return nil
  end
  if item.range then
    local row, col = unpack(vim.api.nvim_win_get_cursor(0))
    local start = item.range.start
    if start.row == row - 1 and start.col <= col then
      local typed = vim.api.nvim_get_current_line():sub(start.col + 1, col)
      if text:sub(1, #typed) == typed then
        return text:sub(#typed + 1)
      end
    end
    return nil
  end
  return text
end

--- Accept the shown suggestion up to the end of its next word (`what` = 'word') or line
--- ('line'); the rest comes back as ghost text. False when none is shown.
function M.accept_part(what)
  if M.ghost_kind() == 'plugin' then
    return require('reaper.ghost').accept(what)
  end
  if not inline() then
    return false
  end
  return inline().get({
    on_accept = function(item)
      local rest = remaining(item)
      if not rest then
        return -- a snippet or an edit away from the cursor: cannot be cut, so leave it
      end
      local piece = PIECE[what](rest)
      if piece == '' then
        piece = rest
      end
      vim.api.nvim_paste(piece, false, -1)
    end,
  })
end

--- Show the next (`count` 1) or previous (-1) suggestion.
function M.cycle(count)
  if M.ghost_kind() == 'plugin' then
    require('reaper.ghost').cycle(count)
  elseif inline() then
    inline().select({ count = count })
  end
end

-- keymaps name -> the function of this module it runs, its argument, and its description.
-- `passes`: with no suggestion shown, the key does what it does without the plugin.
local KEYS = {
  accept = { fn = 'accept', desc = 'accept suggestion', passes = true },
  accept_word = { fn = 'accept_part', arg = 'word', desc = 'accept next word', passes = true },
  accept_line = { fn = 'accept_part', arg = 'line', desc = 'accept next line', passes = true },
  next = { fn = 'cycle', arg = 1, desc = 'next suggestion' },
  prev = { fn = 'cycle', arg = -1, desc = 'previous suggestion' },
}

-- Expression mappings, to decide whether to pass the key on. Neovim's ghost text is taken in
-- the expression; the plugin's through <Cmd>, since an expression may not change the text.
local function map_keys(bufnr)
  local keys = M.config.keymaps or {}
  for name, key in pairs(KEYS) do
    local lhs = keys[name]
    if lhs then
      vim.keymap.set('i', lhs, function()
        if M.ghost_kind() == 'native' then
          local taken = M[key.fn](key.arg)
          return (taken or not key.passes) and '' or lhs
        end
        if key.passes and not require('reaper.ghost').visible() then
          return lhs
        end
        return ('<Cmd>lua require("reaper").%s(%s)<CR>'):format(key.fn, vim.inspect(key.arg))
      end, {
        buffer = bufnr,
        expr = true,
        replace_keycodes = true,
        desc = 'reaper-lsp: ' .. key.desc,
      })
    end
  end
end

--- What the plugin adds to a buffer `client` serves: the menu (0.11+; before, reaper.legacy
--- sets omnifunc), ghost text and its keys.
function M.on_attach(client, bufnr)
  local menu = M.config.menu or {}
  if menu.enabled ~= false and vim.lsp.completion then
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = menu.autotrigger == true })
  end
  local kind = M.ghost_kind()
  if kind == 'plugin' then
    require('reaper.ghost').attach(bufnr, client.id)
  end
  if kind then
    map_keys(bufnr)
  end
end

M.NOT_FOUND = 'reaper-lsp: `%s` is not on PATH, so the server cannot start. Install it (see '
  .. "reaper-lsp's README: `pipx install .` in its checkout), or give the plugin its full path: "
  .. "require('reaper').setup({ cmd = { vim.fn.expand('~/.local/bin/reaper-lsp') } })"

local warned_cmd = false

--- False, after saying so once, when `cmd` (a setup `cmd`) names a program that is not on
--- PATH: Neovim 0.11+ fails to start it without a word, 0.7 with a word for every buffer.
function M.check_cmd(cmd)
  if type(cmd) ~= 'table' or type(cmd[1]) ~= 'string' or vim.fn.executable(cmd[1]) == 1 then
    return true
  end
  if not warned_cmd then
    warned_cmd = true
    vim.notify(M.NOT_FOUND:format(cmd[1]), vim.log.levels.WARN)
  end
  return false
end

--- `setup{...}` with any of the `defaults` keys above.
function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  if not M.modern() then
    return require('reaper.legacy').setup(M.config)
  end
  vim.lsp.config(NAME, {
    cmd = M.config.cmd,
    root_markers = M.config.root_markers,
    filetypes = M.config.filetypes,
    init_options = M.config.init_options,
    handlers = M.handlers(),
  })
  local group = vim.api.nvim_create_augroup('reaper.attach', { clear = true })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == NAME then
        M.on_attach(client, args.buf)
      end
    end,
  })
  -- The command is looked up when a buffer would get the server, so that a `cmd` from the
  -- user's own lsp/reaper.lua or a later vim.lsp.config('reaper', …) counts.
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    callback = function(args)
      local filetypes = M.config.filetypes
      local wanted = not filetypes or vim.tbl_contains(filetypes, args.match)
      if vim.bo[args.buf].buftype ~= '' or not wanted then
        return
      end
      local ok, resolved = pcall(function()
        return vim.lsp.config[NAME]
      end)
      return not M.check_cmd(ok and resolved and resolved.cmd or M.config.cmd)
    end,
  })
  vim.lsp.enable(NAME)
  if M.ghost_kind() == 'native' then
    inline().enable()
  end
end

return M
