//! The pure parts of `bench --compare`: the generated stacks and their DAG, the
//! contenders' inputs written from a published index (helmfile.yaml, the helm
//! loop's order, Flux's HelmReleases), the audit-log request counter and the
//! median/ratio table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

/// One release of a generated stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub name: String,
    pub namespace: String,
    pub depends_on: Vec<String>,
}

/// `n` releases in `layers` layers of (nearly) equal size, 10 releases per
/// namespace. Release `p` of layer `l > 0` depends on release `p` of layer
/// `l - 1`, and an odd `p` also on release `p + 1` of that layer (wrapping), so the
/// graph is a DAG whose longest path has `layers` releases.
pub fn generate(n: usize, layers: usize) -> Result<Vec<Generated>> {
    ensure!(n >= 1, "a generated stack needs at least one release");
    ensure!(
        (1..=n).contains(&layers),
        "{layers} layers cannot hold {n} releases (1 to {n} layers)"
    );
    let per = n.div_ceil(layers);
    let name = |i: usize| format!("app-{:04}", i + 1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (layer, pos) = (i / per, i % per);
        let mut depends_on = Vec::new();
        if layer > 0 {
            let prev = |p: usize| (layer - 1) * per + p;
            depends_on.push(name(prev(pos)));
            if pos % 2 == 1 {
                let other = prev((pos + 1) % per);
                if other != prev(pos) {
                    depends_on.push(name(other));
                }
            }
        }
        out.push(Generated {
            name: name(i),
            namespace: format!("cmp-{:03}", i / 10),
            depends_on,
        });
    }
    Ok(out)
}

/// The channel spec of a generated stack: testdata's wiki chart (`chart`, a
/// path) for every release, the image tag `tag`, and `changed` with the tag
/// `changed_tag`; health checked, no helm test.
pub fn generated_spec(
    releases: &[Generated],
    chart: &str,
    tag: &str,
    changed: Option<(&str, &str)>,
) -> String {
    let mut spec = String::from(
        "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: stable\nvalidFor: 14d\nreleases:\n",
    );
    for r in releases {
        let tag = match changed {
            Some((name, changed_tag)) if name == r.name => changed_tag,
            _ => tag,
        };
        let _ = write!(
            spec,
            "  - name: {}\n    namespace: {}\n    chart: {{path: {chart}}}\n    \
             values: {{image: {{tag: \"{tag}\"}}}}\n    health: {{timeout: 5m, test: false}}\n",
            r.name, r.namespace
        );
        if !r.depends_on.is_empty() {
            let _ = writeln!(spec, "    dependsOn: [{}]", r.depends_on.join(", "));
        }
    }
    spec
}

/// One release as the published index has it: what every contender installs.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub chart: String,
    pub version: String,
    /// The archive's file name in the site's `charts/` directory.
    pub archive: String,
    /// The merged values (the spec's values file under its inline values).
    pub values: Value,
    pub depends_on: Vec<String>,
}

/// The releases of a published `index.json`.
pub fn read_index(text: &str) -> Result<Vec<Release>> {
    let index: Value = serde_json::from_str(text).context("the index is not JSON")?;
    let releases = index["releases"]
        .as_array()
        .context("the index has no releases array")?;
    let mut out = Vec::new();
    for r in releases {
        let s = |v: &Value, what: &str| -> Result<String> {
            v.as_str()
                .map(str::to_owned)
                .with_context(|| format!("a release of the index has no {what}"))
        };
        let url = s(&r["chart"]["url"], "chart.url")?;
        let archive = url
            .rsplit('/')
            .next()
            .filter(|f| f.ends_with(".tgz") && !f.contains(".."))
            .with_context(|| format!("the chart URL {url:?} names no archive"))?
            .to_owned();
        let depends_on = match &r["dependsOn"] {
            Value::Null => Vec::new(),
            Value::Array(a) => a
                .iter()
                .map(|d| s(d, "dependsOn name"))
                .collect::<Result<_>>()?,
            other => bail!("dependsOn is not a list: {other}"),
        };
        out.push(Release {
            name: s(&r["name"], "name")?,
            namespace: s(&r["namespace"], "namespace")?,
            chart: s(&r["chart"]["name"], "chart.name")?,
            version: s(&r["chart"]["version"], "chart.version")?,
            archive,
            values: r.get("values").cloned().unwrap_or(Value::Null),
            depends_on,
        });
    }
    Ok(out)
}

/// The releases in dependency order (a release after all it depends on; ties
/// in index order), for the sequential helm loop.
pub fn dependency_order(releases: &[Release]) -> Result<Vec<&Release>> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(releases.len());
    while order.len() < releases.len() {
        let before = order.len();
        for r in releases {
            if !done.contains(r.name.as_str())
                && r.depends_on.iter().all(|d| done.contains(d.as_str()))
            {
                order.push(r);
            }
        }
        for r in &order[before..] {
            done.insert(r.name.as_str());
        }
        ensure!(
            order.len() > before,
            "the releases' dependencies form a cycle or name a missing release"
        );
    }
    Ok(order)
}

/// `helmfile.yaml`: every release with its archive (under `charts`), its values
/// file (under `values`), `needs:` for its dependencies; helm waits for each
/// release (`wait: true`) and creates its namespace.
pub fn helmfile_yaml(releases: &[Release], charts: &str, values: &str) -> Result<String> {
    let by_name: BTreeMap<&str, &Release> = releases.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut out = String::from(
        "helmDefaults:\n  wait: true\n  timeout: 600\n  createNamespace: true\nreleases:\n",
    );
    for r in releases {
        let _ = write!(
            out,
            "  - name: {}\n    namespace: {}\n    chart: {charts}/{}\n    values: [{values}/{}.json]\n",
            r.name, r.namespace, r.archive, r.name
        );
        if !r.depends_on.is_empty() {
            let needs = r
                .depends_on
                .iter()
                .map(|d| {
                    by_name
                        .get(d.as_str())
                        .map(|dep| format!("{}/{}", dep.namespace, dep.name))
                        .with_context(|| format!("{} depends on the unknown {d}", r.name))
                })
                .collect::<Result<Vec<_>>>()?;
            let _ = writeln!(out, "    needs: [{}]", needs.join(", "));
        }
    }
    Ok(out)
}

/// Flux's objects: a HelmRepository `local` at `repo_url` and one HelmRelease per
/// release in `namespace`, the same `dependsOn` DAG, installed into the release's
/// namespace (created), values inline, helm's wait on (Flux's default).
pub fn flux_objects(releases: &[Release], namespace: &str, repo_url: &str) -> Result<String> {
    let mut out = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {{name: local, namespace: {namespace}}}\n\
         spec: {{url: \"{repo_url}\", interval: 60m}}\n"
    );
    for r in releases {
        let depends: Vec<String> = r
            .depends_on
            .iter()
            .map(|d| format!("{{name: {d}}}"))
            .collect();
        let values = serde_json::to_string(&r.values).context("encoding values")?;
        let _ = write!(
            out,
            "---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\n\
             metadata: {{name: {name}, namespace: {namespace}}}\n\
             spec:\n  interval: 60m\n  releaseName: {name}\n  targetNamespace: {ns}\n  storageNamespace: {ns}\n  \
             timeout: 10m\n  install: {{createNamespace: true}}\n  dependsOn: [{deps}]\n  \
             chart:\n    spec: {{chart: {chart}, version: \"{version}\", sourceRef: {{kind: HelmRepository, name: local}}, interval: 60m}}\n  \
             values: {values}\n",
            name = r.name,
            ns = r.namespace,
            deps = depends.join(", "),
            chart = r.chart,
            version = r.version,
        );
    }
    Ok(out)
}

/// API requests made by a contender, from the API server's audit log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Requests {
    pub total: usize,
    /// create, update, patch, delete, deletecollection.
    pub writes: usize,
    /// Requests per user agent (its product name, before the first `/`).
    pub by_agent: BTreeMap<String, usize>,
}

/// User agents of the cluster's own components and of the benchmark's kubectl:
/// their requests are not the contenders'.
const NOT_CONTENDERS: [&str; 6] = [
    "kube-controller-manager",
    "kube-scheduler",
    "kube-apiserver",
    "kwok",
    "kubectl",
    "control-plane",
];

/// Counts the requests in audit-log lines (JSON, one event per line; each request
/// once by its `auditID`), leaving out the cluster's own components
/// ([`NOT_CONTENDERS`]). A line that is not an audit event is an error.
pub fn count_requests(log: &str) -> Result<Requests> {
    let mut seen = BTreeSet::new();
    let mut out = Requests::default();
    for (i, line) in log.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event: Value = serde_json::from_str(line)
            .with_context(|| format!("audit log line {} is not JSON", i + 1))?;
        let (Some(id), Some(verb)) = (event["auditID"].as_str(), event["verb"].as_str()) else {
            bail!("audit log line {} has no auditID or verb", i + 1);
        };
        let agent = event["userAgent"]
            .as_str()
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned();
        if NOT_CONTENDERS.contains(&agent.as_str()) || !seen.insert(id.to_owned()) {
            continue;
        }
        out.total += 1;
        if matches!(
            verb,
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) {
            out.writes += 1;
        }
        *out.by_agent.entry(agent).or_default() += 1;
    }
    Ok(out)
}

/// Median, min and max of `xs` (NaN when empty).
pub fn summary(xs: &[f64]) -> (f64, f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// `median (min–max)` with `unit` formatting, or just the median of one sample.
pub fn cell(xs: &[f64], fmt: impl Fn(f64) -> String) -> String {
    let (m, lo, hi) = summary(xs);
    if xs.is_empty() {
        "not run".to_owned()
    } else if xs.len() == 1 || lo == hi {
        fmt(m)
    } else {
        format!("{} ({}–{})", fmt(m), fmt(lo), fmt(hi))
    }
}

/// `a / b` of the medians as `0.42×`, or `—` when either was not measured or `b` is 0.
pub fn ratio(a: &[f64], b: &[f64]) -> String {
    let (ma, _, _) = summary(a);
    let (mb, _, _) = summary(b);
    if ma.is_nan() || mb.is_nan() || mb == 0.0 {
        "—".to_owned()
    } else {
        format!("{:.2}×", ma / mb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_releases_form_five_layers_with_a_dag() {
        let s = generate(20, 5).unwrap();
        assert_eq!(s.len(), 20);
        assert!(s[..4].iter().all(|r| r.depends_on.is_empty()));
        assert_eq!(s[4].depends_on, ["app-0001"]);
        assert_eq!(s[5].depends_on, ["app-0002", "app-0003"]);
        assert_eq!(s[7].depends_on, ["app-0004", "app-0001"]);
        assert_eq!(s[19].depends_on, ["app-0016", "app-0013"]);
        assert_eq!(s[0].namespace, "cmp-000");
        assert_eq!(s[19].namespace, "cmp-001");
        // The longest dependency path is the number of layers.
        let rels: Vec<Release> = s
            .iter()
            .map(|g| Release {
                name: g.name.clone(),
                namespace: g.namespace.clone(),
                chart: "wiki".into(),
                version: "1".into(),
                archive: "a.tgz".into(),
                values: Value::Null,
                depends_on: g.depends_on.clone(),
            })
            .collect();
        let order = dependency_order(&rels).unwrap();
        let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
        for r in order {
            let d = r
                .depends_on
                .iter()
                .map(|d| depth[d.as_str()] + 1)
                .max()
                .unwrap_or(1);
            depth.insert(&r.name, d);
        }
        assert_eq!(depth.values().max(), Some(&5));
    }

    #[test]
    fn a_thousand_releases_have_a_hundred_namespaces() {
        let s = generate(1000, 5).unwrap();
        let namespaces: BTreeSet<&str> = s.iter().map(|r| r.namespace.as_str()).collect();
        assert_eq!(namespaces.len(), 100);
        assert_eq!(s[999].name, "app-1000");
        assert_eq!(s[200].depends_on, ["app-0001"]);
    }

    #[test]
    fn impossible_layouts_are_refused() {
        assert_eq!(
            generate(3, 4).unwrap_err().to_string(),
            "4 layers cannot hold 3 releases (1 to 3 layers)"
        );
        assert!(generate(0, 1).is_err());
    }

    #[test]
    fn the_spec_changes_only_the_named_release() {
        let s = generate(6, 2).unwrap();
        let spec = generated_spec(&s, "/c/wiki", "2.5.1", Some(("app-0006", "2.5.2")));
        assert_eq!(spec.matches("tag: \"2.5.1\"").count(), 5);
        assert!(spec.contains(
            "  - name: app-0006\n    namespace: cmp-000\n    chart: {path: /c/wiki}\n    values: {image: {tag: \"2.5.2\"}}"
        ));
        assert!(spec.contains("dependsOn: [app-0003]\n"));
        assert!(spec.contains("dependsOn: [app-0002, app-0003]\n"));
    }

    fn index() -> String {
        serde_json::json!({"releases": [
            {"name": "b", "namespace": "nb", "chart": {"name": "wiki", "version": "2.0.0",
              "url": "../../charts/sha256-bb.tgz"}, "values": {"x": 1}, "dependsOn": ["a"]},
            {"name": "a", "namespace": "na", "chart": {"name": "certs", "version": "1.0.0",
              "url": "../../charts/sha256-aa.tgz"}, "values": {}}
        ]})
        .to_string()
    }

    #[test]
    fn the_index_gives_the_contenders_inputs() {
        let r = read_index(&index()).unwrap();
        assert_eq!(r[0].archive, "sha256-bb.tgz");
        assert_eq!(r[0].depends_on, ["a"]);
        assert!(r[1].depends_on.is_empty());
        let order: Vec<&str> = dependency_order(&r)
            .unwrap()
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(order, ["a", "b"]);
        let hf = helmfile_yaml(&r, "/charts", "/values").unwrap();
        assert!(hf.contains(
            "  - name: b\n    namespace: nb\n    chart: /charts/sha256-bb.tgz\n    values: [/values/b.json]\n    needs: [na/a]\n"
        ));
        let flux = flux_objects(&r, "flux-bench", "http://127.0.0.1:1/").unwrap();
        assert!(flux.contains("dependsOn: [{name: a}]"));
        assert!(flux.contains("values: {\"x\":1}"));
        assert!(flux.contains("targetNamespace: nb"));
    }

    #[test]
    fn a_bad_index_or_a_cycle_is_an_error() {
        let bad = index().replace("sha256-bb.tgz", "../../../etc");
        assert!(
            read_index(&bad)
                .unwrap_err()
                .to_string()
                .contains("names no archive")
        );
        let mut r = read_index(&index()).unwrap();
        r[1].depends_on = vec!["b".into()];
        assert_eq!(
            dependency_order(&r).unwrap_err().to_string(),
            "the releases' dependencies form a cycle or name a missing release"
        );
        assert!(
            helmfile_yaml(&r[..1], "/c", "/v")
                .unwrap_err()
                .to_string()
                .contains("depends on the unknown a")
        );
    }

    #[test]
    fn requests_are_counted_once_without_the_clusters_own() {
        let log = [
            r#"{"auditID":"1","stage":"ResponseStarted","verb":"watch","userAgent":"helm-controller/v0.0.0"}"#,
            r#"{"auditID":"1","stage":"ResponseComplete","verb":"watch","userAgent":"helm-controller/v0.0.0"}"#,
            r#"{"auditID":"2","stage":"ResponseComplete","verb":"create","userAgent":"Helm/4.3.1"}"#,
            r#"{"auditID":"3","stage":"ResponseComplete","verb":"get","userAgent":"kube-controller-manager/v1.36.3 (linux/amd64)"}"#,
            r#"{"auditID":"4","stage":"ResponseComplete","verb":"patch","userAgent":"coxswain"}"#,
            "",
        ]
        .join("\n");
        let r = count_requests(&log).unwrap();
        assert_eq!(r.total, 3);
        assert_eq!(r.writes, 2);
        assert_eq!(r.by_agent["helm-controller"], 1);
        assert_eq!(r.by_agent["Helm"], 1);
        assert_eq!(
            count_requests("{\"verb\":\"get\"}")
                .unwrap_err()
                .to_string(),
            "audit log line 1 has no auditID or verb"
        );
        assert!(count_requests("not json").is_err());
    }

    #[test]
    fn medians_ranges_and_ratios() {
        assert_eq!(summary(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(summary(&[4.0, 1.0]).0, 2.5);
        let s = |x: f64| format!("{x:.1}s");
        assert_eq!(cell(&[3.0, 1.0, 2.0], s), "2.0s (1.0s–3.0s)");
        assert_eq!(cell(&[2.0], s), "2.0s");
        assert_eq!(cell(&[], s), "not run");
        assert_eq!(ratio(&[1.0, 2.0, 3.0], &[4.0]), "0.50×");
        assert_eq!(ratio(&[1.0], &[]), "—");
        assert_eq!(ratio(&[1.0], &[0.0]), "—");
    }
}
