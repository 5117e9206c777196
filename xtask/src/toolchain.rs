//! Idempotent installation of everything the build and tests need, into
//! places the project owns (.tools/) or the toolchain manager's own.
use std::{path::Path, process::Command};

use anyhow::{Context, bail};

use crate::sys::{self, have, output, run, workspace_root};

/// The userspace toolchain is pinned in rust-toolchain.toml.
pub const USERSPACE_TOOLCHAIN: &str = "1.99.1";
/// A dated nightly: a moving one breaks bpf-linker. Keep in sync with
/// agent-userspace/build.rs.
pub const EBPF_TOOLCHAIN: &str = "nightly-2026-10-29";
pub const BPF_LINKER_VERSION: &str = "0.13.0";
/// Builds and runs the fuzz targets (`cargo xtask fuzz`) on EBPF_TOOLCHAIN,
/// the one nightly the project pins.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// Builds the Debian package (`cargo xtask package`).
pub const CARGO_DEB_VERSION: &str = "3.6.0";

/// Debian packages the end-to-end tests and the demo use.
const PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("curl", "curl"),
    ("git", "git"),
    ("python3", "python3"),
    ("node", "nodejs"),
    ("systemd-analyze", "systemd"),
    // The collector audit_forward_e2e ships the trail to, and its TLS driver
    // (no program of its own: checked by a file the package ships).
    ("rsyslogd", "rsyslog"),
    ("/usr/share/doc/rsyslog-gnutls/copyright", "rsyslog-gnutls"),
    // The web console's browser test and first-paint bench (`browser.rs`).
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    // The reverse proxy in front of the unix-socket console (console_proxy_e2e).
    ("/usr/sbin/nginx", "nginx"),
    // `cargo xtask package` checks the package with lintian; the package
    // test installs it with dpkg, and its maintainer scripts use these.
    ("lintian", "lintian"),
    ("addgroup", "adduser"),
    ("deb-systemd-helper", "init-system-helpers"),
];

pub fn setup() -> anyhow::Result<()> {
    rust_toolchains()?;
    // Debian's first: the Python tools need its python3.
    packages()?;
    // The Python tools download and unpack from PyPI (quietly) while cargo
    // builds the Rust ones: one after the other, the venvs took about 75 s
    // after the builds; beside them they cost about 30 s of that (pip and
    // cargo share the two cores).
    std::thread::scope(|scope| {
        let python = scope.spawn(|| -> anyhow::Result<()> {
            aws_tools()?;
            proto_tools()?;
            crate::browser::install()
        });
        let rust = bpf_linker()
            .and_then(|()| cargo_fuzz())
            .and_then(|()| cargo_deb());
        let python = python
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        rust.and(python)
    })
}

/// What `cargo xtask fuzz` needs: the nightly, cargo-fuzz, a C++ compiler
/// for libFuzzer (and git, which the seeder drives).
pub fn ensure_fuzz_tools() -> anyhow::Result<()> {
    rust_toolchains()?;
    cargo_fuzz()?;
    packages()
}

/// True when nothing needs installing, so `test` and `demo` can skip setup.
pub fn is_ready() -> bool {
    has_toolchain(USERSPACE_TOOLCHAIN)
        && has_toolchain(EBPF_TOOLCHAIN)
        && workspace_root().join(".tools/bin/bpf-linker").exists()
        && cargo_fuzz_installed()
        && cargo_deb_installed()
        && PACKAGES.iter().all(|(bin, _)| have(bin))
        && rust_src_installed()
        && aws_tools_installed()
        && proto_tools_installed()
        && crate::browser::installed()
}

/// What cordon-jit's AWS tests run against and as: moto's server (a local
/// AWS that checks SigV4 signatures and IAM policy), and boto3 and the AWS
/// CLI as agents, from PyPI, pinned.
const AWS_PYTHON_PACKAGES: &[&str] = &["moto[server]==5.2.6", "boto3==1.44.18", "awscli==1.46.3"];
const MOTO_VERSION: &str = "5.2.6";

fn aws_venv() -> std::path::PathBuf {
    workspace_root().join(".tools/aws-venv")
}

fn aws_tools_installed() -> bool {
    let venv = aws_venv();
    venv.join("bin/aws").exists()
        && venv.join("bin/moto_server").exists()
        && output(
            Command::new(venv.join("bin/python"))
                .args(["-c", "import moto, boto3; print(moto.__version__)"]),
        )
        .is_some_and(|v| v.trim() == MOTO_VERSION)
}

/// moto, boto3 and the AWS CLI into a virtualenv under .tools/ (nothing
/// system-wide; the tests find it there).
fn aws_tools() -> anyhow::Result<()> {
    if aws_tools_installed() {
        return Ok(());
    }
    let venv = aws_venv();
    if !venv.join("bin/pip").exists() {
        eprintln!("xtask: creating {}", venv.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).context(
            "creating the AWS test virtualenv (on Debian: apt-get install python3-venv)",
        )?;
    }
    eprintln!(
        "xtask: installing {} from PyPI",
        AWS_PYTHON_PACKAGES.join(" ")
    );
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(AWS_PYTHON_PACKAGES))
}

/// What the MCP and gRPC end-to-end tests and the demo run as agents and
/// upstreams: the official MCP Python SDK (server and client) and gRPC's
/// Python server, client and protobuf compiler, from PyPI, pinned. The
/// MCP version is the one the connectors' recorded traffic came from.
const PROTO_PYTHON_PACKAGES: &[&str] = &["mcp==2.3.0", "grpcio==1.85.1", "grpcio-tools==1.85.1"];
const PROTO_CHECK: &str = "import mcp, grpc, grpc_tools; from importlib.metadata import version as v; print(v('mcp'), grpc.__version__)";
const PROTO_VERSIONS: &str = "2.3.0 1.85.1";
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Where the tests find it (`cordon_e2e::proto_venv`).
fn proto_venv() -> std::path::PathBuf {
    workspace_root().join(".tools/proto-venv")
}

/// Whether the venv runs the system interpreter (see `proto_tools`).
fn proto_venv_on_system_python() -> bool {
    let python = proto_venv().join("bin/python3");
    std::fs::canonicalize(python)
        .is_ok_and(|p| std::fs::canonicalize(SYSTEM_PYTHON).is_ok_and(|s| s == p))
}

fn proto_tools_installed() -> bool {
    proto_venv_on_system_python()
        && output(Command::new(proto_venv().join("bin/python")).args(["-c", PROTO_CHECK]))
            .is_some_and(|v| v.trim() == PROTO_VERSIONS)
}

/// The MCP SDK and gRPC into a virtualenv under .tools/.
fn proto_tools() -> anyhow::Result<()> {
    if proto_tools_installed() {
        return Ok(());
    }
    let venv = proto_venv();
    if venv.exists() && !proto_venv_on_system_python() {
        eprintln!(
            "xtask: {} is not on {SYSTEM_PYTHON}: recreating it",
            venv.display()
        );
        std::fs::remove_dir_all(&venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    if !venv.join("bin/pip").exists() {
        eprintln!("xtask: creating {}", venv.display());
        // The system interpreter, not whichever `python3` is first on PATH: agents run this
        // venv as `nobody`, and an interpreter under a private home (pyenv) is not theirs to run.
        run(Command::new(SYSTEM_PYTHON).args(["-m", "venv"]).arg(&venv)).context(
            "creating the MCP/gRPC test virtualenv (on Debian: apt-get install python3-venv)",
        )?;
    }
    eprintln!(
        "xtask: installing {} from PyPI",
        PROTO_PYTHON_PACKAGES.join(" ")
    );
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PROTO_PYTHON_PACKAGES))
}

fn has_toolchain(tc: &str) -> bool {
    output(Command::new("rustup").args(["run", tc, "rustc", "--version"])).is_some()
}

fn rust_src_installed() -> bool {
    output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        EBPF_TOOLCHAIN,
    ]))
    .is_some_and(|o| o.lines().any(|l| l.starts_with("rust-src")))
}

fn rust_toolchains() -> anyhow::Result<()> {
    if !has_toolchain(USERSPACE_TOOLCHAIN) {
        eprintln!("xtask: installing Rust {USERSPACE_TOOLCHAIN}");
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            USERSPACE_TOOLCHAIN,
            "--profile",
            "minimal",
            "--component",
            "rustfmt,clippy",
        ]))?;
    }
    if !has_toolchain(EBPF_TOOLCHAIN) || !rust_src_installed() {
        eprintln!("xtask: installing {EBPF_TOOLCHAIN} with rust-src (eBPF)");
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            EBPF_TOOLCHAIN,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))?;
    }
    Ok(())
}

/// bpf-linker linked against the nightly's own libLLVM, so its LLVM major
/// always matches the bitcode rustc emits (Debian's LLVM is too old).
fn bpf_linker() -> anyhow::Result<()> {
    let root = workspace_root();
    let prefix = root.join(".tools");
    let bin = prefix.join("bin/bpf-linker");
    let sysroot =
        output(Command::new("rustc").args([&format!("+{EBPF_TOOLCHAIN}"), "--print", "sysroot"]))
            .context("asking the eBPF toolchain for its sysroot")?;
    let lib = Path::new(sysroot.trim()).join("lib");
    let so = std::fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so."))
        .with_context(|| format!("no libLLVM.so.* in {}", lib.display()))?;
    let llvm_lib = prefix.join("llvm/lib");
    std::fs::create_dir_all(&llvm_lib)?;
    for link in ["libLLVM.so".to_string(), so.clone()] {
        let dst = llvm_lib.join(&link);
        let _ = std::fs::remove_file(&dst);
        std::os::unix::fs::symlink(lib.join(&so), &dst)
            .with_context(|| format!("linking {}", dst.display()))?;
    }
    let version_ok =
        output(Command::new(&bin).arg("--version")).is_some_and(|v| v.contains(BPF_LINKER_VERSION));
    if version_ok {
        return Ok(());
    }
    let vv = output(Command::new("rustc").args([&format!("+{EBPF_TOOLCHAIN}"), "-vV"]))
        .unwrap_or_default();
    let Some(major) = vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
    else {
        bail!("cannot read the LLVM version of {EBPF_TOOLCHAIN}");
    };
    eprintln!(
        "xtask: building bpf-linker {BPF_LINKER_VERSION} against LLVM {major} (about a minute)"
    );
    run(Command::new("cargo")
        .args([
            &format!("+{USERSPACE_TOOLCHAIN}"),
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--locked",
            "--no-default-features",
            "--features",
            &format!("llvm-{major}"),
            "--root",
        ])
        .arg(&prefix)
        .env("LLVM_PREFIX", prefix.join("llvm")))
}

fn cargo_fuzz_installed() -> bool {
    let bin = workspace_root().join(".tools/bin/cargo-fuzz");
    output(Command::new(bin).arg("--version")).is_some_and(|v| v.contains(CARGO_FUZZ_VERSION))
}

/// cargo-fuzz from crates.io into .tools/bin, like bpf-linker, built with
/// the userspace toolchain (it is a plain binary; only what it builds needs
/// the nightly).
fn cargo_fuzz() -> anyhow::Result<()> {
    if cargo_fuzz_installed() {
        return Ok(());
    }
    eprintln!("xtask: building cargo-fuzz {CARGO_FUZZ_VERSION} (about two minutes)");
    run(Command::new("cargo")
        .args([
            &format!("+{USERSPACE_TOOLCHAIN}"),
            "install",
            &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
            "--locked",
            "--root",
        ])
        .arg(workspace_root().join(".tools")))
}

/// What `cargo xtask package` needs: cargo-deb and lintian.
pub fn ensure_package_tools() -> anyhow::Result<()> {
    cargo_deb()?;
    packages()
}

fn cargo_deb_installed() -> bool {
    let bin = workspace_root().join(".tools/bin/cargo-deb");
    output(Command::new(bin).arg("--version")).is_some_and(|v| v.contains(CARGO_DEB_VERSION))
}

/// cargo-deb from crates.io into .tools/bin, like cargo-fuzz.
fn cargo_deb() -> anyhow::Result<()> {
    if cargo_deb_installed() {
        return Ok(());
    }
    eprintln!("xtask: building cargo-deb {CARGO_DEB_VERSION} (about two minutes)");
    run(Command::new("cargo")
        .args([
            &format!("+{USERSPACE_TOOLCHAIN}"),
            "install",
            &format!("cargo-deb@{CARGO_DEB_VERSION}"),
            "--locked",
            "--root",
        ])
        .arg(workspace_root().join(".tools")))
}

/// Installs missing Debian packages when running as root; otherwise says
/// what is missing.
fn packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(bin, _)| !have(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !sys::is_root() || !have("apt-get") {
        eprintln!(
            "xtask: warning: missing packages for the end-to-end tests: {}",
            missing.join(" ")
        );
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
