//! Component tests: the real static server on loopback, read with the real site client
//! over HTTP, plus tiny misbehaving servers (stalling, lying about sizes, failing) built on
//! a plain tokio listener.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coxswain::serve::{self, ServeOptions};
use coxswain::site::{
    DocKind, Fetched, HttpFetcher, Limits, Site, SiteError, SitePath, SiteWriter, strong_etag,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A running `coxswain serve` on 127.0.0.1:0; stops when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<Result<(), serve::ServeError>>>,
}

impl Server {
    async fn start(dir: &Path) -> Server {
        Server::start_with(dir, ServeOptions::default()).await
    }

    async fn start_with(dir: &Path, options: ServeOptions) -> Server {
        let listener = serve::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = serve::router(dir, options.clone()).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(serve::run(listener, router, options, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            done: Some(done),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn site(&self) -> Site {
        // No trailing slash on purpose: the client must add it.
        Site::http(&self.url(), Limits::default()).unwrap()
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::time::timeout(Duration::from_secs(5), done)
                .await
                .expect("server stops within 5s")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn sample_site() -> (tempfile::TempDir, Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let writer = SiteWriter::new(dir.path());
    let chart = b"\x1f\x8bnot really a chart but bytes".to_vec();
    let hex = coxswain_sha256(&chart);
    writer
        .write(&SitePath::chart(&hex).unwrap(), &chart)
        .unwrap();
    writer
        .write(
            &SitePath::index("stable").unwrap(),
            format!("{{\"chart\":\"../../charts/sha256-{hex}.tgz\"}}").as_bytes(),
        )
        .unwrap();
    writer
        .write(&SitePath::index_signatures("stable").unwrap(), b"[]")
        .unwrap();
    (dir, chart, hex)
}

fn coxswain_sha256(bytes: &[u8]) -> String {
    // strong_etag is "sha256-<hex>" in quotes; reuse it rather than pull sha2 in here.
    strong_etag(bytes)
        .trim_matches('"')
        .trim_start_matches("sha256-")
        .to_owned()
}

/// Sends `request` verbatim (so nothing normalizes `..`) and returns the status code.
async fn raw_status(addr: SocketAddr, request: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    status.parse().unwrap()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn serves_documents_with_strong_etags_and_answers_304() {
    let (dir, _chart, _hex) = sample_site();
    let server = Server::start(dir.path()).await;
    let site = server.site();
    let index = SitePath::index("stable").unwrap();
    let body = std::fs::read(index.under(dir.path())).unwrap();

    let Fetched::Modified { bytes, etag } = site.fetch(&index, 1 << 20, None).await.unwrap() else {
        panic!("expected a body");
    };
    assert_eq!(bytes, body);
    let etag = etag.expect("an ETag");
    assert_eq!(etag, strong_etag(&body));

    assert_eq!(
        site.fetch(&index, 1 << 20, Some(&etag)).await.unwrap(),
        Fetched::NotModified
    );
    // A stale ETag gets the document again.
    assert!(matches!(
        site.fetch(&index, 1 << 20, Some("\"sha256-00\""))
            .await
            .unwrap(),
        Fetched::Modified { .. }
    ));

    // Headers, seen by a plain client.
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/channels/stable/index.json", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["content-length"], body.len().to_string().as_str());
    assert_eq!(headers["etag"], etag.as_str());
    assert_eq!(headers["cache-control"], "no-cache");

    // HEAD: same headers, no body.
    let response = client
        .head(format!("{}/channels/stable/index.json", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], etag.as_str());
    assert_eq!(
        response.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert!(response.bytes().await.unwrap().is_empty());

    // Only GET and HEAD.
    let response = client
        .post(format!("{}/channels/stable/index.json", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    server.shutdown().await;
}

#[tokio::test]
async fn a_replaced_document_gets_a_new_etag() {
    let (dir, _chart, _hex) = sample_site();
    let server = Server::start(dir.path()).await;
    let site = server.site();
    let index = SitePath::index("stable").unwrap();
    let Fetched::Modified {
        etag: Some(old), ..
    } = site.fetch(&index, 1 << 20, None).await.unwrap()
    else {
        panic!("expected a body with an ETag");
    };
    SiteWriter::new(dir.path())
        .write(&index, b"{\"sequence\":2}")
        .unwrap();
    let Fetched::Modified { bytes, etag } = site.fetch(&index, 1 << 20, Some(&old)).await.unwrap()
    else {
        panic!("the new document must not be 304");
    };
    assert_eq!(bytes, b"{\"sequence\":2}");
    assert_eq!(etag.unwrap(), strong_etag(b"{\"sequence\":2}"));
}

#[tokio::test]
async fn no_listings_no_escapes_no_hidden_files() {
    let (dir, _chart, _hex) = sample_site();
    std::fs::write(dir.path().join("channels/stable/.tmp-partial"), b"half").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.json"), b"{}").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        outside.path().join("secret.json"),
        dir.path().join("channels/leak.json"),
    )
    .unwrap();
    let server = Server::start(dir.path()).await;
    for (path, status) in [
        ("/", 404),
        ("/charts/", 404),
        ("/channels", 404),
        ("/channels/stable/", 404),
        ("/channels/stable/.tmp-partial", 404),
        ("/channels/leak.json", 404),
        ("/missing.json", 404),
        ("/../etc/passwd", 400),
        ("/channels/../../etc/passwd", 400),
        ("/%2e%2e/etc/passwd", 400),
        ("/channels/%2E%2E/%2e%2e/x", 400),
        ("/channels%2fstable%2findex.json", 400),
        ("/channels%5cstable", 400),
        ("//etc/passwd", 400),
        ("/channels/stable/index.json", 200),
    ] {
        assert_eq!(raw_status(server.addr, &get(path)).await, status, "{path}");
    }
    // A backslash is not even valid in a request target; either refusal is fine.
    let status = raw_status(server.addr, &get("/channels\\..\\..\\x")).await;
    assert_eq!(status, 400);

    // Through the site client, a missing document is a permanent NotFound.
    let err = server
        .site()
        .read(&SitePath::index("beta").unwrap(), DocKind::Index)
        .await
        .unwrap_err();
    assert!(err.is_not_found() && !err.is_transient(), "{err}");
}

#[tokio::test]
async fn chart_references_resolve_against_the_index_and_escapes_are_refused() {
    let (dir, chart, hex) = sample_site();
    let server = Server::start(dir.path()).await;
    let site = server.site();
    let index = SitePath::index("stable").unwrap();
    let resolved = site
        .resolve(&index, &format!("../../charts/sha256-{hex}.tgz"))
        .unwrap();
    assert_eq!(resolved.as_str(), format!("charts/sha256-{hex}.tgz"));
    let fetched = site.read(&resolved, DocKind::Chart).await.unwrap();
    assert_eq!(fetched, chart);
    let response = reqwest::get(format!("{}/{}", server.url(), resolved))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/gzip");
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );

    let nested = Site::http(&format!("{}/channels", server.url()), Limits::default()).unwrap();
    let inner = SitePath::parse("stable/index.json").unwrap();
    match nested.resolve(&inner, &format!("../../charts/sha256-{hex}.tgz")) {
        Err(SiteError::Escape { resolved, base, .. }) => {
            assert_eq!(
                resolved,
                format!("{}/charts/sha256-{hex}.tgz", server.url())
            );
            assert_eq!(base, format!("{}/channels/", server.url()));
        }
        other => panic!("{other:?}"),
    }
    let other_origin = format!("http://127.0.0.2:{}/charts/x.tgz", server.addr.port());
    assert!(matches!(
        site.resolve(&index, &other_origin),
        Err(SiteError::Escape { .. })
    ));
}

#[tokio::test]
async fn size_caps_hold_for_announced_and_unannounced_lengths() {
    let (dir, _chart, _hex) = sample_site();
    let big = vec![b'x'; 2 * 1024 * 1024];
    SiteWriter::new(dir.path())
        .write(&SitePath::trust_root(2), &big)
        .unwrap();
    let server = Server::start(dir.path()).await;
    match server
        .site()
        .read(&SitePath::trust_root(2), DocKind::TrustRoot)
        .await
    {
        Err(SiteError::TooLarge { location, limit }) => {
            assert_eq!(limit, Limits::default().trust_root_bytes);
            assert!(location.ends_with("/trust/2.json"), "{location}");
        }
        other => panic!("{other:?}"),
    }

    // A server that sends a chunked body without Content-Length is cut off while
    // streaming, not after.
    let sent = Arc::new(Mutex::new(0usize));
    let addr = spawn_raw_server({
        let sent = Arc::clone(&sent);
        move |mut stream| {
            let sent = Arc::clone(&sent);
            async move {
                read_request(&mut stream).await;
                let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'y'; 64 * 1024];
                let framed = [
                    format!("{:x}\r\n", chunk.len()).into_bytes(),
                    chunk,
                    b"\r\n".to_vec(),
                ]
                .concat();
                // Up to 64 MiB, unless the client hangs up first.
                for _ in 0..1024 {
                    if stream.write_all(&framed).await.is_err() {
                        return;
                    }
                    *sent.lock().unwrap() += 64 * 1024;
                }
            }
        }
    })
    .await;
    let site = Site::http(&format!("http://{addr}/"), Limits::default()).unwrap();
    let err = site
        .fetch(&SitePath::trust_root(2), 1024 * 1024, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SiteError::TooLarge { limit: 1048576, .. }),
        "{err}"
    );
    assert!(!err.is_transient());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = *sent.lock().unwrap();
    assert!(
        sent < 16 * 1024 * 1024,
        "the client kept reading: the server sent {sent} bytes"
    );
}

#[tokio::test]
async fn a_stalling_server_times_out_and_the_error_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut streams = Vec::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            // Accept and never answer; keep the socket open.
            streams.push(stream);
        }
    });
    let limits = Limits {
        total_timeout: Duration::from_millis(600),
        ..Limits::default()
    };
    let site = Site::http(&format!("http://{addr}"), limits).unwrap();
    let started = Instant::now();
    let err = site
        .read(&SitePath::index("stable").unwrap(), DocKind::Index)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, SiteError::Timeout { .. }), "{err}");
    assert!(err.is_transient());
    assert!(
        err.to_string().contains("/channels/stable/index.json"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "{took:?}"
    );
    held.abort();
}

#[tokio::test]
async fn refused_connections_and_server_errors_are_transient() {
    // Bind and drop to get a port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let site = Site::http(&format!("http://{addr}"), Limits::default()).unwrap();
    let err = site
        .read(&SitePath::index("stable").unwrap(), DocKind::Index)
        .await
        .unwrap_err();
    assert!(matches!(err, SiteError::Connect { .. }), "{err}");
    assert!(err.is_transient());

    let addr = spawn_raw_server(|mut stream| async move {
        read_request(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            .await;
    })
    .await;
    let site = Site::http(&format!("http://{addr}"), Limits::default()).unwrap();
    let err = site
        .read(&SitePath::index("stable").unwrap(), DocKind::Index)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SiteError::Status { status: 503, .. }),
        "{err}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn https_reaches_the_tls_handshake_without_panicking() {
    // A plain-text server behind an https:// URL: the client must get as far as the TLS
    // handshake (so the rustls provider is set up) and fail it cleanly.
    let addr = spawn_raw_server(|mut stream| async move {
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await;
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    })
    .await;
    let site = Site::http(&format!("https://{addr}"), Limits::default()).unwrap();
    let err = site
        .read(&SitePath::index("stable").unwrap(), DocKind::Index)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SiteError::Connect { .. } | SiteError::Transfer { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn every_request_gets_one_access_log_line() {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runtime is single-threaded, so the server's tasks log through this default.
    let _guard = tracing::subscriber::set_default(subscriber);

    let (dir, _chart, _hex) = sample_site();
    let server = Server::start(dir.path()).await;
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("{}/channels/stable/index.json", server.url()))
        .send()
        .await
        .unwrap();
    let len = ok.bytes().await.unwrap().len();
    let missing = client
        .get(format!("{}/nope.json", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.shutdown().await;

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("served")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[0].contains("method=GET"), "{}", lines[0]);
    assert!(
        lines[0].contains("path=/channels/stable/index.json"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("status=200"), "{}", lines[0]);
    assert!(lines[0].contains(&format!("bytes={len}")), "{}", lines[0]);
    assert!(lines[0].contains("duration_ms="), "{}", lines[0]);
    assert!(lines[1].contains("path=/nope.json") && lines[1].contains("status=404"));
    let _ = std::io::stderr().flush();
}

#[tokio::test]
async fn the_fetcher_gets_urls_outside_any_site_within_the_same_bounds() {
    // Helm repositories name charts freely (`+build`, signed query strings).
    let addr = spawn_raw_server(|mut stream| async move {
        let request = read_request(&mut stream).await;
        let body = if request.starts_with("GET /charts/app-1.0.0+build.1.tgz?sig=abc ") {
            "chart"
        } else {
            "wrong"
        };
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"e1\"\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
    })
    .await;
    let fetcher = HttpFetcher::new(&Limits::default()).unwrap();
    let url = reqwest::Url::parse(&format!(
        "http://{addr}/charts/app-1.0.0+build.1.tgz?sig=abc"
    ))
    .unwrap();
    assert_eq!(
        fetcher.get(&url, 100, None).await.unwrap(),
        Fetched::Modified {
            bytes: b"chart".to_vec(),
            etag: Some("\"e1\"".into())
        }
    );
    let err = fetcher.get(&url, 4, None).await.unwrap_err();
    assert!(matches!(err, SiteError::TooLarge { limit: 4, .. }), "{err}");
}

async fn read_request(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

async fn spawn_raw_server<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handler(stream));
        }
    });
    addr
}

// ---- under abuse: idle and slow clients, the connection cap, streamed files ----

fn options(max_connections: usize, header_read_timeout: Duration) -> ServeOptions {
    ServeOptions {
        max_connections,
        header_read_timeout,
        ..ServeOptions::default()
    }
}

/// Reads until the server closes the connection or `limit` passes; whether it closed.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut sink = Vec::new();
    matches!(
        tokio::time::timeout(limit, stream.read_to_end(&mut sink)).await,
        Ok(Ok(_)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn idle_and_slow_header_connections_are_closed_after_the_header_timeout() {
    let (dir, _chart, _hex) = sample_site();
    let server = Server::start_with(dir.path(), options(16, Duration::from_secs(1))).await;

    // Connects and sends nothing.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    // Sends a request head one byte at a time, never finishing it (slowloris).
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        for byte in b"GET /channels/stable/index.json HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if slow.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    // A kept-alive connection that went quiet after one answered request.
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    kept.write_all(b"GET /channels/stable/index.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    // Far more than the 1 s timeout, so that a loaded machine does not fail the test.
    assert!(
        closed_within(&mut idle, Duration::from_secs(30)).await,
        "idle connection still open"
    );
    assert!(
        closed_within(&mut kept, Duration::from_secs(30)).await,
        "quiet keep-alive connection still open"
    );
    let cut = tokio::time::timeout(Duration::from_secs(30), trickle)
        .await
        .expect("the slow sender was not cut off")
        .unwrap();
    assert!(cut, "the slow sender's writes kept succeeding");

    // The server still serves.
    assert_eq!(
        raw_status(server.addr, &get("/channels/stable/index.json")).await,
        200
    );
    server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_a_slot_is_free() {
    let (dir, _chart, _hex) = sample_site();
    // A long header timeout: the idle connections hold their slots for the whole test.
    let server = Server::start_with(dir.path(), options(2, Duration::from_secs(120))).await;
    let first_idle = TcpStream::connect(server.addr).await.unwrap();
    let _second_idle = TcpStream::connect(server.addr).await.unwrap();

    // The kernel completes the handshake (backlog), but the server does not take the
    // connection, so its request gets no answer while both slots are held.
    let mut waiting = TcpStream::connect(server.addr).await.unwrap();
    waiting
        .write_all(get("/channels/stable/index.json").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    let early =
        tokio::time::timeout(Duration::from_secs(2), waiting.read_to_end(&mut response)).await;
    assert!(
        early.is_err(),
        "answered over the cap: {:?}",
        String::from_utf8_lossy(&response)
    );
    assert!(response.is_empty());

    // One idle client leaves: the waiting connection is taken and answered.
    drop(first_idle);
    tokio::time::timeout(Duration::from_secs(30), waiting.read_to_end(&mut response))
        .await
        .expect("no answer after a slot was freed")
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    server.shutdown().await;
}

/// A site with one large chart-like file; returns it and its path on the site.
fn large_file_site(len: usize) -> (tempfile::TempDir, Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    // Not compressible, not periodic at any small stride.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let hex = coxswain_sha256(&bytes);
    SiteWriter::new(dir.path())
        .write(&SitePath::chart(&hex).unwrap(), &bytes)
        .unwrap();
    (dir, bytes, format!("/charts/sha256-{hex}.tgz"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_stream_to_many_clients_and_a_slow_reader_gets_every_byte() {
    let (dir, bytes, path) = large_file_site(24 << 20);
    let server = Server::start(dir.path()).await;
    let url = format!("{}{path}", server.url());
    let want = strong_etag(&bytes);

    let slow = {
        let url = url.clone();
        tokio::spawn(async move {
            let mut response = reqwest::get(&url).await.unwrap();
            assert_eq!(response.status(), 200);
            let mut got = Vec::new();
            while let Some(chunk) = response.chunk().await.unwrap() {
                got.extend_from_slice(&chunk);
                // About 2 ms per 16 KiB: the fast downloads finish long before.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            got
        })
    };
    let fast: Vec<_> = (0..12)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { reqwest::get(&url).await.unwrap().bytes().await.unwrap() })
        })
        .collect();
    for download in fast {
        let got = download.await.unwrap();
        assert_eq!(got.len(), bytes.len());
        assert_eq!(strong_etag(&got), want);
    }
    let got = slow.await.unwrap();
    assert_eq!(got.len(), bytes.len());
    assert_eq!(strong_etag(&got), want);
    server.shutdown().await;
}

/// Streaming, shown by behaviour: a file changed in place (same inode, so no new
/// ETag is computed) after the first megabyte was received reaches the client with its
/// new tail, so the server read the tail from disk while sending, not before. (A publish
/// never changes a file in place; this only makes the reads visible.)
#[tokio::test]
async fn a_file_body_is_read_from_disk_while_it_is_sent() {
    let len = 32 << 20;
    let (dir, bytes, path) = large_file_site(len);
    let server = Server::start(dir.path()).await;
    let mut response = reqwest::get(format!("{}{path}", server.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut got = Vec::new();
    while got.len() < 1 << 20 {
        got.extend_from_slice(&response.chunk().await.unwrap().expect("more body"));
    }
    // Loopback socket buffers hold a few MiB at most; the last 8 MiB cannot have been
    // read yet.
    let tail_start = len - (8 << 20);
    {
        use std::io::{Seek, SeekFrom};
        let file_path = dir.path().join(path.trim_start_matches('/'));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(file_path)
            .unwrap();
        file.seek(SeekFrom::Start(tail_start as u64)).unwrap();
        file.write_all(&vec![0xAB; len - tail_start]).unwrap();
        file.sync_all().unwrap();
    }
    while let Some(chunk) = response.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got.len(), len);
    assert_eq!(&got[..tail_start], &bytes[..tail_start]);
    assert!(
        got[tail_start..].iter().all(|b| *b == 0xAB),
        "the tail was sent as it was before the change"
    );
    server.shutdown().await;
}
