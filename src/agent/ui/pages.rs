//! The HTML pages, rendered on the server with maud from a [`StatusDocument`].
//! Semantic markup, one small stylesheet, no JavaScript: a page refreshes
//! itself (`<meta http-equiv="refresh">`) while a plan is being applied.

use maud::{DOCTYPE, Markup, html};

use super::api::{HistoryEntry, StatusDocument, SubscriptionDocument};
use crate::agent::view::{PreviewAction, PreviewState};
use crate::crd::{
    CheckResult, OperationKind, OperationResult, ReleaseState, ReleaseStatus, wire_name,
};
use crate::format::Timestamp;

/// Seconds between refreshes while a plan is applied.
const REFRESH_SECONDS: u32 = 2;

/// The stylesheet at `/style.css`.
pub const STYLE: &str = r#":root{--fg:#1d232a;--muted:#5b6670;--bg:#fff;--line:#d9dee3;--ok:#17663a;--okbg:#e3f4e9;--warn:#7a4b00;--warnbg:#fff1d6;--bad:#9b1c1c;--badbg:#fde4e4;--info:#1f4f8a;--infobg:#e4eefb}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ec;--muted:#9aa5ae;--bg:#14181c;--line:#2c343b;--okbg:#123222;--ok:#7fd6a0;--warnbg:#3a2b0c;--warn:#f3c26b;--badbg:#3d1616;--bad:#f29a9a;--infobg:#14273f;--info:#92bbef}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}header{display:flex;gap:1rem;align-items:baseline;border-bottom:1px solid var(--line);padding-top:.75rem;padding-bottom:.5rem}
header a.home{font-weight:700;font-size:1.2rem;color:inherit;text-decoration:none}header nav{margin-left:auto;display:flex;gap:1rem}
a{color:var(--info)}h1{font-size:1.4rem;margin:1rem 0 .5rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}h3{font-size:1rem;margin:1rem 0 .4rem}
section.sub{border:1px solid var(--line);border-radius:8px;padding:.25rem 1rem 1rem;margin:1rem 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--muted);font-weight:600;font-size:.85rem}
.badge{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.8rem;font-weight:600;background:var(--infobg);color:var(--info);white-space:nowrap}
.ok{background:var(--okbg);color:var(--ok)}.warn{background:var(--warnbg);color:var(--warn)}.bad{background:var(--badbg);color:var(--bad)}.muted{color:var(--muted)}
.notice{border-left:4px solid var(--info);background:var(--infobg);padding:.5rem .75rem;margin:.75rem 0;border-radius:4px}.notice.warn{border-color:var(--warn);background:var(--warnbg)}.notice.bad{border-color:var(--bad);background:var(--badbg)}
time{white-space:nowrap}dd.notice{margin:0}
ol.timeline{list-style:none;padding:0;margin:.5rem 0;border-left:2px solid var(--line)}ol.timeline>li{position:relative;margin:0 0 1rem;padding-left:1rem}
ol.timeline>li::before{content:"";position:absolute;left:-7px;top:.45rem;width:12px;height:12px;border-radius:50%;background:var(--line)}ol.timeline>li.succeeded::before{background:var(--ok)}ol.timeline>li.failed::before{background:var(--bad)}
code,time{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}details summary{cursor:pointer;color:var(--info)}footer{color:var(--muted);font-size:.8rem;border-top:1px solid var(--line);margin-top:2rem;padding-top:.5rem;padding-bottom:1rem}
ul.activity{margin:.25rem 0;padding-left:1.2rem}
"#;

fn layout(doc: &StatusDocument, title: &str, refresh: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh {
                    meta http-equiv="refresh" content=(REFRESH_SECONDS);
                }
                title { (title) " · coxswain" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    a.home href="/" { "coxswain" }
                    span.muted { "namespace " code { (doc.namespace) } }
                    nav aria-label="Data" {
                        a href="/api/v1/status" { "JSON" }
                        a href="/metrics" { "Metrics" }
                    }
                }
                main {
                    @if !doc.ready {
                        p.notice.bad role="alert" {
                            "Not ready: " (doc.not_ready_reason.as_deref().unwrap_or("unknown"))
                        }
                    }
                    (body)
                }
                footer {
                    "coxswain " (doc.agent_version) " · generated " (time_tag(doc.generated_at))
                    @if refresh { " · refreshing every " (REFRESH_SECONDS) " s while a plan is applied" }
                    " · read-only"
                }
            }
        }
    }
}

fn any_running(doc: &StatusDocument) -> bool {
    doc.subscriptions.iter().any(|s| s.running.is_some())
}

/// `/`: every subscription with its releases.
pub fn overview(doc: &StatusDocument) -> Markup {
    let body = html! {
        h1 { "Subscriptions" }
        (leader_notice(doc))
        @if doc.subscriptions.is_empty() {
            p.notice {
                "No ChannelSubscription in namespace " code { (doc.namespace) } " has been reconciled yet. "
                "Create one (see docs/agent.md); this page shows it after the agent's first check."
            }
        }
        @for sub in &doc.subscriptions {
            section.sub aria-labelledby=(format!("sub-{}", sub.name)) {
                h2 id=(format!("sub-{}", sub.name)) {
                    a href=(format!("/subscriptions/{}", sub.name)) { (sub.name) }
                    " " (check_badge(sub))
                }
                (facts(sub, doc.generated_at))
                (running_notice(sub))
                (releases_table(sub, doc.generated_at))
                (preview_line(sub))
            }
        }
    };
    layout(doc, "Subscriptions", any_running(doc), body)
}

/// Who leads, with leader election: this replica acts, or it follows and
/// shows what the leader wrote.
fn leader_notice(doc: &StatusDocument) -> Markup {
    let l = &doc.leader;
    let me = l.identity.as_deref().unwrap_or("?");
    html! {
        @if l.election {
            @if l.leading {
                p.notice role="status" id="leader" {
                    "This replica (" code { (me) } ") is the " strong { "leader" } ": it checks the channels and applies them."
                }
            } @else {
                p.notice.warn role="status" id="leader" {
                    "This replica (" code { (me) } ") is a " strong { "follower" } "; "
                    @match &l.holder {
                        Some(h) => { "the leader is " code { (h) } ". " }
                        None => { "no replica holds the leader lease right now. " }
                    }
                    "It changes nothing and shows the subscriptions' status as the leader wrote it."
                }
            }
        }
    }
}

/// `/subscriptions/{name}`: one subscription with its conditions and history.
pub fn subscription(doc: &StatusDocument, sub: &SubscriptionDocument) -> Markup {
    let body = html! {
        nav aria-label="Breadcrumb" { a href="/" { "Subscriptions" } " / " (sub.name) }
        h1 { (sub.name) " " (check_badge(sub)) }
        (facts(sub, doc.generated_at))
        @if let Some(spec) = &sub.spec {
            h2 { "Settings" }
            dl.facts {
                dt { "Rollback policy" } dd { (spec.rollback_policy) }
                dt { "Trust anchor" } dd { code { (spec.trust_ref) } }
                dt { "Pins" } dd {
                    @if spec.pins.is_empty() { span.muted { "none" } }
                    @for (r, v) in &spec.pins { code { (r) "=" (v) } " " }
                }
                dt { "Holds" } dd {
                    @if spec.holds.is_empty() { span.muted { "none" } }
                    @for r in &spec.holds { code { (r) } " " }
                }
                dt { "Cluster values for" } dd {
                    @if spec.values_for.is_empty() { span.muted { "none" } }
                    @for r in &spec.values_for { code { (r) } " " }
                    @if !spec.values_for.is_empty() { span.muted { " (contents are never shown)" } }
                }
            }
        }
        (running_notice(sub))
        h2 { "Releases" }
        (releases_table(sub, doc.generated_at))
        (preview_line(sub))
        h2 { "Conditions" }
        table {
            thead { tr { th { "Type" } th { "Status" } th { "Reason" } th { "Message" } th { "Since" } } }
            tbody {
                @for c in &sub.conditions {
                    tr {
                        td { (c.type_) }
                        td { (wire_name(&c.status)) }
                        td { (c.reason) }
                        td { (c.message) }
                        td { (time_tag(c.last_transition_time)) }
                    }
                }
            }
        }
        h2 { "Recent operations" }
        (history_table(sub, None))
    };
    layout(doc, &sub.name, sub.running.is_some(), body)
}

/// `/subscriptions/{name}/preview`: the plan for the newest verified index.
pub fn preview(doc: &StatusDocument, sub: &SubscriptionDocument) -> Markup {
    let body = html! {
        nav aria-label="Breadcrumb" {
            a href="/" { "Subscriptions" } " / "
            a href=(format!("/subscriptions/{}", sub.name)) { (sub.name) } " / preview"
        }
        h1 { "Next sequence: plan for " (sub.name) }
        @match &sub.preview {
            None => p.notice { "No plan yet: the channel's index has not been verified by a check." },
            Some(p) => {
                p {
                    "Planned " (time_tag(p.planned_at)) " for sequence " strong { (p.sequence) } ". "
                    @match &p.state {
                        PreviewState::NothingToDo => span.badge.ok { "nothing to do" },
                        PreviewState::Applying => span.badge { "being applied" },
                        PreviewState::Applied => span.badge.ok { "applied" },
                        PreviewState::Waiting(_) => span.badge.warn { "waiting" },
                    }
                }
                @if let PreviewState::Waiting(why) = &p.state {
                    p.notice.warn { "Not applied: " (why) }
                }
                p.muted {
                    "Installs and upgrades run layer by layer in dependency order; each is health-checked "
                    "and rolled back with helm rollback when it fails."
                }
                table {
                    thead { tr { th { "Layer" } th { "Release" } th { "Action" } th { "Version" } th { "Why" } } }
                    tbody {
                        @for item in &p.items {
                            tr {
                                td { @if let Some(l) = item.layer { (l) } @else { span.muted { "–" } } }
                                td {
                                    a href=(format!("/subscriptions/{}/releases/{}", sub.name, item.release)) { (item.release) }
                                    br; span.muted { (item.namespace) }
                                }
                                td { (action_badge(item.action)) @if item.pinned { " " span.badge { "pinned" } } @if item.held { " " span.badge.warn { "held" } } }
                                td { (versions(item.from.as_deref(), item.to.as_deref())) }
                                td { (item.reason) }
                            }
                        }
                    }
                }
                @for note in &p.notes { p.notice.warn { (note) } }
            }
        }
        @if !sub.diffs.is_empty() {
            h2 { "Awaiting approval: what the upgrades change" }
            p.muted {
                "helm template of the new revision with this cluster's values against helm get manifest "
                "of the installed one. Secret values are never shown, only which keys change."
            }
            @for d in &sub.diffs { (release_diff(d)) }
        }
    };
    layout(doc, "Preview", sub.running.is_some(), body)
}

/// A release's rendered diff: the summary, then each object that changes.
fn release_diff(d: &crate::agent::diff::ReleaseDiff) -> Markup {
    use crate::agent::diff::ObjectChange;
    html! {
        section id=(format!("diff-{}", d.release)) {
            h3 { (d.namespace) "/" (d.release) ": " (d.from) " → " (d.to) }
            p { (d.summary()) " (installed revision " (d.installed_revision) ", rendered " (time_tag(d.rendered_at)) ")" }
            @if let Some(m) = &d.diff {
                @for o in &m.objects {
                    details open[m.objects.len() <= 10] {
                        summary {
                            @match o.change {
                                ObjectChange::Added => span.badge { "added" },
                                ObjectChange::Removed => span.badge.warn { "removed" },
                                ObjectChange::Changed => span.badge { "changed" },
                            }
                            " " code { (o.key) }
                        }
                        @if let Some(k) = &o.secret_keys {
                            p.muted {
                                "Secret values are not shown. Keys added: " (k.added.join(", "))
                                "; removed: " (k.removed.join(", ")) "; changed: " (k.changed.join(", "))
                            }
                        }
                        @if !o.diff.is_empty() { pre { code { (o.diff) } } }
                    }
                }
                @for u in &m.unreadable { p.notice.warn { "Document " (u) " could not be read; not shown." } }
                @if m.truncated { p.notice.warn { "Cut to stay within the bounds; the object list is complete." } }
            }
        }
    }
}

/// `/subscriptions/{name}/releases/{release}`: a release's history as a timeline.
pub fn release(doc: &StatusDocument, sub: &SubscriptionDocument, release: &str) -> Markup {
    let current = sub.releases.iter().find(|r| r.name == release);
    let ops: Vec<&HistoryEntry> = sub
        .history
        .iter()
        .filter(|h| h.operation.release == release)
        .collect();
    let running: Vec<_> = sub
        .running
        .iter()
        .flat_map(|r| &r.activity)
        .filter(|a| {
            a.release
                .as_deref()
                .is_some_and(|x| x.rsplit('/').next() == Some(release))
        })
        .collect();
    let body = html! {
        nav aria-label="Breadcrumb" {
            a href="/" { "Subscriptions" } " / "
            a href=(format!("/subscriptions/{}", sub.name)) { (sub.name) } " / " (release)
        }
        h1 { "Release " (release) }
        @if let Some(r) = current {
            dl.facts {
                dt { "Namespace" } dd { (r.namespace) }
                dt { "Version" } dd { (versions_desired(r)) }
                dt { "Helm revision" } dd { (opt(r.revision)) }
                dt { "State" } dd { (state_badge(r.state)) " since " (time_tag(r.since)) " (" (relative(r.since, doc.generated_at)) ")" (markers(r)) }
                dt { "Reason" } dd { (r.message) }
            }
        }
        @if !running.is_empty() {
            section.notice aria-live="polite" {
                strong { "In progress" }
                ul.activity { @for a in &running { li { (time_tag(a.at)) " " (a.message) } } }
            }
        }
        h2 { "History" }
        @if ops.is_empty() {
            p.muted { "No operation recorded yet." }
        }
        ol.timeline {
            @for h in &ops {
                (timeline_item(h))
            }
        }
    };
    layout(doc, release, sub.running.is_some(), body)
}

/// A 404 page naming what was not found.
pub fn not_found(what: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Not found · coxswain" } link rel="stylesheet" href="/style.css"; }
            body { main { h1 { "Not found" } p { "No such " (what) ". " a href="/" { "Back to the overview" } } } }
        }
    }
}

fn timeline_item(h: &HistoryEntry) -> Markup {
    let op = &h.operation;
    let class = match op.result {
        OperationResult::Succeeded => "succeeded",
        OperationResult::Failed => "failed",
    };
    let took = match h.elapsed_seconds {
        Some(s) => format!("{s:.1} s"),
        None => op.duration.to_string(),
    };
    html! {
        li class=(class) {
            div {
                (time_tag(op.started)) " "
                (kind_badge(op.operation)) " "
                (versions(op.from.as_deref(), op.to.as_deref())) " "
                @match op.result {
                    OperationResult::Succeeded => span.badge.ok { "succeeded" },
                    OperationResult::Failed => span.badge.bad { "failed" },
                }
            }
            div.muted {
                "took " (took) " · sequence " (op.sequence)
                @if op.from_revision.is_some() || op.to_revision.is_some() {
                    " · helm revision " (opt(op.from_revision)) " → " (opt(op.to_revision))
                }
            }
            @if !op.message.is_empty() {
                div { (if op.operation == OperationKind::Rollback { "Rollback reason: " } else { "" }) (op.message) }
            }
            @if let Some(health) = &op.health {
                div {
                    "Health: "
                    @if health.healthy { span.badge.ok { "healthy" } } @else { span.badge.bad { "not healthy" } }
                    " " (health.objects) " objects in "
                    @match h.health_elapsed_seconds {
                        Some(s) => { (format!("{s:.1} s")) },
                        None => { (health.duration) },
                    }
                }
                @if !h.health_objects.is_empty() {
                    details open[!health.healthy] {
                        summary { "Objects" }
                        table {
                            thead { tr { th { "Object" } th { "State" } th { "Reason" } } }
                            tbody {
                                @for o in &h.health_objects {
                                    tr {
                                        td { code { (o.kind) "/" @if let Some(ns) = &o.namespace { (ns) "/" } (o.name) } }
                                        td {
                                            @match o.state {
                                                "current" => span.badge.ok { "ready" },
                                                "failed" => span.badge.bad { "failed" },
                                                _ => span.badge.warn { "not ready" },
                                            }
                                        }
                                        td { (o.reason.as_deref().unwrap_or("")) }
                                    }
                                }
                            }
                        }
                    }
                } @else if !health.not_ready.is_empty() {
                    ul { @for r in &health.not_ready { li { (r) } } }
                }
            }
        }
    }
}

fn history_table(sub: &SubscriptionDocument, release: Option<&str>) -> Markup {
    html! {
        table {
            thead { tr { th { "Started" } th { "Release" } th { "Operation" } th { "Version" } th { "Result" } th { "Took" } } }
            tbody {
                @for h in sub.history.iter().filter(|h| release.is_none_or(|r| h.operation.release == r)).take(20) {
                    tr {
                        td { (time_tag(h.operation.started)) }
                        td { a href=(format!("/subscriptions/{}/releases/{}", sub.name, h.operation.release)) { (h.operation.release) } }
                        td { (kind_badge(h.operation.operation)) }
                        td { (versions(h.operation.from.as_deref(), h.operation.to.as_deref())) }
                        td {
                            @match h.operation.result {
                                OperationResult::Succeeded => span.badge.ok { "succeeded" },
                                OperationResult::Failed => span.badge.bad { "failed" },
                            }
                        }
                        td { (h.operation.duration) }
                    }
                }
            }
        }
    }
}

fn facts(sub: &SubscriptionDocument, now: Timestamp) -> Markup {
    html! {
        dl.facts {
            @if let Some(spec) = &sub.spec {
                dt { "Server" } dd { code { (spec.server) } }
                dt { "Channel" } dd { strong { (spec.channel) } " · every " (spec.interval) @if spec.suspend { " " span.badge.warn { "suspended" } } }
            }
            dt { "Accepted sequence" } dd { (opt(sub.accepted_sequence)) }
            @if let Some(i) = &sub.index {
                dt { "Index" } dd {
                    "published " (time_tag(i.published)) ", expires " (time_tag(i.expires))
                    " (" (relative(i.expires, now)) ")"
                    @if sub.expires_soon { " " span.badge.bad role="status" { "expires within a day" } }
                }
            }
            dt { "Last check" } dd {
                @match &sub.last_check {
                    Some(lc) => { (time_tag(lc.time)) " (" (relative(lc.time, now)) ") — " (lc.message) }
                    None => span.muted { "not yet" },
                }
            }
            dt { "Next check" } dd {
                @match sub.next_check {
                    Some(t) => { (time_tag(t)) " (" (relative(t, now)) ")" }
                    None => span.muted { "after the current one" },
                }
            }
            @if let Some(t) = sub.next_start {
                dt { "Rollout" } dd {
                    "releases wait for their rollout wave or maintenance window; the first may start "
                    (time_tag(t)) " (" (relative(t, now)) ")"
                }
            }
            @for w in &sub.withdrawn {
                dt { "Withdrawn" } dd.notice {
                    "Sequence " strong { (w.sequence) } " was withdrawn by the channel's maintainers: " (w.reason)
                }
            }
            @if let Some(f) = &sub.failed_sequence {
                dt { "Failed sequence" } dd.notice.bad {
                    strong { (f.sequence) } " failed " (time_tag(f.at)) ": " (f.reason)
                    br;
                    span.muted { "Not retried until a newer sequence is published or the coxswain.dev/retry annotation is set to a new value." }
                }
            }
        }
    }
}

fn running_notice(sub: &SubscriptionDocument) -> Markup {
    html! {
        @if let Some(r) = &sub.running {
            section.notice aria-live="polite" {
                strong { "Applying sequence " (r.sequence) } " since " (time_tag(r.started))
                ul.activity {
                    @for a in r.activity.iter().rev().take(8) {
                        li { (time_tag(a.at)) " " @if let Some(rel) = &a.release { code { (rel) } ": " } (a.message) }
                    }
                }
            }
        }
    }
}

fn releases_table(sub: &SubscriptionDocument, now: Timestamp) -> Markup {
    html! {
        @if sub.releases.is_empty() {
            p.muted { "No release reported yet." }
        } @else {
            table {
                thead { tr { th { "Release" } th { "Version" } th { "Revision" } th { "State" } th { "Since" } th { "Reason" } } }
                tbody {
                    @for r in &sub.releases {
                        tr {
                            td { a href=(format!("/subscriptions/{}/releases/{}", sub.name, r.name)) { (r.name) } br; span.muted { (r.namespace) } }
                            td { (versions_desired(r)) }
                            td { (opt(r.revision)) }
                            td {
                                (state_badge(r.state)) (markers(r))
                                @if in_progress(sub, r) { " " span.badge { "in progress" } }
                            }
                            td { (ago_tag(r.since, now)) }
                            td { @if is_trouble(r.state) { (r.message) } @else { span.muted { (r.message) } } }
                        }
                    }
                }
            }
        }
    }
}

/// The running plan has started on this release and not finished with it.
fn in_progress(sub: &SubscriptionDocument, r: &ReleaseStatus) -> bool {
    let key = format!("{}/{}", r.namespace, r.name);
    sub.running.as_ref().is_some_and(|run| {
        run.activity
            .iter()
            .rev()
            .find(|a| a.release.as_deref() == Some(&key))
            .is_some_and(|a| !a.done)
    })
}

fn preview_line(sub: &SubscriptionDocument) -> Markup {
    let Some(p) = &sub.preview else {
        return html! {};
    };
    let count = |a: PreviewAction| p.items.iter().filter(|i| i.action == a).count();
    let parts: Vec<String> = [
        (PreviewAction::Install, "install"),
        (PreviewAction::Upgrade, "upgrade"),
        (PreviewAction::Downgrade, "downgrade"),
        (PreviewAction::Skip, "skip"),
        (PreviewAction::Unchanged, "unchanged"),
    ]
    .into_iter()
    .filter_map(|(a, word)| {
        let n = count(a);
        (n > 0).then(|| format!("{n} {word}"))
    })
    .collect();
    html! {
        p {
            a href=(format!("/subscriptions/{}/preview", sub.name)) { "Plan for sequence " (p.sequence) }
            ": " (parts.join(", "))
            @match &p.state {
                PreviewState::Waiting(_) => { " " span.badge.warn { "waiting" } },
                PreviewState::Applying => { " " span.badge { "being applied" } },
                _ => {},
            }
        }
    }
}

fn check_badge(sub: &SubscriptionDocument) -> Markup {
    let Some(lc) = &sub.last_check else {
        return html! { span.badge { "pending" } };
    };
    let class = match lc.result {
        CheckResult::UpToDate | CheckResult::Applied => "badge ok",
        CheckResult::RolledBack | CheckResult::Degraded | CheckResult::Suspended => "badge warn",
        CheckResult::VerificationFailed | CheckResult::Unreachable | CheckResult::Error => {
            "badge bad"
        }
    };
    html! { span class=(class) { (wire_name(&lc.result)) } }
}

fn is_trouble(state: ReleaseState) -> bool {
    matches!(
        state,
        ReleaseState::RolledBack
            | ReleaseState::Failed
            | ReleaseState::Blocked
            | ReleaseState::Conflict
            | ReleaseState::Skipped
    )
}

fn state_badge(state: ReleaseState) -> Markup {
    let class = match state {
        ReleaseState::UpToDate => "badge ok",
        ReleaseState::Installing | ReleaseState::Upgrading | ReleaseState::RollingBack => "badge",
        ReleaseState::RolledBack
        | ReleaseState::Held
        | ReleaseState::Skipped
        | ReleaseState::Waiting
        | ReleaseState::Orphaned
        | ReleaseState::AwaitingApproval => "badge warn",
        ReleaseState::Failed | ReleaseState::Blocked | ReleaseState::Conflict => "badge bad",
    };
    html! { span class=(class) { (wire_name(&state)) } }
}

fn kind_badge(kind: OperationKind) -> Markup {
    let class = match kind {
        OperationKind::Rollback | OperationKind::Uninstall => "badge warn",
        _ => "badge",
    };
    html! { span class=(class) { (wire_name(&kind)) } }
}

fn action_badge(action: PreviewAction) -> Markup {
    let class = match action {
        PreviewAction::Install | PreviewAction::Upgrade => "badge",
        PreviewAction::Downgrade | PreviewAction::Skip | PreviewAction::Orphan => "badge warn",
        PreviewAction::Unchanged => "badge ok",
    };
    html! { span class=(class) { (wire_name(&action)) } }
}

fn markers(r: &ReleaseStatus) -> Markup {
    html! {
        @if r.pinned { " " span.badge title="A pin in the subscription selects the version" { "pinned" } }
        @if r.held && r.state != ReleaseState::Held { " " span.badge.warn title="The subscription holds this release" { "held" } }
    }
}

fn versions(from: Option<&str>, to: Option<&str>) -> Markup {
    html! {
        @match (from, to) {
            (Some(f), Some(t)) if f != t => { code { (f) } " → " code { (t) } },
            (_, Some(t)) => code { (t) },
            (Some(f), None) => code { (f) },
            (None, None) => span.muted { "–" },
        }
    }
}

fn versions_desired(r: &ReleaseStatus) -> Markup {
    html! {
        @match (&r.version, &r.desired_version) {
            (Some(v), Some(d)) if v != d => { code { (v) } " " span.muted { "(channel: " code { (d) } ")" } },
            (Some(v), _) => code { (v) },
            (None, Some(d)) => { span.muted { "not installed (channel: " code { (d) } ")" } },
            (None, None) => span.muted { "not installed" },
        }
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> Markup {
    match v {
        Some(v) => html! { (v) },
        None => html! { span.muted { "–" } },
    }
}

/// `2026-11-26 05:43:08Z`, machine-readable in `datetime`.
fn time_tag(t: Timestamp) -> Markup {
    let text = t.to_string().replacen('T', " ", 1);
    html! { time datetime=(t.to_string()) { (text) } }
}

/// "3m ago", with the timestamp as a tooltip and in `datetime`.
fn ago_tag(t: Timestamp, now: Timestamp) -> Markup {
    html! { time datetime=(t.to_string()) title=(t.to_string()) { (relative(t, now)) } }
}

/// "3m ago" or "in 2h".
fn relative(t: Timestamp, now: Timestamp) -> String {
    let secs = (t.datetime() - now.datetime()).whole_seconds();
    let (n, future) = (secs.unsigned_abs(), secs > 0);
    let text = crate::duration::Duration::from_secs(match n {
        0..120 => n,
        120..7200 => n / 60 * 60,
        7200..172_800 => n / 3600 * 3600,
        _ => n / 86_400 * 86_400,
    })
    .to_string();
    if n == 0 {
        "now".to_owned()
    } else if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}
