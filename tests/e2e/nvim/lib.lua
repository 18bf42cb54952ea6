-- Shared by the headless scenarios: write what was seen as JSON to $REAPER_TEST_OUT, poll
-- without blocking the editor, read ghost text, type keys as a user would, and start the
-- plugin from editors/neovim with the options the test passed in $REAPER_TEST_SETUP (JSON).
-- Works on Neovim 0.7 too (no vim.uv, vim.keycode or vim.json.encode there).
local M = { result = { steps = {}, notes = {} } }

local uv = vim.uv or vim.loop
local encode = vim.json and vim.json.encode or vim.fn.json_encode

function M.finish(err)
  M.result.error = err
  local f = assert(io.open(assert(os.getenv('REAPER_TEST_OUT')), 'w'))
  f:write(encode(M.result))
  f:close()
  vim.cmd('qall!')
end

-- Poll `check` every 20 ms (vim.wait would block the insert-mode state machine) until it
-- returns a value, then call `next` with it; give up after `timeout_ms`.
function M.poll(what, check, timeout_ms, next)
  local deadline = uv.now() + timeout_ms
  local function tick()
    local ok, value = pcall(check)
    if not ok then
      return M.finish(what .. ': ' .. tostring(value))
    end
    if value ~= nil then
      table.insert(M.result.steps, what)
      local ran, err = pcall(next, value)
      if not ran then
        M.finish(what .. ' (next step): ' .. tostring(err))
      end
      return
    end
    if uv.now() > deadline then
      return M.finish('timed out waiting for ' .. what)
    end
    vim.defer_fn(tick, 20)
  end
  tick()
end

function M.ghost_text(bufnr)
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, -1, 0, -1, { details = true })) do
    local details = mark[4]
    if details.virt_text then
      local parts = {}
      for _, chunk in ipairs(details.virt_text) do
        table.insert(parts, chunk[1])
      end
      for _, line in ipairs(details.virt_lines or {}) do
        table.insert(parts, '\n')
        for _, chunk in ipairs(line) do
          table.insert(parts, chunk[1])
        end
      end
      return table.concat(parts)
    end
  end
end

--- The plugin's own ghost text (extmarks in reaper.ghost's namespace), or nil: `text` is the
--- first line then "\n" and each virtual line, `count` the '(i/n)' shown after cycling, `row`
--- and `col` where it is anchored (0-based), `pos` its virt_text_pos, `marks` how many there are,
--- `redrawn` the line's own text an overlay draws again after the suggestion.
function M.plugin_ghost(bufnr)
  local ghost = require('reaper.ghost')
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, ghost.ns, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local details = marks[1][4]
  local parts, count, redrawn = {}, nil, nil
  local function take(chunks)
    for _, chunk in ipairs(chunks) do
      if chunk[2] == ghost.HL then
        table.insert(parts, chunk[1])
      elseif chunk[2] == ghost.HL_COUNT then
        count = vim.trim(chunk[1])
      else
        redrawn = (redrawn or '') .. chunk[1]
      end
    end
  end
  take(details.virt_text or {})
  for _, line in ipairs(details.virt_lines or {}) do
    table.insert(parts, '\n')
    take(line)
  end
  return {
    text = table.concat(parts),
    count = count,
    row = marks[1][2],
    col = marks[1][3],
    pos = details.virt_text_pos,
    marks = #marks,
    redrawn = redrawn,
  }
end

--- Open `path` (vim.cmd.edit is 0.8+).
function M.edit(path)
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
end

--- Type `keys` (in <> notation) through mappings, as if from the keyboard.
function M.type(keys)
  local codes = vim.api.nvim_replace_termcodes(keys, true, false, true)
  vim.api.nvim_feedkeys(codes, 'mt', false)
end

function M.lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
end

--- Record every vim.notify message in result.notes.
function M.capture_notify()
  vim.notify = function(message, level)
    table.insert(M.result.notes, { message = message, level = level })
  end
end

--- The first recorded message containing `text` (plain), or nil.
function M.note(text)
  for _, note in ipairs(M.result.notes) do
    if note.message:find(text, 1, true) then
      return note.message
    end
  end
end

--- Put editors/neovim on the runtimepath and run the plugin's setup with the test's options.
function M.setup_plugin()
  local root = assert(os.getenv('REAPER_PLUGIN_DIR'))
  vim.opt.runtimepath:prepend(root)
  vim.cmd('runtime plugin/reaper.lua')
  local opts = os.getenv('REAPER_TEST_SETUP')
  require('reaper').setup(opts and vim.fn.json_decode(opts) or {})
end

--- The reaper client attached to `bufnr`, for M.poll.
function M.attached(bufnr)
  return function()
    return require('reaper').client(bufnr)
  end
end

return M
