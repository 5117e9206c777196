//! Landlock only grants; it cannot carve a denied subtree out of a granted
//! one. So a deny list is turned into grants: every root is granted whole
//! unless a denied path lies inside it, in which case its entries are
//! granted one by one (recursing toward the denied path) and the denied
//! path itself is left out. Symbolic links are never granted: what they
//! point to is governed by its own place in the tree.
//!
//! What appears later inside a carved directory is covered by no grant, so
//! it is refused: carving only ever errs on the side of less access.
use std::path::{Path, PathBuf};

/// What a directory entry is, as `lstat` says (links not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Symlink,
    Other,
}

/// Lists a directory's entries; an unreadable directory lists as empty.
pub type Lister<'a> = &'a dyn Fn(&Path) -> Vec<(PathBuf, Kind)>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carved {
    /// Granted with everything beneath them.
    pub whole: Vec<PathBuf>,
    /// Directories on the way to a denied path: listable (a read grant) but
    /// granted nothing that would reach below them.
    pub parents: Vec<PathBuf>,
}

pub fn carve(roots: &[PathBuf], denied: &[PathBuf], list: Lister<'_>) -> Carved {
    let mut out = Carved::default();
    for root in roots {
        carve_one(root, denied, list, &mut out);
    }
    out.whole.sort();
    out.whole.dedup();
    out.parents.sort();
    out.parents.dedup();
    out
}

fn carve_one(p: &Path, denied: &[PathBuf], list: Lister<'_>, out: &mut Carved) {
    if denied.iter().any(|d| p.starts_with(d)) {
        return;
    }
    if !denied.iter().any(|d| d.starts_with(p)) {
        out.whole.push(p.to_path_buf());
        return;
    }
    out.parents.push(p.to_path_buf());
    for (child, kind) in list(p) {
        if kind != Kind::Symlink {
            carve_one(&child, denied, list, out);
        }
    }
}

/// The real lister: `read_dir` with `lstat` kinds.
pub fn list_dir(dir: &Path) -> Vec<(PathBuf, Kind)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let ft = e.file_type().ok()?;
            let kind = if ft.is_symlink() {
                Kind::Symlink
            } else if ft.is_dir() {
                Kind::Dir
            } else {
                Kind::Other
            };
            Some((e.path(), kind))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn tree() -> BTreeMap<&'static str, Vec<(&'static str, Kind)>> {
        BTreeMap::from([
            (
                "/",
                vec![
                    ("/etc", Kind::Dir),
                    ("/home", Kind::Dir),
                    ("/usr", Kind::Dir),
                ],
            ),
            ("/home", vec![("/home/a", Kind::Dir)]),
            (
                "/home/a",
                vec![
                    ("/home/a/.aws", Kind::Dir),
                    ("/home/a/proj", Kind::Dir),
                    ("/home/a/.bashrc", Kind::Other),
                    ("/home/a/aws-link", Kind::Symlink),
                ],
            ),
        ])
    }

    fn run(roots: &[&str], denied: &[&str]) -> Carved {
        let t = tree();
        let list = move |p: &Path| -> Vec<(PathBuf, Kind)> {
            t.get(p.to_str().unwrap())
                .map(|v| v.iter().map(|(c, k)| (PathBuf::from(c), *k)).collect())
                .unwrap_or_default()
        };
        let roots: Vec<PathBuf> = roots.iter().map(PathBuf::from).collect();
        let denied: Vec<PathBuf> = denied.iter().map(PathBuf::from).collect();
        carve(&roots, &denied, &list)
    }

    fn strs(v: &[PathBuf]) -> Vec<&str> {
        v.iter().map(|p| p.to_str().unwrap()).collect()
    }

    #[test]
    fn a_denied_dir_is_carved_out_of_its_root_and_its_siblings_stay() {
        let c = run(&["/"], &["/home/a/.aws"]);
        assert_eq!(
            strs(&c.whole),
            ["/etc", "/home/a/.bashrc", "/home/a/proj", "/usr"]
        );
        assert_eq!(strs(&c.parents), ["/", "/home", "/home/a"]);
    }

    #[test]
    fn symlinks_are_never_granted() {
        let c = run(&["/"], &["/home/a/.aws"]);
        assert!(!strs(&c.whole).contains(&"/home/a/aws-link"));
    }

    #[test]
    fn a_root_without_denials_is_granted_whole_and_a_denied_root_not_at_all() {
        assert_eq!(strs(&run(&["/usr"], &["/home/a/.aws"]).whole), ["/usr"]);
        let c = run(&["/home/a/.aws"], &["/home/a/.aws"]);
        assert!(c.whole.is_empty() && c.parents.is_empty());
    }

    #[test]
    fn a_denied_path_that_does_not_exist_still_closes_its_parent() {
        // ~/.ssh is not there now; if it appears later it is not granted.
        let c = run(&["/home/a"], &["/home/a/.ssh"]);
        assert_eq!(strs(&c.parents), ["/home/a"]);
        assert!(!strs(&c.whole).contains(&"/home/a"));
    }
}
