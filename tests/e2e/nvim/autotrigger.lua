-- With vim.lsp.completion's autotrigger on and the default 'completeopt' (a lone item is
-- inserted without being chosen), typing a space or a dot must insert nothing unasked; the
-- menu still comes when asked with <C-x><C-o>.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

vim.cmd('filetype on')
t.setup_plugin()
vim.cmd.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()
local typed = '    with open(path) as f:'

local function last_line()
  local lines = t.lines(bufnr)
  return lines[#lines]
end

t.poll('attach', t.attached(bufnr), 30000, function()
  result.completeopt = vim.o.completeopt
  vim.api.nvim_win_set_cursor(0, { #t.lines(bufnr), 0 })
  vim.cmd('startinsert!')
  vim.defer_fn(function()
    -- Neovim's 'autoindent' (on by default) keeps the four spaces of the line above.
    t.type(typed .. '<CR>    data = f.')
    -- Long enough for a triggered request to come back and be inserted.
    vim.defer_fn(function()
      result.after_typing = t.lines(bufnr)
      t.type('<C-x><C-o>')
      t.poll('asked', function()
        if last_line() ~= '        data = f.' then
          return last_line()
        end
      end, 15000, function(line)
        result.asked_line = line
        t.finish(nil)
      end)
    end, 1500)
  end, 50)
end)
