//! Reading a policy directory: the top-level `*.toml` files, then every file
//! they `extends` (transitively), and the version over all of them.

use crate::error::PolicyError;
use crate::source::{RawFile, SourceText};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Component, Path};

/// One parsed file. `name` is its path relative to the policy directory,
/// with `/` separators: that is how errors and rule ids name it.
pub(crate) struct LoadedFile {
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) raw: RawFile,
    pub(crate) top_level: bool,
    /// Indices into the file list, in the order `extends` names them.
    pub(crate) extends: Vec<usize>,
}

pub(crate) struct LoadedDir {
    pub(crate) files: Vec<LoadedFile>,
    pub(crate) version: String,
}

pub(crate) fn read_dir(dir: &Path) -> Result<LoadedDir, PolicyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PolicyError::Io { path, source }
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let is_file = entry.file_type().map_err(io(&path))?.is_file();
        if is_file && path.extension().is_some_and(|e| e == "toml") {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();

    let mut files: Vec<LoadedFile> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for name in names {
        let file = read_one(dir, &name, true)?;
        by_name.insert(name, files.len());
        files.push(file);
    }
    // Breadth-first over `extends`; each file is read once however many
    // files extend it.
    let mut next = 0;
    while next < files.len() {
        let mut targets = Vec::new();
        for entry in &files[next].raw.extends {
            let target = resolve_extends(&files[next], entry.as_ref(), entry.span())?;
            targets.push(target);
        }
        for target in targets {
            let index = match by_name.get(&target) {
                Some(&i) => i,
                None => {
                    let file = read_one(dir, &target, false)?;
                    by_name.insert(target, files.len());
                    files.push(file);
                    files.len() - 1
                }
            };
            files[next].extends.push(index);
        }
        next += 1;
    }
    check_cycles(&files)?;
    let version = version_of(&files);
    Ok(LoadedDir { files, version })
}

fn read_one(dir: &Path, name: &str, top_level: bool) -> Result<LoadedFile, PolicyError> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
        path: path.clone(),
        source,
    })?;
    let raw = SourceText { name, text: &text }.parse()?;
    Ok(LoadedFile {
        name: name.to_string(),
        text,
        raw,
        top_level,
        extends: Vec::new(),
    })
}

/// `extends` paths are relative to the extending file and must stay inside
/// the policy directory, so that the version covers everything in force.
fn resolve_extends(
    from: &LoadedFile,
    target: &str,
    span: std::ops::Range<usize>,
) -> Result<String, PolicyError> {
    let src = SourceText {
        name: &from.name,
        text: &from.text,
    };
    let base = Path::new(&from.name).parent().unwrap_or(Path::new(""));
    let mut parts: Vec<String> = base
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    for component in Path::new(target).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir if !parts.is_empty() => {
                parts.pop();
            }
            _ => {
                return Err(src.invalid(
                    span,
                    format!(
                        "extends `{target}`: must be a relative path inside the policy directory"
                    ),
                ));
            }
        }
    }
    let resolved = parts.join("/");
    if !resolved.ends_with(".toml") {
        return Err(src.invalid(span, format!("extends `{target}`: must name a .toml file")));
    }
    Ok(resolved)
}

fn check_cycles(files: &[LoadedFile]) -> Result<(), PolicyError> {
    // 0 = unseen, 1 = on the current path, 2 = done.
    fn visit(i: usize, files: &[LoadedFile], state: &mut [u8]) -> Result<(), PolicyError> {
        match state[i] {
            1 => {
                return Err(PolicyError::File {
                    file: files[i].name.clone(),
                    message: "`extends` cycle: this file extends itself through other files".into(),
                });
            }
            2 => return Ok(()),
            _ => {}
        }
        state[i] = 1;
        for &next in &files[i].extends {
            visit(next, files, state)?;
        }
        state[i] = 2;
        Ok(())
    }
    let mut state = vec![0u8; files.len()];
    (0..files.len()).try_for_each(|i| visit(i, files, &mut state))
}

/// Short hex of SHA-256 over every file's name and content, in name order.
fn version_of(files: &[LoadedFile]) -> String {
    let mut sorted: Vec<&LoadedFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hash = Sha256::new();
    for file in sorted {
        // Lengths first, so that no two different file sets hash alike.
        hash.update((file.name.len() as u64).to_le_bytes());
        hash.update(file.name.as_bytes());
        hash.update((file.text.len() as u64).to_le_bytes());
        hash.update(file.text.as_bytes());
    }
    hex::encode(&hash.finalize()[..6])
}
