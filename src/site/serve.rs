//! `coxswain serve`: a small static file server for an update site.
//!
//! Production sites are usually nginx, object storage or a CDN; this one exists for tests,
//! demos and small set-ups, and behaves like a careful static server:
//!
//! - GET and HEAD only (405 otherwise), no directory listings (404), nothing outside the
//!   site directory: `..`/`.` segments (also percent-encoded), encoded slashes,
//!   backslashes and NUL are answered 400; hidden names (`.tmp-*` files of a publish in
//!   progress) and symlinks leading out of the directory are 404.
//! - A strong ETag, `"sha256-<hex>"` of the file's bytes (the same value
//!   [`crate::site::strong_etag`] gives for a directory site). Hashes are cached per
//!   (path, device, inode, size, mtime), so a 304 or a HEAD for an unchanged file needs no
//!   read; a publish replaces files by rename, which always changes the inode.
//! - `If-None-Match` → 304, `Content-Length`, `Content-Type` (`application/json` for
//!   `.json`, `application/gzip` for `.tgz`/`.gz`, `application/octet-stream` otherwise),
//!   and `Cache-Control` (content-addressed charts are immutable, the rest `no-cache`).
//! - One access log line per request through `tracing`: method, path, status, bytes,
//!   duration.
//! - Files are streamed from the open file in 32 KiB chunks, never read whole into memory
//!   (the ETag of a file not seen before is computed by reading it once, in chunks too);
//!   files over [`ServeOptions::max_file_bytes`] are refused.
//!
//! Under abuse (many idle, slow or hostile clients) its memory stays bounded:
//!
//! - At most [`ServeOptions::max_connections`] connections are served at once; the accept
//!   loop takes no further connection until one closes, so the rest wait in the kernel's
//!   listen backlog (and beyond it, in the clients' connect retries), never as tasks or
//!   buffers of this process.
//! - A connection must deliver a complete request head within
//!   [`ServeOptions::header_read_timeout`] of the server's starting to wait for one (on a
//!   new connection and between keep-alive requests), or it is closed: an idle or
//!   slowloris client holds its slot for at most that long.
//! - Request heads and buffered output are capped at 64 KiB per connection
//!   (`CONNECTION_BUFFER_BYTES`).
//! - A client that is served but reads its download slowly keeps its slot as long as it
//!   reads; that costs one connection slot and a 32 KiB chunk, not the file.

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Seek};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::io::ReaderStream;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::site::{check_segment, if_none_match_matches};

/// Settings of the static server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Largest file served; larger ones get a 500 and a log line (the site's own readers
    /// refuse far smaller documents anyway).
    pub max_file_bytes: u64,
    /// Connections served at once; further ones are not accepted until one closes.
    pub max_connections: usize,
    /// Time a connection has to send a complete request head, counted from when the
    /// server starts waiting for one (on connect and between keep-alive requests).
    pub header_read_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_file_bytes: 256 * 1024 * 1024,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// Default of [`ServeOptions::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Default of [`ServeOptions::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Read and write buffer cap per connection (hyper's `max_buf_size`): bounds a request head.
const CONNECTION_BUFFER_BYTES: usize = 64 * 1024;

/// Chunk size of a streamed file body.
const BODY_CHUNK_BYTES: usize = 32 * 1024;

/// After shutdown is asked for, requests in flight get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The site directory is missing or not a directory.
    #[error("cannot serve the site directory {dir}")]
    Dir {
        /// The directory as given.
        dir: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address as given.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Binds `addr` (`127.0.0.1:0` picks a free port; ask the listener for it).
pub async fn bind(addr: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

/// The router serving `dir`, with the access log attached.
pub fn router(dir: &Path, options: ServeOptions) -> Result<Router, ServeError> {
    let dir_error = |source| ServeError::Dir {
        dir: dir.to_path_buf(),
        source,
    };
    let root = dir.canonicalize().map_err(dir_error)?;
    if !root.is_dir() {
        return Err(dir_error(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let state = Arc::new(ServerState {
        root,
        options,
        etags: Mutex::new(HashMap::new()),
    });
    let access_log = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            tracing::info_span!(
                "access",
                method = %request.method(),
                path = %request.uri().path(),
            )
        })
        .on_request(())
        .on_response(
            |response: &Response<Body>, latency: Duration, _span: &Span| {
                let bytes = response.extensions().get::<BodyBytes>().map_or(0, |b| b.0);
                tracing::info!(
                    status = response.status().as_u16(),
                    bytes,
                    duration_ms = latency.as_secs_f64() * 1000.0,
                    "served"
                );
            },
        )
        .on_failure(());
    Ok(Router::new()
        .fallback(handle)
        .with_state(state)
        .layer(access_log))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish (for up to 10 s), with the connection cap and header-read timeout of `options`.
pub async fn run(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(CONNECTION_BUFFER_BYTES);
    let service = TowerToHyperService::new(router);
    tokio::pin!(shutdown);
    loop {
        // The slot is taken before the accept: over the cap, connections stay in the
        // kernel's backlog instead of becoming tasks here.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                // Never closed; stop serving rather than spin if it were.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: wait a little instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let connection =
            graceful.watch(http.serve_connection(TokioIo::new(stream), service.clone()));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the shutdown grace period are cut off");
    }
    Ok(())
}

/// Completes on ctrl-c or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// The address to print for a bound listener.
pub fn display_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

struct ServerState {
    root: PathBuf,
    options: ServeOptions,
    etags: Mutex<HashMap<FileKey, String>>,
}

/// Enough to notice that a file changed: a publish renames a new file into place (new
/// inode); an in-place edit changes size or mtime.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

/// At most this many ETags are cached; the cache is cleared when full (sites are small).
const ETAG_CACHE_ENTRIES: usize = 4096;

/// Body bytes of a response, for the access log (0 for HEAD and 304).
#[derive(Clone, Copy, Debug)]
struct BodyBytes(u64);

/// How a request path maps onto the site.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// Segments of a file path to look up.
    File(Vec<String>),
    /// The root, a directory, or a name a site never holds: 404.
    NotFound,
    /// An escape attempt or an undecodable path: 400.
    BadRequest,
}

fn classify_path(raw: &str) -> Target {
    let Some(rest) = raw.strip_prefix('/') else {
        return Target::BadRequest;
    };
    if rest.is_empty() {
        return Target::NotFound;
    }
    let mut segments = Vec::new();
    let count = rest.split('/').count();
    for (i, segment) in rest.split('/').enumerate() {
        if segment.is_empty() {
            // A trailing slash asks for a listing; `a//b` or `//x` is not a site path.
            return if i + 1 == count {
                Target::NotFound
            } else {
                Target::BadRequest
            };
        }
        let Some(decoded) = percent_decode(segment) else {
            return Target::BadRequest;
        };
        if decoded == b"." || decoded == b".." || decoded.iter().any(|b| b"/\\\0".contains(b)) {
            return Target::BadRequest;
        }
        let Ok(decoded) = String::from_utf8(decoded) else {
            return Target::BadRequest;
        };
        if check_segment(&decoded).is_err() {
            return Target::NotFound;
        }
        segments.push(decoded);
    }
    Target::File(segments)
}

fn percent_decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".tgz") || name.ends_with(".gz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    }
}

/// What the blocking file lookup found.
enum Lookup {
    Missing,
    TooLarge(u64),
    Found {
        etag: String,
        len: u64,
        /// The open file, at its start; `None` when the caller did not need the body
        /// (HEAD or a matching ETag).
        body: Option<std::fs::File>,
    },
}

async fn handle(
    State(state): State<Arc<ServerState>>,
    method: Method,
    headers: HeaderMap,
    request: Request,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let segments = match classify_path(request.uri().path()) {
        Target::File(segments) => segments,
        Target::NotFound => return plain(StatusCode::NOT_FOUND),
        Target::BadRequest => return plain(StatusCode::BAD_REQUEST),
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_head = method == Method::HEAD;
    let name = segments.last().cloned().unwrap_or_default();
    let immutable = segments.len() == 2 && segments[0] == "charts" && name.starts_with("sha256-");
    let lookup_state = Arc::clone(&state);
    let wanted = if_none_match.clone();
    let lookup = tokio::task::spawn_blocking(move || {
        lookup_file(&lookup_state, &segments, is_head, wanted.as_deref())
    })
    .await;
    let (etag, len, file) = match lookup {
        Ok(Ok(Lookup::Found { etag, len, body })) => (etag, len, body),
        Ok(Ok(Lookup::Missing)) => return plain(StatusCode::NOT_FOUND),
        Ok(Ok(Lookup::TooLarge(len))) => {
            tracing::error!(
                len,
                limit = state.options.max_file_bytes,
                "file too large to serve"
            );
            return plain(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot read file");
            return plain(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Err(error) => {
            tracing::error!(%error, "file lookup task failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let not_modified = if_none_match
        .as_deref()
        .is_some_and(|h| if_none_match_matches(h, &etag));
    let status = if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let (body, sent) = match file {
        Some(file) if !not_modified && !is_head => {
            // `take`: a file that grows while it is sent still matches its Content-Length.
            let reader = tokio::fs::File::from_std(file).take(len);
            (
                Body::from_stream(ReaderStream::with_capacity(reader, BODY_CHUNK_BYTES)),
                len,
            )
        }
        _ => (Body::empty(), 0),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    if !not_modified {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&name)),
        );
    }
    response.extensions_mut().insert(BodyBytes(sent));
    response
}

fn plain(status: StatusCode) -> Response<Body> {
    let text = status.canonical_reason().unwrap_or("error");
    let mut response = Response::new(Body::from(format!("{text}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .extensions_mut()
        .insert(BodyBytes(text.len() as u64 + 1));
    response
}

fn lookup_file(
    state: &ServerState,
    segments: &[String],
    is_head: bool,
    if_none_match: Option<&str>,
) -> std::io::Result<Lookup> {
    let mut path = state.root.clone();
    path.extend(segments);
    let real = match path.canonicalize() {
        Ok(real) => real,
        Err(e) if is_absent(&e) => return Ok(Lookup::Missing),
        Err(e) => return Err(e),
    };
    if !real.starts_with(&state.root) {
        tracing::warn!(path = %path.display(), "refusing a symlink that leaves the site");
        return Ok(Lookup::Missing);
    }
    let mut file = match std::fs::File::open(&real) {
        Ok(file) => file,
        Err(e) if is_absent(&e) => return Ok(Lookup::Missing),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Lookup::Missing);
    }
    let key = file_key(real, &meta);
    let cached = state
        .etags
        .lock()
        .ok()
        .and_then(|cache| cache.get(&key).cloned());
    let len = meta.len();
    if len > state.options.max_file_bytes {
        return Ok(Lookup::TooLarge(len));
    }
    let etag = match cached {
        Some(etag) => etag,
        None => {
            let etag = file_etag(&mut file, len)?;
            file.rewind()?;
            if let Ok(mut cache) = state.etags.lock() {
                if cache.len() >= ETAG_CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(key, etag.clone());
            }
            etag
        }
    };
    let body_needed = !is_head && !if_none_match.is_some_and(|h| if_none_match_matches(h, &etag));
    Ok(Lookup::Found {
        etag,
        len,
        body: body_needed.then_some(file),
    })
}

/// The strong ETag ([`crate::site::strong_etag`]) of the first `len` bytes of `file`, read in chunks; a
/// file shorter than its `stat` size (cut while read) is an error.
fn file_etag(file: &mut std::fs::File, len: u64) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut reader = file.take(len);
    let mut buffer = vec![0u8; BODY_CHUNK_BYTES];
    let mut read = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        read += n as u64;
    }
    if read != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the file was cut while read ({read} of {len} bytes)"),
        ));
    }
    Ok(format!("\"sha256-{}\"", hex::encode(hasher.finalize())))
}

fn is_absent(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

#[cfg(unix)]
fn file_key(path: PathBuf, meta: &std::fs::Metadata) -> FileKey {
    use std::os::unix::fs::MetadataExt;
    FileKey {
        path,
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        modified: meta.modified().ok(),
    }
}

#[cfg(not(unix))]
fn file_key(path: PathBuf, meta: &std::fs::Metadata) -> FileKey {
    FileKey {
        path,
        dev: 0,
        ino: 0,
        len: meta.len(),
        modified: meta.modified().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(segments: &[&str]) -> Target {
        Target::File(segments.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn request_paths_map_onto_site_files_or_are_refused() {
        assert_eq!(
            classify_path("/channels/stable/index.json"),
            file(&["channels", "stable", "index.json"])
        );
        assert_eq!(
            classify_path("/trust/2.json%2Esig"),
            file(&["trust", "2.json.sig"])
        );
        for listing in ["/", "/charts/", "/channels/stable/", "/.tmp-x", "/a/b c"] {
            assert_eq!(classify_path(listing), Target::NotFound, "{listing}");
        }
        for escape in [
            "/../etc/passwd",
            "/charts/../../x",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/charts/%2e",
            "/a%2fb",
            "/a%5cb",
            "/a\\b",
            "//etc/passwd",
            "/a//b",
            "/a%00b",
            "/a%zz",
            "/a%2",
            "/%ff",
            "relative",
        ] {
            assert_eq!(classify_path(escape), Target::BadRequest, "{escape}");
        }
    }

    #[test]
    fn a_file_etag_read_in_chunks_is_the_strong_etag_of_its_bytes() {
        let bytes: Vec<u8> = (0..BODY_CHUNK_BYTES * 3 + 17).map(|i| i as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        file.rewind().unwrap();
        assert_eq!(
            file_etag(&mut file, bytes.len() as u64).unwrap(),
            crate::site::strong_etag(&bytes)
        );
        file.rewind().unwrap();
        let cut = file_etag(&mut file, bytes.len() as u64 + 1).unwrap_err();
        assert_eq!(cut.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("index.json"), "application/json");
        assert_eq!(content_type("sha256-ab.tgz"), "application/gzip");
        assert_eq!(content_type("index.json.sig"), "application/octet-stream");
    }

    #[test]
    fn router_refuses_a_missing_directory() {
        match router(Path::new("/nonexistent/coxswain"), ServeOptions::default()) {
            Err(ServeError::Dir { dir, .. }) => assert_eq!(dir, Path::new("/nonexistent/coxswain")),
            other => panic!("{:?}", other.err()),
        }
    }
}
