-- The :Reaper commands as a user runs them: signin shows the code and the page and copies the
-- code, then reports the account; status prints a summary; chat opens a buffer with the
-- answer; signout reports it. The statusline follows the server's reaper/status notes.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

t.capture_notify()
vim.cmd('filetype on')
t.setup_plugin()
vim.cmd.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()
local reaper = require('reaper')

local function note(text)
  return function()
    return t.note(text)
  end
end

local function chat_lines()
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if buf ~= bufnr and vim.api.nvim_buf_is_loaded(buf) and vim.bo[buf].buftype == 'nofile' then
      local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
      if lines[#lines] and lines[#lines]:find('^— ') then
        return lines
      end
    end
  end
end

t.poll('attach', t.attached(bufnr), 30000, function()
  result.statusline_before = reaper.statusline()
  vim.cmd('Reaper signin copilot')
  t.poll('sign-in code', note('enter the code'), 15000, function(code_note)
    result.code_note = code_note
    result.register = vim.fn.getreg('"')
    t.poll('signed in', note('signed in to copilot'), 15000, function(done)
      result.signed_in_note = done
      t.poll('statusline', function()
        if reaper.statusline() ~= result.statusline_before then
          return reaper.statusline()
        end
      end, 5000, function(line)
        result.statusline_signed_in = line
        vim.cmd('Reaper status')
        t.poll('status', note('reaper-lsp: reaper-lsp '), 15000, function(summary)
          result.status = summary
          vim.cmd('Reaper chat Say hello')
          t.poll('chat', chat_lines, 15000, function(lines)
            result.chat = lines
            vim.cmd('Reaper signout copilot')
            t.poll('signed out', note('signed out of copilot'), 15000, function(out)
              result.signed_out_note = out
              result.statusline_signed_out = reaper.statusline()
              t.finish(nil)
            end)
          end)
        end)
      end)
    end)
  end)
end)
