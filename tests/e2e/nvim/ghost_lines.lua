-- A multi-line suggestion of the plugin's own ghost text: shown as the cursor line's virtual
-- text plus virtual lines; <M-C-Right> takes its first line, the rest stays; leaving insert
-- mode hides it; back in insert mode the next one comes, and <Tab> inserts all its lines.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

vim.cmd('filetype on')
t.setup_plugin()
t.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()

local function ghost_at(col)
  return function()
    local ghost = t.plugin_ghost(bufnr)
    if ghost and ghost.row == 1 and ghost.col == col then
      return ghost
    end
  end
end

local function lines_changed(from)
  return function()
    local now = t.lines(bufnr)
    if not vim.deep_equal(now, from) then
      return now
    end
  end
end

t.poll('attach', t.attached(bufnr), 30000, function()
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  vim.cmd('startinsert!')
  t.poll('ghost text', ghost_at(4), 15000, function(ghost)
    result.ghost = ghost
    local before = t.lines(bufnr)
    t.type('<M-C-Right>')
    t.poll('accept line', lines_changed(before), 5000, function(lines)
      result.after_line = lines
      t.poll('rest as ghost text', ghost_at(#lines[2]), 5000, function(rest)
        result.rest = rest
        t.type('<Esc>')
        t.poll('ghost text gone on InsertLeave', function()
          if vim.api.nvim_get_mode().mode == 'n' and not t.plugin_ghost(bufnr) then
            return true
          end
        end, 5000, function()
          vim.cmd('startinsert!')
          t.poll('next ghost text', ghost_at(#lines[2]), 15000, function(next_ghost)
            result.next_ghost = next_ghost
            local shown = t.lines(bufnr)
            t.type('<Tab>')
            t.poll('accept', lines_changed(shown), 5000, function(accepted)
              result.accepted = accepted
              result.cursor = vim.api.nvim_win_get_cursor(0)
              t.finish(nil)
            end)
          end)
        end)
      end)
    end)
  end)
end)
