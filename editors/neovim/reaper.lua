-- reaper-lsp for Neovim 0.11+ (native LSP client; no plugin needed).
-- Copy this file to ~/.config/nvim/lsp/reaper.lua, then in init.lua:
--
--   vim.lsp.enable('reaper')
--   -- Neovim 0.12+: ghost text, accepted with <Tab>
--   if vim.lsp.inline_completion then
--     vim.lsp.inline_completion.enable()
--     vim.keymap.set('i', '<Tab>', function()
--       if not vim.lsp.inline_completion.get() then return '<Tab>' end
--     end, { expr = true, desc = 'Accept reaper-lsp suggestion' })
--   end
--
-- On Neovim 0.11 (no ghost text) the suggestion appears first in the completion menu
-- (<C-x><C-o>, or automatically with `vim.lsp.completion.enable(true, client_id, bufnr,
-- { autotrigger = true })`).
return {
  cmd = { 'reaper-lsp' },
  -- No `filetypes`: attach to every buffer.
  root_markers = { '.reaper.toml', '.git' },
  -- Same keys as reaper.toml; these override the user file. Example:
  -- init_options = { completion = { providers = { 'copilot', 'ollama' } } },
  init_options = {},
}
