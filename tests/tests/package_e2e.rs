//! The Debian package (`cargo xtask package`, handed in as CORDON_DEB), for
//! real on this machine: it installs with dpkg, ships what it says, its
//! unit passes `systemd-analyze verify`, an operator's edit of the config
//! survives remove and reinstall, and purge leaves nothing of it behind.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use cordon_e2e::require_root_or_skip;
use cordon_e2e::run_with_timeout;

const T: Duration = Duration::from_secs(120);
const CONFIG: &str = "/etc/cordon/cordon.toml";

fn ok(cmd: &mut Command) -> Output {
    let out = run_with_timeout(cmd.env("DEBIAN_FRONTEND", "noninteractive"), T).unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dpkg(args: &[&str]) -> Output {
    ok(Command::new("dpkg").args(args))
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "cordon"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn package_files() -> Vec<String> {
    String::from_utf8_lossy(&dpkg(&["-L", "cordon"]).stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_package_installs_keeps_an_edited_config_and_purges_clean() {
    require_root_or_skip!();
    let deb = std::env::var("CORDON_DEB")
        .expect("CORDON_DEB names the package to test: `cargo xtask test` builds it and sets it");
    assert!(
        !installed(),
        "a cordon package is already installed here; this test would replace it (dpkg --purge cordon first)"
    );

    dpkg(&["-i", &deb]);
    assert!(installed());
    let version = ok(Command::new("/usr/bin/cordon").arg("--version"));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("cordon "));
    let files = package_files();
    for want in [
        "/usr/bin/cordon",
        "/usr/share/man/man1/cordon.1.gz",
        "/usr/share/man/man1/cordon-doctor.1.gz",
        "/usr/share/bash-completion/completions/cordon",
        "/usr/share/zsh/vendor-completions/_cordon",
        "/usr/share/fish/vendor_completions.d/cordon.fish",
        "/usr/share/doc/cordon/examples/policies/base/network.toml",
        "/usr/share/doc/cordon/examples/policies/connectors/github.toml",
        CONFIG,
    ] {
        assert!(
            files.iter().any(|f| f == want),
            "{want} not shipped: {files:#?}"
        );
    }
    let unit = files
        .iter()
        .find(|f| f.ends_with("/systemd/system/cordon.service"))
        .unwrap_or_else(|| panic!("no unit shipped: {files:#?}"));
    let text = std::fs::read_to_string(unit).unwrap();
    assert!(
        text.contains("\nExecStart=/usr/bin/cordon daemon --config /etc/cordon/cordon.toml\n"),
        "{text}"
    );
    assert!(text.contains("\nProtectSystem=strict\n"), "{text}");
    ok(Command::new("systemd-analyze").args(["verify", "--man=no", "--recursive-errors=no", unit]));

    // The maintainer scripts made what the package cannot ship.
    assert!(
        ok(Command::new("getent").args(["group", "cordon"]))
            .status
            .success()
    );
    let state = std::fs::metadata("/var/lib/cordon").unwrap();
    assert_eq!(state.permissions().mode() & 0o7777, 0o700);
    assert!(Path::new("/etc/cordon/policies").is_dir());
    let conffiles = String::from_utf8_lossy(
        &ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "cordon"])).stdout,
    )
    .into_owned();
    assert!(
        conffiles.contains(CONFIG),
        "{CONFIG} is not a conffile: {conffiles}"
    );

    // An operator's edit survives removal and reinstall.
    let edited = format!(
        "{}\n# operator edit\ndns_upstream = [\"127.0.0.53:53\"]\n",
        std::fs::read_to_string(CONFIG).unwrap()
    );
    std::fs::write(CONFIG, &edited).unwrap();
    dpkg(&["-r", "cordon"]);
    assert!(
        !Path::new("/usr/bin/cordon").exists(),
        "remove left the binary"
    );
    assert_eq!(
        std::fs::read_to_string(CONFIG).unwrap(),
        edited,
        "remove touched the config"
    );
    assert!(
        Path::new("/var/lib/cordon").is_dir(),
        "remove deleted the state"
    );
    dpkg(&["-i", &deb]);
    assert_eq!(
        std::fs::read_to_string(CONFIG).unwrap(),
        edited,
        "reinstall overwrote the config"
    );
    // Installed over itself: dpkg runs the postinst as an upgrade, which
    // asks a running daemon to upgrade in place (none runs here).
    let upgrade = dpkg(&["-i", &deb]);
    assert!(
        String::from_utf8_lossy(&upgrade.stdout)
            .contains("no daemon is running; nothing to upgrade"),
        "the upgrade's postinst did not run `cordon upgrade`: {}",
        String::from_utf8_lossy(&upgrade.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(CONFIG).unwrap(),
        edited,
        "a second install overwrote the config"
    );

    let shipped: Vec<String> = package_files()
        .into_iter()
        .filter(|f| !Path::new(f).is_dir())
        .collect();
    dpkg(&["--purge", "cordon"]);
    assert!(!installed());
    for f in &shipped {
        assert!(!Path::new(f).exists(), "purge left {f}");
    }
    for dir in ["/etc/cordon", "/var/lib/cordon"] {
        assert!(!Path::new(dir).exists(), "purge left {dir}");
    }
}
