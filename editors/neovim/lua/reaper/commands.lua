-- `:Reaper signin|signout|status|chat|toggle`: each runs one of the server's workspace commands and
-- shows the answer where a user looks (notifications, the clipboard, a scratch buffer).
local M = {}

local reaper = require('reaper')

local function notify(message, level)
  vim.notify('reaper-lsp: ' .. message, level or vim.log.levels.INFO)
end

-- The request methods are `client:request` on 0.11+ and `client.request` before.
local function request(client, method, params, handler)
  if vim.fn.has('nvim-0.11') == 1 then
    return client:request(method, params, handler)
  end
  return client.request(method, params, handler)
end

--- Run server command `name` with `args`; `done(result)` on success, errors are notified
--- (and given to `failed(message)` when there is one).
local function run(name, args, done, failed)
  local client = reaper.client()
  if not client then
    notify('the server is not running in this buffer (see :checkhealth vim.lsp)', vim.log.levels.ERROR)
    return
  end
  local params = { command = name, arguments = args }
  request(client, 'workspace/executeCommand', params, function(err, result)
    if err then
      local message = err.message or tostring(err)
      notify(message, vim.log.levels.ERROR)
      if failed then
        failed(message)
      end
    else
      done(result or {})
    end
  end)
end

-- Put `text` where the user can paste it; says where.
local function copy(text)
  vim.fn.setreg('"', text)
  if vim.fn.has('clipboard') == 1 and pcall(vim.fn.setreg, '+', text) then
    return 'copied to the clipboard'
  end
  return 'copied: paste it with p'
end

function M.signin(provider)
  provider = provider or 'copilot'
  run('reaper.signIn', { { provider = provider } }, function(started)
    if started.userCode then
      local where = copy(started.userCode)
      notify(
        ('to sign in to %s, open %s and enter the code %s (%s); waiting…'):format(
          started.provider or provider,
          started.verificationUri or 'the sign-in page',
          started.userCode,
          where
        )
      )
    elseif started.authorizeUrl then
      local where = copy(started.authorizeUrl)
      notify(
        ('to sign in to %s, open %s (%s); waiting…'):format(
          started.provider or provider,
          started.authorizeUrl,
          where
        )
      )
    end
    run('reaper.signInConfirm', { { provider = provider } }, function(done)
      local who = done.user and (' as ' .. done.user) or ''
      notify(('signed in to %s%s'):format(done.provider or provider, who))
    end)
  end)
end

function M.signout(provider)
  provider = provider or 'copilot'
  run('reaper.signOut', { { provider = provider } }, function(done)
    notify(('signed out of %s'):format(done.provider or provider))
  end)
end

local function provider_line(name, info)
  if type(info) ~= 'table' then
    return '  ' .. name
  end
  -- The server's own reading (its status model), word for word what `reaper-lsp status` says.
  if type(info.summary) == 'string' and info.summary ~= '' then
    local model = info.completionModel
    if info.state == 'ready' and type(model) == 'string' and model ~= '' then
      return ('  %s: %s (%s)'):format(name, info.summary, model)
    end
    return ('  %s: %s'):format(name, info.summary)
  end
  if info.configured == false then
    local reason = info.reason ~= '' and info.reason or 'not configured'
    return ('  %s: off — %s'):format(name, reason)
  end
  local parts = { ('  %s: on'):format(name) }
  if info.completionModel and info.completionModel ~= '' then
    parts[1] = parts[1] .. (' (%s)'):format(info.completionModel)
  end
  local health = type(info.health) == 'table' and info.health or {}
  if health.state and health.state ~= '' and health.state ~= 'unknown' then
    table.insert(parts, health.state)
  end
  if health.lastError and health.lastError ~= '' then
    table.insert(parts, 'last error: ' .. health.lastError)
  end
  return table.concat(parts, ' · ')
end

--- A few lines a person reads in two seconds, from the `reaper.status` result.
function M.summary(status)
  local lines = {}
  local head = 'reaper-lsp ' .. tostring(status.version or '?')
  if status.uptimeSeconds then
    head = head .. (' · up %ds'):format(math.floor(status.uptimeSeconds))
  end
  table.insert(lines, head)
  if type(status.completionChain) == 'table' then
    table.insert(lines, 'suggestions from: ' .. table.concat(status.completionChain, ' → '))
  end
  local providers = type(status.providers) == 'table' and status.providers or {}
  local chain = type(status.completionChain) == 'table' and status.completionChain or {}
  local names = vim.tbl_keys(providers)
  table.sort(names)
  local unused = {}
  for _, name in ipairs(names) do
    local info = providers[name]
    -- A provider no chain names is one word, not a line.
    local idle = type(info) == 'table'
      and (info.state == 'unused' or (info.state == nil and info.configured == false and not vim.tbl_contains(chain, name)))
    if idle then
      table.insert(unused, name)
    else
      table.insert(lines, provider_line(name, info))
    end
  end
  if #unused > 0 then
    table.insert(lines, '  not used: ' .. table.concat(unused, ', '))
  end
  if type(status.signIn) == 'table' then
    local accounts = {}
    for account, info in pairs(status.signIn) do
      local yes = type(info) == 'table' and info.signedIn
      table.insert(accounts, account .. (yes and ' signed in' or ' signed out'))
    end
    table.sort(accounts)
    table.insert(lines, 'accounts: ' .. table.concat(accounts, ', '))
  end
  if type(status.cache) == 'table' and status.cache.entries then
    table.insert(
      lines,
      ('cache: %d entries, %d hits'):format(status.cache.entries, status.cache.hits or 0)
    )
  end
  if status.configFile and status.configFile ~= '' then
    table.insert(lines, 'config: ' .. status.configFile)
  end
  return lines
end

function M.status()
  run('reaper.status', {}, function(status)
    reaper.read_status(status) -- the statusline and this summary read the same answer
    notify(table.concat(M.summary(status), '\n'))
  end)
end

-- conversationId -> scratch buffer showing it
local chats = {}
local serial = 0

local function append(bufnr, text)
  if not vim.api.nvim_buf_is_valid(bufnr) then
    return
  end
  local last = vim.api.nvim_buf_line_count(bufnr)
  local tail = vim.api.nvim_buf_get_lines(bufnr, last - 1, last, false)[1] or ''
  local pieces = vim.split(tail .. text, '\n', { plain = true })
  vim.api.nvim_buf_set_lines(bufnr, last - 1, last, false, pieces)
end

function M.on_chat_delta(params)
  if type(params) ~= 'table' or type(params.delta) ~= 'string' then
    return
  end
  -- Handlers run on the main loop, in the order the server sent: a delta is never applied
  -- after the final answer, which ends the conversation's streaming.
  local chat = chats[params.conversationId]
  if chat then
    append(chat.bufnr, params.delta)
  end
end

local function open_chat(prompt)
  vim.cmd('botright new')
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].buftype = 'nofile'
  vim.bo[bufnr].bufhidden = 'wipe'
  vim.bo[bufnr].swapfile = false
  vim.bo[bufnr].filetype = 'markdown'
  local lines = vim.split(prompt, '\n', { plain = true })
  for i, line in ipairs(lines) do
    lines[i] = '> ' .. line
  end
  table.insert(lines, '')
  table.insert(lines, '')
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  return bufnr
end

function M.chat(prompt)
  if not prompt or prompt == '' then
    vim.ui.input({ prompt = 'Ask reaper-lsp: ' }, function(answer)
      if answer and answer ~= '' then
        M.chat(answer)
      end
    end)
    return
  end
  local source = vim.api.nvim_get_current_buf()
  serial = serial + 1
  local id = ('nvim-%d-%d'):format(vim.fn.getpid(), serial)
  local request = { prompt = prompt, conversationId = id }
  if vim.bo[source].buftype == '' and vim.api.nvim_buf_get_name(source) ~= '' then
    request.textDocument = { uri = vim.uri_from_bufnr(source) }
  end
  local chat = { bufnr = open_chat(prompt) }
  chats[id] = chat
  run('reaper.chat', { request }, function(answer)
    chats[id] = nil
    if not vim.api.nvim_buf_is_valid(chat.bufnr) then
      return
    end
    -- The result is the whole answer: it replaces what was streamed, in case a delta was lost.
    local keep = #vim.split(prompt, '\n', { plain = true }) + 1
    local text = answer.text or ''
    if answer.provider and answer.provider ~= '' then
      text = text .. '\n\n— ' .. answer.provider
    end
    vim.api.nvim_buf_set_lines(chat.bufnr, keep, -1, false, vim.split(text, '\n', { plain = true }))
  end, function(message)
    chats[id] = nil
    if vim.api.nvim_buf_is_valid(chat.bufnr) then
      append(chat.bufnr, '(no answer: ' .. message .. ')')
    end
  end)
end

local scopes = { global = true, language = true, workspace = true }

--- Turn suggestions off (or on again) everywhere, for this buffer's language, or for its
--- project; the server keeps the state, so every editor window agrees.
function M.toggle(scope)
  scope = scope or 'global'
  if not scopes[scope] then
    notify(('toggle what? %q is not one of: global, language, workspace'):format(scope), vim.log.levels.ERROR)
    return
  end
  local args = { scope = scope }
  local bufnr = vim.api.nvim_get_current_buf()
  if vim.bo[bufnr].buftype == '' and vim.api.nvim_buf_get_name(bufnr) ~= '' then
    args.textDocument = { uri = vim.uri_from_bufnr(bufnr) }
  end
  run('reaper.toggle', { args }, function(done)
    local what = 'everywhere'
    if done.language then
      what = 'for ' .. done.language
    elseif done.workspace then
      what = 'in ' .. done.workspace
    end
    notify(('suggestions %s %s'):format(done.enabled and 'on' or 'off', what))
  end)
end

M.subcommands = {
  signin = function(arg)
    M.signin(arg)
  end,
  signout = function(arg)
    M.signout(arg)
  end,
  status = function()
    M.status()
  end,
  chat = function(arg)
    M.chat(arg)
  end,
  toggle = function(arg)
    M.toggle(arg)
  end,
}

--- `:Reaper {sub} [args]`; `fargs` as Neovim passes them.
function M.dispatch(fargs)
  local sub = fargs[1] or 'status'
  local fn = M.subcommands[sub]
  if not fn then
    notify(('unknown command %q; use one of: signin, signout, status, chat, toggle'):format(sub), vim.log.levels.ERROR)
    return
  end
  local rest = table.concat(vim.list_slice(fargs, 2), ' ')
  fn(rest ~= '' and rest or nil)
end

return M
