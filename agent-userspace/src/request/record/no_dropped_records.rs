//! Keeps `let _ =` and `.ok()` off audit results in the daemon's sources.
//! "A security record that cannot be written is a refusal, never a
//! warning": a discarded append result is how records were lost before
//! (issue 14), so the whole tree is scanned rather than trusting review.
//!
//! The scan is textual but statement-shaped: sources are cut into
//! statements at `;`, `{` and `}` (comments removed), and a statement is
//! flagged when it calls an audit writer (`append*(`, `audit*(`,
//! `record(`, `record_with_approver(`) and either starts with `let _ =` /
//! `_ =` or turns the result into an option with `.ok()`.
use std::path::{Path, PathBuf};

/// Calls that write an audit record: their result must be acted on.
fn is_audit_call(ident: &str) -> bool {
    ident == "append"
        || ident.starts_with("append_")
        || ident.starts_with("audit")
        || ident == "record"
        || ident == "record_with_approver"
}

/// The identifiers called in `stmt` (an identifier directly before `(`).
fn called(stmt: &str) -> impl Iterator<Item = &str> {
    stmt.match_indices('(').filter_map(move |(at, _)| {
        let before = &stmt[..at];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let ident = &before[start..];
        (!ident.is_empty()).then_some(ident)
    })
}

/// Why `stmt` drops an audit result, if it does.
fn drops_audit_result(stmt: &str) -> Option<&'static str> {
    let flat: String = stmt.chars().filter(|c| !c.is_whitespace()).collect();
    if !called(&flat).any(is_audit_call) {
        return None;
    }
    if flat.starts_with("let_=") || flat.starts_with("_=") {
        return Some("`let _ =` discards an audit result");
    }
    // `.ok()` after the audit call turns a failed record into "no id".
    let call_at = called(&flat)
        .filter(|i| is_audit_call(i))
        .map(|i| i.as_ptr() as usize - flat.as_ptr() as usize)
        .min()?;
    flat[call_at..]
        .contains(".ok()")
        .then_some("`.ok()` turns a failed audit record into nothing")
}

/// Removes `//` comments (doc comments included), keeping line breaks so
/// line numbers stay right. A `//` inside a string literal cuts the rest of
/// that line too; that can only hide code, never invent a finding.
fn strip_comments(src: &str) -> String {
    src.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `(line, why)` of every statement in `src` that drops an audit result.
fn findings(src: &str) -> Vec<(usize, &'static str)> {
    let code = strip_comments(src);
    let mut out = Vec::new();
    let mut start = 0;
    for (at, _) in code
        .match_indices([';', '{', '}'])
        .chain([(code.len(), "")])
    {
        let stmt = &code[start..at];
        if let Some(why) = drops_audit_result(stmt) {
            let lead = stmt.len() - stmt.trim_start().len();
            let line = code[..start + lead].matches('\n').count() + 1;
            out.push((line, why));
        }
        start = (at + 1).min(code.len());
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_audit_result_is_discarded_in_the_daemon_sources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 50, "scanned only {} files", files.len());
    let mut bad = Vec::new();
    for f in files {
        // This file quotes the patterns it looks for.
        if f.ends_with(file!().rsplit('/').next().unwrap_or_default()) {
            continue;
        }
        let src = std::fs::read_to_string(&f).unwrap();
        for (line, why) in findings(&src) {
            bad.push(format!("{}:{line}: {why}", f.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "security records must never be dropped (act on the error, or use \
         request::record::append_refusal for something already refused):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scan_flags_dropped_audit_results_and_nothing_else() {
    let dropped = "fn f() {\n    let _ = record_with_approver(\n        d,\n        ask,\n    )\n    .await;\n\
        let id = append(&ctx.d.audit, rec.build()).await.ok();\n\
        _ = audit_connect(&d, &actor).await;\n\
        let x = record(d, &ask, &decision, EventKind::Request, None)\n            .await\n            .ok();\n}";
    let lines: Vec<usize> = findings(dropped).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines, [2, 7, 8, 9]);

    let fine = "fn f() {\n    let _ = send(w, &frame).await;\n\
        chunk.append(&mut found);\n\
        let exe = std::fs::read_link(p).ok().map(String::from);\n\
        if let Err(e) = d.audit.append(rec).await { tracing::error!(\"{e}\"); }\n\
        let rec = events::landlock_record(a, b).ok();\n\
        append_refusal(&d.audit, rec).await;\n\
        // let _ = append(x);\n\
        let _ = metrics.observe(1);\n}";
    assert_eq!(findings(fine), []);
}
