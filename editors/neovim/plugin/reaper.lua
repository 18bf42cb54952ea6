-- :Reaper signin [copilot|google] | signout [copilot|google] | status | chat [prompt]
--   | toggle [global|language|workspace]
-- The server itself starts from require('reaper').setup{...} in init.lua.
if vim.g.loaded_reaper then
  return
end
vim.g.loaded_reaper = true

local subcommands = { 'signin', 'signout', 'status', 'chat', 'toggle' }
local providers = { 'copilot', 'google' }
local scopes = { 'global', 'language', 'workspace' }

vim.api.nvim_create_user_command('Reaper', function(opts)
  require('reaper.commands').dispatch(opts.fargs)
end, {
  nargs = '*',
  desc = 'reaper-lsp: signin, signout, status, chat, toggle',
  complete = function(arglead, cmdline)
    local words = vim.split(cmdline, '%s+', { trimempty = true })
    local typing_first = #words == 1 or (#words == 2 and arglead ~= '')
    local pool = typing_first and subcommands
      or ((words[2] == 'signin' or words[2] == 'signout') and providers)
      or (words[2] == 'toggle' and scopes or {})
    return vim.tbl_filter(function(word)
      return word:sub(1, #arglead) == arglead
    end, pool)
  end,
})
