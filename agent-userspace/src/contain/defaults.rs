//! What every contained agent is kept from by default, whatever its policy
//! says: the well-known places where tools keep credentials, under the home
//! of the user the agent runs as. docs/containment.md lists the same set;
//! keep them in step.

/// Relative to the agent user's home. A directory entry covers everything
/// below it. Globs are expanded at launch (`id_*` keys, per-project `.env`).
pub const CREDENTIAL_PATHS: &[&str] = &[
    // Cloud and cluster credentials.
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".oci",
    ".config/doctl",
    ".docker",
    ".config/containers/auth.json",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    // SSH and signing keys.
    ".ssh",
    ".gnupg",
    // Forges and package registries.
    ".config/gh",
    ".config/hub",
    ".config/glab-cli",
    ".git-credentials",
    ".config/git/credentials",
    ".netrc",
    ".npmrc",
    ".yarnrc.yml",
    ".pypirc",
    ".gem/credentials",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".m2/settings-security.xml",
    ".gradle/gradle.properties",
    // Databases.
    ".pgpass",
    ".my.cnf",
    ".mongorc.js",
    // Password managers and keyrings.
    ".password-store",
    ".local/share/keyrings",
    ".config/op",
    // Browser profiles: cookies are session credentials.
    ".mozilla",
    ".config/google-chrome",
    ".config/chromium",
    // Shell histories: exported tokens end up there.
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
    // dotenv files directly in the home and one or two levels below it.
    ".env",
    "*/.env",
    "*/*/.env",
];

/// Devices any program expects to write (terminals, sinks, shared memory).
pub const WRITABLE_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/pts",
    "/dev/ptmx",
    "/dev/shm",
];
