-- An answer for a buffer that changed meanwhile is not shown. Right after the plugin sends its
-- first request, line 1 changes behind its back (no autocommands: nothing cancels the request
-- or asks again), so the answer arrives for the right cursor but an old buffer; then typing
-- brings a fresh one.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

vim.cmd('filetype on')
t.setup_plugin()
t.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()
local answers, sent = {}, 0

-- Wrap the client's request (a method from 0.11, a field before) to act after the first
-- inlineCompletion request and to record each answer once the plugin has handled it.
local function watch(client)
  local request = client.request
  client.request = function(...)
    local n, args = select('#', ...), { ... }
    local i = args[1] == client and 2 or 1
    if args[i] ~= 'textDocument/inlineCompletion' then
      return request(...)
    end
    local handler = args[i + 2]
    args[i + 2] = function(err, res, ...)
      local r = handler(err, res, ...)
      local items = type(res) == 'table' and (res.items or res) or {}
      table.insert(answers, { error = err and err.message, items = items })
      return r
    end
    local ok, id = request(unpack(args, 1, n))
    sent = sent + 1
    if sent == 1 then
      vim.o.eventignore = 'all'
      vim.api.nvim_buf_set_lines(bufnr, 0, 1, false, { 'def greet(name, loud):' })
    end
    return ok, id
  end
end

t.poll('attach', t.attached(bufnr), 30000, function(client)
  watch(client)
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  vim.cmd('startinsert!')
  t.poll('stale answer', function()
    for _, answer in ipairs(answers) do
      if #answer.items > 0 then
        return answer
      end
    end
  end, 15000, function(answer)
    result.stale_answer = answer.items[1].insertText
    result.stale_ghost = t.plugin_ghost(bufnr)
    result.sent = sent
    vim.o.eventignore = ''
    t.type('x')
    t.poll('fresh ghost text', function()
      local ghost = t.plugin_ghost(bufnr)
      if ghost and ghost.col == #'    return x' then
        return ghost
      end
    end, 15000, function(ghost)
      result.fresh = ghost
      t.finish(nil)
    end)
  end)
end)
