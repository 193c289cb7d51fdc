//! `coxswain publish` through the library: testdata's channels, published into temporary
//! sites, read back and verified; every refusal leaves the site untouched.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coxswain::chart::{ArchiveLimits, pack_dir};
use coxswain::format::{
    ChannelIndex, IndexRelease, Sha256Digest, Timestamp, TrustRoot, Withdrawn, read_json,
    to_json_pretty,
};
use coxswain::publish::promote::{PromoteOptions, promote};
use coxswain::publish::withdraw::{WithdrawOptions, withdraw};
use coxswain::publish::{Change, PublishError, PublishOptions, publish};
use coxswain::site::{Limits, Site};
use coxswain::site_verify::{SiteReport, SiteVerifyOptions, verify_site};
use ed25519_dalek::SigningKey;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stable_spec() -> PathBuf {
    root().join("testdata/channels/stable.yaml")
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn now() -> Timestamp {
    Timestamp::from_unix(1_800_000_000).unwrap()
}

fn options(spec: &Path, out: &Path, sequence: Option<u64>) -> PublishOptions {
    let mut opts = PublishOptions::new(spec.to_path_buf(), vec![key(1)], out.to_path_buf(), now());
    opts.sequence = sequence;
    opts
}

/// Every file below `dir`, by relative path (empty when `dir` does not exist).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    if !dir.exists() {
        return BTreeMap::new();
    }
    support::snapshot(dir).into_iter().collect()
}

fn read_index(site: &Path, channel: &str) -> ChannelIndex {
    let bytes = std::fs::read(site.join(format!("channels/{channel}/index.json"))).unwrap();
    read_json(&bytes, "index.json").unwrap()
}

/// A copy of the stable spec in `dir` with absolute paths, optionally with wiki taken
/// from testdata/charts-next (1.1.0) and its image tag changed.
fn stable_copy(dir: &Path, bump_wiki: bool) -> PathBuf {
    let text = std::fs::read_to_string(stable_spec()).unwrap();
    let testdata = root().join("testdata");
    let mut text = text
        .replace(
            "path: ../charts/",
            &format!("path: {}/charts/", testdata.display()),
        )
        .replace(
            "valuesFile: values/",
            &format!("valuesFile: {}/channels/values/", testdata.display()),
        );
    if bump_wiki {
        let before = text.clone();
        text = text
            .replace(
                &format!("path: {}/charts/wiki", testdata.display()),
                &format!("path: {}/charts-next/wiki", testdata.display()),
            )
            .replace("tag: \"2.5.300\"", "tag: \"2.5.301\"");
        assert_ne!(text, before);
    }
    let path = dir.join(if bump_wiki {
        "stable-next.yaml"
    } else {
        "stable.yaml"
    });
    std::fs::write(&path, text).unwrap();
    path
}

fn trust_for(channel_key: &SigningKey) -> TrustRoot {
    TrustRoot::new(
        1,
        // Within the 1,096 days a trust root may be valid ahead of `now()`.
        Timestamp::from_unix(1_800_000_000 + 300 * 86_400).unwrap(),
        (&[key(99).verifying_key()], 1),
        (&[channel_key.verifying_key()], 1),
    )
}

/// Verifies the channel in the site directory `site` with `coxswain verify`'s library code.
async fn verify_dir(site: &Path, channel: &str, channel_key: &SigningKey) -> SiteReport {
    verify_dir_at(site, channel, channel_key, now()).await
}

/// [`verify_dir`] at the time `at`.
async fn verify_dir_at(
    site: &Path,
    channel: &str,
    channel_key: &SigningKey,
    at: Timestamp,
) -> SiteReport {
    let trust = to_json_pretty(&trust_for(channel_key)).unwrap();
    let opts = SiteVerifyOptions {
        anchor: trust,
        anchor_origin: "trust.json".into(),
        channel: channel.into(),
        min_sequence: 0,
        now: at,
        archive_limits: ArchiveLimits::default(),
        deadline: coxswain::site_verify::DEFAULT_VERIFY_DEADLINE,
    };
    let site = Site::dir(site, Limits::default()).unwrap();
    verify_site(&site, &opts).await.unwrap()
}

#[tokio::test]
async fn stable_publishes_every_chart_and_a_signed_index() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let report = publish(&options(&stable_spec(), &site, Some(1)))
        .await
        .unwrap();
    assert_eq!(report.sequence, 1);
    assert_eq!(report.prior_sequence, None);
    assert_eq!(report.charts_written, 5);
    let names: Vec<&str> = report.releases.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["certs", "ingress", "sso", "wiki", "files"]);
    assert!(report.releases.iter().all(|r| r.change == Change::New));

    let index = read_index(&site, "stable");
    assert_eq!(index.sequence, 1);
    assert_eq!(index.published, now());
    assert_eq!(
        index.expires.to_string(),
        "2027-01-29T08:00:00Z",
        "now + validFor 14d"
    );
    for release in &index.releases {
        let chart = site.join("channels/stable").join(&release.chart.url);
        let bytes = std::fs::read(&chart).unwrap();
        assert_eq!(Sha256Digest::of(&bytes), release.chart.digest);
        assert_eq!(bytes.len() as u64, release.chart.size);
        // The published archive is the deterministic packing of the chart directory.
        let packed = pack_dir(
            &root().join("testdata/charts").join(&release.chart.name),
            &ArchiveLimits::default(),
        )
        .unwrap();
        assert!(packed.bytes == bytes, "{}", release.name);
    }
    // valuesFile first, inline values merged over it.
    let sso = &index.releases[2];
    assert_eq!(sso.values["hostname"], "sso.coxswain.test");
    assert_eq!(sso.values["image"]["tag"], "24.0.5");
    assert_eq!(
        index.releases[3].upgrade_from.as_deref(),
        Some(">=1.0.0, <2.0.0")
    );

    let table = report.table();
    assert!(
        table.lines().next().unwrap().starts_with("RELEASE"),
        "{table}"
    );
    assert!(
        table.contains("wiki 1.0.0") && table.contains("new"),
        "{table}"
    );
    assert!(table.contains("sequence 1 (no prior index)"), "{table}");

    let verified = verify_dir(&site, "stable", &key(1)).await;
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(verified.releases.len(), 5);
    assert_eq!(
        (verified.charts_checked, verified.index.refetched),
        (5, false)
    );
}

#[tokio::test]
async fn publishing_again_takes_the_next_sequence_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    publish(&options(&stable_spec(), &site, Some(41)))
        .await
        .unwrap();
    let first = snapshot(&site);
    let report = publish(&options(&stable_spec(), &site, None))
        .await
        .unwrap();
    assert_eq!(report.sequence, 42);
    assert_eq!(report.prior_sequence, Some(41));
    assert_eq!((report.charts_written, report.charts_present), (0, 5));
    assert!(
        report
            .releases
            .iter()
            .all(|r| r.change == Change::Unchanged && r.previous == 0)
    );
    let second = snapshot(&site);
    // Only the index and its signature changed, and the new sequence's kept copies; the
    // charts were left alone.
    let changed: Vec<&PathBuf> = second
        .keys()
        .filter(|k| first.get(*k) != second.get(*k))
        .collect();
    assert_eq!(
        changed,
        [
            Path::new("channels/stable/history/42.json"),
            Path::new("channels/stable/history/42.json.sig"),
            Path::new("channels/stable/index.json"),
            Path::new("channels/stable/index.json.sig")
        ]
    );
}

#[tokio::test]
async fn a_bumped_chart_lands_in_previous_with_its_old_values() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let stable = stable_copy(dir.path(), false);
    let next = stable_copy(dir.path(), true);
    publish(&options(&stable, &site, Some(1))).await.unwrap();
    let old = read_index(&site, "stable");
    let report = publish(&options(&next, &site, None)).await.unwrap();
    assert_eq!(report.sequence, 2);
    let wiki = report.releases.iter().find(|r| r.name == "wiki").unwrap();
    assert_eq!(
        wiki.change,
        Change::Chart {
            from: "1.0.0".into()
        }
    );
    assert_eq!((wiki.version.as_str(), wiki.previous), ("1.1.0", 1));
    assert!(
        report
            .releases
            .iter()
            .filter(|r| r.name != "wiki")
            .all(|r| r.change == Change::Unchanged)
    );

    let new = read_index(&site, "stable");
    let (old_wiki, new_wiki) = (&old.releases[3], &new.releases[3]);
    assert_eq!(new_wiki.chart.version, "1.1.0");
    assert_eq!(new_wiki.values["image"]["tag"], "2.5.301");
    assert_eq!(new_wiki.previous, vec![old_wiki.to_previous()]);
    assert_eq!(new_wiki.previous[0].values["image"]["tag"], "2.5.300");
    // Both wiki archives are on the site.
    for chart in [&new_wiki.chart, &new_wiki.previous[0].chart] {
        let bytes = std::fs::read(site.join("channels/stable").join(&chart.url)).unwrap();
        assert_eq!(Sha256Digest::of(&bytes), chart.digest);
    }

    // Going back to 1.0.0: 1.1.0 becomes the previous entry, 1.0.0 is not listed twice.
    let report = publish(&options(&stable, &site, None)).await.unwrap();
    let back = read_index(&site, "stable");
    assert_eq!(report.sequence, 3);
    assert_eq!(back.releases[3].chart, old_wiki.chart);
    let versions: Vec<&str> = back.releases[3]
        .previous
        .iter()
        .map(|p| p.chart.version.as_str())
        .collect();
    assert_eq!(versions, ["1.1.0"]);
}

#[tokio::test]
async fn older_charts_are_copied_from_a_previous_site() {
    let dir = tempfile::tempdir().unwrap();
    let (old_site, new_site) = (dir.path().join("old"), dir.path().join("new"));
    publish(&options(
        &stable_copy(dir.path(), false),
        &old_site,
        Some(7),
    ))
    .await
    .unwrap();
    let mut opts = options(&stable_copy(dir.path(), true), &new_site, None);
    opts.previous = Some(old_site.display().to_string());
    let report = publish(&opts).await.unwrap();
    assert_eq!(report.sequence, 8);
    // Five current charts plus wiki 1.0.0 for the previous entry.
    assert_eq!(report.charts_written, 6);
    let index = read_index(&new_site, "stable");
    let prev = &index.releases[3].previous[0].chart;
    let bytes = std::fs::read(new_site.join("channels/stable").join(&prev.url)).unwrap();
    assert_eq!(Sha256Digest::of(&bytes), prev.digest);
}

#[tokio::test]
async fn the_same_input_gives_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for site in [&a, &b] {
        publish(&options(&stable_spec(), site, Some(3)))
            .await
            .unwrap();
        publish(&options(&stable_spec(), site, None)).await.unwrap();
    }
    let (sa, sb) = (snapshot(&a), snapshot(&b));
    // Five charts, the index and its signature, and two kept copies of each.
    assert_eq!(sa.len(), 11);
    assert!(sa == sb, "two publishes of the same input differ");
    // Key order on the command line does not matter either.
    let c = dir.path().join("c");
    let d = dir.path().join("d");
    let mut opts = options(&stable_spec(), &c, Some(1));
    opts.keys = vec![key(1), key(2)];
    publish(&opts).await.unwrap();
    opts.keys = vec![key(2), key(1)];
    opts.out = d.clone();
    publish(&opts).await.unwrap();
    assert!(snapshot(&c) == snapshot(&d));
}

#[tokio::test]
async fn without_a_prior_index_a_sequence_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let err = publish(&options(&stable_spec(), &site, None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PublishError::NoPrior { channel, .. } if channel == "stable"),
        "{err}"
    );
    assert!(err.to_string().contains("--sequence"), "{err}");
    assert!(!site.exists(), "nothing is written on refusal");

    // An empty site directory is no prior index either.
    std::fs::create_dir(&site).unwrap();
    let err = publish(&options(&stable_spec(), &site, None))
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::NoPrior { .. }), "{err}");
    assert!(snapshot(&site).is_empty());

    // A --previous directory that does not exist is a mistake, not "no prior index".
    let mut opts = options(&stable_spec(), &site, Some(10));
    opts.previous = Some(dir.path().join("typo").display().to_string());
    let err = publish(&opts).await.unwrap_err();
    assert!(matches!(err, PublishError::PriorRead { .. }), "{err}");
    assert!(support::chain(&err).contains("typo"), "{err}");

    // With a prior index, --sequence must move forward.
    publish(&options(&stable_spec(), &site, Some(10)))
        .await
        .unwrap();
    let before = snapshot(&site);
    let err = publish(&options(&stable_spec(), &site, Some(10)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PublishError::SequenceNotAbove {
                given: 10,
                prior: 10
            }
        ),
        "{err}"
    );
    assert!(snapshot(&site) == before);
    let report = publish(&options(&stable_spec(), &site, Some(20)))
        .await
        .unwrap();
    assert_eq!(report.sequence, 20);
}

#[tokio::test]
async fn a_prior_index_by_another_key_is_refused_unless_the_trust_root_vouches() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    publish(&options(&stable_spec(), &site, Some(1)))
        .await
        .unwrap();
    let before = snapshot(&site);
    let mut opts = options(&stable_spec(), &site, None);
    opts.keys = vec![key(2)];
    let err = publish(&opts).await.unwrap_err();
    assert!(matches!(err, PublishError::PriorSignature { .. }), "{err}");
    assert!(snapshot(&site) == before);
    // After rotating the channel key, the old root still vouches for the prior index.
    opts.prior_trust = Some(trust_for(&key(1)));
    assert_eq!(publish(&opts).await.unwrap().sequence, 2);

    // A tampered prior index is refused whatever the keys.
    let index = site.join("channels/stable/index.json");
    let text = std::fs::read_to_string(&index)
        .unwrap()
        .replace("\"sequence\": 2", "\"sequence\": 900");
    std::fs::write(&index, text).unwrap();
    let err = publish(&opts).await.unwrap_err();
    assert!(matches!(err, PublishError::PriorSignature { .. }), "{err}");
}

#[tokio::test]
async fn a_chart_yaml_name_mismatch_is_refused_and_nothing_is_written() {
    let spec = root().join("testdata/bad/publish/name-mismatch.yaml");
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let err = publish(&options(&spec, &site, Some(1))).await.unwrap_err();
    match &err {
        PublishError::ChartMismatch {
            release,
            field,
            expected,
            found,
            ..
        } => {
            assert_eq!((release.as_str(), *field), ("wiki", "name"));
            assert_eq!(
                (expected.as_str(), found.as_str()),
                ("wiki", "wiki-impostor")
            );
        }
        other => panic!("expected ChartMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("charts/wiki"), "{err}");
    assert!(!site.exists(), "nothing is written on refusal");

    // Over an existing site: still nothing changes.
    publish(&options(&stable_spec(), &site, Some(1)))
        .await
        .unwrap();
    let before = snapshot(&site);
    let err = publish(&options(&spec, &site, None)).await.unwrap_err();
    assert!(matches!(err, PublishError::ChartMismatch { .. }), "{err}");
    assert!(snapshot(&site) == before);
}

/// A release whose crds policy has coxswain apply the chart's crds/ while
/// crds/ holds another kind of object: refused, naming the release, the file
/// and the kind; nothing is written. Without a policy the chart publishes.
#[tokio::test]
async fn crds_that_coxswain_would_apply_must_be_crds_only() {
    let spec = root().join("testdata/bad/publish/crds-not-a-crd.yaml");
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let err = publish(&options(&spec, &site, Some(1))).await.unwrap_err();
    match &err {
        PublishError::Crds {
            release,
            policy,
            source,
            ..
        } => {
            let coxswain::chart::crds::CrdError::NotACrd { file, kind, .. } = source.as_ref()
            else {
                panic!("expected NotACrd, got {source:?}");
            };
            assert_eq!(release, "widgets");
            assert_eq!(*policy, coxswain::format::CrdPolicy::CreateReplace);
            assert_eq!(
                (file.as_str(), kind.as_str()),
                ("crds/operator-settings.yaml", "ConfigMap")
            );
        }
        other => panic!("expected Crds(NotACrd), got {other:?}"),
    }
    assert_eq!(
        support::chain(&err),
        "release `widgets`: crds createReplace: chart widgets 1.0.0: crds/operator-settings.yaml \
         document 1: ConfigMap (v1) in crds/; coxswain applies only CustomResourceDefinition \
         objects (apiextensions.k8s.io/v1) from crds/: move it to templates/"
    );
    assert!(!site.exists(), "nothing is written on refusal");

    // skip (and no policy) leave crds/ to helm: the chart publishes.
    let text = std::fs::read_to_string(&spec).unwrap();
    let skip = dir.path().join("skip.yaml");
    std::fs::write(
        &skip,
        text.replace("crds: createReplace", "crds: skip").replace(
            "path: charts/widgets",
            &format!(
                "path: {}",
                root().join("testdata/bad/publish/charts/widgets").display()
            ),
        ),
    )
    .unwrap();
    let mut opts = options(&skip, &site, Some(1));
    opts.allow_outside_spec_dir = true;
    publish(&opts).await.unwrap();
    let index = read_index(&site, "stable");
    assert_eq!(
        index.releases[0].crds,
        Some(coxswain::format::CrdPolicy::Skip)
    );
}

#[tokio::test]
async fn a_dependency_cycle_is_named_and_nothing_is_written() {
    let spec = root().join("testdata/bad/publish/dependency-cycle.yaml");
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let err = publish(&options(&spec, &site, Some(1))).await.unwrap_err();
    let chain = support::chain(&err);
    assert!(
        chain.contains("dependency cycle: sso -> wiki -> files -> sso"),
        "{chain}"
    );
    assert!(chain.contains("dependency-cycle.yaml"), "{chain}");
    assert!(!site.exists());
}

#[tokio::test]
async fn an_archive_is_taken_as_is_when_named_like_helm_package_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let packed = pack_dir(
        &root().join("testdata/charts/wiki"),
        &ArchiveLimits::default(),
    )
    .unwrap();
    std::fs::write(dir.path().join("wiki-1.0.0.tgz"), &packed.bytes).unwrap();
    std::fs::write(dir.path().join("wiki.tgz"), &packed.bytes).unwrap();
    let spec = |file: &str| {
        let path = dir.path().join(format!("{file}.yaml"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: beta\nreleases:\n  - name: wiki\n    namespace: wiki\n    chart: {{archive: {file}}}\n"
            ),
        )
        .unwrap();
        path
    };
    let site = dir.path().join("site");
    let report = publish(&options(&spec("wiki-1.0.0.tgz"), &site, Some(1)))
        .await
        .unwrap();
    assert_eq!(report.releases[0].digest, Sha256Digest::of(&packed.bytes));
    let err = publish(&options(&spec("wiki.tgz"), &site, None))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("must be named wiki-1.0.0.tgz"),
        "{err}"
    );
}

#[tokio::test]
async fn oci_charts_need_helm_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("oci.yaml");
    std::fs::write(
        &spec,
        "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: beta\nreleases:\n  - name: wiki\n    namespace: wiki\n    chart:\n      oci: {ref: \"oci://127.0.0.1:9/charts/wiki\", version: 1.0.0}\n",
    )
    .unwrap();
    let site = dir.path().join("site");
    let mut opts = options(&spec, &site, Some(1));
    opts.helm = dir.path().join("no-such-helm");
    let err = publish(&opts).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("release `wiki`") && text.contains("COXSWAIN_HELM"),
        "{text}"
    );
    assert!(!site.exists());
}

/// Serves `dir` with `coxswain serve`'s router on a free loopback port.
async fn serve(dir: &Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = coxswain::serve::bind("127.0.0.1:0").await.unwrap();
    let url = coxswain::serve::display_url(listener.local_addr().unwrap());
    let router = coxswain::serve::router(dir, Default::default()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(coxswain::serve::run(
        listener,
        router,
        Default::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    (url, stop)
}

#[tokio::test]
async fn a_helm_repository_chart_is_downloaded_and_checked_against_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("archives")).unwrap();
    let packed = pack_dir(
        &root().join("testdata/charts/wiki"),
        &ArchiveLimits::default(),
    )
    .unwrap();
    std::fs::write(repo.join("archives/wiki-1.0.0.tgz"), &packed.bytes).unwrap();
    let digest = Sha256Digest::of(&packed.bytes).hex();
    let index = |digest: &str| {
        format!(
            "apiVersion: v1\nentries:\n  wiki:\n    - name: wiki\n      version: 1.0.0\n      digest: {digest}\n      urls: [archives/wiki-1.0.0.tgz]\n    - name: wiki\n      version: 0.9.0\n      urls: [archives/wiki-0.9.0.tgz]\ngenerated: \"2026-11-01T00:00:00Z\"\n"
        )
    };
    std::fs::write(repo.join("index.yaml"), index(&digest)).unwrap();
    let (url, _stop) = serve(&repo).await;
    let spec = dir.path().join("repo.yaml");
    let write_spec = |version: &str, name: &str| {
        std::fs::write(
            &spec,
            format!(
                "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: beta\nreleases:\n  - name: wiki\n    namespace: wiki\n    chart:\n      repo: {{url: \"{url}\", name: {name}, version: {version}}}\n"
            ),
        )
        .unwrap();
    };
    let site = dir.path().join("site");

    write_spec("1.0.0", "wiki");
    let report = publish(&options(&spec, &site, Some(1))).await.unwrap();
    assert_eq!(report.releases[0].digest.hex(), digest);
    let published = std::fs::read(site.join(format!("charts/sha256-{digest}.tgz"))).unwrap();
    assert!(published == packed.bytes);

    let before = snapshot(&site);
    write_spec("2.0.0", "wiki");
    let err = publish(&options(&spec, &site, None)).await.unwrap_err();
    assert!(
        err.to_string().contains("has no chart wiki version 2.0.0"),
        "{err}"
    );

    write_spec("0.9.0", "wiki");
    let err = support::chain(&publish(&options(&spec, &site, None)).await.unwrap_err());
    assert!(err.contains("wiki-0.9.0.tgz not found"), "{err}");

    std::fs::write(repo.join("index.yaml"), index(&"0".repeat(64))).unwrap();
    write_spec("1.0.0", "wiki");
    let err = publish(&options(&spec, &site, None)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("has sha256 {digest}, but")),
        "{err}"
    );
    assert!(snapshot(&site) == before);
}

#[tokio::test]
async fn sequence_jumps_sequences_past_the_maximum_and_long_validity_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    publish(&options(&stable_spec(), &site, Some(5)))
        .await
        .unwrap();
    let before = snapshot(&site);

    // A jump of more than a million over the prior index: refused, unless forced.
    let jump = 5 + coxswain::publish::MAX_SEQUENCE_JUMP + 1;
    let err = publish(&options(&stable_spec(), &site, Some(jump)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PublishError::SequenceJump { given, prior: 5 } if given == jump),
        "{err:?}"
    );
    assert!(err.to_string().contains("--force-sequence-jump"), "{err}");
    assert!(snapshot(&site) == before);

    // Above 2^53: refused even when forced.
    let mut opts = options(
        &stable_spec(),
        &site,
        Some(coxswain::format::MAX_SEQUENCE + 1),
    );
    opts.force_sequence_jump = true;
    let err = publish(&opts).await.unwrap_err();
    assert!(
        matches!(err, PublishError::SequenceTooHigh(s) if s == coxswain::format::MAX_SEQUENCE + 1),
        "{err:?}"
    );
    assert!(snapshot(&site) == before);

    // Valid for more than 366 days.
    let mut opts = options(&stable_spec(), &site, None);
    opts.valid_for = Some(coxswain::duration::Duration::from_days(367));
    let err = publish(&opts).await.unwrap_err();
    assert!(matches!(err, PublishError::ValidForTooLong(_)), "{err:?}");
    assert!(snapshot(&site) == before);

    // Forced, a jump within the maximum is published.
    let mut opts = options(&stable_spec(), &site, Some(jump));
    opts.force_sequence_jump = true;
    assert_eq!(publish(&opts).await.unwrap().sequence, jump);
}

/// A copy of testdata's chart `name` in `dir/name` with `version:` replaced.
fn chart_with_version(dir: &Path, name: &str, version: &str) -> PathBuf {
    let to = dir.join(name);
    support::copy_tree(&root().join("testdata/charts").join(name), &to);
    let chart_yaml = to.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("version:"))
        .unwrap()
        .to_owned();
    std::fs::write(
        &chart_yaml,
        text.replacen(&line, &format!("version: {version}"), 1),
    )
    .unwrap();
    to
}

#[tokio::test]
async fn a_v_prefixed_chart_version_is_published_as_written_and_verifies() {
    // cert-manager and others release `v1.14.2`; Helm reads it as 1.14.2 and shows it as
    // written, and so does the index.
    let dir = tempfile::tempdir().unwrap();
    chart_with_version(dir.path(), "certs", "v1.14.2");
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: stable\nreleases:\n  - name: certs\n    namespace: cert-system\n    chart: {path: certs}\n    upgradeFrom: \">=v1.13.0, <v2\"\n",
    )
    .unwrap();
    let site = dir.path().join("site");
    let report = publish(&options(&spec, &site, Some(1))).await.unwrap();
    assert_eq!(report.releases[0].version, "v1.14.2");
    assert!(
        report.table().contains("certs v1.14.2"),
        "{}",
        report.table()
    );
    let index = read_index(&site, "stable");
    assert_eq!(index.releases[0].chart.version, "v1.14.2");
    assert_eq!(
        index.releases[0].upgrade_from.as_deref(),
        Some(">=v1.13.0, <v2")
    );
    let verified = verify_dir(&site, "stable", &key(1)).await;
    assert!(verified.is_ok(), "{}", verified.render());

    // The archive form: `helm package` names it with the version as written.
    let packed = pack_dir(&dir.path().join("certs"), &ArchiveLimits::default()).unwrap();
    std::fs::write(dir.path().join("certs-v1.14.2.tgz"), &packed.bytes).unwrap();
    std::fs::write(
        &spec,
        "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: stable\nreleases:\n  - name: certs\n    namespace: cert-system\n    chart: {archive: certs-v1.14.2.tgz}\n",
    )
    .unwrap();
    let report = publish(&options(&spec, &site, None)).await.unwrap();
    assert_eq!(report.releases[0].version, "v1.14.2");
    assert_eq!(report.releases[0].digest, Sha256Digest::of(&packed.bytes));
}

#[tokio::test]
async fn every_problem_of_a_spec_is_reported_in_one_run_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // A chart whose dependency is missing from charts/, a chart in a directory named
    // differently from its chart, a values file that does not exist.
    let files = dir.path().join("files");
    support::copy_tree(&root().join("testdata/charts/files"), &files);
    std::fs::remove_dir_all(files.join("charts")).unwrap();
    support::copy_tree(
        &root().join("testdata/charts/wiki"),
        &dir.path().join("docs"),
    );
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: stable\nreleases:\n  - name: files\n    namespace: files\n    chart: {path: files}\n  - name: docs\n    namespace: docs\n    chart: {path: docs}\n  - name: certs\n    namespace: certs\n    chart: {path: certs}\n    valuesFile: missing.yaml\n",
    )
    .unwrap();
    support::copy_tree(
        &root().join("testdata/charts/certs"),
        &dir.path().join("certs"),
    );
    let site = dir.path().join("site");
    let err = publish(&options(&spec, &site, Some(1))).await.unwrap_err();
    let PublishError::Several(problems) = &err else {
        panic!("expected every problem, got {err:?}");
    };
    assert_eq!(problems.len(), 3, "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("3 problems, nothing was written:"),
        "{text}"
    );
    assert!(text.contains("release `certs`: values"), "{text}");
    assert!(
        text.contains("dependency `database` is not in charts/"),
        "{text}"
    );
    assert!(
        text.contains("Chart.yaml name is \"wiki\", but the directory is named \"docs\""),
        "{text}"
    );
    assert!(!site.exists(), "nothing is written on refusal");
}

/// The stable spec (optionally with wiki bumped) published as channel `beta` at `at`.
async fn publish_beta(dir: &Path, site: &Path, bump_wiki: bool, at: Timestamp) -> ChannelIndex {
    let spec = stable_copy(dir, bump_wiki);
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("channel: stable", "channel: beta");
    let beta = dir.join(format!("beta-{bump_wiki}.yaml"));
    std::fs::write(&beta, text).unwrap();
    let mut opts = options(&beta, site, None);
    opts.now = at;
    if !site.join("channels/beta/index.json").exists() {
        opts.sequence = Some(1);
    }
    publish(&opts).await.unwrap();
    read_index(site, "beta")
}

/// The index's `wiki` entry.
fn wiki(i: &ChannelIndex) -> IndexRelease {
    i.releases
        .iter()
        .find(|r| r.name == "wiki")
        .unwrap()
        .clone()
}

fn promote_options(site: &Path, at: Timestamp) -> PromoteOptions {
    PromoteOptions {
        site: site.to_path_buf(),
        from: "beta".into(),
        to: "stable".into(),
        keys: vec![key(1)],
        trust: None,
        min_soak: coxswain::duration::Duration::from_secs(24 * 3600),
        releases: None,
        valid_for: coxswain::duration::Duration::from_days(14),
        keep_previous: 3,
        now: at,
        site_limits: Limits::default(),
        gate_keys: Vec::new(),
    }
}

fn later(hours: i64) -> Timestamp {
    Timestamp::from_unix(1_800_000_000 + hours * 3600).unwrap()
}

/// Promotion takes beta's entries byte for byte after the soak, keeps stable's own
/// sequence and expiry, carries stable's older entries, promotes subsets, and refuses
/// (writing nothing) what is too young, unknown, older than stable, or no change.
#[tokio::test]
async fn promote_takes_the_exact_beta_entries_after_the_soak() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let beta1 = publish_beta(dir.path(), &site, false, now()).await;

    // Too young: 23 hours after beta#1.
    let before = snapshot(&site);
    let err = promote(&promote_options(&site, later(23)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "promotion refused: beta#1 was published 23h0m ago, at {}; --min-soak 1d asks for 1h0m more",
            now()
        )
    );
    assert_eq!(
        snapshot(&site),
        before,
        "a refused promotion writes nothing"
    );

    // After the soak: stable#1 holds beta#1's entries exactly.
    let report = promote(&promote_options(&site, later(25))).await.unwrap();
    assert_eq!(report.from, ("beta".to_owned(), 1));
    assert_eq!(report.to, ("stable".to_owned(), None, 1));
    let stable1 = read_index(&site, "stable");
    assert_eq!(stable1.channel, "stable");
    assert_eq!(stable1.sequence, 1);
    assert_eq!(stable1.published, later(25));
    assert_eq!(
        stable1.releases, beta1.releases,
        "no previous entries yet on either side"
    );
    let report = verify_dir_at(&site, "stable", &key(1), later(25)).await;
    assert!(
        report.releases.iter().all(|r| r.is_ok()),
        "{}",
        report.render()
    );

    // Nothing new on beta: nothing to promote.
    let before = snapshot(&site);
    let err = promote(&promote_options(&site, later(26)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("nothing to promote: stable already holds exactly what beta#1 offers"),
        "{err}"
    );
    assert_eq!(snapshot(&site), before);

    // beta#2 bumps wiki; promoting only wiki leaves the rest of stable as it was.
    let beta2 = publish_beta(dir.path(), &site, true, later(30)).await;
    let mut opts = promote_options(&site, later(60));
    opts.releases = Some(vec!["wiki".into()]);
    promote(&opts).await.unwrap();
    let stable2 = read_index(&site, "stable");
    assert_eq!(stable2.sequence, 2);
    let beta_wiki = wiki(&beta2);
    let stable_wiki = wiki(&stable2);
    assert_eq!(stable_wiki.chart, beta_wiki.chart);
    assert_eq!(stable_wiki.values, beta_wiki.values);
    assert_eq!(
        stable_wiki.previous.len(),
        1,
        "stable's old wiki is pinnable"
    );
    assert_eq!(stable_wiki.previous[0].chart, wiki(&stable1).chart);
    for r in stable2.releases.iter().filter(|r| r.name != "wiki") {
        let was = stable1.releases.iter().find(|s| s.name == r.name).unwrap();
        // Its rollout started when stable first had it: the waves do not restart.
        let was = IndexRelease {
            since: Some(was.rollout_start(stable1.published)),
            ..was.clone()
        };
        assert_eq!(*r, was, "{} must stay as stable had it", r.name);
    }

    // Refusals, each writing nothing.
    let before = snapshot(&site);
    let mut unknown = promote_options(&site, later(60));
    unknown.releases = Some(vec!["wiki".into(), "chat".into()]);
    let err = promote(&unknown).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "promotion refused: beta#2 has no release `chat`"
    );
    // beta#3 goes back to wiki 1.0.0, older than what stable now has.
    publish_beta(dir.path(), &site, false, later(61)).await;
    let before_downgrade = snapshot(&site);
    let err = promote(&promote_options(&site, later(90)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "promotion refused: stable already holds something newer: wiki (stable#2 holds 1.1.0, newer than beta#3's 1.0.0)"
    );
    assert_eq!(snapshot(&site), before_downgrade);
    assert_ne!(before, before_downgrade, "beta#3 was published in between");
    // Another key's signature on beta is not accepted.
    let mut other_key = promote_options(&site, later(90));
    other_key.keys = vec![key(2)];
    let err = promote(&other_key).await.unwrap_err();
    assert!(
        support::chain(&err).contains("valid signature(s) by accepted keys"),
        "{}",
        support::chain(&err)
    );
    assert_eq!(snapshot(&site), before_downgrade);
}

fn withdraw_options(site: &Path, sequence: u64, reason: &str) -> WithdrawOptions {
    WithdrawOptions {
        site: site.to_path_buf(),
        channel: "stable".into(),
        sequence,
        reason: reason.into(),
        keys: vec![key(1)],
        trust: None,
        valid_for: coxswain::duration::Duration::from_days(14),
        now: later(5),
        site_limits: Limits::default(),
    }
}

/// Withdrawing the newest sequence publishes the next one with the releases of the one
/// before (from the copy publish keeps) and the reason on record, carried by later
/// publishes; what cannot be withdrawn is refused with nothing written.
#[tokio::test]
async fn withdraw_goes_back_to_the_last_good_releases_and_keeps_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let spec = stable_copy(dir.path(), false);
    let bumped = stable_copy(dir.path(), true);
    publish(&options(&spec, &site, Some(1))).await.unwrap();
    let good = read_index(&site, "stable");
    // Every publish keeps a copy of its index and signature.
    for file in ["history/1.json", "history/1.json.sig"] {
        assert!(site.join("channels/stable").join(file).is_file(), "{file}");
    }

    // The first sequence has nothing to go back to.
    let before = snapshot(&site);
    let err = withdraw(&withdraw_options(&site, 1, "bad"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("is the channel's first sequence"),
        "{err}"
    );
    assert_eq!(snapshot(&site), before);

    publish(&options(&bumped, &site, None)).await.unwrap();
    let bad = read_index(&site, "stable");
    assert_ne!(bad.releases, good.releases);

    // Refusals write nothing.
    let before = snapshot(&site);
    for (opts, says) in [
        (
            withdraw_options(&site, 1, "old"),
            "stable#1 is not the newest sequence (stable#2 is)",
        ),
        (
            withdraw_options(&site, 2, "  "),
            "the reason must have 1 to 1000 characters, not 0",
        ),
        (
            WithdrawOptions {
                keys: vec![key(2)],
                ..withdraw_options(&site, 2, "wrong key")
            },
            "valid signature(s) by accepted keys",
        ),
    ] {
        let err = withdraw(&opts).await.unwrap_err();
        assert!(
            support::chain(&err).contains(says),
            "{}",
            support::chain(&err)
        );
        assert_eq!(snapshot(&site), before);
    }

    let report = withdraw(&withdraw_options(&site, 2, "wiki 1.1.0 breaks logins"))
        .await
        .unwrap();
    assert_eq!((report.sequence, report.restored), (3, 1));
    let third = read_index(&site, "stable");
    assert_eq!(third.sequence, 3);
    // Exactly the last good releases, their rollout counted from when they first came:
    // clusters go back at once, whatever their wave.
    let since_good: Vec<IndexRelease> = good
        .releases
        .iter()
        .map(|r| IndexRelease {
            since: Some(r.rollout_start(good.published)),
            ..r.clone()
        })
        .collect();
    assert_eq!(third.releases, since_good, "exactly the last good releases");
    assert_eq!(
        third.withdrawn,
        vec![Withdrawn {
            sequence: 2,
            reason: "wiki 1.1.0 breaks logins".into()
        }]
    );
    let verified = verify_dir_at(&site, "stable", &key(1), later(5)).await;
    assert!(
        verified.releases.iter().all(|r| r.is_ok()),
        "{}",
        verified.render()
    );

    // A later publish keeps the withdrawal on record.
    let mut next = options(&spec, &site, None);
    next.now = later(6);
    publish(&next).await.unwrap();
    assert_eq!(read_index(&site, "stable").withdrawn, third.withdrawn);
}

/// The spec's `rollout` and `urgency` reach the signed index; an entry's rollout start
/// (`since`) survives re-publishing (a refreshed expiry must not restart the waves) and
/// restarts only for the entry whose chart or values changed.
#[tokio::test]
async fn rollout_and_urgency_are_published_and_republishing_keeps_each_entrys_start() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let with_rollout = |path: PathBuf| {
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            "  - name: wiki\n    namespace: wiki\n",
            "  - name: wiki\n    namespace: wiki\n    urgency: security\n",
            1,
        ) + "rollout:\n  waves:\n    - {percent: 5, after: 0h}\n    - {percent: 100, after: 24h}\n";
        std::fs::write(&path, text).unwrap();
        path
    };
    let stable = with_rollout(stable_copy(dir.path(), false));
    let next = with_rollout(stable_copy(dir.path(), true));
    let at = |hours: i64| Timestamp::from_unix(1_800_000_000 + hours * 3600).unwrap();

    publish(&options(&stable, &site, Some(1))).await.unwrap();
    let first = read_index(&site, "stable");
    let rollout = first
        .rollout
        .clone()
        .expect("the spec's rollout is in the index");
    assert_eq!(rollout.waves.len(), 2);
    assert!(!rollout.paused);
    assert_eq!(
        wiki(&first).urgency,
        Some(coxswain::rollout::Urgency::Security)
    );
    assert!(
        first.releases.iter().all(|r| r.since.is_none()),
        "new entries start at published"
    );

    // Re-published unchanged 12 hours later: every entry keeps its start.
    let mut again = options(&stable, &site, None);
    again.now = at(12);
    publish(&again).await.unwrap();
    let second = read_index(&site, "stable");
    assert_eq!(second.published, at(12));
    for r in &second.releases {
        assert_eq!(r.rollout_start(second.published), at(0), "{}", r.name);
    }

    // wiki bumped 30 hours in: only wiki starts again.
    let mut bumped = options(&next, &site, None);
    bumped.now = at(30);
    publish(&bumped).await.unwrap();
    let third = read_index(&site, "stable");
    for r in &third.releases {
        let want = if r.name == "wiki" { at(30) } else { at(0) };
        assert_eq!(r.rollout_start(third.published), want, "{}", r.name);
    }
}
