//! Every hostile or malformed input in testdata/bad/{index,spec,trust}/ is refused with
//! its own error, naming the file and the thing at fault, without a panic and without
//! writing anything. testdata/bad/README.md lists the files; `cargo xtask gen-bad-inputs`
//! regenerates them.

mod support;

use std::process::Command;

use coxswain::format::spec::{ChannelSpec, SpecFileError};
use coxswain::format::trust::RoleName;
use coxswain::format::{FormatError, Timestamp, TrustRoot, ValidationError, read_json};
use coxswain::json::JsonError;
use coxswain::verify::{
    IndexPolicy, Rejected, TrustChain, TrustedRoot, VerifiedIndex, VerifyError, verify_index,
};
use coxswain::yaml::YamlError;
use support::{chain, copy_tree, snapshot, test_key_file, testdata};

const NOW: &str = "2026-12-01T00:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn anchor() -> TrustChain {
    TrustChain::anchor(
        &read("bad/base/trust.json"),
        Some((&read("bad/base/trust.json.sig"), "base/trust.json.sig")),
        "base/trust.json",
    )
    .unwrap()
}

fn trusted() -> TrustedRoot {
    anchor().trusted(now()).unwrap()
}

fn policy() -> IndexPolicy<'static> {
    IndexPolicy {
        channel: "stable",
        min_sequence: 10,
        now: now(),
    }
}

/// Verifies testdata/bad/index/NAME.json with its .sig against the base trust root.
fn verify(name: &str) -> Result<VerifiedIndex, VerifyError> {
    let json = format!("bad/index/{name}.json");
    let sig = format!("{json}.sig");
    verify_index(&read(&json), &read(&sig), &trusted(), policy(), &json, &sig)
}

/// The error, with its message (all causes) checked to name `needles`.
fn refused(name: &str, needles: &[&str]) -> VerifyError {
    let err = match verify(name) {
        Ok(_) => panic!("{name} was accepted"),
        Err(e) => e,
    };
    let text = chain(&err);
    for needle in needles {
        assert!(
            text.contains(needle),
            "{name}: `{text}` does not mention `{needle}`"
        );
    }
    err
}

fn invalid_index(name: &str, needles: &[&str]) -> ValidationError {
    let file = format!("bad/index/{name}.json");
    let mut all = vec![file.as_str()];
    all.extend_from_slice(needles);
    match refused(name, &all) {
        VerifyError::Document(FormatError::Invalid {
            error,
            kind: "ChannelIndex",
            ..
        }) => error,
        other => panic!("{name}: expected a validation error, got {other:?}"),
    }
}

#[test]
fn the_base_fixtures_are_valid() {
    let v = verify_index(
        &read("bad/base/index.json"),
        &read("bad/base/index.json.sig"),
        &trusted(),
        policy(),
        "base/index.json",
        "base/index.json.sig",
    )
    .unwrap();
    assert_eq!(v.signers().len(), 2);
    let wiki = &v.index().releases[1];
    v.check_chart(&wiki.chart, &read("bad/base/chart.tgz"))
        .unwrap();
}

// --- signatures ---

#[test]
fn flipped_byte() {
    let err = refused(
        "flipped-byte",
        &["bad/index/flipped-byte.json", "does not match"],
    );
    assert!(
        matches!(&err, VerifyError::ThresholdNotMet { valid: 0, threshold: 2, rejected, .. }
        if rejected.len() == 2 && rejected.iter().all(|r| matches!(r, Rejected::BadSignature { .. }))),
        "{err:?}"
    );
}

#[test]
fn wrong_key() {
    let err = refused(
        "wrong-key",
        &["bad/index/wrong-key.json", "not a key of the role"],
    );
    assert!(
        matches!(&err, VerifyError::ThresholdNotMet { valid: 0, role: RoleName::Channel, rejected, .. }
        if rejected.iter().all(|r| matches!(r, Rejected::NotInRole { .. }))),
        "{err:?}"
    );
}

#[test]
fn threshold_not_met() {
    let err = refused(
        "threshold-not-met",
        &["bad/index/threshold-not-met.json", "1 valid", "2 required"],
    );
    assert!(
        matches!(
            err,
            VerifyError::ThresholdNotMet {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn keyid_listed_twice_counts_once() {
    let err = refused(
        "keyid-twice",
        &["bad/index/keyid-twice.json", "listed again"],
    );
    assert!(
        matches!(&err, VerifyError::ThresholdNotMet { valid: 1, threshold: 2, rejected, .. }
        if matches!(rejected.as_slice(), [Rejected::Duplicate { .. }])),
        "{err:?}"
    );
}

#[test]
fn malformed_signature_envelope() {
    let err = refused(
        "bad-sig-envelope",
        &[
            "bad/index/bad-sig-envelope.json.sig",
            "sig is not 128 lowercase hex",
        ],
    );
    assert!(
        matches!(
            err,
            VerifyError::Signatures(FormatError::Invalid {
                error: ValidationError::BadSignatureEntry { index: 0, .. },
                ..
            })
        ),
        "{err:?}"
    );
}

// --- freshness, channel, rollback ---

#[test]
fn expired_index() {
    let err = refused(
        "expired",
        &["bad/index/expired.json", "expired at 2026-10-15T00:00:00Z"],
    );
    assert!(matches!(err, VerifyError::Expired { .. }), "{err:?}");
}

#[test]
fn wrong_channel() {
    let err = refused(
        "wrong-channel",
        &["bad/index/wrong-channel.json", "`beta`", "`stable`"],
    );
    assert!(matches!(err, VerifyError::WrongChannel { .. }), "{err:?}");
}

#[test]
fn lower_sequence() {
    let err = refused(
        "lower-sequence",
        &["bad/index/lower-sequence.json", "sequence 9", "10"],
    );
    assert!(
        matches!(
            err,
            VerifyError::SequenceTooLow {
                found: 9,
                minimum: 10,
                ..
            }
        ),
        "{err:?}"
    );
}

// --- structure (authentic, still refused) ---

#[test]
fn duplicate_releases() {
    let err = invalid_index("duplicate-releases", &["release `chat`"]);
    assert!(matches!(err, ValidationError::DuplicateRelease { name } if name == "chat"));
}

#[test]
fn dependency_cycle() {
    let err = invalid_index("dependency-cycle", &["sso -> chat -> sso"]);
    assert!(matches!(err, ValidationError::DependencyCycle { .. }));
}

#[test]
fn unknown_depends_on() {
    let err = invalid_index("unknown-depends-on", &["`wiki`", "`database`"]);
    assert!(
        matches!(err, ValidationError::UnknownDependency { release, dependency } if release == "wiki" && dependency == "database")
    );
}

#[test]
fn bad_semver() {
    let err = invalid_index("bad-semver", &["release `wiki`", "`V1.4.0`"]);
    assert!(matches!(err, ValidationError::BadVersion { .. }));
}

#[test]
fn bad_range() {
    let err = invalid_index("bad-range", &["release `sso`", ">=2.0.0 <<2.1"]);
    assert!(matches!(err, ValidationError::BadRange { .. }));
}

#[test]
fn invalid_namespace() {
    let err = invalid_index("invalid-namespace", &["namespace `Chat_NS`"]);
    assert!(matches!(
        err,
        ValidationError::InvalidName {
            what: "namespace",
            ..
        }
    ));
}

#[test]
fn absolute_chart_url() {
    let err = invalid_index(
        "absolute-chart-url",
        &["release `wiki`", "https://evil.example/"],
    );
    assert!(matches!(err, ValidationError::BadChartUrl { .. }));
}

// --- JSON hostility ---

#[test]
fn deep_nesting() {
    let err = refused(
        "deep-nesting",
        &["bad/index/deep-nesting.json", "nested deeper than 64"],
    );
    assert!(
        matches!(
            err,
            VerifyError::Document(FormatError::Json(JsonError::TooDeep { limit: 64, .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn duplicate_json_keys() {
    let err = refused(
        "duplicate-keys",
        &["bad/index/duplicate-keys.json", "duplicate key `sequence`"],
    );
    assert!(
        matches!(
            err,
            VerifyError::Document(FormatError::Json(JsonError::DuplicateKey { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn non_utf8() {
    let err = refused("non-utf8", &["bad/index/non-utf8.json", "not UTF-8"]);
    assert!(
        matches!(
            err,
            VerifyError::Document(FormatError::Json(JsonError::NotUtf8 { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_field() {
    let err = refused(
        "unknown-field",
        &["bad/index/unknown-field.json", "unknown field `mirror`"],
    );
    assert!(
        matches!(
            err,
            VerifyError::Document(FormatError::Json(JsonError::Invalid { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_api_version() {
    let err = refused(
        "unknown-apiversion",
        &[
            "bad/index/unknown-apiversion.json",
            "`coxswain.dev/v2`",
            "kind `ChannelIndex`",
        ],
    );
    assert!(
        matches!(&err, VerifyError::Document(FormatError::UnknownDocument { api_version, kind, .. })
        if api_version == "coxswain.dev/v2" && kind == "ChannelIndex"),
        "{err:?}"
    );
}

#[test]
fn oversized_index_is_refused_before_hashing_or_parsing() {
    // Generated here rather than checked in: 16 MiB and one byte of JSON whitespace.
    let mut bytes = read("bad/base/index.json");
    bytes.resize(coxswain::format::index::MAX_INDEX_BYTES + 1, b' ');
    let sig = read("bad/base/index.json.sig");
    let err = verify_index(
        &bytes,
        &sig,
        &trusted(),
        policy(),
        "oversized/index.json",
        "s",
    )
    .unwrap_err();
    assert!(
        matches!(err, VerifyError::Document(FormatError::Json(JsonError::TooLarge { limit, .. }))
        if limit == 16 << 20),
        "{err:?}"
    );
    assert!(
        chain(&err).starts_with("oversized/index.json: 16777217 bytes"),
        "{}",
        chain(&err)
    );
}

// --- chart bytes ---

#[test]
fn chart_digest_mismatch() {
    let v = verify("../base/index").unwrap();
    let wiki = &v.index().releases[1].chart;
    let err = v
        .check_chart(wiki, &read("bad/index/chart-digest-mismatch.tgz"))
        .unwrap_err();
    assert!(matches!(err, VerifyError::ChartDigest { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("chart wiki 1.4.2: digest sha256:"),
        "{err}"
    );
}

#[test]
fn chart_size_mismatch() {
    let v = verify("../base/index").unwrap();
    let wiki = &v.index().releases[1].chart;
    let err = v
        .check_chart(wiki, &read("bad/index/chart-size-mismatch.tgz"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ChartSize {
                expected: 61,
                actual: 76,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("chart wiki 1.4.2: 76 bytes"),
        "{err}"
    );
}

// --- channel specs and values files (YAML) ---

fn spec(name: &str) -> SpecFileError {
    let path = testdata(&format!("bad/spec/{name}"));
    match ChannelSpec::load(&path) {
        Ok(spec) => match spec.releases[0].effective_values(path.parent().unwrap()) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

fn spec_refused(name: &str, needles: &[&str]) -> SpecFileError {
    let err = spec(name);
    let text = chain(&err);
    for needle in needles {
        assert!(
            text.contains(needle),
            "{name}: `{text}` does not mention `{needle}`"
        );
    }
    err
}

fn spec_invalid(name: &str, needles: &[&str]) -> ValidationError {
    let file = format!("bad/spec/{name}");
    let mut all = vec![file.as_str()];
    all.extend_from_slice(needles);
    match spec_refused(name, &all) {
        SpecFileError::Format(FormatError::Invalid {
            error,
            kind: "ChannelSpec",
            ..
        }) => error,
        other => panic!("{name}: expected a validation error, got {other:?}"),
    }
}

#[test]
fn spec_alias_bomb() {
    let err = spec_refused("alias-bomb.yaml", &["bad/spec/alias-bomb.yaml", "alias"]);
    assert!(
        matches!(
            err,
            SpecFileError::Format(FormatError::Yaml(YamlError::AliasBudget { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn spec_deep_nesting() {
    let err = spec_refused(
        "deep-nesting.yaml",
        &["bad/spec/deep-nesting.yaml", "nested deeper than 64"],
    );
    assert!(
        matches!(
            err,
            SpecFileError::Format(FormatError::Yaml(YamlError::TooDeep { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn values_file_alias_bomb() {
    let err = spec_refused(
        "values-alias-bomb.yaml",
        &["values/alias-bomb.yaml", "alias"],
    );
    assert!(
        matches!(err, SpecFileError::Values(YamlError::AliasBudget { .. })),
        "{err:?}"
    );
}

#[test]
fn values_file_deep_nesting() {
    let err = spec_refused(
        "values-deep-nesting.yaml",
        &["values/deep-nesting.yaml", "nested deeper than 64"],
    );
    assert!(
        matches!(err, SpecFileError::Values(YamlError::TooDeep { .. })),
        "{err:?}"
    );
}

#[test]
fn spec_duplicate_keys() {
    let err = spec_refused(
        "duplicate-keys.yaml",
        &["bad/spec/duplicate-keys.yaml", "duplicate"],
    );
    assert!(
        matches!(
            err,
            SpecFileError::Format(FormatError::Yaml(YamlError::DuplicateKey { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn spec_dependency_cycle() {
    let err = spec_invalid("dependency-cycle.yaml", &["sso -> wiki -> sso"]);
    assert!(matches!(err, ValidationError::DependencyCycle { .. }));
}

#[test]
fn spec_unknown_depends_on() {
    let err = spec_invalid("unknown-depends-on.yaml", &["`database`"]);
    assert!(matches!(err, ValidationError::UnknownDependency { .. }));
}

#[test]
fn spec_duplicate_releases() {
    let err = spec_invalid("duplicate-releases.yaml", &["release `sso`"]);
    assert!(matches!(err, ValidationError::DuplicateRelease { .. }));
}

#[test]
fn spec_bad_semver() {
    let err = spec_invalid("bad-semver.yaml", &["release `wiki`", "`1.4.x`"]);
    assert!(matches!(err, ValidationError::BadVersion { .. }));
}

#[test]
fn spec_bad_range() {
    let err = spec_invalid("bad-range.yaml", &["release `wiki`", "<=>2"]);
    assert!(matches!(err, ValidationError::BadRange { .. }));
}

#[test]
fn spec_invalid_namespace() {
    let err = spec_invalid("invalid-namespace.yaml", &["namespace `Wiki.Prod`"]);
    assert!(matches!(
        err,
        ValidationError::InvalidName {
            what: "namespace",
            ..
        }
    ));
}

/// A spec the YAML reader refuses as invalid (`YamlError::Invalid`), naming `needles`.
fn spec_yaml_invalid(name: &str, needles: &[&str]) {
    let err = spec_refused(name, needles);
    assert!(
        matches!(
            err,
            SpecFileError::Format(FormatError::Yaml(YamlError::Invalid { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn spec_unknown_field() {
    spec_yaml_invalid(
        "unknown-field.yaml",
        &["bad/spec/unknown-field.yaml", "dependOn"],
    );
}

#[test]
fn spec_unknown_api_version() {
    let err = spec_refused(
        "unknown-apiversion.yaml",
        &[
            "bad/spec/unknown-apiversion.yaml",
            "`coxswain.dev/v1beta1`",
            "kind `ChannelSpec`",
        ],
    );
    assert!(
        matches!(
            err,
            SpecFileError::Format(FormatError::UnknownDocument { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn spec_health_option_not_a_bool() {
    let err = spec_refused(
        "health-option-not-a-bool.yaml",
        &[
            "bad/spec/health-option-not-a-bool.yaml",
            "invalid boolean at line 12, column 41",
        ],
    );
    assert!(
        matches!(
            err,
            SpecFileError::Format(FormatError::Yaml(YamlError::Invalid { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn spec_update_policies_that_cannot_be_followed() {
    for (file, says) in [
        (
            "update-bad-track.yaml",
            "update.chart: `newest` is neither patch, minor, major nor none, nor a semver range",
        ),
        (
            "update-image-with-tag.yaml",
            "update.images[0].repository: `nginx:1.27`: `nginx:1.27` is not a repository path component",
        ),
        (
            "update-bad-pattern.yaml",
            "update.images[0].pattern: `(\\d+` is not a regular expression",
        ),
        (
            "update-empty-values-path.yaml",
            "update.images[0].tag: `image..tag` is not a dotted values path (an empty key)",
        ),
    ] {
        let err = spec_invalid(file, &["release `wiki`", says]);
        assert!(
            matches!(err, ValidationError::BadUpdatePolicy { .. }),
            "{file}: {err:?}"
        );
    }
}

#[test]
fn spec_backup_unknown_before_unparsable_ttl_and_unknown_approval() {
    for (file, says) in [
        (
            "backup-unknown-before.yaml",
            "unknown variant `install`, expected one of upgrade at line 12, column 22",
        ),
        (
            "backup-bad-ttl.yaml",
            "duration `1h30m` is not a whole number",
        ),
        (
            "approval-unknown.yaml",
            "unknown variant `maybe`, expected one of required, waived at line 12, column 15",
        ),
    ] {
        let err = spec_refused(file, &[&format!("bad/spec/{file}"), says]);
        assert!(
            matches!(
                err,
                SpecFileError::Format(FormatError::Yaml(YamlError::Invalid { .. }))
            ),
            "{file}: {err:?}"
        );
    }
}

#[test]
fn spec_backup_ttl_zero_or_too_long() {
    let err = spec_invalid(
        "backup-ttl-zero.yaml",
        &["release `wiki`: backup.ttl must be longer than 0s"],
    );
    assert!(
        matches!(err, ValidationError::ZeroDuration { .. }),
        "{err:?}"
    );
    let err = spec_invalid(
        "backup-ttl-too-long.yaml",
        &["release `wiki`: backup.ttl 3651d is longer than the maximum of 3650d"],
    );
    assert!(
        matches!(err, ValidationError::BadBackupPolicy { .. }),
        "{err:?}"
    );
}

#[test]
fn spec_two_chart_forms() {
    spec_yaml_invalid(
        "two-chart-forms.yaml",
        &[
            "bad/spec/two-chart-forms.yaml",
            "exactly one of `path`, `archive`, `repo` or `oci`",
        ],
    );
}

#[test]
fn spec_dependencies_only_for_a_chart_directory() {
    spec_yaml_invalid(
        "dependencies-on-archive.yaml",
        &[
            "bad/spec/dependencies-on-archive.yaml",
            "`dependencies` applies to a `path` chart only",
        ],
    );
    spec_yaml_invalid(
        "dependencies-unknown.yaml",
        &["bad/spec/dependencies-unknown.yaml", "update"],
    );
}

#[test]
fn spec_non_utf8() {
    let err = spec_refused("non-utf8.yaml", &["bad/spec/non-utf8.yaml", "not UTF-8"]);
    assert!(
        matches!(
            err,
            SpecFileError::Format(FormatError::Yaml(YamlError::NotUtf8 { .. }))
        ),
        "{err:?}"
    );
}

// --- trust roots ---

fn walk(dir: &str) -> Result<TrustedRoot, VerifyError> {
    let site = format!("bad/trust/{dir}");
    let json = format!("{site}/trust/2.json");
    let mut chain = anchor();
    chain.advance(
        &read(&json),
        &read(&format!("{json}.sig")),
        &json,
        &format!("{json}.sig"),
    )?;
    chain.trusted(now())
}

#[test]
fn good_rotation_is_accepted() {
    let root = walk("good-rotation").unwrap();
    assert_eq!(root.root().version, 2);
}

#[test]
fn rotation_that_skips_a_version() {
    let err = walk("skip-version").unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::TrustVersionSkip {
                found: 3,
                current: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        chain(&err)
            .contains("skip-version/trust/2.json: trust root version 3 does not follow version 1"),
        "{}",
        chain(&err)
    );
}

#[test]
fn rotation_lacking_the_old_roots_signatures() {
    let err = walk("lacks-old-signatures").unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ThresholdNotMet {
                role: RoleName::Root,
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        chain(&err).contains("lacks-old-signatures/trust/2.json (signed by version 1's root keys)"),
        "{}",
        chain(&err)
    );
}

#[test]
fn rotation_lacking_its_own_signatures() {
    let err = walk("lacks-own-signatures").unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ThresholdNotMet {
                role: RoleName::Root,
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        chain(&err).contains("lacks-own-signatures/trust/2.json (signed by its own root keys)"),
        "{}",
        chain(&err)
    );
}

#[test]
fn expired_latest_root() {
    let err = walk("expired").unwrap_err();
    assert!(matches!(err, VerifyError::Expired { .. }), "{err:?}");
    assert!(
        chain(&err).contains("expired/trust/2.json: expired at 2026-11-30T00:00:00Z"),
        "{}",
        chain(&err)
    );
}

fn anchor_invalid(name: &str, needles: &[&str]) -> ValidationError {
    let rel = format!("bad/trust/{name}");
    let err = read_json::<TrustRoot>(&read(&rel), &rel).unwrap_err();
    let text = chain(&err);
    for needle in std::iter::once(&rel.as_str()).chain(needles) {
        assert!(
            text.contains(needle),
            "{name}: `{text}` does not mention `{needle}`"
        );
    }
    match err {
        FormatError::Invalid { error, .. } => error,
        other => panic!("{name}: expected a validation error, got {other:?}"),
    }
}

#[test]
fn anchor_keyid_mismatch() {
    let err = anchor_invalid(
        "anchor-keyid-mismatch.json",
        &["keyid is not the sha256 of its public key"],
    );
    assert!(matches!(err, ValidationError::KeyIdMismatch { .. }));
}

#[test]
fn anchor_threshold_zero() {
    let err = anchor_invalid(
        "anchor-threshold-zero.json",
        &["role `root`", "threshold 0"],
    );
    assert!(matches!(
        err,
        ValidationError::BadThreshold { threshold: 0, .. }
    ));
}

#[test]
fn anchor_threshold_above_key_count() {
    let err = anchor_invalid(
        "anchor-threshold-too-high.json",
        &["role `root`", "threshold 3"],
    );
    assert!(matches!(
        err,
        ValidationError::BadThreshold {
            threshold: 3,
            keys: 2,
            ..
        }
    ));
}

#[test]
fn anchor_role_naming_an_unknown_key() {
    let err = anchor_invalid(
        "anchor-unknown-role-key.json",
        &["role `channel`", "ffffffff"],
    );
    assert!(matches!(
        err,
        ValidationError::UnknownRoleKey {
            role: "channel",
            ..
        }
    ));
}

#[test]
fn anchor_duplicate_json_keys() {
    let rel = "bad/trust/anchor-duplicate-keys.json";
    let err = read_json::<TrustRoot>(&read(rel), rel).unwrap_err();
    assert!(
        matches!(&err, FormatError::Json(JsonError::DuplicateKey { key, .. }) if key == "version"),
        "{err:?}"
    );
    assert!(chain(&err).contains(rel));
}

// --- nothing is written on rejection: `coxswain trust rotate` over the bad sites ---

fn rotate_over(dir: &str, signers: &[&str]) -> (std::process::Output, bool) {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    copy_tree(&testdata(&format!("bad/trust/{dir}")), &site);
    let before = snapshot(&site);
    let keys: Vec<_> = signers
        .iter()
        .map(|n| test_key_file(tmp.path(), n))
        .collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coxswain"));
    cmd.args(["trust", "rotate", "--trust"])
        .arg(testdata("bad/base/trust.json"))
        .arg("--site")
        .arg(&site);
    for k in &keys {
        cmd.arg("--root-key").arg(k);
    }
    let out = cmd.output().unwrap();
    (out, snapshot(&site) == before)
}

fn assert_cli_refuses(dir: &str, needle: &str) {
    let (out, unchanged) = rotate_over(dir, &["test-root-1", "test-root-2", "test-root-3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{dir}: rotate succeeded");
    assert_eq!(out.status.code(), Some(1), "{dir}: {stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.trim_end().lines().count() == 1,
        "{dir}: {stderr}"
    );
    assert!(stderr.contains(needle), "{dir}: {stderr}");
    assert!(!stderr.contains("panicked"), "{dir}: {stderr}");
    assert!(
        unchanged,
        "{dir}: the site changed although rotation was refused"
    );
}

#[test]
fn rotate_refuses_a_site_with_a_skipped_version_and_writes_nothing() {
    assert_cli_refuses(
        "skip-version",
        "trust root version 3 does not follow version 1",
    );
}

#[test]
fn rotate_refuses_a_site_lacking_old_signatures_and_writes_nothing() {
    assert_cli_refuses("lacks-old-signatures", "signed by version 1's root keys");
}

#[test]
fn rotate_over_a_good_site_writes_version_3() {
    let (out, unchanged) = rotate_over("good-rotation", &["test-root-2", "test-root-3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!unchanged);
}

#[test]
fn readme_lists_every_file() {
    let readme = std::fs::read_to_string(testdata("bad/README.md")).unwrap();
    for sub in ["index", "spec", "spec/values", "trust"] {
        for entry in std::fs::read_dir(testdata(&format!("bad/{sub}"))).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".sig") || (entry.path().is_dir() && sub != "trust") {
                continue;
            }
            let slash = if entry.path().is_dir() { "/" } else { "" };
            let listed = format!("{sub}/{name}{slash}");
            assert!(
                readme.contains(&listed),
                "testdata/bad/README.md does not list {listed}"
            );
        }
    }
}

// --- values are signed as written ---

#[test]
fn spec_values_big_integer() {
    // Inline values: refused while the spec is read, with the line and the path.
    spec_yaml_invalid(
        "values-big-integer.yaml",
        &[
            "bad/spec/values-big-integer.yaml",
            "values at `realm.ids[1]`",
            "9007199254740993 is beyond ±2^53",
            "would apply 9007199254740992",
            "line",
        ],
    );
}

#[test]
fn spec_values_key_collision() {
    let err = spec_refused(
        "values-key-collision.yaml",
        &[
            "values/key-collision.yaml",
            "values at `ports`",
            "two keys become \"8080\"",
        ],
    );
    match err {
        SpecFileError::ValuesChanged { path, problem } => {
            assert!(path.ends_with("values/key-collision.yaml"));
            assert_eq!(problem.path, "ports");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn spec_values_null_key() {
    let err = spec_refused(
        "values-null-key.yaml",
        &["values/null-key.yaml", "values at `env`", "a null key"],
    );
    assert!(
        matches!(err, SpecFileError::ValuesChanged { ref problem, .. } if problem.path == "env"),
        "{err:?}"
    );
}

// --- sequence and time sanity ---

#[test]
fn index_sequence_zero_and_too_high() {
    for (name, seq) in [
        ("sequence-zero", 0),
        ("sequence-too-high", (1u64 << 53) + 1),
    ] {
        let err = invalid_index(name, &["out of range", "from 1 to 9007199254740992"]);
        assert!(
            matches!(err, ValidationError::SequenceOutOfRange(s) if s == seq),
            "{err:?}"
        );
    }
}

#[test]
fn index_validity_too_long() {
    let err = invalid_index(
        "validity-too-long",
        &["longer than the maximum of 366 days"],
    );
    assert!(
        matches!(err, ValidationError::ValidityTooLong { .. }),
        "{err:?}"
    );
}

#[test]
fn index_published_in_future() {
    let err = refused(
        "published-in-future",
        &[
            "bad/index/published-in-future.json",
            "more than 5 minutes after now",
        ],
    );
    assert!(
        matches!(err, VerifyError::PublishedInFuture { .. }),
        "{err:?}"
    );
}

#[test]
fn spec_rollout_waves_each_have_their_error() {
    use coxswain::rollout::RolloutError;
    for (file, says, want) in [
        (
            "rollout-percent-zero.yaml",
            "rollout.waves[0].percent 0 is out of range: 1 to 100",
            RolloutError::WavePercent {
                wave: 0,
                percent: 0,
            },
        ),
        (
            "rollout-waves-not-increasing.yaml",
            "rollout.waves[1].percent 25 is not above the wave before (25)",
            RolloutError::WavesNotIncreasing {
                wave: 1,
                percent: 25,
                before: 25,
            },
        ),
        (
            "rollout-last-wave-not-100.yaml",
            "rollout.waves: the last wave is 50 %, not 100",
            RolloutError::LastWaveNot100 { percent: 50 },
        ),
        (
            "rollout-after-not-later.yaml",
            "rollout.waves[1].after 1d is not later than the wave before (1d)",
            RolloutError::WavesNotLater {
                wave: 1,
                after: coxswain::duration::Duration::from_days(1),
                before: coxswain::duration::Duration::from_days(1),
            },
        ),
    ] {
        match spec_invalid(file, &[says]) {
            ValidationError::BadRollout(e) => assert_eq!(e, want, "{file}"),
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn spec_unknown_urgency() {
    spec_yaml_invalid(
        "urgency-unknown.yaml",
        &[
            "bad/spec/urgency-unknown.yaml",
            "unknown variant `critical`, expected one of security",
        ],
    );
}

#[test]
fn index_since_after_published() {
    let err = invalid_index(
        "since-after-published",
        &[
            "release `wiki`: since (2026-11-27T00:00:00Z) is after the index's published time (2026-11-26T00:00:00Z)",
        ],
    );
    assert!(
        matches!(err, ValidationError::SinceAfterPublished { ref release, .. } if release == "wiki"),
        "{err:?}"
    );
}

#[test]
fn index_rollout_percent_over_100() {
    let err = invalid_index(
        "rollout-percent-over-100",
        &["rollout.waves[1].percent 101 is out of range"],
    );
    assert!(
        matches!(
            err,
            ValidationError::BadRollout(coxswain::rollout::RolloutError::WavePercent {
                wave: 1,
                percent: 101
            })
        ),
        "{err:?}"
    );
}
