//! A read-only client of the OCI distribution API, for what `upstream check` asks of a
//! registry: the tags of a repository, the digest of a tag's manifest, and a Helm
//! chart's config (its `appVersion`).
//!
//! Public registries answer an anonymous request with `401` and a
//! `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` challenge; the client
//! then asks the realm for an anonymous token and retries once, as container runtimes
//! do (Docker Hub, GHCR, Quay). Every response is read with a size cap, every request
//! within the limits' timeouts, and tag listings follow at most [`MAX_TAG_PAGES`] pages.

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, LINK, WWW_AUTHENTICATE};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::UpstreamError;
use super::policy::ImageRef;
use crate::site::{Limits, RedirectRule};

/// Largest tag list page read.
pub const MAX_TAGS_PAGE_BYTES: u64 = 4 << 20;
/// Most pages of a tag list followed.
pub const MAX_TAG_PAGES: usize = 50;
/// Largest manifest read.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest chart config blob or token response read.
pub const MAX_SMALL_BYTES: u64 = 1 << 20;

/// Manifest media types asked for: OCI index and manifest, Docker list and v2.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The registry client; tokens are kept per registry and scope for its lifetime.
pub struct Registry {
    http: reqwest::Client,
    tokens: Mutex<HashMap<(String, String), String>>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Option<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

/// What a Helm chart's OCI config says about it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChartConfig {
    /// The chart's version.
    pub version: String,
    /// The app version, when the chart declares one.
    #[serde(default)]
    pub app_version: Option<String>,
    /// The chart's annotations (`artifacthub.io/changes` holds release notes).
    #[serde(default)]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// A response: its headers and body.
struct Response {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Registry {
    /// A client with the timeouts of `limits`. Registries redirect blob downloads to
    /// storage on other hosts, so redirects may change origin (never https to http).
    pub fn new(limits: &Limits) -> Result<Self, UpstreamError> {
        let http = crate::site::client::http_client(limits, RedirectRule::AnyOrigin, Vec::new())
            .map_err(|e| UpstreamError::Client(e.to_string()))?;
        Ok(Registry {
            http,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Every tag of `image`, in the registry's order.
    pub async fn tags(&self, image: &ImageRef) -> Result<Vec<String>, UpstreamError> {
        let base = self.url(image, "tags/list?n=1000")?;
        let mut next = Some(base);
        let mut tags = Vec::new();
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_TAG_PAGES {
                return Err(self.error(
                    image,
                    format!("lists more than {MAX_TAG_PAGES} pages of tags"),
                ));
            }
            let response = self.get(image, &url, None, MAX_TAGS_PAGE_BYTES).await?;
            let page: TagList = serde_json::from_slice(&response.body).map_err(|e| {
                self.error(image, format!("answered a tag list that is not JSON: {e}"))
            })?;
            tags.extend(page.tags.unwrap_or_default());
            next = next_page(&url, &response.headers);
        }
        Ok(tags)
    }

    /// The digest (`sha256:…`) of the manifest `tag` names, computed from its bytes.
    pub async fn digest(&self, image: &ImageRef, tag: &str) -> Result<String, UpstreamError> {
        let (_, digest) = self.manifest(image, tag).await?;
        Ok(digest)
    }

    /// The Helm chart config of `tag` (an OCI chart pushed by helm).
    pub async fn chart_config(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<ChartConfig, UpstreamError> {
        let (body, _) = self.manifest(image, tag).await?;
        let manifest: Manifest = serde_json::from_slice(&body)
            .map_err(|e| self.error(image, format!("tag {tag}: the manifest is not JSON: {e}")))?;
        let config = manifest
            .config
            .ok_or_else(|| self.error(image, format!("tag {tag}: the manifest has no config")))?;
        let hex = config
            .digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                self.error(
                    image,
                    format!("tag {tag}: config digest `{}` is not sha256", config.digest),
                )
            })?;
        let url = self.url(image, &format!("blobs/sha256:{hex}"))?;
        let blob = self.get(image, &url, None, MAX_SMALL_BYTES).await?.body;
        if hex::encode(Sha256::digest(&blob)) != hex.to_ascii_lowercase() {
            return Err(self.error(
                image,
                format!("tag {tag}: the config blob does not match its digest"),
            ));
        }
        serde_json::from_slice(&blob).map_err(|e| {
            self.error(
                image,
                format!("tag {tag}: the config is not a Helm chart config: {e}"),
            )
        })
    }

    /// The manifest of `tag`: its bytes and their digest.
    async fn manifest(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<(Vec<u8>, String), UpstreamError> {
        if tag.is_empty()
            || tag.len() > 128
            || !tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(self.error(image, format!("`{tag}` is not a tag")));
        }
        let url = self.url(image, &format!("manifests/{tag}"))?;
        let response = self
            .get(image, &url, Some(MANIFEST_TYPES), MAX_MANIFEST_BYTES)
            .await?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&response.body)));
        if let Some(said) = response
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && said.starts_with("sha256:")
            && said != digest
        {
            return Err(self.error(
                image,
                format!(
                    "tag {tag}: the manifest's bytes have digest {digest}, the registry says {said}"
                ),
            ));
        }
        Ok((response.body, digest))
    }

    fn url(&self, image: &ImageRef, rest: &str) -> Result<Url, UpstreamError> {
        let text = format!("{}{}/{rest}", image.api_base(), image.path);
        Url::parse(&text).map_err(|e| self.error(image, format!("bad URL {text}: {e}")))
    }

    fn error(&self, image: &ImageRef, reason: String) -> UpstreamError {
        UpstreamError::Registry {
            image: image.to_string(),
            reason,
        }
    }

    /// GET with the cached token; on a Bearer challenge, one anonymous token and a retry.
    async fn get(
        &self,
        image: &ImageRef,
        url: &Url,
        accept: Option<&str>,
        cap: u64,
    ) -> Result<Response, UpstreamError> {
        let scope = format!("repository:{}:pull", image.path);
        let key = (image.registry.clone(), scope.clone());
        let cached = self
            .tokens
            .lock()
            .map_err(|_| self.error(image, "token cache poisoned".to_owned()))?
            .get(&key)
            .cloned();
        let first = self.send(image, url, accept, cached.as_deref()).await?;
        let response = if first.status() == reqwest::StatusCode::UNAUTHORIZED {
            let challenge = first
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| {
                    self.error(
                        image,
                        format!("{url}: 401 without a WWW-Authenticate challenge"),
                    )
                })?;
            let token = self.anonymous_token(image, &challenge, &scope).await?;
            if let Ok(mut tokens) = self.tokens.lock() {
                tokens.insert(key, token.clone());
            }
            self.send(image, url, accept, Some(&token)).await?
        } else {
            first
        };
        let status = response.status();
        if !status.is_success() {
            let what = match status.as_u16() {
                401 | 403 => "refused anonymous access (a private repository?)",
                404 => "has no such repository or tag",
                429 => "is rate limiting this client; try again later",
                _ => "answered with an error",
            };
            return Err(self.error(image, format!("{url}: {what} (HTTP {status})")));
        }
        let headers = response.headers().clone();
        let body = read_capped(response, cap)
            .await
            .map_err(|reason| self.error(image, format!("{url}: {reason}")))?;
        Ok(Response { headers, body })
    }

    async fn send(
        &self,
        image: &ImageRef,
        url: &Url,
        accept: Option<&str>,
        token: Option<&str>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut request = self.http.get(url.clone());
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        request
            .send()
            .await
            .map_err(|e| self.error(image, format!("{url}: {}", describe(&e))))
    }

    /// Asks the challenge's realm for an anonymous pull token.
    async fn anonymous_token(
        &self,
        image: &ImageRef,
        challenge: &str,
        scope: &str,
    ) -> Result<String, UpstreamError> {
        let params = parse_bearer(challenge).ok_or_else(|| {
            self.error(
                image,
                format!(
                    "asks for authentication this client cannot give (`{}`)",
                    truncate(challenge)
                ),
            )
        })?;
        let realm = params
            .get("realm")
            .ok_or_else(|| self.error(image, "its Bearer challenge names no realm".to_owned()))?;
        let mut url = Url::parse(realm)
            .map_err(|e| self.error(image, format!("token realm `{}`: {e}", truncate(realm))))?;
        let secure = url.scheme() == "https" || (url.scheme() == "http" && image.plain_http);
        if !secure {
            return Err(self.error(
                image,
                format!("token realm {} is not https", truncate(realm)),
            ));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = params.get("service") {
                query.append_pair("service", service);
            }
            query.append_pair("scope", params.get("scope").map_or(scope, String::as_str));
        }
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.error(image, format!("token from {realm}: {}", describe(&e))))?;
        if !response.status().is_success() {
            return Err(self.error(
                image,
                format!("token from {realm}: HTTP {}", response.status()),
            ));
        }
        let body = read_capped(response, MAX_SMALL_BYTES)
            .await
            .map_err(|reason| self.error(image, format!("token from {realm}: {reason}")))?;
        let token: Token = serde_json::from_slice(&body)
            .map_err(|e| self.error(image, format!("token from {realm} is not JSON: {e}")))?;
        token
            .token
            .or(token.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.error(image, format!("token from {realm} holds no token")))
    }
}

/// Reads a body, refusing it once it exceeds `cap` bytes.
async fn read_capped(mut response: reqwest::Response, cap: u64) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|len| len > cap) {
        return Err(format!("the response is larger than {cap} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(format!("the response is larger than {cap} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        let mut text = "cannot connect".to_owned();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    } else {
        e.to_string()
    }
}

/// Text echoed back from a server, bounded.
fn truncate(text: &str) -> String {
    crate::bounded::bounded(text, crate::bounded::MAX_ECHO)
}

/// The parameters of a `Bearer` challenge, or `None` for another scheme.
pub fn parse_bearer(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.trim();
    let (scheme, rest) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut chars = rest.trim();
    while !chars.is_empty() {
        let (key, after) = chars.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(key, value.to_owned());
        chars = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(params)
}

/// The next page of a tag list: a `Link: <…>; rel="next"` header, resolved against the
/// current URL and kept on its origin.
fn next_page(current: &Url, headers: &HeaderMap) -> Option<Url> {
    let link = headers.get(LINK)?.to_str().ok()?;
    let target = link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })?;
    let next = current.join(&target).ok()?;
    (next.origin() == current.origin()).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_read_like_docker_does() {
        let p = parse_bearer(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        )
        .unwrap();
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/nginx:pull");
        let p = parse_bearer("bearer realm=https://ghcr.io/token, service=ghcr.io").unwrap();
        assert_eq!(p["service"], "ghcr.io");
        assert!(parse_bearer(r#"Basic realm="x""#).is_none());
        assert!(parse_bearer(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn tag_list_pages_stay_on_the_registry() {
        let current = Url::parse("https://r.example/v2/app/tags/list?n=1000").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            r#"</v2/app/tags/list?n=1000&last=b>; rel="next""#.parse().unwrap(),
        );
        assert_eq!(
            next_page(&current, &headers).unwrap().as_str(),
            "https://r.example/v2/app/tags/list?n=1000&last=b"
        );
        headers.insert(
            LINK,
            r#"<https://elsewhere.example/v2/app/tags/list?last=b>; rel="next""#
                .parse()
                .unwrap(),
        );
        assert!(next_page(&current, &headers).is_none());
    }
}
