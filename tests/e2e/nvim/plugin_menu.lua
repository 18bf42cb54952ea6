-- The completion menu as a user of the plugin gets it: <C-x><C-o> on an indented empty line
-- lists the suggestion, <C-y> inserts all its lines and words; then after `self.` typed on a
-- new line, a multi-word suggestion is inserted whole too.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

vim.cmd('filetype on')
t.setup_plugin()
vim.cmd.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()

local function menu()
  local info = vim.fn.complete_info({ 'items', 'pum_visible' })
  if #info.items > 0 then
    local items = {}
    for _, item in ipairs(info.items) do
      table.insert(items, { word = item.word, abbr = item.abbr, menu = item.menu })
    end
    return items
  end
end

-- Counts accepted completions, seen after Neovim's own CompleteDone handler has run.
local accepted = 0
vim.api.nvim_create_autocmd('CompleteDone', {
  callback = function()
    if vim.v.event.reason == 'accept' then
      vim.schedule(function()
        accepted = accepted + 1
      end)
    end
  end,
})

-- Ask for the menu at the cursor, accept its first item, hand the buffer to `next`.
local function complete_and_accept(name, next)
  local seen = accepted
  t.type('<C-x><C-o>')
  t.poll(name .. ' menu', menu, 15000, function(items)
    result[name .. '_menu'] = items
    t.type('<C-y>')
    t.poll(name .. ' accept', function()
      if accepted > seen then
        return t.lines(bufnr)
      end
    end, 5000, next)
  end)
end

t.poll('attach', t.attached(bufnr), 30000, function()
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  vim.cmd('startinsert!')
  vim.defer_fn(function()
    complete_and_accept('block', function(lines)
      result.block_lines = lines
      result.block_cursor = vim.api.nvim_win_get_cursor(0)
      -- Still in insert mode: a new line with `self.` typed, the cursor after the dot.
      vim.api.nvim_buf_set_lines(bufnr, -1, -1, false, { '        self.' })
      vim.api.nvim_win_set_cursor(0, { #t.lines(bufnr), #'        self.' })
      complete_and_accept('dot', function(dot_lines)
        result.dot_lines = dot_lines
        t.finish(nil)
      end)
    end)
  end, 50)
end)
