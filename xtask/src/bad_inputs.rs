//! `cargo xtask gen-bad-inputs`: the hostile signed documents, channel specs and trust
//! roots in testdata/bad/{base,index,spec,trust}/, generated deterministically.
//!
//! ed25519 signatures are deterministic and every timestamp here is fixed, so the same
//! test keys always give byte-identical files; the unit test below fails when the
//! checked-in files differ from what this writes. tests/bad_inputs.rs (in the coxswain
//! crate) asserts the specific error each file produces; testdata/bad/README.md lists them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use coxswain::format::index::{ChannelIndexKind, Health};
use coxswain::format::{
    ApiVersion, ChannelIndex, IndexChart, IndexRelease, PreviousRelease, Sha256Digest, Timestamp,
    TrustRoot, to_json_pretty,
};
use coxswain::keys::{self, SigningKey};

/// The bytes behind the base index's `wiki` chart (not a real archive: only hashed).
pub const CHART_BYTES: &[u8] = b"coxswain test chart bytes: only their size and sha256 matter\n";

/// A file to write: path relative to testdata/bad/, and its bytes.
type File = (String, Vec<u8>);

struct Keys {
    root1: SigningKey,
    root2: SigningKey,
    root3: SigningKey,
    channel1: SigningKey,
    channel2: SigningKey,
}

fn load_keys(root: &Path) -> Result<Keys> {
    let load = |name: &str| -> Result<SigningKey> {
        let path = root.join("testdata/keys").join(format!("{name}.key"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        keys::parse_signing_key(&text).ok_or_else(|| anyhow!("{}: not a key file", path.display()))
    };
    Ok(Keys {
        root1: load("test-root-1")?,
        root2: load("test-root-2")?,
        root3: load("test-root-3")?,
        channel1: load("test-channel-1")?,
        channel2: load("test-channel-2")?,
    })
}

fn at(text: &str) -> Result<Timestamp> {
    text.parse().map_err(|e: String| anyhow!(e))
}

fn sig(bytes: &[u8], signers: &[&SigningKey]) -> Result<Vec<u8>> {
    let owned: Vec<SigningKey> = signers.iter().map(|k| (*k).clone()).collect();
    Ok(to_json_pretty(&keys::sign(bytes, &owned))?)
}

/// Adds `index/NAME.json` and its `.sig` by `signers`.
fn signed(out: &mut Vec<File>, name: &str, bytes: Vec<u8>, signers: &[&SigningKey]) -> Result<()> {
    out.push((format!("index/{name}.json.sig"), sig(&bytes, signers)?));
    out.push((format!("index/{name}.json"), bytes));
    Ok(())
}

/// The base index changed by `f`, as pretty JSON.
fn mutate(f: impl FnOnce(&mut ChannelIndex)) -> Result<Vec<u8>> {
    let mut i = base_index()?;
    f(&mut i);
    Ok(to_json_pretty(&i)?)
}

/// Adds `trust/DIR/trust/2.json` and its `.sig` by `signers`.
fn site_root(
    out: &mut Vec<File>,
    dir: &str,
    doc: &TrustRoot,
    signers: &[&SigningKey],
) -> Result<()> {
    let bytes = to_json_pretty(doc)?;
    out.push((
        format!("trust/{dir}/trust/2.json.sig"),
        sig(&bytes, signers)?,
    ));
    out.push((format!("trust/{dir}/trust/2.json"), bytes));
    Ok(())
}

fn replace_once(bytes: &[u8], from: &str, to: &str) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(bytes)?;
    if !text.contains(from) {
        return Err(anyhow!("generator bug: `{from}` not found"));
    }
    Ok(text.replacen(from, to, 1).into_bytes())
}

fn chart(name: &str, version: &str, content: &[u8]) -> IndexChart {
    let digest = Sha256Digest::of(content);
    IndexChart {
        name: name.into(),
        version: version.into(),
        url: format!("../../charts/{}", IndexChart::archive_name(&digest)),
        digest,
        size: content.len() as u64,
    }
}

fn release(name: &str, chart: IndexChart, depends_on: &[&str]) -> IndexRelease {
    IndexRelease {
        name: name.into(),
        namespace: name.into(),
        chart,
        values: Default::default(),
        depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
        health: Health::default(),
        upgrade_from: None,
        crds: None,
        backup: None,
        requires_approval: false,
        previous: vec![],
        urgency: None,
        since: None,
    }
}

/// The valid index every bad index is a variation of: channel `stable`, sequence 10.
fn base_index() -> Result<ChannelIndex> {
    let mut sso = release("sso", chart("sso", "2.1.0", b"sso 2.1.0"), &[]);
    sso.upgrade_from = Some(">=2.0.0, <2.1.0".into());
    sso.previous = vec![PreviousRelease {
        chart: chart("sso", "2.0.3", b"sso 2.0.3"),
        ..sso_previous(&sso)
    }];
    Ok(ChannelIndex {
        api_version: ApiVersion::V1,
        kind: ChannelIndexKind::ChannelIndex,
        channel: "stable".into(),
        sequence: 10,
        published: at("2026-11-26T00:00:00Z")?,
        expires: at("2027-11-26T00:00:00Z")?,
        releases: vec![
            sso,
            release("wiki", chart("wiki", "1.4.2", CHART_BYTES), &["sso"]),
            release("chat", chart("chat", "0.9.0", b"chat 0.9.0"), &["sso"]),
        ],
        withdrawn: Vec::new(),
        rollout: None,
    })
}

fn sso_previous(sso: &IndexRelease) -> PreviousRelease {
    let mut p = sso.to_previous();
    p.upgrade_from = None;
    p
}

fn trust_root(
    version: u64,
    expires: &str,
    root: &[&SigningKey],
    root_threshold: u32,
    channel: &[&SigningKey],
) -> Result<TrustRoot> {
    let pubs = |ks: &[&SigningKey]| ks.iter().map(|k| k.verifying_key()).collect::<Vec<_>>();
    Ok(TrustRoot::new(
        version,
        at(expires)?,
        (&pubs(root), root_threshold),
        (&pubs(channel), 2),
    ))
}

/// Every generated file, in a fixed order.
pub fn files(root: &Path) -> Result<Vec<File>> {
    let k = load_keys(root)?;
    let mut out: Vec<File> = Vec::new();
    let channel_keys = [&k.channel1, &k.channel2];

    // base/: the anchor and the valid index the others vary.
    let anchor = trust_root(
        1,
        "2027-11-26T00:00:00Z",
        &[&k.root1, &k.root2],
        2,
        &channel_keys,
    )?;
    let anchor_bytes = to_json_pretty(&anchor)?;
    out.push((
        "base/trust.json.sig".into(),
        sig(&anchor_bytes, &[&k.root1, &k.root2])?,
    ));
    out.push(("base/trust.json".into(), anchor_bytes.clone()));
    let index = base_index()?;
    let good = to_json_pretty(&index)?;
    out.push(("base/index.json".into(), good.clone()));
    out.push(("base/index.json.sig".into(), sig(&good, &channel_keys)?));
    out.push(("base/chart.tgz".into(), CHART_BYTES.to_vec()));

    // index/: each a NAME.json with NAME.json.sig.
    // Signed correctly, then one byte of the index flipped ("stable" -> "stabld").
    {
        let sigs = sig(&good, &channel_keys)?;
        let flipped = replace_once(&good, "\"channel\": \"stable\"", "\"channel\": \"stabld\"")?;
        out.push(("index/flipped-byte.json.sig".into(), sigs));
        out.push(("index/flipped-byte.json".into(), flipped));
    }
    let mut signed_ok = |name: &str, bytes: Vec<u8>| signed(&mut out, name, bytes, &channel_keys);
    let (published, expires) = (at("2026-10-01T00:00:00Z")?, at("2026-10-15T00:00:00Z")?);
    signed_ok(
        "expired",
        mutate(|i| {
            i.published = published;
            i.expires = expires;
        })?,
    )?;
    signed_ok("wrong-channel", mutate(|i| i.channel = "beta".into())?)?;
    signed_ok("lower-sequence", mutate(|i| i.sequence = 9)?)?;
    signed_ok("sequence-zero", mutate(|i| i.sequence = 0)?)?;
    signed_ok("sequence-too-high", mutate(|i| i.sequence = (1 << 53) + 1)?)?;
    let too_long = at("2027-12-01T00:00:00Z")?;
    signed_ok("validity-too-long", mutate(|i| i.expires = too_long)?)?;
    let (ahead, ahead_expires) = (at("2026-12-01T00:06:00Z")?, at("2026-12-20T00:00:00Z")?);
    signed_ok(
        "published-in-future",
        mutate(|i| {
            i.published = ahead;
            i.expires = ahead_expires;
        })?,
    )?;
    signed_ok(
        "duplicate-releases",
        mutate(|i| {
            let again = i.releases[2].clone();
            i.releases.push(again);
        })?,
    )?;
    signed_ok(
        "dependency-cycle",
        mutate(|i| i.releases[0].depends_on = vec!["chat".into()])?,
    )?;
    signed_ok(
        "unknown-depends-on",
        mutate(|i| i.releases[1].depends_on.push("database".into()))?,
    )?;
    signed_ok(
        "bad-semver",
        mutate(|i| i.releases[1].chart.version = "V1.4.0".into())?,
    )?;
    signed_ok(
        "bad-range",
        mutate(|i| i.releases[0].upgrade_from = Some(">=2.0.0 <<2.1".into()))?,
    )?;
    signed_ok(
        "invalid-namespace",
        mutate(|i| i.releases[2].namespace = "Chat_NS".into())?,
    )?;
    signed_ok(
        "absolute-chart-url",
        mutate(|i| {
            let c = &mut i.releases[1].chart;
            c.url = format!(
                "https://evil.example/{}",
                IndexChart::archive_name(&c.digest)
            );
        })?,
    )?;
    signed_ok(
        "unknown-field",
        replace_once(
            &good,
            "\"sequence\": 10,",
            "\"sequence\": 10,\n  \"mirror\": \"https://evil.example/\",",
        )?,
    )?;
    signed_ok(
        "unknown-apiversion",
        replace_once(&good, "coxswain.dev/v1", "coxswain.dev/v2")?,
    )?;
    signed_ok(
        "duplicate-keys",
        replace_once(
            &good,
            "\"sequence\": 10,",
            "\"sequence\": 10,\n  \"sequence\": 99,",
        )?,
    )?;
    let deep = format!("\"values\": {}{}", "[".repeat(10_000), "]".repeat(10_000));
    signed_ok(
        "deep-nesting",
        replace_once(&good, "\"values\": {}", &deep)?,
    )?;
    let mut non_utf8 = replace_once(
        &good,
        "\"chart\": {\n        \"name\": \"chat\"",
        "\"chart\": {\n        \"name\": \"ch\u{1}t\"",
    )?;
    // Turn the \x01 placeholder into a lone 0xff byte: invalid UTF-8.
    if let Some(pos) = non_utf8.iter().position(|&b| b == 1) {
        non_utf8[pos] = 0xff;
    }
    signed_ok("non-utf8", non_utf8)?;
    let late = at("2026-11-27T00:00:00Z")?;
    signed_ok(
        "since-after-published",
        mutate(|i| i.releases[1].since = Some(late))?,
    )?;
    signed_ok(
        "rollout-percent-over-100",
        mutate(|i| {
            i.rollout = Some(coxswain::rollout::Rollout {
                waves: vec![
                    coxswain::rollout::Wave {
                        percent: 5,
                        after: coxswain::duration::Duration::from_secs(0),
                    },
                    coxswain::rollout::Wave {
                        percent: 101,
                        after: coxswain::duration::Duration::from_days(1),
                    },
                ],
                paused: false,
            });
        })?,
    )?;
    signed(&mut out, "wrong-key", good.clone(), &[&k.root1, &k.root2])?;
    signed(&mut out, "threshold-not-met", good.clone(), &[&k.channel1])?;
    {
        let mut s = keys::sign(&good, std::slice::from_ref(&k.channel1));
        s.signatures.push(s.signatures[0].clone());
        out.push(("index/keyid-twice.json.sig".into(), to_json_pretty(&s)?));
        out.push(("index/keyid-twice.json".into(), good.clone()));
    }
    {
        let s = sig(&good, &channel_keys)?;
        let s = std::str::from_utf8(&s)?;
        let at = s.find("\"sig\": \"").ok_or_else(|| anyhow!("no sig"))? + 8;
        let mut broken = s.to_owned();
        broken.replace_range(at..at + 2, "ZZ");
        out.push((
            "index/bad-sig-envelope.json.sig".into(),
            broken.into_bytes(),
        ));
        out.push(("index/bad-sig-envelope.json".into(), good.clone()));
    }
    // Chart bytes that do not match the base index's `wiki` entry.
    let mut same_size = CHART_BYTES.to_vec();
    same_size[0] ^= 0x20;
    out.push(("index/chart-digest-mismatch.tgz".into(), same_size));
    let mut longer = CHART_BYTES.to_vec();
    longer.extend_from_slice(b"trailing bytes\n");
    out.push(("index/chart-size-mismatch.tgz".into(), longer));

    // trust/: rotated roots in little site directories, and broken anchors.
    let r2_keys = [&k.root2, &k.root3];
    let expires = "2027-11-26T00:00:00Z";
    site_root(
        &mut out,
        "skip-version",
        &trust_root(3, expires, &r2_keys, 2, &channel_keys)?,
        &[&k.root1, &k.root2, &k.root3],
    )?;
    site_root(
        &mut out,
        "lacks-old-signatures",
        &trust_root(2, expires, &r2_keys, 2, &channel_keys)?,
        &[&k.root2, &k.root3],
    )?;
    site_root(
        &mut out,
        "lacks-own-signatures",
        &trust_root(2, expires, &r2_keys, 2, &channel_keys)?,
        &[&k.root1, &k.root2],
    )?;
    site_root(
        &mut out,
        "expired",
        &trust_root(2, "2026-11-30T00:00:00Z", &r2_keys, 2, &channel_keys)?,
        &[&k.root1, &k.root2, &k.root3],
    )?;
    site_root(
        &mut out,
        "good-rotation",
        &trust_root(2, expires, &r2_keys, 2, &channel_keys)?,
        &[&k.root1, &k.root2, &k.root3],
    )?;
    let anchor_text = std::str::from_utf8(&anchor_bytes)?.to_owned();
    let root1_id = keys::keyid(&k.root1.verifying_key());
    let bogus_id = "0".repeat(64);
    out.push((
        "trust/anchor-keyid-mismatch.json".into(),
        anchor_text.replace(&root1_id, &bogus_id).into_bytes(),
    ));
    out.push((
        "trust/anchor-threshold-zero.json".into(),
        replace_once(&anchor_bytes, "\"threshold\": 2", "\"threshold\": 0")?,
    ));
    out.push((
        "trust/anchor-threshold-too-high.json".into(),
        replace_once(&anchor_bytes, "\"threshold\": 2", "\"threshold\": 3")?,
    ));
    let ch1_id = keys::keyid(&k.channel1.verifying_key());
    let unknown = anchor_text.rsplitn(2, &ch1_id).collect::<Vec<_>>();
    if unknown.len() != 2 {
        return Err(anyhow!("generator bug: channel key not in anchor"));
    }
    out.push((
        "trust/anchor-unknown-role-key.json".into(),
        format!("{}{}{}", unknown[1], "f".repeat(64), unknown[0]).into_bytes(),
    ));
    out.push((
        "trust/anchor-duplicate-keys.json".into(),
        replace_once(
            &anchor_bytes,
            "\"version\": 1,",
            "\"version\": 1,\n  \"version\": 2,",
        )?,
    ));

    // spec/: human-written channel specs and values files (YAML).
    spec_files(&mut out);
    Ok(out)
}

const SPEC_HEAD: &str = "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: stable\n";

fn spec_files(out: &mut Vec<File>) {
    let spec = |releases: &str| format!("{SPEC_HEAD}releases:\n{releases}");
    let two = "  - name: sso\n    namespace: sso\n    chart: {path: ../../charts/sso}\n  - name: wiki\n    namespace: wiki\n    chart: {path: ../../charts/wiki}\n    dependsOn: [sso]\n";
    let mut bomb = String::from(
        "  - name: sso\n    namespace: sso\n    chart: {path: ../../charts/sso}\n    values:\n      a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    let mut values_bomb = String::from(
        "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let (prev, next) = (w[0], w[1]);
        let refs = vec![format!("*{prev}"); 9].join(", ");
        bomb.push_str(&format!("      {next}: &{next} [{refs}]\n"));
        values_bomb.push_str(&format!("{next}: &{next} [{refs}]\n"));
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let files: Vec<(&str, String)> = vec![
        ("alias-bomb.yaml", spec(&bomb)),
        ("deep-nesting.yaml", spec(&format!("  - name: sso\n    namespace: sso\n    chart: {{path: ../../charts/sso}}\n    values:\n      deep: {deep}\n"))),
        ("values-alias-bomb.yaml", spec("  - name: sso\n    namespace: sso\n    chart: {path: ../../charts/sso}\n    valuesFile: values/alias-bomb.yaml\n")),
        ("values/alias-bomb.yaml", values_bomb),
        ("values-deep-nesting.yaml", spec("  - name: sso\n    namespace: sso\n    chart: {path: ../../charts/sso}\n    valuesFile: values/deep-nesting.yaml\n")),
        ("values/deep-nesting.yaml", format!("deep: {deep}\n")),
        ("duplicate-keys.yaml", spec(&two.replacen("namespace: wiki\n", "namespace: wiki\n    namespace: default\n", 1))),
        ("dependency-cycle.yaml", spec(&two.replacen("chart: {path: ../../charts/sso}\n", "chart: {path: ../../charts/sso}\n    dependsOn: [wiki]\n", 1))),
        ("unknown-depends-on.yaml", spec(&two.replace("dependsOn: [sso]", "dependsOn: [sso, database]"))),
        ("duplicate-releases.yaml", spec(&format!("{two}  - name: sso\n    namespace: other\n    chart: {{path: ../../charts/sso}}\n"))),
        ("bad-semver.yaml", spec(&two.replacen("chart: {path: ../../charts/wiki}", "chart:\n      repo: {url: \"https://charts.example.org\", name: wiki, version: \"1.4.x\"}", 1))),
        ("bad-range.yaml", spec(&format!("{two}    upgradeFrom: \">=1.0.0, <=>2\"\n"))),
        ("invalid-namespace.yaml", spec(&two.replace("namespace: wiki", "namespace: Wiki.Prod"))),
        ("unknown-field.yaml", spec(&two.replacen("dependsOn: [sso]", "dependsOn: [sso]\n    dependOn: [sso]", 1))),
        ("unknown-apiversion.yaml", spec(two).replace("coxswain.dev/v1", "coxswain.dev/v1beta1")),
        ("health-option-not-a-bool.yaml", spec(&format!("{two}    health: {{acceptPendingLoadBalancer: sometimes}}\n"))),
        ("update-bad-track.yaml", spec(&format!("{two}    update: {{chart: newest}}\n"))),
        ("update-image-with-tag.yaml", spec(&format!("{two}    update:\n      images: [{{repository: \"nginx:1.27\", tag: image.tag}}]\n"))),
        ("update-bad-pattern.yaml", spec(&format!("{two}    update:\n      images: [{{repository: nginx, tag: image.tag, pattern: \"(\\\\d+\"}}]\n"))),
        ("update-empty-values-path.yaml", spec(&format!("{two}    update:\n      images: [{{repository: nginx, tag: image..tag}}]\n"))),
        ("backup-unknown-before.yaml", spec(&format!("{two}    backup: {{before: install}}\n"))),
        ("backup-bad-ttl.yaml", spec(&format!("{two}    backup: {{before: upgrade, ttl: 1h30m}}\n"))),
        ("backup-ttl-zero.yaml", spec(&format!("{two}    backup: {{before: upgrade, ttl: 0h}}\n"))),
        ("backup-ttl-too-long.yaml", spec(&format!("{two}    backup: {{before: upgrade, ttl: 3651d}}\n"))),
        ("approval-unknown.yaml", spec(&format!("{two}    approval: maybe\n"))),
        ("two-chart-forms.yaml", spec(&two.replacen("chart: {path: ../../charts/wiki}", "chart: {path: ../../charts/wiki, archive: wiki-1.4.2.tgz}", 1))),
        ("dependencies-on-archive.yaml", spec(&two.replacen("chart: {path: ../../charts/wiki}", "chart: {archive: wiki-1.4.2.tgz, dependencies: build}", 1))),
        ("dependencies-unknown.yaml", spec(&two.replacen("chart: {path: ../../charts/wiki}", "chart: {path: ../../charts/wiki, dependencies: update}", 1))),
        ("values-big-integer.yaml", spec("  - name: sso\n    namespace: sso\n    chart: {path: ../../charts/sso}\n    values:\n      realm:\n        ids: [1, 9007199254740993]\n")),
        ("values-key-collision.yaml", spec("  - name: sso\n    namespace: sso\n    chart: {path: ../../charts/sso}\n    valuesFile: values/key-collision.yaml\n")),
        ("values/key-collision.yaml", "ports:\n  8080: http\n  \"8080\": admin\n".to_owned()),
        ("values-null-key.yaml", spec("  - name: sso\n    namespace: sso\n    chart: {path: ../../charts/sso}\n    valuesFile: values/null-key.yaml\n")),
        ("values/null-key.yaml", "env:\n  ~: x\n".to_owned()),
        ("rollout-percent-zero.yaml", format!("{}rollout:\n  waves: [{{percent: 0, after: 0h}}, {{percent: 100, after: 24h}}]\n", spec(two))),
        ("rollout-waves-not-increasing.yaml", format!("{}rollout:\n  waves: [{{percent: 25, after: 0h}}, {{percent: 25, after: 24h}}, {{percent: 100, after: 48h}}]\n", spec(two))),
        ("rollout-last-wave-not-100.yaml", format!("{}rollout:\n  waves: [{{percent: 5, after: 0h}}, {{percent: 50, after: 24h}}]\n", spec(two))),
        ("rollout-after-not-later.yaml", format!("{}rollout:\n  waves: [{{percent: 5, after: 24h}}, {{percent: 100, after: 24h}}]\n", spec(two))),
        ("urgency-unknown.yaml", spec(&format!("{two}    urgency: critical\n"))),
    ];
    for (name, text) in files {
        out.push((format!("spec/{name}"), text.into_bytes()));
    }
    let mut non_utf8 = spec(two).into_bytes();
    if let Some(pos) = non_utf8.windows(4).position(|w| w == b"wiki") {
        non_utf8[pos + 1] = 0xc3;
        non_utf8[pos + 2] = 0x28;
    }
    out.push(("spec/non-utf8.yaml".into(), non_utf8));
}

/// Writes every file under `root/testdata/bad/`.
pub fn write_all(root: &Path) -> Result<()> {
    let base = root.join("testdata/bad");
    for (rel, bytes) in files(root)? {
        let path: PathBuf = base.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("wrote testdata/bad/{{base,index,spec,trust}}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_bad_inputs_match_the_generator() {
        let root = crate::workspace_root();
        let mut stale = Vec::new();
        for (rel, bytes) in files(&root).unwrap() {
            let path = root.join("testdata/bad").join(&rel);
            if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
                stale.push(rel);
            }
        }
        assert!(
            stale.is_empty(),
            "testdata/bad differs from the generator for {stale:?}; run `cargo xtask gen-bad-inputs`"
        );
    }

    #[test]
    fn generation_is_deterministic() {
        let root = crate::workspace_root();
        assert_eq!(files(&root).unwrap(), files(&root).unwrap());
    }
}
