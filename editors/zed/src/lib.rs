//! Registers the `reaper-lsp` binary found on PATH as a Zed language server.
use zed_extension_api::{self as zed, settings::LspSettings, LanguageServerId, Result};

struct ReaperLsp;

impl zed::Extension for ReaperLsp {
    fn new() -> Self {
        ReaperLsp
    }

    fn language_server_command(
        &mut self,
        _id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<zed::Command> {
        let command = worktree
            .which("reaper-lsp")
            .ok_or_else(|| "reaper-lsp is not on PATH: install it first (see its README)".to_string())?;
        Ok(zed::Command {
            command,
            args: vec!["serve".into(), "--stdio".into()],
            env: Default::default(),
        })
    }

    fn language_server_initialization_options(
        &mut self,
        id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<zed::serde_json::Value>> {
        Ok(LspSettings::for_worktree(id.as_ref(), worktree)
            .ok()
            .and_then(|settings| settings.initialization_options))
    }
}

zed::register_extension!(ReaperLsp);
