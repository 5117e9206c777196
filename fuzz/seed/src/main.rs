//! `cordon-fuzz-seed REPO OUT`: writes a seed corpus per fuzz target under
//! OUT/<target>/, from the fixtures the tests already use:
//! the shipped-route table of the connector tests (requests), real rustls
//! ClientHellos for those hosts, DNS queries and answers for them as the
//! end-to-end DNS server would send, the policy and connector files in
//! `policies/`, the MCP traffic the connector tests replay, and git pushes
//! made by git itself.
mod dns;
mod files;
mod git;
mod hello;
mod mcp;
mod requests;

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
};

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [repo, out] = args.as_slice() else {
        eprintln!("usage: cordon-fuzz-seed REPO OUT");
        std::process::exit(2);
    };
    let cases = requests::route_cases();
    let raw: Vec<Vec<u8>> = cases.iter().map(requests::raw_request).collect();
    let hosts = requests::hosts(&cases);

    let mut peek: Vec<Vec<u8>> = hosts
        .iter()
        .filter_map(|h| hello::client_hello(h))
        .collect();
    peek.extend(raw.iter().take(8).cloned());
    let mcp = mcp::traffic(&repo.join("agent-userspace/crates/connectors/tests/fixtures/mcp_sdk"));
    let seeds: [(&str, Vec<Vec<u8>>); 9] = [
        ("tls_peek", peek),
        ("connector_match", raw.clone()),
        ("h1_head", raw),
        ("dns_query", dns::messages(&hosts)),
        (
            "policy_load",
            files::toml_under(&repo.join("policies"), false),
        ),
        (
            "connector_load",
            files::toml_under(&repo.join("policies/connectors"), true),
        ),
        ("mcp_request", mcp.requests),
        ("mcp_tools_filter", mcp.answers),
        ("git_push", git::pushes(out)),
    ];
    for (target, inputs) in seeds {
        write_all(&out.join(target), &inputs);
    }
}

fn write_all(dir: &Path, inputs: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    for input in inputs {
        let mut h = DefaultHasher::new();
        input.hash(&mut h);
        let path = dir.join(format!("seed-{:016x}", h.finish()));
        std::fs::write(&path, input).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    eprintln!("seeded {} with {} inputs", dir.display(), inputs.len());
}
