-- <M-C-Right> takes the first line of a multi-line suggestion; the next lines stay as ghost text.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

vim.cmd('filetype on')
t.setup_plugin()
vim.cmd.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()

t.poll('attach', t.attached(bufnr), 30000, function()
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  vim.cmd('startinsert!')
  t.poll('ghost text', function()
    return t.ghost_text(bufnr)
  end, 15000, function(text)
    result.ghost_text = text
    t.type('<M-C-Right>')
    t.poll('accept line', function()
      local lines = t.lines(bufnr)
      if lines[2] ~= '    ' then
        return lines
      end
    end, 5000, function(lines)
      result.after_line = lines
      t.poll('rest as ghost text', function()
        return t.ghost_text(bufnr)
      end, 15000, function(rest)
        result.rest_ghost_text = rest
        t.finish(nil)
      end)
    end)
  end)
end)
