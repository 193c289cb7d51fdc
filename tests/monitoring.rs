//! The alert rules and the Grafana dashboard in `charts/coxswain/` against the real
//! `promtool` (Debian's `prometheus` package): the PrometheusRule's groups pass
//! `promtool check rules` and the unit tests in `alerts.test.yaml`; every dashboard
//! query is valid PromQL; and rules, dashboard and docs only name metric families
//! the agent exposes ([`coxswain::metrics::family_names`]).
//!
//! promtool comes from `COXSWAIN_TEST_PROMTOOL`, which `cargo xtask test` sets (and
//! installs the package when missing). The tests fail, rather than skip, without it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use coxswain::yaml::{self, Limits};
use serde_json::{Value, json};

const RULE_FILE: &str = "charts/coxswain/monitoring/prometheusrule.yaml";
const RULE_TESTS: &str = "charts/coxswain/monitoring/alerts.test.yaml";
const DASHBOARD: &str = "charts/coxswain/dashboards/coxswain.json";
const DASHBOARD_TESTS: &str = "charts/coxswain/dashboards/queries.test.yaml";
const METRICS_DOC: &str = "docs/metrics.md";

fn promtool() -> PathBuf {
    let path = match std::env::var_os("COXSWAIN_TEST_PROMTOOL") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "COXSWAIN_TEST_PROMTOOL is not set: run these tests through `cargo xtask test`, \
             which installs Debian's prometheus package when missing and sets it, or set it \
             to /usr/bin/promtool yourself"
        ),
    };
    assert!(
        path.is_file(),
        "COXSWAIN_TEST_PROMTOOL={} does not exist: run the tests through `cargo xtask test`, \
         which installs Debian's prometheus package",
        path.display()
    );
    path
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read_text(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn read_yaml(rel: &str) -> Value {
    yaml::from_slice(read_text(rel).as_bytes(), rel, Limits::bytes(1 << 20))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The PrometheusRule's `spec`: a Prometheus rule file's content (`groups`).
fn rule_groups() -> Value {
    let rule = read_yaml(RULE_FILE);
    assert_eq!(
        rule["apiVersion"], "monitoring.coreos.com/v1",
        "{RULE_FILE}"
    );
    assert_eq!(rule["kind"], "PrometheusRule", "{RULE_FILE}");
    assert_eq!(rule["metadata"]["name"], "coxswain", "{RULE_FILE}");
    let spec = rule["spec"].clone();
    assert!(
        spec["groups"].is_array(),
        "{RULE_FILE}: spec.groups is not a list"
    );
    spec
}

fn rules(groups: &Value) -> Vec<&Value> {
    groups["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect()
}

fn alert_names(groups: &Value) -> Vec<String> {
    rules(groups)
        .iter()
        .filter_map(|r| r["alert"].as_str().map(str::to_owned))
        .collect()
}

/// Writes `value` as JSON, which is YAML to promtool.
fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value).unwrap();
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// Runs promtool; returns whether it succeeded and its stdout and stderr.
fn run_promtool(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let output = Command::new(promtool())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool().display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn check_rules(file: &Path) -> (bool, String) {
    run_promtool(&["check".as_ref(), "rules".as_ref(), file.as_os_str()])
}

/// `promtool test rules` on a copy of `alerts.test.yaml` whose `rule_files` is `rules`.
fn test_rules(dir: &Path, rules: &Path) -> (bool, String) {
    let mut tests = read_yaml(RULE_TESTS);
    assert_eq!(
        tests["rule_files"].as_array().map(Vec::len),
        Some(1),
        "{RULE_TESTS}: rule_files should name the one extracted rule file"
    );
    tests["rule_files"] = json!([rules]);
    let file = write_json(dir, "alerts.test.yaml", &tests);
    run_promtool(&["test".as_ref(), "rules".as_ref(), file.as_os_str()])
}

/// Every `coxswain_...` name in `text`, histogram suffixes stripped.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find("coxswain_") {
        let start = from + pos;
        let mut end = start + "coxswain_".len();
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        // Part of a longer identifier (`dashboard:coxswain_x`, `my_coxswain_x`) is not a name.
        let inside = start > 0 && {
            let before = bytes[start - 1];
            before.is_ascii_alphanumeric() || before == b'_' || before == b':'
        };
        // `coxswain_` alone (a prefix, `coxswain_*`) names nothing.
        let empty = end == start + "coxswain_".len();
        if !inside && !empty {
            let name = &text[start..end];
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.insert(name.to_owned());
        }
        from = end;
    }
    names
}

fn exposed() -> BTreeSet<String> {
    let names: BTreeSet<String> = coxswain::metrics::family_names().into_iter().collect();
    assert!(names.len() >= 20, "family_names() lists only {names:?}");
    names
}

/// Names used in `texts` that the agent does not expose, with where they were used.
fn unknown_metrics<'a>(texts: impl IntoIterator<Item = (String, &'a str)>) -> Vec<String> {
    let exposed = exposed();
    let mut unknown = Vec::new();
    for (place, text) in texts {
        for name in metric_names(text) {
            if !exposed.contains(&name) {
                unknown.push(format!("{place}: {name}"));
            }
        }
    }
    unknown
}

#[test]
fn the_prometheus_rule_passes_promtool_check_rules() {
    let groups = rule_groups();
    let count = rules(&groups).len();
    let dir = tempfile::tempdir().unwrap();
    let file = write_json(dir.path(), "coxswain.rules.yaml", &groups);
    let (ok, out) = check_rules(&file);
    assert!(ok, "promtool check rules {RULE_FILE} (spec) failed:\n{out}");
    assert!(
        out.contains(&format!("SUCCESS: {count} rules found")),
        "promtool did not read the {count} rules:\n{out}"
    );
}

#[test]
fn every_alert_has_a_severity_annotations_a_for_and_a_documented_runbook() {
    let groups = rule_groups();
    let doc = read_text(METRICS_DOC);
    let alerts = rules(&groups);
    assert!(
        alerts.len() >= 8,
        "only {} rules in {RULE_FILE}",
        alerts.len()
    );
    for rule in alerts {
        let name = rule["alert"]
            .as_str()
            .unwrap_or_else(|| panic!("{RULE_FILE}: a rule without `alert`: {rule}"));
        assert!(
            name.starts_with("Coxswain"),
            "{name}: not named Coxswain..."
        );
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("critical" | "warning")),
            "{name}: severity {severity:?}"
        );
        assert!(rule["for"].is_string(), "{name}: no `for:`");
        for key in ["summary", "description"] {
            let text = rule["annotations"][key].as_str().unwrap_or_default();
            assert!(text.len() > 20, "{name}: annotation {key} is {text:?}");
        }
        let anchor = format!("{METRICS_DOC}#{}", name.to_ascii_lowercase());
        assert_eq!(
            rule["annotations"]["runbook_url"].as_str(),
            Some(anchor.as_str()),
            "{name}: runbook_url"
        );
        assert!(
            doc.contains(&format!("\n### {name}\n")),
            "{METRICS_DOC} has no section `### {name}` (the runbook_url's anchor)"
        );
    }
}

#[test]
fn the_alert_unit_tests_pass_and_cover_every_alert() {
    let groups = rule_groups();
    let dir = tempfile::tempdir().unwrap();
    let file = write_json(dir.path(), "coxswain.rules.yaml", &groups);
    let (ok, out) = test_rules(dir.path(), &file);
    assert!(ok, "promtool test rules {RULE_TESTS} failed:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");

    // Each alert fires in some case (labels and annotations checked) and stays
    // quiet in another.
    let tests = read_yaml(RULE_TESTS);
    let cases: Vec<&Value> = tests["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["alert_rule_test"].as_array().into_iter().flatten())
        .collect();
    for alert in alert_names(&groups) {
        let of_alert = || cases.iter().filter(|c| c["alertname"] == alert.as_str());
        let fires = of_alert().any(|c| {
            c["exp_alerts"].as_array().is_some_and(|alerts| {
                !alerts.is_empty()
                    && alerts.iter().all(|a| {
                        a["exp_labels"]["severity"].is_string()
                            && a["exp_annotations"]["summary"].is_string()
                            && a["exp_annotations"]["description"].is_string()
                    })
            })
        });
        let quiet = of_alert().any(|c| c["exp_alerts"].as_array().is_some_and(Vec::is_empty));
        assert!(
            fires,
            "{RULE_TESTS}: no case where {alert} fires with labels and annotations"
        );
        assert!(quiet, "{RULE_TESTS}: no case where {alert} must not fire");
    }
}

#[test]
fn promtool_rejects_broken_rules_and_the_unit_tests_catch_a_changed_alert() {
    let groups = rule_groups();
    let dir = tempfile::tempdir().unwrap();

    // Bad PromQL: the check fails and says where.
    let mut broken = groups.clone();
    broken["groups"][0]["rules"][0]["expr"] =
        json!("coxswain_check_result{result=\"verificationFailed\"} ==");
    let file = write_json(dir.path(), "broken.rules.yaml", &broken);
    let (ok, out) = check_rules(&file);
    assert!(!ok, "promtool accepted a rule with bad PromQL:\n{out}");
    assert!(out.contains("parse error"), "{out}");

    // An alert that fires without waiting: its unit test fails.
    let mut eager = groups.clone();
    let first = &mut eager["groups"][0]["rules"][0];
    assert_eq!(first["alert"], "CoxswainVerificationFailing");
    first["for"] = json!("0m");
    let file = write_json(dir.path(), "eager.rules.yaml", &eager);
    let (ok, out) = test_rules(dir.path(), &file);
    assert!(
        !ok,
        "the unit tests passed an alert without its `for`:\n{out}"
    );
    assert!(out.contains("CoxswainVerificationFailing"), "{out}");

    // A typo'd metric is valid PromQL, so promtool passes it; the name check does not.
    let mut typo = groups;
    typo["groups"][0]["rules"][0]["expr"] =
        json!("coxswain_check_results{result=\"verificationFailed\"} == 1");
    let file = write_json(dir.path(), "typo.rules.yaml", &typo);
    let (ok, out) = check_rules(&file);
    assert!(ok, "{out}");
    let expr = typo["groups"][0]["rules"][0]["expr"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        unknown_metrics([("typo".to_owned(), expr)]),
        ["typo: coxswain_check_results"]
    );
}

#[test]
fn the_alerts_name_only_exposed_metrics() {
    let groups = rule_groups();
    let mut texts = Vec::new();
    for rule in rules(&groups) {
        let name = rule["alert"].as_str().unwrap_or("?").to_owned();
        texts.push((
            format!("{name} expr"),
            rule["expr"].as_str().unwrap_or_default(),
        ));
        for key in ["summary", "description"] {
            texts.push((
                format!("{name} {key}"),
                rule["annotations"][key].as_str().unwrap_or_default(),
            ));
        }
    }
    let used: usize = texts.iter().map(|(_, t)| metric_names(t).len()).sum();
    assert!(used >= 10, "the rules name only {used} metrics");
    let unknown = unknown_metrics(texts.iter().map(|(p, t)| (p.clone(), *t)));
    assert!(
        unknown.is_empty(),
        "{RULE_FILE} names metrics the agent does not expose:\n{}",
        unknown.join("\n")
    );
}

/// One query of the dashboard.
struct Query {
    /// Where it is, for messages.
    place: String,
    /// The recording rule it becomes: `dashboard:<panel title>:<refId>`.
    record: String,
    /// The PromQL, with Grafana's variables.
    expr: String,
}

/// Lower case, with every run of other characters as one `_`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

/// Every query of the dashboard: panel targets and the selectors inside the
/// template variables' `label_values(...)`.
fn dashboard_queries(dashboard: &Value) -> Vec<Query> {
    fn walk(panels: &Value, out: &mut Vec<Query>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?");
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
                let reference = target["refId"].as_str().unwrap_or("?");
                out.push(Query {
                    place: format!("panel {title:?} {reference}"),
                    record: format!("dashboard:{}:{}", slug(title), slug(reference)),
                    expr: expr.to_owned(),
                });
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] != "query" {
            continue;
        }
        let name = var["name"].as_str().unwrap_or("?");
        let query = var["query"]["query"]
            .as_str()
            .or_else(|| var["query"].as_str())
            .unwrap_or_else(|| panic!("variable {name}: no query"));
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .and_then(|q| q.rsplit_once(','))
            .map(|(selector, _label)| selector.trim())
            .unwrap_or_else(|| {
                panic!("variable {name}: not label_values(selector, label): {query}")
            });
        out.push(Query {
            place: format!("variable {name}"),
            record: format!("dashboard:variable:{}", slug(name)),
            expr: selector.to_owned(),
        });
    }
    out
}

/// Replaces Grafana's variables with PromQL that parses: time ranges with `5m`,
/// the dashboard's own (multi-value) variables with `.*`, which is only valid
/// inside a regex matcher — and that is the only place a multi-value variable
/// works, so anywhere else is an error.
fn substitute_variables(
    place: &str,
    expr: &str,
    variables: &BTreeSet<String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("{place}: unclosed ${{ in {expr}"))?;
            let inner = &braced[..end];
            // `${var:regex}` and the like: the format does not change the syntax.
            let name = inner.split(':').next().unwrap_or(inner);
            (name, end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let replacement = match name {
            "__rate_interval" | "__range" | "__interval" => "5m",
            "__range_s" | "__interval_ms" | "__range_ms" => "300",
            _ if variables.contains(name) => {
                let in_regex = out.ends_with("=~\"") || out.ends_with("!~\"");
                let closes = after[consumed..].starts_with('"');
                if !(in_regex && closes) {
                    return Err(format!(
                        "{place}: ${name} is used outside a regex matcher (`label=~\"${name}\"`), \
                         which breaks with several or all values selected: {expr}"
                    ));
                }
                ".*"
            }
            _ => return Err(format!("{place}: unknown variable ${name} in {expr}")),
        };
        out.push_str(replacement);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

fn dashboard() -> Value {
    let text = read_text(DASHBOARD);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

fn dashboard_variables(dashboard: &Value) -> BTreeSet<String> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect()
}

/// The queries as recording rules, one group, for promtool.
fn queries_as_rules(queries: &[Query], variables: &BTreeSet<String>) -> Value {
    let mut records = BTreeSet::new();
    let rules: Vec<Value> = queries
        .iter()
        .map(|q| {
            assert!(
                records.insert(q.record.as_str()),
                "{}: a second query named {} (two panels with one title?)",
                q.place,
                q.record
            );
            let expr = substitute_variables(&q.place, &q.expr, variables)
                .unwrap_or_else(|e| panic!("{e}"));
            json!({ "record": q.record, "expr": expr })
        })
        .collect();
    json!({ "groups": [{ "name": "dashboard", "rules": rules }] })
}

#[test]
fn the_dashboard_queries_are_valid_promql() {
    let dashboard = dashboard();
    let variables = dashboard_variables(&dashboard);
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 25, "only {} queries", queries.len());
    let dir = tempfile::tempdir().unwrap();
    let file = write_json(
        dir.path(),
        "dashboard.rules.yaml",
        &queries_as_rules(&queries, &variables),
    );
    let (ok, out) = check_rules(&file);
    let listing: Vec<String> = queries
        .iter()
        .map(|q| format!("{} = {}: {}", q.record, q.place, q.expr))
        .collect();
    assert!(
        ok,
        "promtool rejects a query of {DASHBOARD}:\n{out}\n{}",
        listing.join("\n")
    );
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{out}"
    );
}

#[test]
fn the_dashboard_queries_answer_right_for_a_fleet() {
    let dashboard = dashboard();
    let variables = dashboard_variables(&dashboard);
    let queries = dashboard_queries(&dashboard);
    let dir = tempfile::tempdir().unwrap();
    let rules = write_json(
        dir.path(),
        "dashboard.rules.yaml",
        &queries_as_rules(&queries, &variables),
    );
    let mut tests = read_yaml(DASHBOARD_TESTS);
    tests["rule_files"] = json!([rules]);
    // Every record the tests query must still exist, or promtool would only
    // see an empty result.
    let records: BTreeSet<&str> = queries.iter().map(|q| q.record.as_str()).collect();
    let cases: Vec<&Value> = tests["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["promql_expr_test"].as_array().into_iter().flatten())
        .collect();
    assert!(
        cases.len() >= 8,
        "{DASHBOARD_TESTS}: only {} cases",
        cases.len()
    );
    for case in cases {
        let expr = case["expr"].as_str().unwrap_or_default();
        assert!(
            records.contains(expr),
            "{DASHBOARD_TESTS} queries {expr}, which no panel of {DASHBOARD} defines"
        );
    }
    let file = write_json(dir.path(), "queries.test.yaml", &tests);
    let (ok, out) = run_promtool(&["test".as_ref(), "rules".as_ref(), file.as_os_str()]);
    assert!(ok, "promtool test rules {DASHBOARD_TESTS} failed:\n{out}");
}

#[test]
fn a_broken_dashboard_query_is_rejected() {
    let dashboard = dashboard();
    let variables = dashboard_variables(&dashboard);
    let dir = tempfile::tempdir().unwrap();
    let queries = vec![Query {
        place: "broken".to_owned(),
        record: "dashboard:broken:a".to_owned(),
        expr: "sum by (release (rate(coxswain_upgrades_total{subscription=~\"$subscription\"}[$__rate_interval]))"
            .to_owned(),
    }];
    let file = write_json(
        dir.path(),
        "broken.rules.yaml",
        &queries_as_rules(&queries, &variables),
    );
    let (ok, out) = check_rules(&file);
    assert!(!ok, "promtool accepted an unbalanced query:\n{out}");

    // A multi-value variable outside a regex matcher, or a variable the dashboard
    // does not define, is refused before promtool.
    let outside = substitute_variables(
        "equality",
        "coxswain_accepted_sequence{channel=\"$channel\"}",
        &variables,
    );
    assert!(
        outside
            .as_ref()
            .is_err_and(|e| e.contains("outside a regex matcher")),
        "{outside:?}"
    );
    let undefined = substitute_variables(
        "undefined",
        "coxswain_accepted_sequence{cluster=~\"$cluster\"}",
        &variables,
    );
    assert!(
        undefined
            .as_ref()
            .is_err_and(|e| e.contains("unknown variable $cluster")),
        "{undefined:?}"
    );
    assert_eq!(
        substitute_variables(
            "regex",
            "increase(coxswain_upgrades_total{subscription=~\"${subscription}\"}[$__range])",
            &variables
        )
        .as_deref(),
        Ok("increase(coxswain_upgrades_total{subscription=~\".*\"}[5m])")
    );
}

#[test]
fn the_dashboard_names_only_exposed_metrics_and_is_fleet_ready() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "coxswain");
    assert!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion {}",
        dashboard["schemaVersion"]
    );
    let vars = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{DASHBOARD}: no variable {name}"))
            .clone()
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for name in ["subscription", "channel"] {
        let v = var(name);
        assert_eq!(v["multi"], true, "variable {name}");
        assert_eq!(v["includeAll"], true, "variable {name}");
        let query = v["query"]["query"].as_str().unwrap_or_default();
        assert!(
            query.starts_with("label_values(coxswain_accepted_sequence"),
            "variable {name}: {query}"
        );
    }

    // Every panel with queries has a title, a description and the datasource variable.
    fn panels(value: &Value, out: &mut Vec<Value>) {
        for panel in value.as_array().into_iter().flatten() {
            out.push(panel.clone());
            panels(&panel["panels"], out);
        }
    }
    let mut all = Vec::new();
    panels(&dashboard["panels"], &mut all);
    let mut ids = BTreeSet::new();
    for panel in all.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {panel}");
        assert!(
            panel["description"].as_str().is_some_and(|d| d.len() > 30),
            "panel {title:?} has no description"
        );
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {title:?}"
        );
        assert!(
            ids.insert(panel["id"].to_string()),
            "panel {title:?}: duplicate id"
        );
    }

    let queries = dashboard_queries(&dashboard);
    let used: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(&q.expr)).collect();
    for needed in [
        "coxswain_accepted_sequence",
        "coxswain_index_expiry_timestamp_seconds",
        "coxswain_failed_sequence",
        "coxswain_release_info",
        "coxswain_release_state",
        "coxswain_upgrades_total",
        "coxswain_rollbacks_total",
        "coxswain_upgrade_duration_seconds",
        "coxswain_health_check_duration_seconds",
        "coxswain_helm_invocations_total",
        "coxswain_index_fetches_total",
        "coxswain_verification_failures_total",
        "coxswain_last_successful_check_timestamp_seconds",
    ] {
        assert!(used.contains(needed), "{DASHBOARD} does not show {needed}");
    }
    let unknown = unknown_metrics(queries.iter().map(|q| (q.place.clone(), q.expr.as_str())));
    assert!(
        unknown.is_empty(),
        "{DASHBOARD} queries metrics the agent does not expose:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn docs_metrics_lists_every_exposed_metric() {
    let doc = read_text(METRICS_DOC);
    let documented = metric_names(&doc);
    for name in exposed() {
        assert!(
            doc.contains(&format!("`{name}`")),
            "{METRICS_DOC} does not document {name}"
        );
    }
    let unknown = unknown_metrics([(METRICS_DOC.to_owned(), doc.as_str())]);
    assert!(
        unknown.is_empty(),
        "{METRICS_DOC} names metrics the agent does not expose ({} named):\n{}",
        documented.len(),
        unknown.join("\n")
    );
}

#[test]
fn metric_names_are_found_where_promql_writes_them() {
    let names = metric_names(
        "histogram_quantile(0.9, rate(coxswain_upgrade_duration_seconds_bucket[5m])) \
         / coxswain_x_count + dashboard:coxswain_not_a_name + sum(coxswain_upgrades_total) \
         # every coxswain_* name, the coxswain_ prefix",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "coxswain_upgrade_duration_seconds",
            "coxswain_upgrades_total",
            "coxswain_x"
        ]
    );
}
