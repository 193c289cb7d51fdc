//! `coxswain publish` reads only what it should, boundedly: regular files only (a FIFO, a
//! device or a socket is refused before it is opened, so publish never blocks on one), no
//! links in a chart directory (symbolic or hard), no spec path leading out of the spec's
//! tree, no write through a link out of the site, no index larger than agents accept.
//! Every refusal names the file and leaves the site as it was.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use coxswain::chart::ChartErrorKind;
use coxswain::format::Timestamp;
use coxswain::format::spec::SpecFileError;
use coxswain::fsread::ReadError;
use coxswain::publish::{PublishError, PublishOptions, PublishReport, publish};
use ed25519_dalek::SigningKey;

/// A spec in `ws/` with one release, `sso`, from the chart directory `ws/sso` (a copy of
/// testdata's sso chart), with an optional `valuesFile`.
struct Workspace {
    _dir: tempfile::TempDir,
    ws: PathBuf,
    site: PathBuf,
}

impl Workspace {
    fn new(values_file: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        support::copy_tree(&support::testdata("charts/sso"), &ws.join("sso"));
        let values = values_file
            .map(|v| format!("    valuesFile: {v}\n"))
            .unwrap_or_default();
        std::fs::write(
            ws.join("spec.yaml"),
            format!(
                "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: stable\nreleases:\n  \
                 - name: sso\n    namespace: sso\n    chart:\n      path: sso\n{values}"
            ),
        )
        .unwrap();
        let site = dir.path().join("site");
        Workspace {
            _dir: dir,
            ws,
            site,
        }
    }

    fn options(&self) -> PublishOptions {
        let mut opts = PublishOptions::new(
            self.ws.join("spec.yaml"),
            vec![SigningKey::from_bytes(&[1; 32])],
            self.site.clone(),
            Timestamp::from_unix(1_800_000_000).unwrap(),
        );
        opts.sequence = Some(1);
        opts
    }

    /// Publishes, failing the test if it takes more than 20 s (a FIFO that was opened
    /// would block for ever).
    async fn publish(&self, opts: &PublishOptions) -> Result<PublishReport, PublishError> {
        tokio::time::timeout(Duration::from_secs(20), publish(opts))
            .await
            .expect("publish returns without blocking")
    }

    fn assert_nothing_written(&self) {
        assert!(
            !self.site.exists() || support::snapshot(&self.site).is_empty(),
            "nothing is written on refusal"
        );
    }
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn chart_kind(err: &PublishError) -> &ChartErrorKind {
    match err {
        PublishError::Chart { release, source } => {
            assert_eq!(release, "sso");
            &source.kind
        }
        other => panic!("expected a chart error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_fifo_as_values_file_is_refused_without_blocking() {
    let w = Workspace::new(Some("values.yaml"));
    mkfifo(&w.ws.join("values.yaml"));
    let err = w.publish(&w.options()).await.unwrap_err();
    match &err {
        PublishError::Values { release, source } => {
            assert_eq!(release, "sso");
            match source.as_ref() {
                SpecFileError::NotReadable(ReadError::NotRegular { path, what }) => {
                    assert_eq!(*what, "FIFO");
                    assert!(path.ends_with("values.yaml"), "{path:?}");
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    assert!(
        support::chain(&err).contains("values.yaml is a FIFO, not a regular file"),
        "{}",
        support::chain(&err)
    );
    w.assert_nothing_written();
}

#[tokio::test]
async fn fifos_in_a_chart_directory_are_refused_without_blocking() {
    // A FIFO among the templates, and one in place of Chart.yaml.
    for name in ["templates/pipe.yaml", "Chart.yaml"] {
        let w = Workspace::new(None);
        let path = w.ws.join("sso").join(name);
        let _ = std::fs::remove_file(&path);
        mkfifo(&path);
        let err = w.publish(&w.options()).await.unwrap_err();
        match chart_kind(&err) {
            ChartErrorKind::SourceSpecial { path } => assert!(path.ends_with(name), "{path}"),
            other => panic!("{name}: {other:?}"),
        }
        w.assert_nothing_written();
    }
}

#[tokio::test]
async fn a_hard_link_in_a_chart_directory_is_refused_like_a_symlink() {
    let w = Workspace::new(None);
    // A file outside the chart (a secret of the CI machine), hard-linked into it.
    let secret = w.ws.join("secret.txt");
    std::fs::write(&secret, b"token: s3cr3t\n").unwrap();
    let linked = w.ws.join("sso/templates/notes.txt");
    std::fs::hard_link(&secret, &linked).unwrap();
    let err = w.publish(&w.options()).await.unwrap_err();
    match chart_kind(&err) {
        ChartErrorKind::SourceHardLink { path, links } => {
            assert!(path.ends_with("templates/notes.txt"), "{path}");
            assert_eq!(*links, 2);
        }
        other => panic!("{other:?}"),
    }
    w.assert_nothing_written();
    // Chart.yaml hard-linked: the same.
    std::fs::remove_file(&linked).unwrap();
    let chart_yaml = w.ws.join("sso/Chart.yaml");
    std::fs::hard_link(&chart_yaml, w.ws.join("Chart-copy.yaml")).unwrap();
    let err = w.publish(&w.options()).await.unwrap_err();
    assert!(
        matches!(chart_kind(&err), ChartErrorKind::SourceHardLink { path, .. } if path.ends_with("Chart.yaml"))
    );
    w.assert_nothing_written();
}

#[tokio::test]
async fn spec_paths_out_of_the_spec_tree_are_refused_unless_allowed() {
    // valuesFile climbing out of the spec's directory (and out of the working directory:
    // the test's temporary directory is outside the crate).
    let w = Workspace::new(Some("../outside/values.yaml"));
    let outside = w.ws.parent().unwrap().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("values.yaml"), "stolen: true\n").unwrap();
    let err = w.publish(&w.options()).await.unwrap_err();
    match &err {
        PublishError::OutsideSpecDir {
            release,
            field,
            path,
            resolved,
            ..
        } => {
            assert_eq!((release.as_str(), *field), ("sso", "valuesFile"));
            assert_eq!(path, Path::new("../outside/values.yaml"));
            assert!(resolved.ends_with("outside/values.yaml"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("pass --allow-outside-spec-dir"),
        "{err}"
    );
    w.assert_nothing_written();
    let mut opts = w.options();
    opts.allow_outside_spec_dir = true;
    w.publish(&opts).await.unwrap();

    // A chart directory that is a link out of the tree.
    let w = Workspace::new(None);
    let chart = w.ws.join("sso");
    let moved = w.ws.parent().unwrap().join("elsewhere");
    std::fs::rename(&chart, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &chart).unwrap();
    let err = w.publish(&w.options()).await.unwrap_err();
    assert!(
        matches!(
            &err,
            PublishError::OutsideSpecDir {
                field: "chart.path",
                ..
            }
        ),
        "{err:?}"
    );
    w.assert_nothing_written();
}

#[tokio::test]
async fn out_never_follows_a_link_out_of_the_site() {
    let w = Workspace::new(None);
    let outside = w.ws.parent().unwrap().join("outside-site");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&w.site).unwrap();
    std::os::unix::fs::symlink(&outside, w.site.join("channels")).unwrap();
    let err = w.publish(&w.options()).await.unwrap_err();
    let chain = support::chain(&err);
    assert!(matches!(err, PublishError::Write(_)), "{err:?}");
    assert!(
        chain.contains("outside the site directory") && chain.contains("channels"),
        "{chain}"
    );
    // Not even the charts were written (the check comes before the first write).
    assert!(!w.site.join("charts").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[tokio::test]
async fn an_index_over_the_cap_is_refused_before_anything_is_written() {
    let w = Workspace::new(None);
    let mut opts = w.options();
    opts.site_limits.index_bytes = 512;
    let err = w.publish(&opts).await.unwrap_err();
    match &err {
        PublishError::IndexTooLarge {
            channel,
            size,
            limit,
        } => {
            assert_eq!((channel.as_str(), *limit), ("stable", 512));
            assert!(*size > 512);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("nothing was written"), "{err}");
    w.assert_nothing_written();
}
