-- :Reaper toggle as a user runs it: off for this buffer's language (a completion asked for
-- then comes back empty), on again (it comes back), off everywhere, off for the project, and
-- a scope that does not exist. Each step records the note shown and what the server answered.
local t = dofile(assert(os.getenv('REAPER_TEST_LIB')))
local result = t.result

t.capture_notify()
vim.cmd('filetype on')
t.setup_plugin()
t.edit(assert(os.getenv('REAPER_TEST_FILE')))
local bufnr = vim.api.nvim_get_current_buf()
local reaper = require('reaper')

local function request(client, method, params, handler)
  if vim.fn.has('nvim-0.11') == 1 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

-- Ask the server for ghost text at the end of line 2 and hand `next` how many items came.
local function ask(name, next)
  local answer
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = 1, character = 11 },
    context = { triggerKind = 1 },
  }
  request(reaper.client(bufnr), 'textDocument/inlineCompletion', params, function(err, found)
    answer = { count = err and -1 or #((found or {}).items or {}) }
  end)
  t.poll(name, function()
    return answer
  end, 15000, function(got)
    result[name] = got.count
    next()
  end)
end

-- Run `:Reaper toggle {arg}` and wait for the note it shows (the n-th note so far).
local function toggle(arg, name, next)
  local seen = #result.notes
  vim.cmd('Reaper toggle' .. (arg and (' ' .. arg) or ''))
  t.poll(name, function()
    local note = result.notes[seen + 1]
    return note and note.message
  end, 15000, function(message)
    result[name] = message
    next()
  end)
end

t.poll('attach', t.attached(bufnr), 30000, function()
  toggle('language', 'language_off', function()
    ask('items_language_off', function()
      toggle('language', 'language_on', function()
        ask('items_language_on', function()
          toggle(nil, 'global_off', function()
            ask('items_global_off', function()
              toggle('global', 'global_on', function()
                toggle('workspace', 'workspace_off', function()
                  toggle('file', 'bad_scope', function()
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
