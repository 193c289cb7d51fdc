//! `coxswain verify` as a process, over HTTP from `coxswain serve` (both the real binary):
//! a good site passes with one line per release; tampered charts, a rollback, and a
//! missing rotation fail with the release and the reason named; rotated roots are followed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use coxswain::format::{ChannelIndex, Timestamp, read_json};
use coxswain::publish::{PublishOptions, publish};
use coxswain::trust::{InitOptions, RotateOptions, init, rotate, write_anchor, write_rotated};
use ed25519_dalek::SigningKey;

const BIN: &str = env!("CARGO_BIN_EXE_coxswain");

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn stable_spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/channels/stable.yaml")
}

/// `coxswain serve` on a free loopback port; stopped with SIGTERM by its pid on drop.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--dir"])
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, url }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(Some(pid)) = i32::try_from(self.child.id()).map(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A site with testdata's stable channel published now by `channel`, and a trust
/// anchor (root key `root`) naming that channel key.
struct Fixture {
    _dir: tempfile::TempDir,
    site: PathBuf,
    trust: PathBuf,
}

async fn fixture(root: &SigningKey, channel: &SigningKey) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let trust = dir.path().join("trust.json");
    let anchor = init(&InitOptions {
        root_keys: vec![root.clone()],
        channel_keys: vec![channel.verifying_key()],
        root_threshold: None,
        channel_threshold: None,
        valid_for: coxswain::duration::Duration::from_days(30),
        now: Timestamp::now(),
    })
    .unwrap();
    write_anchor(&trust, &anchor, false).unwrap();
    let mut opts = PublishOptions::new(
        stable_spec(),
        vec![channel.clone()],
        site.clone(),
        Timestamp::now(),
    );
    opts.sequence = Some(1);
    publish(&opts).await.unwrap();
    Fixture {
        _dir: dir,
        site,
        trust,
    }
}

fn verify(trust: &Path, site: &str, extra: &[&str]) -> (Output, String, String) {
    let output = Command::new(BIN)
        .arg("verify")
        .arg("--trust")
        .arg(trust)
        .args(["--channel", "stable"])
        .args(extra)
        .arg(site)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

fn index_of(site: &Path) -> ChannelIndex {
    let bytes = std::fs::read(site.join("channels/stable/index.json")).unwrap();
    read_json(&bytes, "index.json").unwrap()
}

fn chart_file(site: &Path, index: &ChannelIndex, release: &str) -> PathBuf {
    let r = index.releases.iter().find(|r| r.name == release).unwrap();
    site.join("charts")
        .join(format!("sha256-{}.tgz", r.chart.digest.hex()))
}

#[tokio::test]
async fn a_good_site_verifies_over_http_with_one_line_per_release() {
    let f = fixture(&key(1), &key(2)).await;
    let served = Served::start(&f.site);
    let (output, stdout, stderr) = verify(&f.trust, &served.url, &[]);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    for (line, name) in lines
        .iter()
        .zip(["certs", "ingress", "sso", "wiki", "files"])
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[..2], ["ok", name], "{line}");
    }
    assert!(
        lines[5].contains("sequence 1") && lines[5].contains("all releases verified"),
        "{stdout}"
    );
    assert!(lines[5].contains("trust root version 1"), "{stdout}");

    // The same site as a directory.
    let (output, stdout, _) = verify(&f.trust, f.site.to_str().unwrap(), &[]);
    assert!(output.status.success(), "{stdout}");
}

#[tokio::test]
async fn tampered_charts_fail_naming_the_release_and_the_reason() {
    let f = fixture(&key(1), &key(2)).await;
    let index = index_of(&f.site);
    // One flipped byte in wiki's archive: same size, another digest.
    let wiki = chart_file(&f.site, &index, "wiki");
    let mut bytes = std::fs::read(&wiki).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&wiki, bytes).unwrap();
    // One byte more in certs' archive: more than the signed size.
    let certs = chart_file(&f.site, &index, "certs");
    let mut bytes = std::fs::read(&certs).unwrap();
    bytes.push(0);
    std::fs::write(&certs, bytes).unwrap();

    let served = Served::start(&f.site);
    let (output, stdout, stderr) = verify(&f.trust, &served.url, &[]);
    assert!(!output.status.success(), "{stdout}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name} in {stdout}"))
            .to_owned()
    };
    let wiki_line = line("wiki");
    assert!(wiki_line.starts_with("FAIL"), "{wiki_line}");
    assert!(
        wiki_line.contains("chart wiki 1.0.0: digest sha256:")
            && wiki_line.contains("the index says"),
        "{wiki_line}"
    );
    // The download is capped at the signed size: the extra byte is never read.
    let certs_size = index
        .releases
        .iter()
        .find(|r| r.name == "certs")
        .unwrap()
        .chart
        .size;
    let certs_line = line("certs");
    assert!(certs_line.starts_with("FAIL"), "{certs_line}");
    assert!(
        certs_line.contains("chart certs ")
            && certs_line.contains(&format!("is larger than the limit of {certs_size} bytes")),
        "{certs_line}"
    );
    assert!(line("sso").starts_with("ok"), "{stdout}");
    assert!(
        stderr.contains("2 of 5 release(s) in channel stable failed verification"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_lower_sequence_than_accepted_is_refused() {
    let f = fixture(&key(1), &key(2)).await;
    let served = Served::start(&f.site);
    let (output, stdout, stderr) = verify(&f.trust, &served.url, &["--min-sequence", "2"]);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stderr.contains("sequence 1 is lower than 2") && stderr.contains("rollback"),
        "{stderr}"
    );
    assert!(stderr.contains("/channels/stable/index.json"), "{stderr}");
}

#[tokio::test]
async fn a_rotated_trust_root_is_followed() {
    // The channel key is rotated from key 2 to key 3; the index is signed by key 3 only.
    let (root, old_channel, new_channel) = (key(1), key(2), key(3));
    let f = fixture(&root, &old_channel).await;
    let anchor = rotate_on_site(&f, &root, Some(vec![new_channel.verifying_key()]));
    let mut opts = PublishOptions::new(
        stable_spec(),
        vec![new_channel.clone()],
        f.site.clone(),
        Timestamp::now(),
    );
    opts.prior_trust = Some(anchor);
    assert_eq!(publish(&opts).await.unwrap().sequence, 2);

    let served = Served::start(&f.site);
    let (output, stdout, stderr) = verify(&f.trust, &served.url, &[]);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("trust root version 2") && stdout.contains("/trust/2.json"),
        "{stdout}"
    );

    // Without the rotation on the site, the new channel key is not trusted.
    std::fs::remove_file(f.site.join("trust/2.json")).unwrap();
    let (output, stdout, stderr) = verify(&f.trust, &served.url, &[]);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stderr.contains("0 valid signature(s) by distinct `channel` keys, 1 required"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_entry_whose_archive_holds_another_chart_fails() {
    // A correctly signed index whose `wiki` entry points at the certs archive (right size
    // and digest for those bytes): only reading the archive shows the lie.
    let channel = key(2);
    let f = fixture(&key(1), &channel).await;
    let mut index = index_of(&f.site);
    let certs = index.releases[0].chart.clone();
    let wiki = &mut index.releases[3];
    wiki.chart.digest = certs.digest;
    wiki.chart.size = certs.size;
    wiki.chart.url = certs.url.clone();
    let bytes = coxswain::format::to_json_pretty(&index).unwrap();
    let sig = coxswain::format::to_json_pretty(&coxswain::keys::sign(&bytes, &[channel])).unwrap();
    std::fs::write(f.site.join("channels/stable/index.json.sig"), sig).unwrap();
    std::fs::write(f.site.join("channels/stable/index.json"), bytes).unwrap();

    let (output, stdout, _) = verify(&f.trust, f.site.to_str().unwrap(), &[]);
    assert!(!output.status.success(), "{stdout}");
    let wiki_line = stdout.lines().find(|l| l.contains(" wiki ")).unwrap();
    assert!(wiki_line.starts_with("FAIL"), "{wiki_line}");
    assert!(
        wiki_line.contains("name is \"certs\", expected \"wiki\""),
        "{wiki_line}"
    );
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok")).count() == 4,
        "{stdout}"
    );
}

/// Serves `index.json` and `index.json.sig` from memory: the index answers `first` to
/// the first request and `then` afterwards (a reader landing between publish's two
/// renames sees the old index with the new signature). Returns the URL and the number
/// of index requests served.
async fn serve_pair(
    first: Vec<u8>,
    then: Vec<u8>,
    sig: Vec<u8>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let app = axum::Router::new()
        .route(
            "/channels/stable/index.json",
            axum::routing::get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let body = if n == 0 { first.clone() } else { then.clone() };
                async move { body }
            }),
        )
        .route(
            "/channels/stable/index.json.sig",
            axum::routing::get(move || {
                let sig = sig.clone();
                async move { sig }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, served)
}

#[tokio::test]
async fn a_signature_mismatch_is_fetched_once_more() {
    use coxswain::site::{Limits, Site};
    use coxswain::site_verify::{SiteVerifyError, fetch_verified_index};
    use coxswain::verify::{IndexPolicy, TrustChain, VerifyError};
    use std::sync::atomic::Ordering;

    let (root, channel) = (key(1), key(2));
    let f = fixture(&root, &channel).await;
    let old = std::fs::read(f.site.join("channels/stable/index.json")).unwrap();
    let mut opts = PublishOptions::new(
        stable_spec(),
        vec![channel],
        f.site.clone(),
        Timestamp::now(),
    );
    opts.valid_for = Some(coxswain::duration::Duration::from_days(3));
    assert_eq!(publish(&opts).await.unwrap().sequence, 2);
    let new = std::fs::read(f.site.join("channels/stable/index.json")).unwrap();
    let new_sig = std::fs::read(f.site.join("channels/stable/index.json.sig")).unwrap();
    assert_ne!(old, new);

    let anchor = std::fs::read(&f.trust).unwrap();
    let trusted = TrustChain::anchor(&anchor, None, "trust.json")
        .unwrap()
        .trusted(Timestamp::now())
        .unwrap();
    let policy = IndexPolicy {
        channel: "stable",
        min_sequence: 0,
        now: Timestamp::now(),
    };

    // Old index with the new signature, then the new pair: accepted on the second read.
    let (url, served) = serve_pair(old.clone(), new.clone(), new_sig.clone()).await;
    let site = Site::http(&url, Limits::default()).unwrap();
    let fetched = fetch_verified_index(&site, &trusted, policy).await.unwrap();
    assert!(fetched.refetched);
    assert_eq!(fetched.verified.index().sequence, 2);
    assert_eq!(served.load(Ordering::SeqCst), 2);

    // A pair that never matches: refused after exactly one more read.
    let (url, served) = serve_pair(old.clone(), old, new_sig).await;
    let site = Site::http(&url, Limits::default()).unwrap();
    let err = fetch_verified_index(&site, &trusted, policy)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SiteVerifyError::Verify(VerifyError::ThresholdNotMet { valid: 0, .. })
        ),
        "{err}"
    );
    assert_eq!(served.load(Ordering::SeqCst), 2);
}

/// `coxswain verify` and the agent share one chart check: an archive whose
/// digest matches but whose Chart.yaml names another version than the entry
/// (or another chart) is refused, naming both versions.
#[tokio::test]
async fn the_shared_chart_check_compares_the_archive_with_the_entry() {
    use coxswain::chart::ArchiveLimits;
    use coxswain::site_verify::{ChartCheckError, check_chart_bytes};
    use coxswain::verify::{IndexPolicy, TrustChain, verify_index};
    let f = fixture(&key(1), &key(2)).await;
    let json = std::fs::read(f.site.join("channels/stable/index.json")).unwrap();
    let sig = std::fs::read(f.site.join("channels/stable/index.json.sig")).unwrap();
    let trusted = TrustChain::anchor(&std::fs::read(&f.trust).unwrap(), None, "trust.json")
        .unwrap()
        .trusted(Timestamp::now())
        .unwrap();
    let policy = IndexPolicy {
        channel: "stable",
        min_sequence: 0,
        now: Timestamp::now(),
    };
    let v = verify_index(
        &json,
        &sig,
        &trusted,
        policy,
        "index.json",
        "index.json.sig",
    )
    .unwrap();
    let index = index_of(&f.site);
    let bytes = std::fs::read(chart_file(&f.site, &index, "wiki")).unwrap();
    let limits = ArchiveLimits::default();
    let wiki = v
        .index()
        .releases
        .iter()
        .find(|r| r.name == "wiki")
        .unwrap()
        .chart
        .clone();
    check_chart_bytes(&v, &wiki, &bytes, "wiki.tgz", &limits).unwrap();

    let mut other_version = wiki.clone();
    other_version.version = "9.9.9".into();
    let err = check_chart_bytes(&v, &other_version, &bytes, "wiki.tgz", &limits).unwrap_err();
    assert!(matches!(err, ChartCheckError::Version { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("wiki.tgz holds version") && text.contains("the index says 9.9.9"),
        "{text}"
    );

    let mut other_name = wiki.clone();
    other_name.name = "files".into();
    let err = check_chart_bytes(&v, &other_name, &bytes, "wiki.tgz", &limits).unwrap_err();
    assert!(matches!(err, ChartCheckError::Archive(_)), "{err:?}");

    let err = check_chart_bytes(&v, &wiki, &bytes[1..], "wiki.tgz", &limits).unwrap_err();
    assert!(matches!(err, ChartCheckError::Verify(_)), "{err:?}");
}

/// A front for the site in `dir` on a port of its own: it serves the files itself, except
/// that a path starting with `redirect` gets a 302 to `target` + the path. `target` is
/// another origin (`http://127.0.0.1:<port>`) or `/moved` on the same one, which serves
/// the same files.
async fn redirecting_front(dir: PathBuf, redirect: &'static str, target: String) -> String {
    use axum::http::{StatusCode, Uri, header};
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let (dir, target) = (dir.clone(), target.clone());
        async move {
            let path = uri.path().to_owned();
            let moved = path.strip_prefix("/moved");
            let file = moved.unwrap_or(&path);
            if moved.is_none() && path.starts_with(&format!("/{redirect}")) {
                let location = format!("{target}{path}");
                return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
            }
            file_or_404(&dir.join(file.trim_start_matches('/')))
        }
    });
    listen(app).await
}

/// What an agent subscribed to `server`'s stable channel with `anchor` asks.
fn stable_request<'a>(
    server: &'a str,
    anchor: &'a [u8],
) -> coxswain::agent::fetch::FetchRequest<'a> {
    coxswain::agent::fetch::FetchRequest {
        server,
        channel: "stable",
        anchor,
        anchor_origin: "trust.json",
        min_sequence: 0,
        trust_floor: None,
        now: Timestamp::now(),
    }
}

/// A file of the site as a response, or 404.
fn file_or_404(path: &Path) -> axum::response::Response {
    use axum::response::IntoResponse;
    match std::fs::read(path) {
        Ok(bytes) => bytes.into_response(),
        Err(_) => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves `app` on a free loopback port; its base URL.
async fn listen(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A site whose trust root was rotated once (so `trust/2.json` is read too).
async fn rotated_fixture() -> Fixture {
    let (root, channel) = (key(1), key(2));
    let f = fixture(&root, &channel).await;
    rotate_on_site(&f, &root, None);
    f
}

/// Rotates the fixture's trust anchor to version 2 (signed by `root`, with new channel keys
/// if given) and writes it to the site; returns the anchor.
fn rotate_on_site(
    f: &Fixture,
    root: &SigningKey,
    channel_keys: Option<Vec<ed25519_dalek::VerifyingKey>>,
) -> coxswain::format::TrustRoot {
    let anchor: coxswain::format::TrustRoot =
        read_json(&std::fs::read(&f.trust).unwrap(), "trust.json").unwrap();
    let v2 = rotate(
        &anchor,
        &RotateOptions {
            signing_keys: vec![root.clone()],
            new_root_keys: None,
            root_threshold: None,
            channel_keys,
            channel_threshold: None,
            valid_for: coxswain::duration::Duration::from_days(30),
            now: Timestamp::now(),
        },
    )
    .unwrap();
    write_rotated(&f.site, &v2).unwrap();
    anchor
}

/// Every document a reader fetches, by the start of its path.
const DOCUMENTS: [&str; 5] = [
    "channels/stable/index.json.sig",
    "channels/stable/index.json",
    "trust/2.json.sig",
    "trust/2.json",
    "charts/",
];

#[tokio::test(flavor = "multi_thread")]
async fn redirects_to_another_origin_are_refused_for_every_document() {
    let f = rotated_fixture().await;
    // The other origin serves the very same, genuine files: the redirect is refused for
    // where it leads, not for what is there.
    let elsewhere = Served::start(&f.site);
    for document in DOCUMENTS {
        let front = redirecting_front(f.site.clone(), document, elsewhere.url.clone()).await;
        let (output, stdout, stderr) = verify(&f.trust, &front, &[]);
        assert!(!output.status.success(), "{document}: {stdout}");
        // Charts fail one release line each on stdout; the rest is the error on stderr.
        let said = format!("{stdout}{stderr}");
        assert!(
            said.contains(&format!("{front}/{document}"))
                && said.contains(&format!("redirects to {}/{document}", elsewhere.url))
                && said.contains(&format!(
                    "coxswain refuses a redirect to another origin than {front}"
                )),
            "{document}: {said}"
        );

        // The agent reads through the same client: nothing verified, nothing cached.
        let cache = tempfile::tempdir().unwrap();
        let fetcher = coxswain::agent::fetch::Fetcher::new(
            cache.path().join("charts"),
            coxswain::site::Limits::default(),
            coxswain::agent::fetch::RetryPolicy::default(),
        );
        let anchor = std::fs::read(&f.trust).unwrap();
        let request = stable_request(&front, &anchor);
        let err = match fetcher.fetch(request).await {
            Err(e) => e,
            Ok(outcome) => {
                assert_eq!(document, "charts/", "only charts are read after the index");
                let release = &outcome.snapshot.verified.index().releases[0];
                fetcher
                    .chart(&outcome.snapshot, &release.chart)
                    .await
                    .unwrap_err()
            }
        };
        let text = coxswain::site_verify::describe(&err);
        assert!(
            text.contains("redirect to another origin than") && text.contains(&elsewhere.url),
            "{document}: {text}"
        );
        assert!(!err.is_unreachable(), "a refused redirect is not an outage");
        let cached = std::fs::read_dir(cache.path())
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(cached, 0, "{document}: nothing is written to the cache");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_within_the_origin_are_followed_but_not_endlessly() {
    let f = rotated_fixture().await;
    // Every document moved to /moved/... on the same origin: followed.
    let front = redirecting_front(f.site.clone(), "", "/moved".into()).await;
    let (output, stdout, stderr) = verify(&f.trust, &front, &[]);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("trust root version 2"), "{stdout}");

    // A redirect loop on the same origin ends after the bound.
    let front = redirecting_front(f.site.clone(), "channels/", "".into()).await;
    let (output, _, stderr) = verify(&f.trust, &front, &[]);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "coxswain refuses more than {} redirects",
            coxswain::site::MAX_REDIRECTS
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_megabyte_keyid_in_the_trust_anchor_gives_a_bounded_message() {
    let f = fixture(&key(1), &key(2)).await;
    let mut anchor: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&f.trust).unwrap()).unwrap();
    let keys = anchor["keys"].as_object_mut().unwrap();
    let entry = keys.values().next().unwrap().clone();
    keys.insert("f".repeat(1_000_000), entry);
    std::fs::write(&f.trust, serde_json::to_vec(&anchor).unwrap()).unwrap();
    let (output, _, stderr) = verify(&f.trust, f.site.to_str().unwrap(), &[]);
    assert!(!output.status.success());
    assert!(
        stderr.contains("(999800 more characters)"),
        "{}",
        &stderr[..stderr.len().min(400)]
    );
    assert!(stderr.len() < 2_000, "{} bytes", stderr.len());
}

/// How [`slow_front`] answers one path.
#[derive(Clone, Copy)]
enum Answer {
    /// The file, after this long (each request well inside any per-request timeout).
    After(Duration),
    /// 503, at once: a transient failure, retried.
    Unavailable,
}

/// A front for the site in `dir` that answers each path as `answer` says.
async fn slow_front(dir: PathBuf, answer: fn(&str) -> Answer) -> String {
    use axum::http::{StatusCode, Uri};
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let dir = dir.clone();
        async move {
            let path = uri.path().trim_start_matches('/').to_owned();
            match answer(&path) {
                Answer::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                Answer::After(delay) => {
                    tokio::time::sleep(delay).await;
                    file_or_404(&dir.join(&path))
                }
            }
        }
    });
    listen(app).await
}

/// Charts take 400 ms each, everything else answers at once.
fn slow_charts(path: &str) -> Answer {
    if path.starts_with("charts/") {
        Answer::After(Duration::from_millis(400))
    } else {
        Answer::After(Duration::ZERO)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_verify_stops_at_its_deadline_however_quickly_each_request_answers() {
    use coxswain::site::{Limits, Site};
    use coxswain::site_verify::{SiteVerifyError, SiteVerifyOptions, verify_site};

    let f = fixture(&key(1), &key(2)).await;
    let charts = index_of(&f.site).releases.len();
    assert!(charts >= 3, "the fixture pins several charts");
    let front = slow_front(f.site.clone(), slow_charts).await;
    let site = Site::open(&front, Limits::default()).unwrap();
    let opts = |deadline| SiteVerifyOptions {
        anchor: std::fs::read(&f.trust).unwrap(),
        anchor_origin: "trust.json".into(),
        channel: "stable".into(),
        min_sequence: 0,
        now: Timestamp::now(),
        archive_limits: coxswain::chart::ArchiveLimits::default(),
        deadline,
    };

    // With time enough, the slow site verifies: the delay alone breaks nothing.
    let report = verify_site(&site, &opts(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(report.is_ok(), "{}", report.render());

    // Every request answers within 400 ms, far inside the 60 s per-request
    // timeout, but the charts together take longer than the whole check may.
    let started = Instant::now();
    let err = verify_site(&site, &opts(Duration::from_millis(1000)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, SiteVerifyError::DeadlineExceeded { during, .. } if during.starts_with("checking chart ")),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(
            "verify of channel stable did not finish within 1s (the deadline for the whole check): it ran out while checking chart "
        ),
        "{err}"
    );
    assert!(
        took < Duration::from_secs(5),
        "stopped at the deadline, took {took:?}"
    );

    // The command line: `--deadline`, the same message, exit 1.
    let (output, stdout, stderr) = verify(&f.trust, &front, &["--deadline", "1s"]);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stderr.contains("did not finish within 1s (the deadline for the whole check)"),
        "{stderr}"
    );
    let (output, _, stderr) = verify(&f.trust, &front, &["--deadline", "0s"]);
    assert!(!output.status.success());
    assert!(
        stderr.contains("0s would stop every request at once"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agents_fetch_stops_at_its_deadline_retries_included_and_keeps_nothing() {
    use coxswain::agent::fetch::{FetchError, Fetcher, RetryPolicy};

    let f = fixture(&key(1), &key(2)).await;
    let anchor = std::fs::read(&f.trust).unwrap();
    let request = |server| stable_request(server, &anchor);
    // Retries alone would go on for about 10 s (100 retries, 100 ms apart).
    let patient = RetryPolicy {
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(100),
        max_retries: 100,
    };
    let cache = tempfile::tempdir().unwrap();
    let fetcher = || {
        Fetcher::new(
            cache.path().join("charts"),
            coxswain::site::Limits::default(),
            patient,
        )
        .with_deadline(Duration::from_millis(800))
    };

    // The index answers 503 every time: retried until the deadline, not 100 times.
    let unavailable = slow_front(f.site.clone(), |path| {
        if path.starts_with("channels/") {
            Answer::Unavailable
        } else {
            Answer::After(Duration::ZERO)
        }
    })
    .await;
    let started = Instant::now();
    let err = fetcher().fetch(request(&unavailable)).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, FetchError::DeadlineExceeded { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "channel stable from {unavailable}: not finished within 800ms (the deadline for the whole fetch, retries included)"
        )
    );
    assert!(
        err.is_unreachable(),
        "a site too slow to answer is an outage"
    );
    assert_eq!(err.verification_reason(), None);

    // Each chart download has the same deadline: a chart that takes 2 s is cut
    // off, and nothing reaches the cache.
    let slow = slow_front(f.site.clone(), |path| {
        if path.starts_with("charts/") {
            Answer::After(Duration::from_secs(2))
        } else {
            Answer::After(Duration::ZERO)
        }
    })
    .await;
    let fetcher = fetcher();
    let outcome = fetcher.fetch(request(&slow)).await.unwrap();
    let chart = &outcome.snapshot.verified.index().releases[0].chart;
    let err = fetcher.chart(&outcome.snapshot, chart).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "chart {} {}: not finished within 800ms (the deadline for the whole fetch, retries included)",
            chart.name, chart.version
        )
    );
    assert!(err.is_unreachable());
    let cached = std::fs::read_dir(cache.path().join("charts"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(cached, 0, "nothing is written to the cache");

    // With time enough, the same slow chart is fetched and cached.
    let fetcher = Fetcher::new(
        cache.path().join("charts"),
        coxswain::site::Limits::default(),
        patient,
    );
    let path = fetcher.chart(&outcome.snapshot, chart).await.unwrap();
    assert!(path.is_file());
}
