-- The plugin's ghost-text keys: <M-]> shows the suggestion's index (next works), <M-Right>
-- accepts one word and the rest comes back as ghost text, <Tab> accepts the rest; <Tab> with
-- nothing shown is an ordinary Tab.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

vim.cmd('filetype on')
t.setup_plugin()
vim.cmd.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()

local function line2()
  return vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1]
end

t.poll('attach', t.attached(bufnr), 30000, function()
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  vim.cmd('startinsert!')
  t.poll('ghost text', function()
    return t.ghost_text(bufnr)
  end, 15000, function(text)
    result.ghost_text = text
    t.type('<M-]>')
    t.poll('next', function()
      local shown = t.ghost_text(bufnr)
      if shown and shown ~= text then
        return shown
      end
    end, 5000, function(cycled)
      result.after_next = cycled
      t.type('<M-Right>')
      t.poll('accept word', function()
        if line2() ~= '    return ' then
          return line2()
        end
      end, 5000, function(line)
        result.after_word = line
        t.poll('rest as ghost text', function()
          return t.ghost_text(bufnr)
        end, 15000, function(rest)
          result.rest_ghost_text = rest
          t.type('<Tab>')
          t.poll('accept', function()
            if line2() ~= result.after_word then
              return line2()
            end
          end, 5000, function(accepted)
            result.accepted_line = accepted
            result.statusline = require('reaper').statusline()
            -- Nothing shown now: <Tab> must insert a tab, not swallow the key.
            vim.bo[bufnr].expandtab = false
            t.poll('ghost text gone', function()
              if not t.ghost_text(bufnr) then
                return true
              end
            end, 5000, function()
              t.type('<Tab>')
              t.poll('plain tab', function()
                if line2() ~= accepted then
                  return line2()
                end
              end, 5000, function(tabbed)
                result.tabbed_line = tabbed
                t.finish(nil)
              end)
            end)
          end)
        end)
      end)
    end)
  end)
end)
