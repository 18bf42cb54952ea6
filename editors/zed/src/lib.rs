//! Registers the `reaper-lsp` binary found on PATH as a Zed language server.
//!
//! It reads no Zed settings of its own. The extension API offers only the settings merged for a
//! worktree (`LspSettings::for_worktree`), which include a project's `.zed/settings.json`: a
//! cloned repository could write them. Endpoints and keys come from the user's `reaper.toml`
//! and environment, which the server reads itself. (Zed still sends
//! `lsp.reaper-lsp.initialization_options` as initializationOptions; the server takes only the
//! completion, chat and privacy sections from it.)
use zed_extension_api::{self as zed, LanguageServerId, Result};

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
}

zed::register_extension!(ReaperLsp);
