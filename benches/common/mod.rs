//! The generated channel shared by the benchmarks: releases shaped like testdata's, so
//! every benchmark measures the same kind of index at whatever size it needs.

// Each benchmark uses the part of this module it needs.
#![allow(dead_code)]

use coxswain::format::index::{ChannelIndexKind, Health};
use coxswain::format::{
    ApiVersion, ChannelIndex, IndexChart, IndexRelease, Sha256Digest, Timestamp, TrustRoot,
    to_json_pretty,
};
use coxswain::keys;
use coxswain::verify::{IndexPolicy, TrustChain, TrustedRoot};
use ed25519_dalek::SigningKey;
use serde_json::json;

pub fn chart(name: &str, version: &str) -> IndexChart {
    let digest = Sha256Digest::of(format!("{name}-{version}").as_bytes());
    IndexChart {
        name: name.to_owned(),
        version: version.to_owned(),
        url: format!("../../charts/{}", IndexChart::archive_name(&digest)),
        digest,
        size: 4_096 + name.len() as u64,
    }
}

/// A release shaped like the testdata ones: an image tag and a replica count in its
/// values, up to two earlier releases it depends on, every twentieth with an older entry.
/// About 0.7 KB of pretty-printed JSON each, like the 676 KB index the design measured.
pub fn release(i: usize) -> IndexRelease {
    let name = format!("app-{i:04}");
    let values = json!({
        "image": {"tag": format!("1.{}.{}", i % 17, i % 5)},
        "replicas": 1 + i % 3,
    });
    let depends_on = [i / 2, i.saturating_sub(1)]
        .into_iter()
        .filter(|&d| d < i)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|d| format!("app-{d:04}"))
        .collect();
    let mut entry = IndexRelease {
        name: name.clone(),
        namespace: format!("ns-{i:04}"),
        chart: chart(&name, "1.4.2"),
        values: values.as_object().cloned().unwrap_or_default(),
        depends_on,
        health: Health::default(),
        upgrade_from: Some(">=1.0.0, <2.0.0".to_owned()),
        crds: None,
        backup: None,
        previous: Vec::new(),
        urgency: None,
        since: None,
        requires_approval: false,
    };
    if i % 20 == 0 {
        let mut old = entry.to_previous();
        old.chart = chart(&name, "1.4.1");
        entry.previous.push(old);
    }
    entry
}

/// A channel index of `releases` generated releases at `sequence`, published at `published`.
pub fn index(releases: usize, sequence: u64, published: Timestamp) -> ChannelIndex {
    ChannelIndex {
        api_version: ApiVersion::V1,
        kind: ChannelIndexKind::ChannelIndex,
        channel: "stable".to_owned(),
        sequence,
        published,
        expires: "2026-12-10T03:00:00Z".parse().expect("a timestamp"),
        releases: (0..releases).map(release).collect(),
        withdrawn: Vec::new(),
        rollout: None,
    }
}

/// When the generated index was published.
pub fn published() -> Timestamp {
    "2026-11-26T03:00:00Z".parse().expect("a timestamp")
}

/// A generated index as the agent receives it: its bytes, their signature by the one
/// channel key, the trust root that asks for that key, and the policy it passes.
pub struct Signed {
    /// The index, pretty-printed as publish writes it.
    pub bytes: Vec<u8>,
    /// `index.json.sig`.
    pub sig_bytes: Vec<u8>,
    /// The trust root.
    pub root: TrustRoot,
    /// The trust root, walked and trusted at the policy's time.
    pub trusted: TrustedRoot,
    /// The channel, sequence floor and time the index is verified with.
    pub policy: IndexPolicy<'static>,
}

/// Signs `index` with a fixed channel key under a fixed root key.
pub fn signed(index: &ChannelIndex) -> Signed {
    let channel_key = SigningKey::from_bytes(&[3; 32]);
    let root_key = SigningKey::from_bytes(&[1; 32]);
    let now: Timestamp = "2026-11-27T03:00:00Z".parse().expect("a timestamp");
    let bytes = to_json_pretty(index).expect("serializable");
    let sig_bytes = to_json_pretty(&keys::sign(&bytes, std::slice::from_ref(&channel_key)))
        .expect("serializable");
    let root = TrustRoot::new(
        1,
        "2027-11-26T03:00:00Z".parse().expect("a timestamp"),
        (&[root_key.verifying_key()], 1),
        (&[channel_key.verifying_key()], 1),
    );
    let root_bytes = to_json_pretty(&root).expect("serializable");
    let trusted = TrustChain::anchor(&root_bytes, None, "trust.json")
        .and_then(|chain| chain.trusted(now))
        .expect("a trusted root");
    Signed {
        bytes,
        sig_bytes,
        root,
        trusted,
        policy: IndexPolicy {
            channel: "stable",
            min_sequence: index.sequence,
            now,
        },
    }
}
