-- `reaper-lsp` not on PATH: the plugin says so once, with the fix, however many files open.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

t.capture_notify()
vim.cmd('filetype on')
t.setup_plugin()
local first = assert(os.getenv('REAPER_TEST_FILE'))
t.edit(first)
t.edit(vim.fn.fnamemodify(first, ':h') .. '/other.py')
t.edit(first)
-- Give Neovim's own messages about a failed start (0.7 has one per buffer) time to come.
vim.defer_fn(function()
  result.clients = #(vim.lsp.get_clients or vim.lsp.get_active_clients)()
  t.finish(nil)
end, 200)
