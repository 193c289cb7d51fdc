//! `.helmignore` rules, with the semantics of Helm's own `pkg/ignore`, minus negation.
//!
//! Supported, as in Helm:
//! - blank lines and lines starting with `#` are skipped; surrounding whitespace is trimmed;
//! - a pattern is a shell glob with Go's `filepath.Match` syntax: `*` (any run of
//!   characters except `/`), `?` (one character except `/`), `[abc]`, `[a-z]`, `[^a-z]`,
//!   and `\` to escape;
//! - a pattern without `/` is matched against the last path component (`*.md` ignores
//!   Markdown files everywhere); a pattern with a `/` inside, or starting with `/`, against
//!   the whole path below the chart directory (`/ci/*`, `docs/*.png`);
//! - a trailing `/` restricts a pattern to directories (`.git/`);
//! - an ignored directory is skipped with everything in it;
//! - Helm's default rule `templates/.?*` (dotfiles in `templates/`) always applies.
//!
//! Refused with an error: `**` (Helm refuses it too) and `!` negation, whose meaning in
//! Helm (“ignore everything that does not match”) differs from `.gitignore` and would
//! silently drop files.

use super::ChartErrorKind;

/// A parsed `.helmignore`.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug)]
struct Pattern {
    glob: Vec<char>,
    dirs_only: bool,
    whole_path: bool,
}

impl Rules {
    /// Helm's default rule alone (for a chart without `.helmignore`).
    pub fn defaults() -> Self {
        let mut rules = Rules::default();
        // Infallible: a fixed, valid pattern.
        rules.patterns.push(Pattern {
            glob: "templates/.?*".chars().collect(),
            dirs_only: false,
            whole_path: true,
        });
        rules
    }

    /// Parses the text of a `.helmignore`, adding Helm's default rule.
    pub fn parse(text: &str) -> Result<Self, ChartErrorKind> {
        let mut rules = Self::defaults();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, line) in text.lines().enumerate() {
            let error = |reason: &str| ChartErrorKind::Helmignore {
                line: index + 1,
                reason: reason.to_owned(),
            };
            let mut rule = line.trim();
            if rule.is_empty() || rule.starts_with('#') {
                continue;
            }
            if rule.contains("**") {
                return Err(error(
                    "double-star (**) syntax is not supported (nor by Helm)",
                ));
            }
            if rule.starts_with('!') {
                return Err(error(
                    "negation (!) is not supported: Helm reads it as \"ignore everything \
                     that does not match\", unlike .gitignore",
                ));
            }
            let dirs_only = rule.ends_with('/');
            rule = rule.trim_end_matches('/');
            let anchored = rule.starts_with('/');
            rule = rule.trim_start_matches('/');
            if rule.is_empty() {
                return Err(error("empty pattern"));
            }
            let glob: Vec<char> = rule.chars().collect();
            if !glob_is_valid(&glob) {
                return Err(error("malformed pattern (unclosed [ or trailing \\)"));
            }
            rules.patterns.push(Pattern {
                whole_path: anchored || rule.contains('/'),
                glob,
                dirs_only,
            });
        }
        Ok(rules)
    }

    /// Whether `path` (relative to the chart directory, `/`-separated) is ignored.
    pub fn is_ignored(&self, path: &str, is_dir: bool) -> bool {
        let name: Vec<char> = path.rsplit('/').next().unwrap_or(path).chars().collect();
        let whole: Vec<char> = path.chars().collect();
        self.patterns.iter().any(|p| {
            (!p.dirs_only || is_dir)
                && glob_match(&p.glob, if p.whole_path { &whole } else { &name })
        })
    }
}

fn glob_is_valid(glob: &[char]) -> bool {
    let mut i = 0;
    while i < glob.len() {
        match glob[i] {
            '\\' => {
                if i + 1 >= glob.len() {
                    return false;
                }
                i += 2;
            }
            '[' => match class_end(glob, i) {
                Some(end) => i = end + 1,
                None => return false,
            },
            _ => i += 1,
        }
    }
    true
}

/// The index of the `]` closing the class opened at `start`.
fn class_end(glob: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if glob.get(i) == Some(&'^') {
        i += 1;
    }
    let mut first = true;
    while i < glob.len() {
        match glob[i] {
            ']' if !first => return Some(i),
            '\\' => i += 2,
            _ => i += 1,
        }
        first = false;
    }
    None
}

/// Go `filepath.Match` semantics on `/`-separated paths.
fn glob_match(glob: &[char], name: &[char]) -> bool {
    match glob.first() {
        None => name.is_empty(),
        Some('*') => {
            let rest = &glob[1..];
            // `*` never crosses a `/`.
            for skip in 0..=name.len() {
                if glob_match(rest, &name[skip..]) {
                    return true;
                }
                if name.get(skip) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Some('?') => {
            matches!(name.first(), Some(c) if *c != '/') && glob_match(&glob[1..], &name[1..])
        }
        Some('[') => {
            let Some(end) = class_end(glob, 0) else {
                return false;
            };
            let Some(&c) = name.first() else {
                return false;
            };
            c != '/' && class_matches(&glob[1..end], c) && glob_match(&glob[end + 1..], &name[1..])
        }
        Some('\\') => {
            glob.len() >= 2 && name.first() == Some(&glob[1]) && glob_match(&glob[2..], &name[1..])
        }
        Some(&literal) => name.first() == Some(&literal) && glob_match(&glob[1..], &name[1..]),
    }
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negated, class) = match class.first() {
        Some('^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut matched = false;
    let mut i = 0;
    while i < class.len() {
        let mut lo = class[i];
        if lo == '\\' && i + 1 < class.len() {
            i += 1;
            lo = class[i];
        }
        let mut hi = lo;
        if class.get(i + 1) == Some(&'-') && i + 2 < class.len() {
            hi = class[i + 2];
            if hi == '\\' && i + 3 < class.len() {
                hi = class[i + 3];
                i += 1;
            }
            i += 2;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
        i += 1;
    }
    matched != negated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, name: &str) -> bool {
        glob_match(
            &glob.chars().collect::<Vec<_>>(),
            &name.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn globs_follow_go_filepath_match() {
        assert!(m("*.md", "README.md"));
        assert!(!m("*.md", "docs/README.md"));
        assert!(m("docs/*.png", "docs/a.png"));
        assert!(!m("docs/*.png", "docs/x/a.png"));
        assert!(m("temp?", "temp1"));
        assert!(!m("temp?", "temp"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("*", ""));
        assert!(!m("?", "/"));
    }

    #[test]
    fn rules_follow_helm() {
        let rules =
            Rules::parse("\u{feff}# comment\n\n.git/\n*.tmp\n/ci/*\ndocs/*.png\n*.orig  \n")
                .unwrap();
        assert!(rules.is_ignored(".git", true));
        assert!(!rules.is_ignored(".git", false));
        assert!(rules.is_ignored("templates/x.tmp", false));
        assert!(rules.is_ignored("ci/run.sh", false));
        assert!(!rules.is_ignored("templates/ci/run.sh", false));
        assert!(rules.is_ignored("docs/a.png", false));
        assert!(rules.is_ignored("a.orig", false));
        // Helm's default: dotfiles in templates/.
        assert!(rules.is_ignored("templates/.swp", false));
        assert!(!rules.is_ignored("templates/_helpers.tpl", false));
        assert!(!rules.is_ignored("Chart.yaml", false));
        assert!(!rules.is_ignored(".helmignore", false));
    }

    #[test]
    fn unsupported_patterns_are_refused_with_their_line() {
        for (text, line) in [
            ("a\n**/x\n", 2),
            ("!keep.yaml\n", 1),
            ("x\ny\n[ab\n", 3),
            ("a\\", 1),
        ] {
            match Rules::parse(text) {
                Err(ChartErrorKind::Helmignore { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }
}
