//! A temporary `policies/` directory for one daemon, seeded with the shipped connectors.

use std::path::{Component, Path, PathBuf};

use super::paths::workspace_root;
use crate::error::{Error, IoContext, Result};

#[derive(Debug)]
pub struct PolicyDir {
    dir: tempfile::TempDir,
}

impl PolicyDir {
    /// `<tmp>/policies/`, with `<workspace>/policies/connectors/` copied in if it exists.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("cordon-e2e-policies-")
            .tempdir()
            .ctx(|| "create policy temp dir".into())?;
        let this = Self { dir };
        let root = this.path();
        std::fs::create_dir(&root).ctx(|| format!("create {}", root.display()))?;
        let shipped = workspace_root().join("policies/connectors");
        if shipped.is_dir() {
            copy_tree(&shipped, &root.join("connectors"))?;
        }
        Ok(this)
    }

    /// The directory to pass as `--policies`.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("policies")
    }

    /// Write `toml` to `relative` (e.g. `agents/deploy-bot.toml`; `.toml` is appended when the
    /// name has no extension). Parent directories are created.
    pub fn write(&self, relative: &str, toml: &str) -> Result<PathBuf> {
        let path = self.resolve(relative)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).ctx(|| format!("create {}", parent.display()))?;
        }
        std::fs::write(&path, toml).ctx(|| format!("write {}", path.display()))?;
        Ok(path)
    }

    pub fn remove(&self, relative: &str) -> Result<()> {
        let path = self.resolve(relative)?;
        std::fs::remove_file(&path).ctx(|| format!("remove {}", path.display()))
    }

    fn resolve(&self, relative: &str) -> Result<PathBuf> {
        let rel = Path::new(relative);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Error::Path {
                path: rel.to_owned(),
                reason: "policy file name must be relative, without `..`".into(),
            });
        }
        let mut path = self.path().join(rel);
        if path.extension().is_none() {
            path.set_extension("toml");
        }
        Ok(path)
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).ctx(|| format!("create {}", to.display()))?;
    for entry in std::fs::read_dir(from).ctx(|| format!("read {}", from.display()))? {
        let entry = entry.ctx(|| format!("read entry of {}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .ctx(|| format!("copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_policy_and_adds_extension() {
        let d = PolicyDir::new().unwrap();
        let p = d.write("agents/bot", "x = 1\n").unwrap();
        assert_eq!(p, d.path().join("agents/bot.toml"));
        assert_eq!(std::fs::read_to_string(p).unwrap(), "x = 1\n");
    }

    #[test]
    fn refuses_to_escape_the_policy_dir() {
        let d = PolicyDir::new().unwrap();
        assert!(d.write("../evil.toml", "").is_err());
        assert!(d.write("/etc/evil.toml", "").is_err());
    }
}
