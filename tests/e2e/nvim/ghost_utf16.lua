-- The plugin's ghost text in the middle of a line with characters of 2 and 4 UTF-8 bytes before
-- the cursor: the request's position is in UTF-16 (else the server reads another prefix and
-- the fake says nothing), the suggestion is drawn at the cursor's byte, before the rest of the
-- line, and <Tab> inserts it there.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

vim.cmd('filetype on')
t.setup_plugin()
t.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()
local line = vim.api.nvim_buf_get_lines(bufnr, 0, 1, false)[1]
local col = assert(line:find('  # end', 1, true)) - 1

t.poll('attach', t.attached(bufnr), 30000, function()
  vim.api.nvim_win_set_cursor(0, { 1, col })
  vim.cmd('startinsert')
  t.poll('ghost text', function()
    local ghost = t.plugin_ghost(bufnr)
    if ghost and ghost.col == col then
      return ghost
    end
  end, 15000, function(ghost)
    result.ghost = ghost
    t.type('<Tab>')
    t.poll('accept', function()
      local now = vim.api.nvim_buf_get_lines(bufnr, 0, 1, false)[1]
      if now ~= line then
        return now
      end
    end, 5000, function(accepted)
      result.accepted = accepted
      result.cursor = vim.api.nvim_win_get_cursor(0)
      t.finish(nil)
    end)
  end)
end)
