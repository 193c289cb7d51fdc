//! Chart versions and version ranges, read the way Helm reads them.
//!
//! Helm parses a chart's `version` with Masterminds/semver's `NewVersion`, which is
//! looser than semver 2.0: an optional leading `v` (`v1.14.2`, as cert-manager
//! releases), one to three numeric parts (`1`, `1.2`, `1.2.3`; missing parts are 0),
//! leading zeros in those parts (`01.2.3`), then the usual pre-release and build parts,
//! where a numeric pre-release identifier may not have a leading zero. Both helm 3 and
//! helm 4 accept exactly those. [`ChartVersion`] accepts the same set, keeps the text
//! as the chart wrote it (that is what indexes, status and messages show), and
//! compares by semver precedence: build metadata is ignored, as Masterminds ignores it.
//!
//! `upgradeFrom` ranges keep the `semver` crate's syntax (`>=1.0.0, <2.0.0`); a `v`
//! before a version in a range is accepted and ignored, so a range can be written in
//! the chart's own spelling (`>=v1.13.0`).

use std::cmp::Ordering;
use std::fmt;

/// A chart version: the text as written and its semver reading.
#[derive(Clone, Debug)]
pub struct ChartVersion {
    text: String,
    semver: semver::Version,
}

/// Why a chart version was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct VersionError {
    // Boxed: this error sits inside chart and publish errors, which stay small.
    reason: Box<str>,
}

impl VersionError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into().into_boxed_str(),
        }
    }
}

impl ChartVersion {
    /// Parses a version as Helm's chart loader does (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let semver = parse_loose(text)?;
        Ok(Self {
            text: text.to_owned(),
            semver,
        })
    }

    /// The version exactly as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its semver reading (`v1.2` is `1.2.0`).
    pub fn semver(&self) -> &semver::Version {
        &self.semver
    }

    /// Whether both name the same version by precedence (`v1.2.0` and `1.2.0+build`
    /// do).
    pub fn same_as(&self, other: &ChartVersion) -> bool {
        self.cmp_precedence(other) == Ordering::Equal
    }

    /// Semver precedence; build metadata is ignored.
    pub fn cmp_precedence(&self, other: &ChartVersion) -> Ordering {
        self.semver.cmp_precedence(&other.semver)
    }

    /// The compatibility line by semver's convention: the major version, or for a
    /// `0.x` version the minor one (`0.3.1` and `0.4.0` may break each other,
    /// `1.2.0` and `1.9.0` may not). A change of line is what `coxswain publish`
    /// asks approval for.
    pub fn compatibility_line(&self) -> (u64, u64) {
        match self.semver.major {
            0 => (0, self.semver.minor),
            major => (major, 0),
        }
    }

    /// Whether `range` (an `upgradeFrom`-style range) admits this version.
    pub fn satisfies(&self, range: &semver::VersionReq) -> bool {
        range.matches(&self.semver)
    }
}

impl PartialEq for ChartVersion {
    /// Same text: two spellings of one version (`v1.0.0`, `1.0.0`) are different
    /// versions of a chart as far as a repository or an index is concerned; use
    /// [`ChartVersion::same_as`] to compare by precedence.
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for ChartVersion {}

impl fmt::Display for ChartVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether two version texts name the same version (`v1.2.0` and `1.2.0` do); texts
/// that do not parse are compared as text.
pub fn same_version(a: &str, b: &str) -> bool {
    match (ChartVersion::parse(a), ChartVersion::parse(b)) {
        (Ok(a), Ok(b)) => a.same_as(&b),
        _ => a == b,
    }
}

/// Whether version `a` is older than `b` by semver precedence; `false` when either does
/// not parse.
pub fn is_older(a: &str, b: &str) -> bool {
    match (ChartVersion::parse(a), ChartVersion::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp_precedence(&b) == Ordering::Less,
        _ => false,
    }
}

/// Masterminds/semver `NewVersion`: `v?N(.N)?(.N)?(-pre)?(+build)?`.
fn parse_loose(text: &str) -> Result<semver::Version, VersionError> {
    if text.is_empty() {
        return Err(VersionError::new("it is empty"));
    }
    let body = text.strip_prefix('v').unwrap_or(text);
    let (rest, build) = match body.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (body, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 {
        return Err(VersionError::new(
            "more than three numeric parts (major.minor.patch)",
        ));
    }
    let mut numbers = [0u64; 3];
    for (slot, part) in numbers.iter_mut().zip(&parts) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VersionError::new(format!(
                "`{part}` is not a number (a version is [v]major[.minor[.patch]][-pre][+build])"
            )));
        }
        *slot = part
            .parse()
            .map_err(|_| VersionError::new(format!("`{part}` is too large")))?;
    }
    let pre = match pre {
        None => semver::Prerelease::EMPTY,
        Some(pre) => semver::Prerelease::new(pre)
            .map_err(|e| VersionError::new(format!("pre-release `{pre}`: {e}")))?,
    };
    if matches!(pre.as_str(), "") && rest.contains('-') {
        return Err(VersionError::new("empty pre-release after `-`"));
    }
    let build = match build {
        None => semver::BuildMetadata::EMPTY,
        Some(build) => semver::BuildMetadata::new(build)
            .map_err(|e| VersionError::new(format!("build metadata `{build}`: {e}")))?,
    };
    if build.is_empty() && body.contains('+') {
        return Err(VersionError::new("empty build metadata after `+`"));
    }
    Ok(semver::Version {
        major: numbers[0],
        minor: numbers[1],
        patch: numbers[2],
        pre,
        build,
    })
}

/// Parses an `upgradeFrom` range; a `v` right before a version is dropped first.
pub fn parse_range(text: &str) -> Result<semver::VersionReq, semver::Error> {
    let mut normalized = String::with_capacity(text.len());
    let mut previous: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let starts_version = previous
            .is_none_or(|p| p.is_whitespace() || matches!(p, ',' | '=' | '>' | '<' | '~' | '^'));
        if c == 'v' && starts_version && chars.peek().is_some_and(char::is_ascii_digit) {
            previous = Some(c);
            continue;
        }
        normalized.push(c);
        previous = Some(c);
    }
    semver::VersionReq::parse(&normalized)
}

/// Whether `version` satisfies a Helm dependency constraint (Chart.yaml's
/// `dependencies[].version`), read as Masterminds/semver reads constraints: `||`
/// between alternatives, `,` or spaces between comparators that must all hold, `a - b`
/// ranges, wildcards (`1.2.x`, `*`), `~`, `^`, `!=`, and a bare or `=` version that is
/// exact when complete and a wildcard when partial (`1.2` is `1.2.x`, unlike Cargo's
/// caret default). A version with a pre-release part matches only comparators that
/// name a pre-release of the same major.minor.patch.
pub fn constraint_matches(constraint: &str, version: &ChartVersion) -> Result<bool, String> {
    let mut any = false;
    for group in constraint.split("||") {
        let comparators = comparators(group)?;
        if comparators.is_empty() {
            return Err(format!(
                "constraint `{constraint}` has an empty alternative"
            ));
        }
        let mut all = true;
        for (op, text) in comparators {
            if !comparator_matches(&op, &text, version)? {
                all = false;
            }
        }
        any |= all;
    }
    Ok(any)
}

/// Splits one `||` alternative into (operator, version) pairs, expanding `a - b`.
fn comparators(group: &str) -> Result<Vec<(String, String)>, String> {
    let tokens: Vec<&str> = group
        .split([',', ' ', '\t'])
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        if tokens.get(i + 1) == Some(&"-") {
            let upper = tokens
                .get(i + 2)
                .ok_or_else(|| format!("range `{group}` has no upper bound"))?;
            out.push((">=".to_owned(), token.to_owned()));
            out.push(("<=".to_owned(), (*upper).to_owned()));
            i += 3;
            continue;
        }
        let op_len = token
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '!' | '~' | '^'))
            .unwrap_or(token.len());
        let (op, rest) = token.split_at(op_len);
        if rest.is_empty() {
            // An operator written apart from its version: `>= 1.2`.
            let next = tokens
                .get(i + 1)
                .ok_or_else(|| format!("`{group}`: operator `{op}` without a version"))?;
            out.push((op.to_owned(), (*next).to_owned()));
            i += 2;
        } else {
            out.push((op.to_owned(), rest.to_owned()));
            i += 1;
        }
    }
    Ok(out)
}

fn comparator_matches(op: &str, text: &str, version: &ChartVersion) -> Result<bool, String> {
    let bad = || format!("`{op}{text}` is not a version constraint Helm reads");
    let op = match op {
        "=>" => ">=",
        "=<" => "<=",
        "~>" => "~",
        "" => "=",
        other => other,
    };
    let body = text.strip_prefix('v').unwrap_or(text);
    let wildcard = |p: &str| matches!(p, "x" | "X" | "*");
    if op == "!=" {
        let req = semver::VersionReq::parse(&format!("={body}")).map_err(|_| bad())?;
        return Ok(!req.matches(version.semver()));
    }
    if !matches!(op, "=" | ">" | "<" | ">=" | "<=" | "~" | "^") {
        return Err(bad());
    }
    if body
        .split(['-', '+'])
        .next()
        .is_some_and(|core| core.split('.').all(wildcard))
    {
        // `*`, `x`, `x.x`: anything (but a pre-release, as in Masterminds).
        return Ok(version.semver().pre.is_empty() || op != "=");
    }
    let req = semver::VersionReq::parse(&format!("{op}{body}")).map_err(|_| bad())?;
    Ok(req.matches(version.semver()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> ChartVersion {
        ChartVersion::parse(text).unwrap()
    }

    #[test]
    fn helm_accepts_these_versions_and_so_do_we() {
        for (text, semver) in [
            ("1.2.3", "1.2.3"),
            ("v1.14.2", "1.14.2"),
            ("v1.2", "1.2.0"),
            ("1", "1.0.0"),
            ("1.2", "1.2.0"),
            ("01.2.3", "1.2.3"),
            ("1.2.3-rc.1+build.5", "1.2.3-rc.1+build.5"),
            ("v2.0.0-beta-1", "2.0.0-beta-1"),
            ("1.0.0+001", "1.0.0+001"),
        ] {
            let parsed = v(text);
            assert_eq!(parsed.semver().to_string(), semver, "{text}");
            assert_eq!(parsed.to_string(), text, "shown as written");
        }
    }

    #[test]
    fn helm_refuses_these_versions_and_so_do_we() {
        // Each checked against helm 4.3.1 and 3.22.0 (`chart.metadata.version ... is invalid`).
        for text in [
            "",
            "V1.2.3",
            "1.2.3-01",
            "1.2.3.4",
            "1..2",
            "1.2.3-",
            "1.2.3+",
            "x1.2",
            " 1.2.3",
            "1.2.3 ",
            "1.2.x",
            "=1.2.3",
            "v",
            "1.2.3-rc..1",
            "1.2.3_4",
        ] {
            assert!(ChartVersion::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn versions_compare_as_semver_whatever_the_spelling() {
        assert_eq!(v("v1.2.0").cmp_precedence(&v("1.10.0")), Ordering::Less);
        assert_eq!(v("v1.10.0").cmp_precedence(&v("1.9.0")), Ordering::Greater);
        assert!(v("v1.2.0").same_as(&v("1.2.0")));
        assert!(v("1.2").same_as(&v("v1.2.0+meta")));
        assert_eq!(v("1.2.0-rc.1").cmp_precedence(&v("v1.2.0")), Ordering::Less);
        assert_ne!(v("v1.2.0"), v("1.2.0"), "two spellings are two texts");
        assert!(same_version("v1.14.2", "1.14.2"));
        assert!(!same_version("v1.14.2", "1.14.3"));
        assert!(same_version("not a version", "not a version"));
        assert!(is_older("v1.2.0", "1.10.0"));
        assert!(!is_older("1.10.0", "v1.2.0"));
        assert!(!is_older("junk", "1.0.0"));
    }

    #[test]
    fn dependency_constraints_read_as_masterminds_reads_them() {
        let m = |c: &str, version: &str| constraint_matches(c, &v(version)).unwrap();
        assert!(m("1.2.3", "1.2.3") && !m("1.2.3", "1.2.4"), "bare is exact");
        assert!(
            m("1.2", "1.2.9") && !m("1.2", "1.3.0"),
            "partial is a wildcard"
        );
        assert!(m(">=1.2.0, <2.0.0", "v1.9.0") && !m(">=1.2.0, <2.0.0", "2.0.0"));
        assert!(m(">= 1.2.0 < 2", "1.5.0"));
        assert!(m("~1.2.3", "1.2.9") && !m("~1.2.3", "1.3.0"));
        assert!(m("^1.2.3", "1.9.0") && !m("^1.2.3", "2.0.0"));
        assert!(m("1.2.x", "1.2.7") && !m("1.2.x", "1.3.0"));
        assert!(m("*", "5.0.0") && m("x", "0.1.0"));
        assert!(m("1.0.0 - 2.0.0", "2.0.0") && !m("1.0.0 - 2.0.0", "2.0.1"));
        assert!(m("<1.0.0 || >=3.0.0", "3.1.0") && !m("<1.0.0 || >=3.0.0", "2.0.0"));
        assert!(m("!=1.2.3", "1.2.4") && !m("!=1.2.3", "1.2.3"));
        assert!(m("=>v1.0.0", "1.0.0"));
        assert!(
            !m(">=1.0.0", "1.1.0-rc.1"),
            "pre-releases need a pre-release comparator"
        );
        assert!(m(">=1.1.0-0", "1.1.0-rc.1"));
        assert!(constraint_matches(">=junk", &v("1.0.0")).is_err());
        assert!(constraint_matches("", &v("1.0.0")).is_err());
    }

    #[test]
    fn ranges_accept_a_leading_v() {
        let range = parse_range(">=v1.13.0, <v2").unwrap();
        assert!(v("v1.14.2").satisfies(&range));
        assert!(v("1.13.0").satisfies(&range));
        assert!(!v("v2.0.0").satisfies(&range));
        assert!(parse_range(">= v1.0.0").is_ok());
        assert!(parse_range("=v1.0.0").is_ok());
        assert!(parse_range(">=1.0.0 <<2").is_err());
        assert!(parse_range(">=vx").is_err());
    }
}
