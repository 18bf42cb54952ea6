-- Neovim older than 0.11 (0.7 to 0.10) has no vim.lsp.config/enable (and 0.7 no LspAttach):
-- start the server with vim.lsp.start_client, attach each buffer, give it the plugin's ghost
-- text and keys, and offer the suggestion through omnifunc (<C-x><C-o>) as well.
local M = {}

local client_id

-- Directory of the first root marker above `path`, else the current directory.
local function root_dir(path, markers)
  local from = vim.fn.fnamemodify(path, ':p:h') .. ';'
  for _, marker in ipairs(markers) do
    local dir = vim.fn.finddir(marker, from)
    if dir ~= '' then
      return vim.fn.fnamemodify(dir, ':p:h:h')
    end
    local file = vim.fn.findfile(marker, from)
    if file ~= '' then
      return vim.fn.fnamemodify(file, ':p:h')
    end
  end
  return vim.fn.getcwd()
end

-- These versions insert a completion word's newlines as NUL characters (shown as ^@): once our
-- item is accepted, break the inserted text into its lines.
local function split_lines()
  local item = vim.tbl_get(vim.v.completed_item or {}, 'user_data', 'nvim', 'lsp', 'completion_item')
  local detail = type(item) == 'table' and item.detail or ''
  if type(detail) ~= 'string' or detail:sub(1, 10) ~= 'reaper-lsp' then
    return
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local line = vim.api.nvim_get_current_line()
  local before, after = line:sub(1, col), line:sub(col + 1)
  before = before:gsub('%z', '\n')
  if not before:find('\n') then
    return
  end
  local lines = vim.split(before, '\n', { plain = true })
  local last = lines[#lines]
  lines[#lines] = last .. after
  vim.api.nvim_buf_set_lines(0, row - 1, row, false, lines)
  vim.api.nvim_win_set_cursor(0, { row + #lines - 1, #last })
end

local function attach(config, bufnr)
  if vim.bo[bufnr].buftype ~= '' then
    return
  end
  if config.filetypes and not vim.tbl_contains(config.filetypes, vim.bo[bufnr].filetype) then
    return
  end
  local reaper = require('reaper')
  if not reaper.check_cmd(config.cmd) then
    return
  end
  if not client_id or not vim.lsp.get_client_by_id(client_id) then
    client_id = vim.lsp.start_client({
      name = 'reaper',
      cmd = config.cmd,
      root_dir = root_dir(vim.api.nvim_buf_get_name(bufnr), config.root_markers),
      init_options = config.init_options,
      handlers = reaper.handlers(),
    })
  end
  local client = client_id and vim.lsp.get_client_by_id(client_id)
  if not client then
    return
  end
  vim.lsp.buf_attach_client(bufnr, client_id)
  if (config.menu or {}).enabled ~= false then
    vim.bo[bufnr].omnifunc = 'v:lua.vim.lsp.omnifunc'
    vim.api.nvim_create_autocmd('CompleteDone', {
      group = vim.api.nvim_create_augroup('reaper.legacy.' .. bufnr, { clear = true }),
      buffer = bufnr,
      callback = split_lines,
    })
  end
  reaper.on_attach(client, bufnr)
end

function M.setup(config)
  local group = vim.api.nvim_create_augroup('reaper.legacy', { clear = true })
  -- With a filetype list, wait until the filetype is known.
  local events = config.filetypes and { 'FileType' } or { 'BufReadPost', 'BufNewFile' }
  vim.api.nvim_create_autocmd(events, {
    group = group,
    callback = function(args)
      attach(config, args.buf)
    end,
  })
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.api.nvim_buf_get_name(bufnr) ~= '' then
      attach(config, bufnr)
    end
  end
end

return M
