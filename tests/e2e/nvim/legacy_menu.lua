-- Neovim before 0.11 (Debian's 0.7): the plugin sets up without a word of complaint, and beside
-- its ghost text <C-x><C-o> inserts the suggestion, all its lines; :Reaper works.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

t.capture_notify()
vim.cmd('filetype on')
t.setup_plugin()
vim.cmd('edit ' .. vim.fn.fnameescape(assert(os.getenv('REAPER_TEST_FILE'))))
local bufnr = vim.api.nvim_get_current_buf()

-- Completions that ended with an item inserted, seen after the plugin's own handler ran.
local done = 0
vim.api.nvim_create_autocmd('CompleteDone', {
  callback = function()
    if (vim.v.completed_item.word or '') ~= '' then
      vim.schedule(function()
        done = done + 1
      end)
    end
  end,
})

local function finish()
  result.lines = t.lines(bufnr)
  result.statusline = require('reaper').statusline()
  -- The commands work on these versions too.
  vim.cmd('Reaper status')
  t.poll('status', function()
    return t.note('reaper-lsp: reaper-lsp ')
  end, 15000, function(summary)
    result.status = summary
    t.finish(nil)
  end)
end

t.poll('attach', t.attached(bufnr), 30000, function()
  result.omnifunc = vim.bo[bufnr].omnifunc
  local last = #t.lines(bufnr)
  vim.api.nvim_win_set_cursor(0, { last, 0 })
  vim.cmd('startinsert!')
  vim.defer_fn(function()
    local before = table.concat(t.lines(bufnr), '\n')
    t.type('<C-x><C-o>')
    -- With the default 'completeopt' a lone match is inserted at once and the completion ends
    -- with the next key (<C-y> would also insert the character above): leave insert mode.
    t.poll('completion', function()
      if table.concat(t.lines(bufnr), '\n') ~= before then
        return true
      end
    end, 15000, function()
      t.type('<Esc>')
      t.poll('done', function()
        return done > 0 or nil
      end, 5000, finish)
    end)
  end, 50)
end)
