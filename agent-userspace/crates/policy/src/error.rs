//! Errors from loading a policy directory. Each names the file and, where
//! the problem is in a file, the line and column (1-based).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bad TOML, an unknown field, or a value that does not parse.
    #[error("{file}:{line}:{col}: {message}")]
    Invalid {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// A `when` expression that does not compile.
    #[error("{file}:{line}:{col}: rule `{rule}`: `when` does not compile: {message}")]
    Cel {
        file: String,
        line: usize,
        col: usize,
        rule: String,
        message: String,
    },
    /// A problem that spans files, such as an `extends` cycle.
    #[error("{file}: {message}")]
    File { file: String, message: String },
    /// An argument given to the engine at run time, such as an empty grant.
    #[error("{0}")]
    Argument(String),
}
