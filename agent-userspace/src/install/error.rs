//! Why an install or uninstall step failed, naming the path or command.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{} is a symlink or special file; only regular files and directories are installed", path.display())]
    NotRegular { path: PathBuf },
    #[error(
        "no policy directory to install: pass --policies-from DIR (the repository's policies/); looked in {}",
        looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoPolicySource { looked: Vec<PathBuf> },
    #[error("the policies to install do not load, fix them first: {0}")]
    Policy(#[from] cordon_policy::PolicyError),
    #[error("the connectors to install do not load, fix them first: {0}")]
    Connectors(#[from] cordon_connectors::ConnectorError),
    #[error("creating the CA in {}: {source}", dir.display())]
    Ca {
        dir: PathBuf,
        #[source]
        source: cordon_tls::TlsError,
    },
    #[error("{what} needs root (run it with sudo), or use --prefix for a scratch root")]
    NotRoot { what: &'static str },
    #[error("--prefix {}: {reason}", prefix.display())]
    Prefix { prefix: PathBuf, reason: String },
    #[error("{} line {line}: {message}", path.display())]
    Manifest {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("kernel cleanup: {0:#}")]
    Cleanup(anyhow::Error),
}

impl InstallError {
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> InstallError {
        let path = path.into();
        move |source| InstallError::Io {
            action,
            path,
            source,
        }
    }
}
