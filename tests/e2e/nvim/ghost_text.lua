-- Drives a headless Neovim 0.12 the way a user would: the editors/neovim config, native
-- inline completion (ghost text) accepted with vim.lsp.inline_completion.get(), then the LSP
-- completion menu. Writes what it saw as JSON to $REAPER_TEST_OUT and quits.
local out = assert(os.getenv('REAPER_TEST_OUT'))
local result = { steps = {} }

local function finish(err)
  result.error = err
  local f = assert(io.open(out, 'w'))
  f:write(vim.json.encode(result))
  f:close()
  vim.cmd('qall!')
end

-- Poll `check` every 20 ms (vim.wait would block the insert-mode state machine) until it returns
-- a value, then call `next` with it; give up after `timeout_ms`.
local function poll(what, check, timeout_ms, next)
  local deadline = vim.uv.now() + timeout_ms
  local function tick()
    local ok, value = pcall(check)
    if not ok then
      return finish(what .. ': ' .. tostring(value))
    end
    if value ~= nil then
      table.insert(result.steps, what)
      return next(value)
    end
    if vim.uv.now() > deadline then
      return finish('timed out waiting for ' .. what)
    end
    vim.defer_fn(tick, 20)
  end
  tick()
end

local function ghost_text(bufnr)
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, -1, 0, -1, { details = true })) do
    local details = mark[4]
    if details.virt_text then
      local parts = {}
      for _, chunk in ipairs(details.virt_text) do
        table.insert(parts, chunk[1])
      end
      return table.concat(parts)
    end
  end
end

vim.opt.runtimepath:prepend(assert(os.getenv('REAPER_NVIM_CONFIG')))
vim.cmd('filetype on')
vim.lsp.enable('reaper')
vim.lsp.inline_completion.enable()
vim.cmd.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()

poll('attach', function()
  return vim.lsp.get_clients({ bufnr = bufnr, name = 'reaper' })[1]
end, 15000, function(client)
  result.server = client.server_info
  -- Cursor at the end of line 2 ("    return "), in insert mode: Neovim asks for ghost text.
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  vim.cmd('startinsert!')
  poll('ghost text', function()
    return ghost_text(bufnr)
  end, 15000, function(text)
    result.ghost_text = text
    vim.lsp.inline_completion.get()
    poll('accept', function()
      local line = vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1]
      if line ~= '    return ' then
        return line
      end
    end, 5000, function(line)
      result.accepted_line = line
      -- The completion menu in a new function below, as editors without ghost text show it.
      vim.lsp.inline_completion.enable(false)
      vim.api.nvim_buf_set_lines(bufnr, 2, 2, false, { '', 'def shout(name):', '    return ' })
      vim.api.nvim_win_set_cursor(0, { 5, 11 })
      vim.lsp.completion.enable(true, client.id, bufnr)
      vim.lsp.completion.get()
      poll('menu', function()
        local info = vim.fn.complete_info({ 'items', 'pum_visible' })
        if #info.items > 0 then
          return info
        end
      end, 15000, function(info)
        result.menu = {}
        for _, item in ipairs(info.items) do
          table.insert(result.menu, { word = item.word, menu = item.menu, kind = item.kind })
        end
        finish(nil)
      end)
    end)
  end)
end)
