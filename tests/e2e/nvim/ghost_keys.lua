-- The plugin's own ghost text (Neovim 0.7-0.11, or ghost_text = 'plugin'): typing a space asks
-- for a suggestion, drawn at the cursor; typing its first letters leaves the rest shown; <M-]>
-- asks for more and counts them; <M-Right> takes a word and keeps the rest shown; <Tab> takes
-- the rest, then is a plain Tab with nothing shown; each accept is one undo step.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

vim.cmd('filetype on')
t.setup_plugin()
t.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()

local function line2()
  return vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1]
end

local function mode(want)
  return function()
    return vim.api.nvim_get_mode().mode == want or nil
  end
end

-- The ghost text once it is anchored at byte `col` of line 2.
local function ghost_at(col)
  return function()
    local ghost = t.plugin_ghost(bufnr)
    if ghost and ghost.row == 1 and ghost.col == col then
      return ghost
    end
  end
end

local function changed(from)
  return function()
    if line2() ~= from then
      return line2()
    end
  end
end

t.poll('attach', t.attached(bufnr), 30000, function()
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  vim.cmd('startinsert!')
  t.poll('insert mode', mode('i'), 5000, function()
    t.type(' ')
    t.poll('ghost text', ghost_at(#'    return '), 15000, function(ghost)
      result.ghost = ghost
      t.type('na')
      t.poll('typed through', ghost_at(#'    return na'), 15000, function(through)
        result.typed_through = through
        t.type('<M-]>')
        t.poll('next', function()
          local shown = t.plugin_ghost(bufnr)
          return shown and shown.count and shown or nil
        end, 15000, function(cycled)
          result.after_next = cycled
          t.type('<M-Right>')
          t.poll('accept word', changed('    return na'), 5000, function(line)
            result.after_word = line
            t.poll('rest as ghost text', ghost_at(#line), 5000, function(rest)
              result.rest = rest
              t.type('<Tab>')
              t.poll('accept', changed(line), 5000, function(accepted)
                result.accepted_line = accepted
                result.cursor = vim.api.nvim_win_get_cursor(0)
                vim.bo[bufnr].expandtab = false
                t.poll('ghost text gone', function()
                  return t.plugin_ghost(bufnr) == nil or nil
                end, 5000, function()
                  t.type('<Tab>')
                  t.poll('plain tab', changed(accepted), 5000, function(tabbed)
                    result.tabbed_line = tabbed
                    t.type('<Esc>')
                    t.poll('normal mode', mode('n'), 5000, function()
                      vim.cmd('undo')
                      result.undo1 = line2()
                      vim.cmd('undo')
                      result.undo2 = line2()
                      t.finish(nil)
                    end)
                  end)
                end)
              end)
            end)
          end)
        end)
      end)
    end)
  end)
end)
