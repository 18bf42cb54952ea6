-- Ghost text drawn by the plugin, for Neovim without vim.lsp.inline_completion (0.7 to 0.11):
-- asks the server for `textDocument/inlineCompletion` as you type, draws the answer with
-- extmarks (the first line at the cursor, the others as virtual lines below it), and takes it
-- whole, by word or by line. Works on 0.7: no vim.uv, vim.iter or vim.lsp.get_clients here.
local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

M.ns = api.nvim_create_namespace('reaper.ghost')
M.HL = 'ReaperGhostText'
M.HL_COUNT = 'ReaperGhostTextCount'
-- The server debounces for its providers; this only folds the events of one keystroke
-- (CursorMovedI and TextChangedI) and a burst of typing into one request.
M.DEBOUNCE_MS = 25

local AUTOMATIC, INVOKED = 2, 1 -- InlineCompletionTriggerKind
-- 0.10+ can put virtual text inside a line and push the rest right; before, an overlay has to
-- draw the text after the cursor again, after the suggestion.
local INLINE = vim.fn.has('nvim-0.10') == 1
-- 0.11 made request/cancel_request methods (client:request); before they are plain fields.
local METHODS = vim.fn.has('nvim-0.11') == 1

-- bufnr -> { client_id, timer, pending = {client, id}, texts, index, at = here(), invoked,
--            cycled }; `texts` are what would be inserted at `at`.
local buffers = {}

local function highlights()
  vim.cmd('highlight default link ' .. M.HL .. ' Comment')
  vim.cmd('highlight default link ' .. M.HL_COUNT .. ' NonText')
end

-- Where the cursor is: buffer tick, row and byte column (0-based), and the line up to it.
local function here(bufnr)
  local row, col = unpack(api.nvim_win_get_cursor(0))
  local line = api.nvim_buf_get_lines(bufnr, row - 1, row, false)[1] or ''
  return {
    tick = api.nvim_buf_get_changedtick(bufnr),
    row = row - 1,
    col = col,
    before = line:sub(1, col),
  }
end

local function same(a, b)
  return a ~= nil and b ~= nil and a.tick == b.tick and a.row == b.row and a.col == b.col
end

local function inserting()
  return api.nvim_get_mode().mode == 'i' and vim.fn.pumvisible() == 0
end

-- UTF-8 characters of `s`, one at a time.
local CHAR = '[%z\1-\127\194-\253][\128-\191]*'

-- Byte column `col` of `line` in the client's position encoding, and back.
local function to_units(line, col, encoding)
  if encoding == 'utf-8' then
    return col
  end
  local n = 0
  for ch in line:sub(1, col):gmatch(CHAR) do
    n = n + ((encoding == 'utf-16' and #ch == 4) and 2 or 1)
  end
  return n
end

local function to_bytes(line, units, encoding)
  if encoding == 'utf-8' then
    return units
  end
  local bytes, n = 0, 0
  for ch in line:gmatch(CHAR) do
    if n >= units then
      break
    end
    n = n + ((encoding == 'utf-16' and #ch == 4) and 2 or 1)
    bytes = bytes + #ch
  end
  return bytes
end

-- Virtual text shows a tab as one cell: spread it to the next tab stop, `start` cells in.
local function expand_tabs(text, start, tabstop)
  if not text:find('\t', 1, true) then
    return text
  end
  local width = start
  return (text:gsub('([^\t]*)\t', function(before)
    width = width + vim.fn.strdisplaywidth(before)
    local pad = tabstop - width % tabstop
    width = width + pad
    return before .. (' '):rep(pad)
  end))
end

local function stop_timer(s)
  if s.timer then
    s.timer:stop()
  end
end

local function cancel_pending(s)
  local pending = s.pending
  s.pending = nil
  if pending then
    if METHODS then
      pending.client:cancel_request(pending.id)
    else
      pending.client.cancel_request(pending.id)
    end
  end
end

local function hide(bufnr, s)
  s.texts, s.index, s.at, s.invoked, s.cycled = nil, nil, nil, nil, nil
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

local function draw(bufnr, s)
  api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  local row, col = s.at.row, s.at.col
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local tabstop = vim.bo[bufnr].tabstop
  local lines = vim.split(s.texts[s.index], '\n', { plain = true })
  local first = expand_tabs(lines[1], vim.fn.strdisplaywidth(line:sub(1, col)), tabstop)
  local opts = { virt_text = { { first, M.HL } }, hl_mode = 'combine' }
  if INLINE then
    opts.virt_text_pos = 'inline'
  else
    opts.virt_text_pos = 'overlay'
    local after = line:sub(col + 1)
    if after ~= '' then
      local start = vim.fn.strdisplaywidth(line:sub(1, col) .. first)
      table.insert(opts.virt_text, { expand_tabs(after, start, tabstop), 'Normal' })
    end
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      table.insert(opts.virt_lines, { { expand_tabs(lines[i], 0, tabstop), M.HL } })
    end
  end
  if s.cycled then
    local count = { (' (%d/%d)'):format(s.index, #s.texts), M.HL_COUNT }
    table.insert(opts.virt_lines and opts.virt_lines[#opts.virt_lines] or opts.virt_text, count)
  end
  api.nvim_buf_set_extmark(bufnr, M.ns, row, col, opts)
end

local function show(bufnr, s, texts, at)
  s.texts, s.index, s.at, s.invoked, s.cycled = texts, 1, at, nil, nil
  draw(bufnr, s)
end

-- The texts an answer offers at `at`: plain insertText only (no snippets); an item with a
-- range must end at the cursor, and repeat what was typed from its start.
local function texts_of(result, line, at, encoding)
  local items = type(result) == 'table' and (result.items or result) or {}
  local texts, seen = {}, {}
  for _, item in ipairs(items) do
    local text = type(item) == 'table' and item.insertText
    if type(text) == 'string' and item.range then
      local start, stop = item.range.start, item.range['end']
      local from = to_bytes(line, start.character, encoding)
      local typed = line:sub(from + 1, at.col)
      local fits = start.line == at.row
        and stop.line == at.row
        and to_bytes(line, stop.character, encoding) == at.col
        and text:sub(1, #typed) == typed
      text = fits and text:sub(#typed + 1) or nil
    end
    if type(text) == 'string' and text ~= '' and not seen[text] then
      seen[text] = true
      table.insert(texts, text)
    end
  end
  return texts
end

-- Ask for suggestions at the cursor; `done(texts, at)` only if the buffer and the cursor are
-- still as they were when asked, in insert mode.
local function request(bufnr, s, trigger, done)
  cancel_pending(s)
  local client = vim.lsp.get_client_by_id(s.client_id)
  local caps = client and client.server_capabilities
  if not (client and client.initialized and caps and caps.inlineCompletionProvider) then
    return
  end
  local at = here(bufnr)
  local line = api.nvim_buf_get_lines(bufnr, at.row, at.row + 1, false)[1] or ''
  local encoding = client.offset_encoding or 'utf-16'
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = at.row, character = to_units(line, at.col, encoding) },
    context = { triggerKind = trigger },
  }
  local id
  local function handler(err, result)
    if s.pending and s.pending.id == id then
      s.pending = nil
    end
    if err or not api.nvim_buf_is_valid(bufnr) or api.nvim_get_current_buf() ~= bufnr then
      return
    end
    if not (inserting() and same(at, here(bufnr))) then
      return -- an answer for a buffer or a cursor that is gone
    end
    done(texts_of(result, line, at, encoding), at)
  end
  local ok
  if METHODS then
    ok, id = client:request('textDocument/inlineCompletion', params, handler, bufnr)
  else
    ok, id = client.request('textDocument/inlineCompletion', params, handler, bufnr)
  end
  if ok and id then
    s.pending = { client = client, id = id }
  end
end

local function on_answer(bufnr, s)
  return function(texts, at)
    if #texts == 0 then
      hide(bufnr, s)
    else
      show(bufnr, s, texts, at)
    end
  end
end

local function schedule(bufnr, s)
  stop_timer(s)
  cancel_pending(s)
  s.timer = s.timer or uv.new_timer()
  s.timer:start(
    M.DEBOUNCE_MS,
    0,
    vim.schedule_wrap(function()
      if buffers[bufnr] == s and api.nvim_get_current_buf() == bufnr and inserting() then
        request(bufnr, s, AUTOMATIC, on_answer(bufnr, s))
      end
    end)
  )
end

--- The suggestion shown in the current buffer (the text it would insert), else nil.
function M.visible()
  local bufnr = api.nvim_get_current_buf()
  local s = buffers[bufnr]
  if s and s.texts and inserting() and same(s.at, here(bufnr)) then
    return s.texts[s.index]
  end
end

-- After a keystroke: keep a suggestion the cursor is still at (our own partial accept) or
-- that the user typed the start of; otherwise hide it. Then ask again.
local function on_edit(bufnr)
  local s = buffers[bufnr]
  if not s then
    return
  end
  local now = here(bufnr)
  if s.texts and same(s.at, now) then
    return
  end
  local text = s.texts and s.texts[s.index]
  if text and now.row == s.at.row and now.col > s.at.col then
    local line = api.nvim_buf_get_lines(bufnr, now.row, now.row + 1, false)[1] or ''
    local typed = line:sub(s.at.col + 1, now.col)
    local kept = line:sub(1, s.at.col) == s.at.before
    if kept and #typed < #text and text:sub(1, #typed) == typed then
      show(bufnr, s, { text:sub(#typed + 1) }, now)
    else
      hide(bufnr, s)
    end
  else
    hide(bufnr, s)
  end
  schedule(bufnr, s)
end

local function forget(bufnr)
  local s = buffers[bufnr]
  if s then
    stop_timer(s)
    cancel_pending(s)
    if s.timer then
      s.timer:close()
    end
    buffers[bufnr] = nil
  end
end

--- Draw ghost text in `bufnr`, asking the client `client_id`.
function M.attach(bufnr, client_id)
  highlights()
  local s = buffers[bufnr] or {}
  s.client_id = client_id
  buffers[bufnr] = s
  local group = api.nvim_create_augroup('reaper.ghost.' .. bufnr, { clear = true })
  local function on(events, fn)
    api.nvim_create_autocmd(events, {
      group = group,
      buffer = bufnr,
      callback = function()
        fn(bufnr)
      end,
    })
  end
  on({ 'InsertEnter', 'CursorMovedI', 'TextChangedI' }, on_edit)
  -- CompleteChanged: the menu opened, and <Tab> may be meant for it.
  on({ 'InsertLeave', 'BufLeave', 'TextChanged', 'CompleteChanged' }, function()
    local state = buffers[bufnr]
    if state then
      stop_timer(state)
      cancel_pending(state)
      hide(bufnr, state)
    end
  end)
  on({ 'BufUnload' }, forget)
  api.nvim_create_autocmd('ColorScheme', {
    group = api.nvim_create_augroup('reaper.ghost', { clear = true }),
    callback = highlights,
  })
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

--- Insert the shown suggestion at the cursor: all of it (`what` = 'all'), up to the end of its
--- next word ('word') or line ('line'), the rest staying as ghost text. One undo step of its
--- own. False when none is shown. Not from an `expr` mapping (text is locked there): the
--- plugin's keys call it through <Cmd>.
function M.accept(what)
  local text = M.visible()
  if not text then
    return false
  end
  local bufnr = api.nvim_get_current_buf()
  local s = buffers[bufnr]
  local piece = PIECE[what] and PIECE[what](text) or text
  if piece == '' then
    piece = text
  end
  local rest = text:sub(#piece + 1)
  stop_timer(s)
  cancel_pending(s)
  local row, col = s.at.row, s.at.col
  local lines = vim.split(piece, '\n', { plain = true })
  -- An undo break: `u` takes back the suggestion, not what was typed before it.
  vim.cmd('let &undolevels = &undolevels')
  api.nvim_buf_set_text(bufnr, row, col, row, col, lines)
  local last = row + #lines - 1
  local last_col = (#lines == 1 and col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { last + 1, last_col })
  if rest ~= '' then
    show(bufnr, s, { rest }, here(bufnr))
  else
    hide(bufnr, s)
  end
  return true
end

--- Show the next (`count` 1) or previous (-1) suggestion. The first time, ask the server for
--- all it has (an Invoked request); with nothing shown, that request shows the first one.
function M.cycle(count)
  local bufnr = api.nvim_get_current_buf()
  local s = buffers[bufnr]
  if not s then
    return
  end
  local function step()
    s.cycled = true
    s.index = (s.index - 1 + count) % #s.texts + 1
    draw(bufnr, s)
  end
  if M.visible() and s.invoked then
    return step()
  end
  stop_timer(s)
  request(bufnr, s, INVOKED, function(texts, at)
    local shown = same(s.at, at) and s.texts or {}
    local merged, seen = {}, {}
    for _, text in ipairs(vim.list_extend(vim.list_extend({}, shown), texts)) do
      if not seen[text] then
        seen[text] = true
        table.insert(merged, text)
      end
    end
    if #merged == 0 then
      return hide(bufnr, s)
    end
    local index = #shown > 0 and s.index or nil
    show(bufnr, s, merged, at)
    s.invoked = true
    if index then
      s.index = index
      step()
    end
  end)
end

return M
