//! `coxswain keygen` and `coxswain trust init|rotate`, run as the real binary.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use coxswain::format::{Timestamp, TrustRoot, read_json};
use coxswain::keys;
use coxswain::site::{Limits, Site};
use coxswain::trust::{sig_path_of, walk_site};
use coxswain::verify::TrustChain;

fn coxswain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coxswain"))
        .args(args)
        .output()
        .unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(needle),
        "`{stderr}` does not mention `{needle}`"
    );
}

fn keygen(dir: &Path, name: &str) -> String {
    ok(&coxswain(&["keygen", "--out", p(dir), "--name", name]))
        .trim()
        .to_owned()
}

#[test]
fn keygen_writes_a_0600_key_and_prints_its_keyid() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("new/keys");
    let id = keygen(&out_dir, "ci-1");
    let private = out_dir.join("ci-1.key");
    assert_eq!(
        std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let public = keys::read_verifying_key(&out_dir.join("ci-1.pub")).unwrap();
    assert_eq!(id, keys::keyid(&public));
    assert_eq!(
        keys::read_signing_key(&private).unwrap().verifying_key(),
        public
    );
    // Never overwritten.
    let before = std::fs::read(&private).unwrap();
    one_line_error(
        &coxswain(&["keygen", "--out", p(&out_dir), "--name", "ci-1"]),
        "already exists",
    );
    assert_eq!(std::fs::read(&private).unwrap(), before);
    one_line_error(
        &coxswain(&["keygen", "--out", p(&out_dir), "--name", "../x"]),
        "key name `../x`",
    );
}

#[test]
fn trust_init_then_two_rotations_form_a_chain_agents_accept() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("keys");
    for name in ["root-1", "root-2", "root-3", "ci-1", "ci-2"] {
        keygen(&k, name);
    }
    let key = |n: &str| k.join(n).to_str().unwrap().to_owned();
    let trust = dir.path().join("trust.json");
    let stdout = ok(&coxswain(&[
        "trust",
        "init",
        "--root-key",
        &key("root-1.key"),
        "--root-key",
        &key("root-2.key"),
        "--channel-key",
        &key("ci-1.pub"),
        "--valid-for",
        "30d",
        "--out",
        p(&trust),
    ]));
    assert!(
        stdout.contains("version 1, root threshold 2/2, channel threshold 1/1"),
        "{stdout}"
    );
    let anchor: TrustRoot = read_json(&std::fs::read(&trust).unwrap(), "trust.json").unwrap();
    let days = (anchor.expires.datetime() - Timestamp::now().datetime()).whole_days();
    assert!((29..=30).contains(&days), "{days}");
    // A second init does not replace the anchor.
    one_line_error(
        &coxswain(&[
            "trust",
            "init",
            "--root-key",
            &key("root-1.key"),
            "--channel-key",
            &key("ci-1.pub"),
            "--out",
            p(&trust),
        ]),
        "already exists",
    );

    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    // Replace root-1 by root-3, then rotate the channel key.
    ok(&coxswain(&[
        "trust",
        "rotate",
        "--trust",
        p(&trust),
        "--site",
        p(&site),
        "--root-key",
        &key("root-1.key"),
        "--root-key",
        &key("root-2.key"),
        "--root-key",
        &key("root-3.key"),
        "--new-root-pub",
        &key("root-2.pub"),
        "--new-root-pub",
        &key("root-3.pub"),
    ]));
    // root-1 alone can no longer sign anything.
    one_line_error(
        &coxswain(&[
            "trust",
            "rotate",
            "--trust",
            p(&trust),
            "--site",
            p(&site),
            "--root-key",
            &key("root-1.key"),
        ]),
        "root key of neither version 2 nor version 3",
    );
    ok(&coxswain(&[
        "trust",
        "rotate",
        "--trust",
        p(&trust),
        "--site",
        p(&site),
        "--root-key",
        &key("root-2.key"),
        "--root-key",
        &key("root-3.key"),
        "--channel-key",
        &key("ci-2.pub"),
    ]));

    let bytes = std::fs::read(&trust).unwrap();
    let sig = std::fs::read(sig_path_of(&trust)).unwrap();
    let chain = TrustChain::anchor(&bytes, Some((&sig, "trust.json.sig")), "trust.json").unwrap();
    let site = Site::dir(&site, Limits::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let chain = rt.block_on(walk_site(&site, chain)).unwrap();
    let root = chain.trusted(Timestamp::now()).unwrap();
    assert_eq!(root.root().version, 3);
    let ci2 = keys::keyid(&keys::read_verifying_key(&k.join("ci-2.pub")).unwrap());
    assert_eq!(root.root().roles.channel.keyids, vec![ci2]);
}

#[test]
fn key_mistakes_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("keys");
    keygen(&k, "root");
    keygen(&k, "ci");
    let out = dir.path().join("trust.json");
    let root = k.join("root.key");
    one_line_error(
        &coxswain(&[
            "trust",
            "init",
            "--root-key",
            p(&root),
            "--channel-key",
            p(&k.join("ci.key")),
            "--out",
            p(&out),
        ]),
        "--channel-key takes a public key",
    );
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o644)).unwrap();
    one_line_error(
        &coxswain(&[
            "trust",
            "init",
            "--root-key",
            p(&root),
            "--channel-key",
            p(&k.join("ci.pub")),
            "--out",
            p(&out),
        ]),
        "mode 0644",
    );
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o600)).unwrap();
    one_line_error(
        &coxswain(&[
            "trust",
            "init",
            "--root-key",
            p(&root),
            "--channel-key",
            p(&k.join("ci.pub")),
            "--channel-threshold",
            "2",
            "--out",
            p(&out),
        ]),
        "threshold 2 must be between 1 and its 1 key(s)",
    );
    let bad = coxswain(&[
        "trust",
        "init",
        "--root-key",
        p(&root),
        "--channel-key",
        p(&k.join("ci.pub")),
        "--valid-for",
        "1y",
        "--out",
        p(&out),
    ]);
    assert_eq!(bad.status.code(), Some(2), "clap rejects the flag value");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("1y"));
    assert!(!out.exists(), "nothing is written on rejection");
}

#[test]
fn every_command_documents_an_example() {
    for args in [
        &["keygen", "--help"][..],
        &["trust", "init", "--help"],
        &["trust", "rotate", "--help"],
    ] {
        let help = ok(&coxswain(args));
        assert!(help.contains("Example"), "{args:?}: {help}");
        assert!(help.contains("coxswain "), "{args:?}");
    }
    let top = ok(&coxswain(&["--help"]));
    assert!(top.contains("keygen") && top.contains("trust"), "{top}");
}
