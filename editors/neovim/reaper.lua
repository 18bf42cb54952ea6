-- reaper-lsp for Neovim 0.11+ without the plugin (the plugin in this directory does all of
-- this for you, plus :Reaper signin/status/chat: see README.md).
-- Copy this file to ~/.config/nvim/lsp/reaper.lua, then in init.lua:
--
--   vim.lsp.enable('reaper')
--   vim.api.nvim_create_autocmd('LspAttach', {
--     callback = function(args)
--       local client = vim.lsp.get_client_by_id(args.data.client_id)
--       if client and client.name == 'reaper' then
--         -- Needed for the menu item to be inserted whole: it is a snippet, expanded on accept.
--         vim.lsp.completion.enable(true, client.id, args.buf)
--       end
--     end,
--   })
--   -- Neovim 0.12+: ghost text, accepted with <Tab>
--   if vim.lsp.inline_completion then
--     vim.lsp.inline_completion.enable()
--     vim.keymap.set('i', '<Tab>', function()
--       if not vim.lsp.inline_completion.get() then return '<Tab>' end
--     end, { expr = true, desc = 'Accept reaper-lsp suggestion' })
--   end
--
-- The suggestion is also the first item of the completion menu: ask for it with <C-x><C-o>, or
-- map <C-Space> to vim.lsp.completion.get(). The server declares no trigger characters, so
-- `autotrigger = true` never pops it up unasked: with the default 'completeopt' a lone item
-- would be inserted without being chosen. If you turn autotrigger on for other servers, add
-- `noinsert` to 'completeopt' (e.g. 'menu,menuone,noinsert,popup') for the same reason.
return {
  cmd = { 'reaper-lsp' },
  -- No `filetypes`: attach to every buffer.
  root_markers = { '.reaper.toml', '.git' },
  -- The [completion], [chat] and [privacy] keys of reaper.toml; these override the user file.
  -- Endpoints and keys are read from reaper.toml and the environment only. Example:
  -- init_options = { completion = { providers = { 'copilot', 'ollama' } } },
  init_options = {},
}
