//! Which upstream versions a release may move to: the `update:` block's words and
//! ranges, image references, tag patterns and values paths. Pure; unit-tested here.

use std::fmt;

use crate::format::ChartVersion;

/// How far an update may go from the current version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Track {
    /// Same major and minor version.
    Patch,
    /// Same major version (the default).
    Minor,
    /// Any newer version.
    Major,
    /// No updates.
    None,
    /// Newer versions inside a semver range.
    Range(semver::VersionReq),
}

impl Track {
    /// Reads `patch`, `minor`, `major`, `none` or a semver range (`~1.14`, `>=2, <4`;
    /// a `v` before a version is ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "patch" => Ok(Track::Patch),
            "minor" => Ok(Track::Minor),
            "major" => Ok(Track::Major),
            "none" => Ok(Track::None),
            "" => Err("is empty: write patch, minor, major, none or a semver range".to_owned()),
            range => crate::format::version::parse_range(range)
                .map(Track::Range)
                .map_err(|e| {
                    format!(
                        "`{range}` is neither patch, minor, major nor none, nor a semver range ({e})"
                    )
                }),
        }
    }

    /// Whether `candidate` is newer than `current` and inside this track. Pre-releases
    /// are taken only by a range that names a pre-release of the same version.
    pub fn admits(&self, current: &semver::Version, candidate: &semver::Version) -> bool {
        if candidate.cmp_precedence(current) != std::cmp::Ordering::Greater {
            return false;
        }
        let stable = candidate.pre.is_empty();
        match self {
            Track::None => false,
            Track::Patch => {
                stable && candidate.major == current.major && candidate.minor == current.minor
            }
            Track::Minor => stable && candidate.major == current.major,
            Track::Major => stable,
            Track::Range(range) => range.matches(candidate),
        }
    }
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Track::Patch => f.write_str("patch"),
            Track::Minor => f.write_str("minor"),
            Track::Major => f.write_str("major"),
            Track::None => f.write_str("none"),
            Track::Range(r) => write!(f, "{r}"),
        }
    }
}

/// The newest of `candidates` (as written) that `track` admits over `current`.
pub fn newest<'a>(
    current: &ChartVersion,
    track: &Track,
    candidates: impl IntoIterator<Item = (&'a str, ChartVersion)>,
) -> Option<(&'a str, ChartVersion)> {
    candidates
        .into_iter()
        .filter(|(_, v)| track.admits(current.semver(), v.semver()))
        .max_by(|(_, a), (_, b)| a.cmp_precedence(b))
}

/// Longest regular expression accepted in `update.images[].pattern`.
pub const MAX_PATTERN_LEN: usize = 512;

/// Compiles a tag pattern; the `regex` crate matches in linear time, and the compiled
/// program is capped so a hostile pattern cannot take the memory.
pub fn tag_pattern(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "is {} bytes long; at most {MAX_PATTERN_LEN}",
            pattern.len()
        ));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("`{pattern}` is not a regular expression: {e}"))
}

/// The version a tag stands for: with a pattern, the tag must match it and its first
/// capture group (else the whole tag) is the version; without one, the tag itself.
/// `None` when the tag does not match or is not a version.
pub fn tag_version(tag: &str, pattern: Option<&regex::Regex>) -> Option<ChartVersion> {
    let text = match pattern {
        Some(re) => {
            let caps = re.captures(tag)?;
            caps.get(1).or_else(|| caps.get(0))?.as_str()
        }
        None => tag,
    };
    ChartVersion::parse(text).ok()
}

/// Most segments in a values path.
pub const MAX_PATH_SEGMENTS: usize = 32;

/// Splits a dotted values path (`image.tag`) into its keys.
pub fn values_path(path: &str) -> Result<Vec<String>, String> {
    let keys: Vec<String> = path.split('.').map(str::to_owned).collect();
    if keys.iter().any(String::is_empty) {
        return Err(format!(
            "`{path}` is not a dotted values path (an empty key)"
        ));
    }
    if keys.len() > MAX_PATH_SEGMENTS {
        return Err(format!(
            "`{path}` has {} keys; at most {MAX_PATH_SEGMENTS}",
            keys.len()
        ));
    }
    Ok(keys)
}

/// An image repository as the distribution API addresses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry's host and port, e.g. `registry-1.docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// The repository path in the registry, e.g. `library/nginx`.
    pub path: String,
    /// Plain HTTP: only for loopback registries, as container runtimes treat
    /// `127.0.0.0/8` and `localhost` as insecure registries by default.
    pub plain_http: bool,
}

impl ImageRef {
    /// Reads `[host[:port]/]path` (Docker's reference grammar without tag or digest):
    /// the first component is a registry when it has a `.` or `:` or is `localhost`,
    /// else the image is on Docker Hub (`nginx` is `library/nginx`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.contains('@') {
            return Err(format!("`{text}` has a digest; write the repository only"));
        }
        let (first, rest) = match text.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (Some(first), rest)
            }
            _ => (None, text),
        };
        Self::build(text, first, rest)
    }

    /// Checks `rest` (the repository path) and names the registry (`first`, else Docker Hub).
    fn build(text: &str, first: Option<&str>, rest: &str) -> Result<Self, String> {
        if rest.is_empty() {
            return Err(format!("`{text}` names no repository"));
        }
        for component in rest.split('/') {
            let ok = !component.is_empty()
                && component
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && component.starts_with(|c: char| c.is_ascii_alphanumeric())
                && component.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !ok {
                let hint = if component.contains(':') {
                    " (a tag? write the repository only; the tag lives in the values)"
                } else {
                    ""
                };
                return Err(format!(
                    "`{text}`: `{component}` is not a repository path component: lowercase letters, digits and inner `._-`{hint}"
                ));
            }
        }
        let (registry, path) = match first {
            None | Some("docker.io" | "index.docker.io" | "registry-1.docker.io") => {
                let path = if rest.contains('/') {
                    rest.to_owned()
                } else {
                    format!("library/{rest}")
                };
                ("registry-1.docker.io".to_owned(), path)
            }
            Some(host) => {
                if !host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                {
                    return Err(format!("`{host}` is not a registry host"));
                }
                (host.to_owned(), rest.to_owned())
            }
        };
        let host = registry
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(registry.as_str(), |(h, _)| h);
        let plain_http = host == "localhost"
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
        Ok(ImageRef {
            registry,
            path,
            plain_http,
        })
    }

    /// Reads an OCI chart reference (`oci://host/path`).
    pub fn from_oci(reference: &str) -> Result<Self, String> {
        let rest = reference
            .strip_prefix("oci://")
            .ok_or_else(|| format!("`{reference}` does not start with oci://"))?;
        if !rest.contains('/') {
            return Err(format!("`{reference}` names no repository"));
        }
        // An OCI reference always names its registry first.
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        Self::build(reference, Some(host), path)
    }

    /// The base URL of the registry's API (`https://host/v2/`).
    pub fn api_base(&self) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!("{scheme}://{}/v2/", self.registry)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// Helm pushes a chart version's `+` (build metadata) as `_` in OCI tags; this undoes it.
pub fn chart_version_of_tag(tag: &str) -> String {
    tag.replace('_', "+")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> semver::Version {
        ChartVersion::parse(text).unwrap().semver().clone()
    }

    #[test]
    fn tracks_admit_only_newer_versions_inside_them() {
        let cur = v("1.14.2");
        for (track, yes, no) in [
            (
                "patch",
                &["1.14.3"][..],
                &["1.15.0", "2.0.0", "1.14.2", "1.14.1", "1.14.4-rc.1"][..],
            ),
            (
                "minor",
                &["1.14.3", "1.15.0"],
                &["2.0.0", "1.13.9", "1.16.0-beta.1"],
            ),
            ("major", &["2.0.0", "1.14.3"], &["3.0.0-alpha", "1.14.2"]),
            ("none", &[], &["1.14.3", "2.0.0"]),
            ("~1.14", &["1.14.9"], &["1.15.0", "1.14.1"]),
            (">=2, <4", &["2.0.0", "3.9.9"], &["4.0.0", "1.99.0"]),
            (">=v2.0.0-rc.1, <3", &["2.0.0-rc.2", "2.5.0"], &["3.0.0"]),
        ] {
            let t = Track::parse(track).unwrap();
            for y in yes {
                assert!(t.admits(&cur, &v(y)), "{track} should admit {y}");
            }
            for n in no {
                assert!(!t.admits(&cur, &v(n)), "{track} should not admit {n}");
            }
        }
    }

    #[test]
    fn bad_tracks_say_what_is_accepted() {
        let e = Track::parse("latest").unwrap_err();
        assert!(e.contains("neither patch, minor, major nor none"), "{e}");
        assert!(Track::parse(" ").unwrap_err().contains("is empty"));
    }

    #[test]
    fn newest_picks_by_precedence_and_keeps_the_spelling() {
        let cur = ChartVersion::parse("v1.2.0").unwrap();
        let tags = ["v1.2.1", "v1.10.0", "v1.9.0", "v2.0.0", "latest"];
        let found = newest(
            &cur,
            &Track::Minor,
            tags.iter()
                .filter_map(|t| Some((*t, tag_version(t, None)?))),
        )
        .unwrap();
        assert_eq!(found.0, "v1.10.0");
    }

    #[test]
    fn patterns_pick_the_version_from_a_capture_group() {
        let re = tag_pattern(r"^(\d+\.\d+\.\d+)-alpine$").unwrap();
        assert_eq!(
            tag_version("1.27.1-alpine", Some(&re)).unwrap().as_str(),
            "1.27.1"
        );
        assert!(tag_version("1.27.1", Some(&re)).is_none());
        assert!(tag_version("1.27.1-alpine-slim", Some(&re)).is_none());
        let e = tag_pattern("(").unwrap_err();
        assert!(e.contains("is not a regular expression"), "{e}");
        let e = tag_pattern(&"a".repeat(600)).unwrap_err();
        assert!(e.contains("at most 512"), "{e}");
        // A pattern whose compiled program would be huge is refused, not built.
        let e = tag_pattern(r"\w{1000}\w{1000}\w{1000}").unwrap_err();
        assert!(e.contains("is not a regular expression"), "{e}");
    }

    #[test]
    fn image_references_follow_dockers_grammar() {
        let hub = ImageRef::parse("nginx").unwrap();
        assert_eq!(
            (hub.registry.as_str(), hub.path.as_str()),
            ("registry-1.docker.io", "library/nginx")
        );
        assert!(!hub.plain_http);
        let org = ImageRef::parse("docker.io/traefik/whoami").unwrap();
        assert_eq!(org.path, "traefik/whoami");
        let ghcr = ImageRef::parse("ghcr.io/org/app").unwrap();
        assert_eq!(ghcr.api_base(), "https://ghcr.io/v2/");
        let local = ImageRef::parse("127.0.0.1:5000/team/app").unwrap();
        assert_eq!(local.api_base(), "http://127.0.0.1:5000/v2/");
        assert!(ImageRef::parse("localhost/app").unwrap().plain_http);
        // Only a loopback address, not a name that starts like one.
        assert!(
            !ImageRef::parse("127.0.0.1.example.org/app")
                .unwrap()
                .plain_http
        );
        for (bad, says) in [
            ("nginx:1.27", "a tag?"),
            ("nginx@sha256:00", "has a digest"),
            ("Org/App", "not a repository path component"),
            ("ghcr.io/", "names no repository"),
            ("ghcr.io/a//b", "not a repository path component"),
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let chart = ImageRef::from_oci("oci://127.0.0.1:5000/charts/app").unwrap();
        assert_eq!(
            (chart.registry.as_str(), chart.path.as_str()),
            ("127.0.0.1:5000", "charts/app")
        );
        assert!(chart.plain_http);
        let chart = ImageRef::from_oci("oci://registry.example/app").unwrap();
        assert_eq!(chart.path, "app");
    }

    #[test]
    fn values_paths_are_dotted_keys() {
        assert_eq!(values_path("image.tag").unwrap(), ["image", "tag"]);
        assert!(
            values_path("image..tag")
                .unwrap_err()
                .contains("an empty key")
        );
        assert!(values_path(&"a.".repeat(40)).is_err());
        assert_eq!(chart_version_of_tag("1.2.3_build.1"), "1.2.3+build.1");
    }
}
