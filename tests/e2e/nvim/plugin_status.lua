-- One reading of a provider's state: after Ollama failed, the statusline and :Reaper status
-- both say what the server's status model says (`state`, `summary`), not a reading of their own.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

t.capture_notify()
vim.cmd('filetype on')
t.setup_plugin()
vim.cmd('edit ' .. vim.fn.fnameescape(assert(os.getenv('REAPER_TEST_FILE'))))
local bufnr = vim.api.nvim_get_current_buf()
local reaper = require('reaper')

t.poll('attach', t.attached(bufnr), 30000, function()
  result.statusline_before = reaper.statusline()
  -- Ask for a completion where Ollama (nothing listens at its address) is the only provider.
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = 1, character = 11 },
    context = { triggerKind = 1 },
  }
  vim.lsp.buf_request(bufnr, 'textDocument/inlineCompletion', params, function() end)
  t.poll('statusline', function()
    if reaper.statusline():find('ollama') then
      return reaper.statusline()
    end
  end, 15000, function(line)
    result.statusline = line
    vim.cmd('Reaper status')
    t.poll('status', function()
      return t.note('reaper-lsp: reaper-lsp ')
    end, 15000, function(summary)
      result.status = summary
      result.statusline_after_status = reaper.statusline()
      t.finish(nil)
    end)
  end)
end)
